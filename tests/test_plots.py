"""Figures exist, are non-trivial, plot exactly the expected points (checked through their data files), and meet the
style the report needs: no two text boxes overlap, legends lie inside the figure, trained and untrained models are
never pooled into one trend line, every figure has its caption (here and in the Snakemake report); and the figure
registry: a registered figure is drawn, captioned and placed on the summary page with no other edit."""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.study import figures as plots
from brainalign.study.figures import FigureInputs, draw_figures, figure_captions, make_figures
from tests.support.tables import write_study_inputs

REPO = Path(__file__).resolve().parents[1]


def test_figures_are_drawn_with_the_expected_points(tmp_path):
    tidy, models = write_study_inputs(tmp_path)
    paths = make_figures(tidy, models, tmp_path / "figures", label="trained vs untrained")
    names = {p.stem for p in paths}
    assert names == {"headline", "pair_effect", "alignment_vs_size", "layer_profiles", "behaviour_vs_perplexity"}
    assert json.loads((tmp_path / "figures" / "captions.json").read_text()) == {name: figure_captions()[name] for name in names}
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
    tidy, models = write_study_inputs(tmp_path)
    # long model names, as real ones are, to stress the legend and labels
    frame = pd.read_csv(tidy)
    frame["model"] = frame["model"].map(lambda m: f"{m}-a-rather-long-model-name-135m-instruct")
    frame.to_csv(tidy, index=False)
    table = pd.read_csv(models)
    for column in ("model", "vanilla_base_model"):
        table[column] = table[column] + "-a-rather-long-model-name-135m-instruct"
    table.to_csv(models, index=False)
    checked, save = {}, plots.save_figure

    def check(fig, out_dir, name, data):
        overlaps = plots.text_overlaps(fig)  # draws the figure: extents below are final
        figure_box = fig.bbox
        legends = [legend.get_window_extent() for legend in fig.legends]
        assert plots.texts_outside(fig) == [], f"{name}: text cut by the figure's edge"
        checked[name] = (overlaps, [(box.x0 >= figure_box.x0 - 1 and box.x1 <= figure_box.x1 + 1
                                                      and box.y0 >= figure_box.y0 - 1 and box.y1 <= figure_box.y1 + 1)
                                                     for box in legends])
        return save(fig, out_dir, name, data)

    monkeypatch.setattr(plots, "save_figure", check)
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


def test_trained_and_untrained_are_never_pooled_into_one_trend(tmp_path, monkeypatch):
    """With 3 trained and 3 untrained models, the size figure fits one line per group (two lines per panel)."""
    rows, table = [], []
    for i, size in enumerate([1e7, 1e8, 1e9]):
        for trained in (1, 0):
            name = f"m{i}" + ("" if trained else "-untrained")
            rows.append({"model": name, "dataset": "d1", "score": 0.1 + 0.05 * i * trained + 0.01 * i})
            table.append({"model": name, "instruction_tuned": 0, "vanilla_base_model": "", "n_params": size, "trained": trained})
    lines = {}
    save = plots.save_figure

    def count(fig, out_dir, name, data):
        lines[name] = [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) == 10]
        return save(fig, out_dir, name, data)

    monkeypatch.setattr(plots, "save_figure", count)
    study = FigureInputs(tidy=pd.DataFrame(), scores=pd.DataFrame(rows), models=pd.DataFrame(table))
    draw_figures(study, tmp_path, names=["alignment_vs_size"])
    assert len(lines["alignment_vs_size"]) == 2
    data = pd.read_csv(tmp_path / "data" / "alignment_vs_size.csv")
    assert set(data.groupby("group")["model"].apply(lambda m: all(("untrained" in x) for x in m))) == {True, False}


def test_every_caption_is_in_the_snakemake_report():
    """The report's caption template (workflow/report/figures.rst), rendered as Snakemake renders it for each figure
    file, shows that figure's registered caption, which the figures rule passes as a param."""
    import jinja2
    from docutils.core import publish_parts
    from snakemake.iocontainers import Params, Wildcards

    template = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(
        (REPO / "workflow" / "report" / "figures.rst").read_text())
    params = Params(fromdict={"captions": figure_captions()})
    for name, caption in figure_captions().items():
        snakemake = type("Snakemake", (), {"params": params, "wildcards": Wildcards(fromdict={"name": name})})
        rendered = template.render(snakemake=snakemake)
        assert caption in " ".join(rendered.split()), f"workflow/report/figures.rst does not show the caption of {name}"
        assert "System Message" not in publish_parts(rendered, writer="html")["body"]
    rule = (REPO / "workflow" / "rules" / "analysis.smk").read_text().split("rule figures:")[1].split("\nrule ")[0]
    assert "captions=figure_captions()" in rule, "the figures rule must pass the registry's captions to the report"


def test_the_registry_is_read_without_matplotlib():
    """The workflow imports the registry when it parses: that must not import matplotlib."""
    code = "import sys, brainalign.study.figures as f; assert f.figure_captions(); print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


TOY_CAPTION = "A toy figure: each model's mean layer score per dataset, to check the registry's wiring."


def toy_figure(study: FigureInputs):
    from brainalign.study.figures.style import legend, panels

    data = study.tidy[study.tidy["kind"] == "brain"].groupby(["model", "dataset"], as_index=False)["raw_r"].mean()
    fig, (ax,) = panels(1)
    for model, rows in data.groupby("model"):
        ax.plot(rows["dataset"], rows["raw_r"], marker="o", label=model)
    legend(fig, [ax])
    return fig, data


def test_a_registered_figure_is_drawn_captioned_and_placed_on_the_page(tmp_path):
    """One decorator is all a new figure needs: make_figures draws it (PNG, PDF and its data), captions.json and the
    registry carry its caption, and the summary page shows it, captioned, at its place in the order."""
    from brainalign.study.analysis import analyse
    from brainalign.study.headline import headline_scores
    from brainalign.study.summary_page import write_summary_html

    plots.register_figure("toy_means", caption=TOY_CAPTION, order=25)(toy_figure)
    try:
        tidy, models = write_study_inputs(tmp_path)
        paths = make_figures(tidy, models, tmp_path / "figures", label="trained vs untrained")
        assert [p.stem for p in paths] == ["headline", "pair_effect", "toy_means", "layer_profiles", "alignment_vs_size",
                                           "behaviour_vs_perplexity"]  # page order; no MMLU values: no MMLU figure
        figures = tmp_path / "figures"
        assert (figures / "toy_means.png").stat().st_size > 5_000 and (figures / "toy_means.pdf").exists()
        assert len(pd.read_csv(figures / "data" / "toy_means.csv")) == 6  # 3 models x 2 brain datasets
        assert json.loads((figures / "captions.json").read_text())["toy_means"] == TOY_CAPTION
        assert figure_captions()["toy_means"] == TOY_CAPTION

        headline = tmp_path / "headline_scores.csv"
        headline_scores(pd.read_csv(tidy)).to_csv(headline, index=False)
        analyse(headline, models, tmp_path, label="trained vs untrained", figures=False)
        page = tmp_path / "summary.html"
        write_summary_html(tidy, headline, models, tmp_path / "instruction_effect.csv", tmp_path / "property_correlations.csv",
                           figures, page, "trained vs untrained", results_dir=tmp_path, logs_dir=tmp_path / "logs")
        text = page.read_text()
        shown = [text.index(f"id='fig-{p.stem}'") for p in paths]
        assert shown == sorted(shown), "figures are not in the registry's order on the page"
        assert f"<b>toy_means.</b> {html.escape(TOY_CAPTION)}" in text
    finally:
        plots.unregister_figure("toy_means")
    assert "toy_means" not in figure_captions()
