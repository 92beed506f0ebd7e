"""Figures of the headline scores themselves: every model on every dataset, and each pair's change."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from brainalign.study.comparisons import model_by_dataset, pairs_of
from brainalign.study.figures.registry import FigureInputs, register_figure
from brainalign.study.figures.style import COLUMN_IN, ROLE_COLOURS, legend, panels, pyplot

log = logging.getLogger("brainalign.study.figures")


@register_figure(
    "headline", order=10,
    caption="Headline alignment of every model on every dataset (score / noise ceiling where the dataset has one, "
            "else raw r; time series: the gain in r over a word-rate and nuisance baseline) at the layer choice each "
            "dataset's label names (nested: each fold's layer chosen on training folds only; best: chosen on the "
            "folds that score it, biased upward), with 95% bootstrap CIs: read which models align best and whether "
            "CIs separate them.")
def headline(study: FigureInputs):
    """Every model on every dataset (one row per dataset, one marker per model): score / noise ceiling where the
    dataset has a ceiling (its CI divided by the same ceiling), else raw r, with 95% CIs."""
    if study.scores.empty:
        return None
    style = study.style
    data = study.scores[["model", "dataset", "kind", "score", "normalised", "ci_low", "ci_high"]].copy()
    data["layer_choice"] = data["dataset"].map(study.layer_choice)
    ceiling = data["score"] / data["normalised"]
    normalised = data.groupby("dataset")["normalised"].transform(lambda v: v.notna().all())
    data["scale"] = np.where(normalised, "r / ceiling", "r")
    data["value"] = np.where(normalised, data["normalised"], data["score"])
    data["value_low"] = np.where(normalised, data["ci_low"] / ceiling, data["ci_low"])
    data["value_high"] = np.where(normalised, data["ci_high"] / ceiling, data["ci_high"])
    datasets = sorted(data["dataset"].unique(), key=lambda d: (data.loc[data["dataset"] == d, "kind"].iloc[0] != "brain", d))
    model_order = sorted(data["model"].unique(), key=lambda m: (list(ROLE_COLOURS).index(style.role.get(m, "base")), m))
    n = len(model_order)
    offsets = {m: (i - (n - 1) / 2) * (0.6 / max(n - 1, 1)) for i, m in enumerate(model_order)}
    fig, ax = pyplot().subplots(figsize=(COLUMN_IN * 1.5, 0.9 + 0.45 * len(datasets) + 0.18 * int(np.ceil(n / 2))))
    for model in model_order:
        rows = data[data["model"] == model]
        y = np.array([len(datasets) - 1 - datasets.index(d) for d in rows["dataset"]]) + offsets[model]
        look = style.of(model)
        low = (rows["value"] - rows["value_low"]).to_numpy()
        high = (rows["value_high"] - rows["value"]).to_numpy()
        yerr = None if np.isnan(low).all() else np.vstack([np.nan_to_num(low), np.nan_to_num(high)])
        ax.errorbar(rows["value"], y, xerr=yerr, fmt=look["marker"], color=look["color"], mfc=look["mfc"], ms=5, lw=1,
                    capsize=2, label=style.label(model))
    ax.axvline(0, color="grey", lw=0.6)
    if (data["scale"] == "r / ceiling").any():
        ax.axvline(1, color="black", lw=0.6, ls=":")
    def tick(dataset):  # the dataset, its scale and (where known) its layer choice, one per line
        return "\n".join(filter(None, [dataset, f"({data.loc[data['dataset'] == dataset, 'scale'].iloc[0]})",
                                        study.layer_choice(dataset)]))

    ax.set_yticks(range(len(datasets)), [tick(d) for d in reversed(datasets)])
    ax.set_ylim(-0.6, len(datasets) - 0.4)
    ax.set_xlabel("alignment (Pearson r; divided by the noise ceiling where one exists)")
    legend(fig, [ax], ncol=2)
    return fig, data


@register_figure(
    "pair_effect", order=20,
    caption="Each pair's base and derived model per dataset (one line per pair): lines rising to the right mean "
            "the change (training, instruction-tuning) raises alignment.")
def pair_effect(study: FigureInputs):
    """Base vs derived score for every pair, one panel per dataset (slope graph), coloured by the derived model's
    role. What the pairs compare (the config's label) is said by the caption and the page, not a title."""
    models = study.models
    pairs = pairs_of(models)
    wide = model_by_dataset(study.scores, average=False)
    rows = [{"dataset": d, "base": b, "derived": m, "base_score": wide.at[b, d], "derived_score": wide.at[m, d]}
            for d in wide.columns for b, m in pairs if b in wide.index and m in wide.index
            and np.isfinite(wide.at[b, d]) and np.isfinite(wide.at[m, d])]
    data = pd.DataFrame(rows)
    if data.empty:
        log.info("no pairs with scores: pair figure skipped")
        return None
    style = study.style
    base_word = "untrained" if all(style.role.get(b) == "untrained" for b in data["base"]) else "base"
    datasets = list(dict.fromkeys(data["dataset"]))
    fig, axes = panels(len(datasets), height=2.2)
    for ax, dataset in zip(axes, datasets):
        for row in data[data["dataset"] == dataset].itertuples():
            look = style.of(row.derived)
            ax.plot([0, 1], [row.base_score, row.derived_score], "-", color=look["color"], marker=look["marker"], ms=4,
                    label=f"{row.derived} vs {row.base}")
            base = style.of(row.base)
            ax.plot([0], [row.base_score], ls="none", marker=look["marker"], ms=4, color=base["color"], mfc=base["mfc"])
        ax.set_xticks([0, 1], [base_word, style.derived_word])
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(dataset)
        ax.set_ylabel(study.score_label(dataset))
        ax.axhline(0, color="grey", lw=0.5)
    legend(fig, axes)
    return fig, data
