"""Figures of alignment against a model property, one trend fitted within trained models and one within untrained
controls (never one line through both): model size, MMLU accuracy, and, for reading behaviour, perplexity."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from brainalign.study.figures.registry import FigureInputs, register_figure
from brainalign.study.figures.style import ROLE_COLOURS, Style, legend, panels

log = logging.getLogger("brainalign.study.figures")


def scatter(data: pd.DataFrame, x: str, xlabel: str, style: Style, name: str, ylabel=None):
    """One panel per dataset; a least-squares trend and its r within trained models and within untrained controls
    separately (each where it has >= 3 points with distinct x), never through both. ``data`` has model, dataset,
    score and ``x``; ``ylabel``: dataset -> its axis label (None: "alignment (Pearson r)"); None when no row has
    both."""
    from scipy.stats import pearsonr

    data = data.dropna(subset=[x, "score"]).copy()
    if data.empty:
        log.info("nothing to plot for %s", name)
        return None
    data["group"] = data["model"].map(style.group)
    datasets = list(dict.fromkeys(data["dataset"]))
    fig, axes = panels(len(datasets), height=2.4)
    for ax, dataset in zip(axes, datasets):
        part = data[data["dataset"] == dataset]
        for row in part.itertuples():
            look = style.of(row.model)
            ax.plot(getattr(row, x), row.score, ls="none", marker=look["marker"], ms=6, color=look["color"], mfc=look["mfc"],
                    label=style.label(row.model))
        notes = []
        for group, rows in part.groupby("group", sort=True):
            if len(rows) >= 3 and rows[x].nunique() > 1:
                slope, intercept = np.polyfit(rows[x], rows["score"], 1)
                grid = np.linspace(rows[x].min(), rows[x].max(), 10)
                colour = ROLE_COLOURS["untrained" if group == "untrained" else "base"]
                ax.plot(grid, slope * grid + intercept, color=colour, lw=1, ls="--" if group == "untrained" else "-")
                notes.append(f"{group}: r = {pearsonr(rows[x], rows['score']).statistic:.2f} (n = {len(rows)})")
        if notes:
            ax.text(0.02, 0.98, "\n".join(notes), transform=ax.transAxes, va="top", fontsize=6.5)
        ax.set_title(dataset)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel(dataset) if ylabel else "alignment (Pearson r)")
        ax.margins(x=0.12, y=0.15)
    legend(fig, axes)
    return fig, data


@register_figure(
    "alignment_vs_size", order=40,
    caption="Alignment vs model size, trend fitted within trained models and within untrained controls "
            "separately: read whether larger trained models align better than controls of the same size.")
def alignment_vs_size(study: FigureInputs):
    """Headline alignment vs log10 parameters, every model with a size."""
    joined = study.scores.merge(study.models, on="model", how="inner")
    if "n_params" not in joined:
        return None
    joined["log10_n_params"] = np.log10(pd.to_numeric(joined["n_params"], errors="coerce"))
    return scatter(joined[["model", "dataset", "score", "log10_n_params"]], "log10_n_params",
                   "model size (log10 parameters)", study.style, "alignment_vs_size", study.score_label)


@register_figure(
    "alignment_vs_mmlu", order=50,
    caption="Alignment vs MMLU accuracy (trained and untrained fitted separately): read whether more "
            "capable models align better.")
def alignment_vs_mmlu(study: FigureInputs):
    """Headline alignment vs MMLU accuracy, drawn when the models table has MMLU values."""
    joined = study.scores.merge(study.models, on="model", how="inner")
    if "mmlu_overall" not in joined or not pd.to_numeric(joined["mmlu_overall"], errors="coerce").notna().any():
        return None
    joined["mmlu_overall"] = pd.to_numeric(joined["mmlu_overall"], errors="coerce")
    return scatter(joined[["model", "dataset", "score", "mmlu_overall"]], "mmlu_overall", "MMLU accuracy", study.style,
                   "alignment_vs_mmlu", study.score_label)


@register_figure(
    "behaviour_vs_perplexity", order=60,
    caption="Surprisal-reading time correlation vs perplexity (trained and untrained fitted "
            "separately): read whether better language models predict reading times better.")
def behaviour_vs_perplexity(study: FigureInputs):
    """The paper's surprisal-reading time r (protocol ``default``) vs log10 perplexity per token, per reading dataset."""
    tidy = study.tidy
    if tidy.empty:
        return None
    behaviour = tidy[tidy["kind"] == "behaviour"]
    r = behaviour[(behaviour["metric"] == "surprisal_r") & (behaviour["protocol"] == "default")][["model", "dataset", "raw_r"]]
    ppl = behaviour[behaviour["metric"] == "perplexity"][["model", "dataset", "raw_r"]].rename(columns={"raw_r": "perplexity"})
    data = r.rename(columns={"raw_r": "score"}).merge(ppl, on=["model", "dataset"])
    if data.empty:
        return None
    data["log10_perplexity"] = np.log10(data["perplexity"])
    return scatter(data, "log10_perplexity", "perplexity (log10, per token)", study.style, "behaviour_vs_perplexity")
