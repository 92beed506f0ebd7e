"""Figures of the study, each as PNG + PDF, with the plotted numbers written beside it (``data/<figure>.csv``) so
readers and tests can check exactly what is drawn. Okabe-Ito colours (colour-blind safe); untrained controls
drawn with hollow markers and dashed lines and labelled "(untrained)"; files carry no timestamps, so reruns give
the same bytes."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from brainalign.io import atomic_path, write_table  # noqa: E402
from brainalign.tables import headline_scores, model_by_dataset, pairs_of  # noqa: E402

log = logging.getLogger("brainalign.plots")

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                     "svg.hashsalt": "brainalign"})


def _untrained(models: pd.DataFrame) -> set[str]:
    if "trained" not in models:
        return set()
    return set(models.loc[pd.to_numeric(models["trained"], errors="coerce") == 0, "model"])


def _label(model: str, untrained: set[str]) -> str:
    return f"{model} (untrained)" if model in untrained and "untrained" not in model else model


def _colours(models) -> dict:
    return {m: OKABE_ITO[i % len(OKABE_ITO)] for i, m in enumerate(sorted(models))}


def _save(fig, out_dir: Path, name: str, data: pd.DataFrame) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, metadata in ((".png", {"Software": None}), (".pdf", {"CreationDate": None, "Producer": None})):
        path = out_dir / f"{name}{suffix}"
        with atomic_path(path, suffix=suffix) as tmp:
            fig.savefig(tmp, format=suffix[1:], metadata=metadata, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    write_table(data, out_dir / "data" / f"{name}.csv")
    return paths[:1]


def _panels(n: int, width: float = 3.4, height: float = 3.0):
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def pair_slopes(scores: pd.DataFrame, models: pd.DataFrame, out_dir, label: str | None = None) -> list[Path]:
    """Base vs derived score for every pair, one panel per dataset (slope graph)."""
    pairs = pairs_of(models)
    wide = model_by_dataset(scores, average=False)
    rows = [{"dataset": d, "base": b, "derived": m, "base_score": wide.at[b, d], "derived_score": wide.at[m, d]}
            for d in wide.columns for b, m in pairs if b in wide.index and m in wide.index
            and np.isfinite(wide.at[b, d]) and np.isfinite(wide.at[m, d])]
    data = pd.DataFrame(rows)
    if data.empty:
        log.info("no pairs with scores: pair figure skipped")
        return []
    datasets = list(dict.fromkeys(data["dataset"]))
    colours = _colours(data["derived"].unique())
    fig, axes = _panels(len(datasets))
    for ax, dataset in zip(axes, datasets):
        for row in data[data["dataset"] == dataset].itertuples():
            ax.plot([0, 1], [row.base_score, row.derived_score], "-o", color=colours[row.derived], label=row.derived)
        ax.set_xticks([0, 1], ["base", "derived"])
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(dataset)
        ax.set_ylabel("alignment score (Pearson r)")
        ax.axhline(0, color="grey", lw=0.5)
    axes[0].legend(fontsize=7, frameon=False, title="derived model")
    fig.suptitle(f"Pairs: {label or 'base vs derived'}", y=1.03)
    return _save(fig, Path(out_dir), "pair_effect", data)


def _scatter(data: pd.DataFrame, x: str, xlabel: str, name: str, out_dir: Path, untrained: set[str], title: str) -> list[Path]:
    from scipy.stats import pearsonr

    data = data.dropna(subset=[x, "score"])
    if data.empty:
        log.info("nothing to plot for %s", name)
        return []
    datasets = list(dict.fromkeys(data["dataset"]))
    colours = _colours(data["model"].unique())
    fig, axes = _panels(len(datasets))
    for ax, dataset in zip(axes, datasets):
        part = data[data["dataset"] == dataset]
        for row in part.itertuples():
            hollow = row.model in untrained
            ax.scatter(getattr(row, x), row.score, s=40, color=colours[row.model], facecolors="none" if hollow else colours[row.model],
                       label=_label(row.model, untrained))
        if len(part) >= 3 and part[x].nunique() > 1:
            slope, intercept = np.polyfit(part[x], part["score"], 1)
            grid = np.linspace(part[x].min(), part[x].max(), 10)
            ax.plot(grid, slope * grid + intercept, color="grey", lw=1)
            r = pearsonr(part[x], part["score"]).statistic
            ax.text(0.02, 0.95, f"r = {r:.2f} (n = {len(part)})", transform=ax.transAxes, va="top")
        ax.set_title(dataset)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("alignment score (Pearson r)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title, y=1.03)
    return _save(fig, out_dir, name, data)


def property_scatter(scores: pd.DataFrame, models: pd.DataFrame, out_dir, subset: str = "all") -> list[Path]:
    """Alignment vs log10 size (all models) and vs MMLU (when the models table has values)."""
    out_dir = Path(out_dir)
    untrained = _untrained(models)
    joined = scores.merge(models, on="model", how="inner")
    paths = []
    if "n_params" in joined:
        joined["log10_n_params"] = np.log10(pd.to_numeric(joined["n_params"], errors="coerce"))
        paths += _scatter(joined[["model", "dataset", "score", "log10_n_params"]], "log10_n_params", "model size (log10 parameters)",
                          "alignment_vs_size", out_dir, untrained, "Alignment vs model size")
    if "mmlu_overall" in joined and pd.to_numeric(joined["mmlu_overall"], errors="coerce").notna().any():
        joined["mmlu_overall"] = pd.to_numeric(joined["mmlu_overall"], errors="coerce")
        paths += _scatter(joined[["model", "dataset", "score", "mmlu_overall"]], "mmlu_overall", "MMLU accuracy",
                          "alignment_vs_mmlu", out_dir, untrained, "Alignment vs MMLU")
    return paths


def layer_profiles(tidy: pd.DataFrame, models: pd.DataFrame, out_dir, protocol: str = "ridge-grouped",
                   dataset_protocols: dict | None = None) -> list[Path]:
    """Score vs relative layer depth, one line per model, one panel per dataset, the ceiling as a dashed line; each
    dataset under the headline's protocol (``protocol``, or its entry in ``dataset_protocols``)."""
    per_dataset = dict(dataset_protocols or {})
    wanted = tidy["dataset"].map(lambda dataset: per_dataset.get(dataset, protocol))
    data = tidy[(tidy["kind"] == "brain") & (tidy["metric"] == "linear") & (tidy["protocol"] == wanted)
                & (tidy["selection"] == "layer")][["model", "dataset", "layer", "layer_depth", "raw_r", "ceiling"]]
    if data.empty:
        return []
    untrained = _untrained(models)
    datasets = list(dict.fromkeys(data["dataset"]))
    colours = _colours(data["model"].unique())
    fig, axes = _panels(len(datasets), width=3.8)
    for ax, dataset in zip(axes, datasets):
        part = data[data["dataset"] == dataset]
        for model, rows in part.groupby("model", sort=True):
            ax.plot(rows["layer_depth"], rows["raw_r"], "--" if model in untrained else "-", marker="o", ms=2.5,
                    color=colours[model], label=_label(model, untrained))
        ceiling = part["ceiling"].dropna()
        if len(ceiling):
            ax.axhline(ceiling.iloc[0], color="black", ls=":", lw=1, label="noise ceiling")
        ax.set_title(dataset)
        ax.set_xlabel("relative layer depth (0 = embeddings, 1 = last block)")
        ax.set_ylabel("encoding score (Pearson r)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"Layer profiles ({protocol})", y=1.03)
    return _save(fig, Path(out_dir), "layer_profiles", data)


def behaviour_vs_perplexity(tidy: pd.DataFrame, models: pd.DataFrame, out_dir) -> list[Path]:
    behaviour = tidy[tidy["kind"] == "behaviour"]
    r = behaviour[(behaviour["metric"] == "surprisal_r") & (behaviour["protocol"] == "default")][["model", "dataset", "raw_r"]]
    ppl = behaviour[behaviour["metric"] == "perplexity"][["model", "dataset", "raw_r"]].rename(columns={"raw_r": "perplexity"})
    data = r.rename(columns={"raw_r": "score"}).merge(ppl, on=["model", "dataset"])
    if data.empty:
        return []
    data["log10_perplexity"] = np.log10(data["perplexity"])
    return _scatter(data, "log10_perplexity", "perplexity (log10, per token)", "behaviour_vs_perplexity", Path(out_dir),
                    _untrained(models), "Surprisal-reading time correlation vs perplexity")


def make_figures(tidy_csv, models_csv, out_dir, label: str | None = None, headline_options: dict | None = None) -> list[Path]:
    """Step of rule figures: every figure from the tidy table and the models table, on the headline scores the
    config's ``analysis.headline`` names."""
    from brainalign.tables import HEADLINE_DEFAULTS

    tidy = pd.read_csv(tidy_csv)
    models = pd.read_csv(models_csv)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    headline = {**HEADLINE_DEFAULTS, **dict(headline_options or {})}
    scores = headline_scores(tidy, headline)
    paths = []
    paths += pair_slopes(scores, models, out_dir, label)
    paths += property_scatter(scores, models, out_dir)
    paths += layer_profiles(tidy, models, out_dir, headline["brain_protocol"], headline.get("dataset_protocols"))
    paths += behaviour_vs_perplexity(tidy, models, out_dir)
    return paths
