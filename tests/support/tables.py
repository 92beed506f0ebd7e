"""Small hand-made study tables shared by the statistics, analysis-command, figure and summary tests.

* :data:`HAND_MODELS` and :func:`hand_scores_table`: three vanilla / instruction-tuned pairs with scores on two
  datasets, small enough to compute pair effects and correlations by hand.
* :func:`tidy_table` and :func:`write_study_inputs`: a tidy scores table (brain layers, best layer, nested layer
  choice, behaviour rows) of two trained models and one untrained control, and its models table, as the figure and
  summary steps read them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HAND_MODELS = pd.DataFrame({
    "model": ["a", "a-it", "b", "b-it", "c", "c-it"],
    "family": ["A", "A", "B", "B", "C", "C"],
    "instruction_tuned": [0, 1, 0, 1, 0, 1],
    "vanilla_base_model": ["a", "a", "b", "b", "c", "c"],
    "n_params": [1e8, 1e8, 1e9, 1e9, 1e10, 1e10],
    "mmlu_overall": [np.nan, 0.3, np.nan, 0.4, np.nan, 0.6],
})


def hand_scores_table():
    """Scores of :data:`HAND_MODELS` on datasets d1 and d2 (``model``, ``dataset``, ``score``)."""
    rows = []
    values = {"a": (0.2, 0.1), "a-it": (0.3, 0.1), "b": (0.4, 0.2), "b-it": (0.3, 0.3), "c": (0.1, 0.2), "c-it": (0.2, 0.4)}
    for model, (d1, d2) in values.items():
        rows += [{"model": model, "dataset": "d1", "score": d1}, {"model": model, "dataset": "d2", "score": d2}]
    return pd.DataFrame(rows)


def tidy_table():
    """The tidy scores table: per-layer, best-layer and nested-choice brain rows on d1, d2 (the nested choice, l3,
    0.01 below the best, l4) and behaviour rows on ns."""
    rows = []
    for model, base in [("m1", 0.3), ("m1-untrained", 0.1), ("m2", 0.35)]:
        for dataset in ("d1", "d2"):
            for i in range(5):
                rows.append({"model": model, "dataset": dataset, "kind": "brain", "metric": "linear", "protocol": "ridge-grouped",
                             "selection": "layer", "layer": f"l{i}", "layer_index": i, "layer_depth": i / 4, "raw_r": base + 0.01 * i,
                             "ceiling": 0.5, "normalised": (base + 0.01 * i) / 0.5, "ci_low": np.nan, "ci_high": np.nan, "n": 100})
            rows.append(dict(rows[-1], selection="best"))
            rows.append(dict(rows[-3], selection="nested"))  # l3 (rows[-2] is l4, rows[-1] its best row)
        if model != "m1-untrained":
            rows.append({"model": model, "dataset": "ns", "kind": "behaviour", "metric": "surprisal_r", "protocol": "default",
                         "raw_r": base, "selection": "", "layer": ""})
            rows.append({"model": model, "dataset": "ns", "kind": "behaviour", "metric": "perplexity", "protocol": "default",
                         "raw_r": 20 + base, "selection": "", "layer": ""})
    return pd.DataFrame(rows)


def write_study_inputs(tmp_path: Path) -> tuple[Path, Path]:
    """``tmp_path/scores.csv`` (:func:`tidy_table`) and ``tmp_path/models.csv``; returns both paths."""
    tidy = tmp_path / "scores.csv"
    tidy_table().to_csv(tidy, index=False)
    models = tmp_path / "models.csv"
    pd.DataFrame({"model": ["m1", "m1-untrained", "m2"], "instruction_tuned": [0, 0, 0],
                  "vanilla_base_model": ["m1-untrained", "m1-untrained", "m2"], "n_params": [1e8, 1e8, 3e8],
                  "trained": [1, 0, 1]}).to_csv(models, index=False)
    return tidy, models
