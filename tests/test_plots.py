"""Figures exist, are non-trivial, plot exactly the expected points (checked through their data files), and meet the
style the report needs: no two text boxes overlap, legends lie inside the figure, trained and untrained models are
never pooled into one trend line, every figure has its caption (here and in the Snakemake report)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign import plots
from brainalign.plots import CAPTIONS, make_figures

REPO = Path(__file__).resolve().parents[1]


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


def inputs(tmp_path):
    tidy = tmp_path / "scores.csv"
    tidy_table().to_csv(tidy, index=False)
    models = tmp_path / "models.csv"
    pd.DataFrame({"model": ["m1", "m1-untrained", "m2"], "instruction_tuned": [0, 0, 0],
                  "vanilla_base_model": ["m1-untrained", "m1-untrained", "m2"], "n_params": [1e8, 1e8, 3e8],
                  "trained": [1, 0, 1]}).to_csv(models, index=False)
    return tidy, models


def test_figures_are_drawn_with_the_expected_points(tmp_path):
    tidy, models = inputs(tmp_path)
    paths = make_figures(tidy, models, tmp_path / "figures", label="trained vs untrained")
    names = {p.stem for p in paths}
    assert names == {"headline", "pair_effect", "alignment_vs_size", "layer_profiles", "behaviour_vs_perplexity"}
    assert json.loads((tmp_path / "figures" / "captions.json").read_text()) == {name: CAPTIONS[name] for name in names}
    for path in paths:
        assert path.stat().st_size > 10_000 and path.with_suffix(".pdf").exists()
    data = tmp_path / "figures" / "data"
    assert len(pd.read_csv(data / "pair_effect.csv")) == 2            # one pair x (d1, d2); the base has no ns score
    assert len(pd.read_csv(data / "layer_profiles.csv")) == 30        # 3 models x 2 datasets x 5 layers
    assert len(pd.read_csv(data / "alignment_vs_size.csv")) == 8      # 3 models x 2 brain datasets + 2 on ns
    assert len(pd.read_csv(data / "behaviour_vs_perplexity.csv")) == 2
    headline = pd.read_csv(data / "headline.csv")
    assert len(headline) == 8 and set(headline.loc[headline["dataset"] == "d1", "scale"]) == {"r / ceiling"}
    assert np.allclose(headline.loc[headline["dataset"] == "d1", "value"], headline.loc[headline["dataset"] == "d1", "score"] / 0.5)
    assert set(headline.loc[headline["dataset"] == "ns", "scale"]) == {"r"}  # no ceiling: raw r
    # deterministic bytes
    again = make_figures(tidy, models, tmp_path / "again", label="trained vs untrained")
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(sorted(paths), sorted(again)))


def test_no_text_overlaps_and_legends_stay_inside_the_figure(tmp_path, monkeypatch):
    """Checked on the figure objects just before saving, with matplotlib's renderer (window extents of every drawn
    text: titles, axis labels, tick labels, annotations, legend entries)."""
    tidy, models = inputs(tmp_path)
    # long model names, as real ones are, to stress the legend and labels
    frame = pd.read_csv(tidy)
    frame["model"] = frame["model"].map(lambda m: f"{m}-a-rather-long-model-name-135m-instruct")
    frame.to_csv(tidy, index=False)
    table = pd.read_csv(models)
    for column in ("model", "vanilla_base_model"):
        table[column] = table[column] + "-a-rather-long-model-name-135m-instruct"
    table.to_csv(models, index=False)
    checked, save = {}, plots._save

    def check(fig, out_dir, name, data):
        overlaps = plots.text_overlaps(fig)  # draws the figure: extents below are final
        figure_box = fig.bbox
        legends = [legend.get_window_extent() for legend in fig.legends]
        assert plots.texts_outside(fig) == [], f"{name}: text cut by the figure's edge"
        checked[name] = (overlaps, [(box.x0 >= figure_box.x0 - 1 and box.x1 <= figure_box.x1 + 1
                                                      and box.y0 >= figure_box.y0 - 1 and box.y1 <= figure_box.y1 + 1)
                                                     for box in legends])
        return save(fig, out_dir, name, data)

    monkeypatch.setattr(plots, "_save", check)
    make_figures(tidy, models, tmp_path / "figures", label="trained vs untrained")
    assert set(checked) == {"headline", "pair_effect", "alignment_vs_size", "layer_profiles", "behaviour_vs_perplexity"}
    for name, (overlaps, inside) in checked.items():
        assert overlaps == [], f"{name}: overlapping text {overlaps}"
        assert inside and all(inside), f"{name}: a legend is missing or lies outside the figure"


def test_text_overlap_check_finds_colliding_labels():
    """The checker itself: two texts drawn on the same spot are reported."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.text(0.5, 0.5, "one label")
    ax.text(0.5, 0.5, "another label")
    assert plots.text_overlaps(fig) == [("one label", "another label")]
    plt.close(fig)


def test_trained_and_untrained_are_never_pooled_into_one_trend(tmp_path):
    """With 3 trained and 3 untrained models, the size figure fits one line per group (two lines per panel)."""
    rows, table = [], []
    for i, size in enumerate([1e7, 1e8, 1e9]):
        for trained in (1, 0):
            name = f"m{i}" + ("" if trained else "-untrained")
            rows.append({"model": name, "dataset": "d1", "score": 0.1 + 0.05 * i * trained + 0.01 * i})
            table.append({"model": name, "instruction_tuned": 0, "vanilla_base_model": "", "n_params": size, "trained": trained})
    lines = {}
    save = plots._save

    def count(fig, out_dir, name, data):
        lines[name] = [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) == 10]
        return save(fig, out_dir, name, data)

    plots._save = count
    try:
        plots.property_scatter(pd.DataFrame(rows), pd.DataFrame(table), tmp_path)
    finally:
        plots._save = save
    assert len(lines["alignment_vs_size"]) == 2
    data = pd.read_csv(tmp_path / "data" / "alignment_vs_size.csv")
    assert set(data.groupby("group")["model"].apply(lambda m: all(("untrained" in x) for x in m))) == {True, False}


def test_every_caption_is_in_the_snakemake_report():
    rst = " ".join((REPO / "workflow" / "report" / "figures.rst").read_text().split())
    for name, caption in CAPTIONS.items():
        assert caption in rst, f"workflow/report/figures.rst lacks the caption of {name}"
