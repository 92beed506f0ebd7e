"""Figures exist, are non-trivial, and plot exactly the expected points (checked through their data files)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from brainalign.plots import make_figures


def tidy_table():
    rows = []
    for model, base in [("m1", 0.3), ("m1-untrained", 0.1), ("m2", 0.35)]:
        for dataset in ("d1", "d2"):
            for i in range(5):
                rows.append({"model": model, "dataset": dataset, "kind": "brain", "metric": "linear", "protocol": "ridge-grouped",
                             "selection": "layer", "layer": f"l{i}", "layer_index": i, "layer_depth": i / 4, "raw_r": base + 0.01 * i,
                             "ceiling": 0.5, "normalised": (base + 0.01 * i) / 0.5, "ci_low": np.nan, "ci_high": np.nan, "n": 100})
            rows.append(dict(rows[-1], selection="best"))
        if model != "m1-untrained":
            rows.append({"model": model, "dataset": "ns", "kind": "behaviour", "metric": "surprisal_r", "protocol": "default",
                         "raw_r": base, "selection": "", "layer": ""})
            rows.append({"model": model, "dataset": "ns", "kind": "behaviour", "metric": "perplexity", "protocol": "default",
                         "raw_r": 20 + base, "selection": "", "layer": ""})
    return pd.DataFrame(rows)


def test_figures_are_drawn_with_the_expected_points(tmp_path):
    tidy = tmp_path / "scores.csv"
    tidy_table().to_csv(tidy, index=False)
    models = tmp_path / "models.csv"
    pd.DataFrame({"model": ["m1", "m1-untrained", "m2"], "instruction_tuned": [0, 0, 0],
                  "vanilla_base_model": ["m1-untrained", "m1-untrained", "m2"], "n_params": [1e8, 1e8, 3e8],
                  "trained": [1, 0, 1]}).to_csv(models, index=False)
    paths = make_figures(tidy, models, tmp_path / "figures", label="trained vs untrained")
    names = {p.stem for p in paths}
    assert names == {"pair_effect", "alignment_vs_size", "layer_profiles", "behaviour_vs_perplexity"}
    for path in paths:
        assert path.stat().st_size > 10_000 and path.with_suffix(".pdf").exists()
    data = tmp_path / "figures" / "data"
    assert len(pd.read_csv(data / "pair_effect.csv")) == 2            # one pair x (d1, d2); the base has no ns score
    assert len(pd.read_csv(data / "layer_profiles.csv")) == 30        # 3 models x 2 datasets x 5 layers
    assert len(pd.read_csv(data / "alignment_vs_size.csv")) == 8      # 3 models x 2 brain datasets + 2 on ns
    assert len(pd.read_csv(data / "behaviour_vs_perplexity.csv")) == 2
    # deterministic bytes
    again = make_figures(tidy, models, tmp_path / "again", label="trained vs untrained")
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(sorted(paths), sorted(again)))
