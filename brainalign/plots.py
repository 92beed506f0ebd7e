"""Figures of the study, each as PNG + PDF, with the plotted numbers written beside it (``data/<figure>.csv``) so
readers and tests can check exactly what is drawn, and a one-line caption each (``CAPTIONS``, also written to
``captions.json`` for the summary page and quoted in workflow/report/figures.rst).

One style for every figure, so they can go in a paper as they are: constrained layout (no text collides: a test
checks every pair of text boxes), sized for a column (``COLUMN_IN`` wide per panel), legends inside the figure
below the panels, and one encoding of a model's role everywhere: colour says base (trained) / derived (e.g.
instruction-tuned) / untrained control (Okabe-Ito, colour-blind safe), untrained controls are hollow and dashed,
and marker shape tells models of the same role apart. Trained and untrained models are never pooled into one
regression line: a trend is fitted within each group. Files carry no timestamps, so reruns give the same bytes.
"""

from __future__ import annotations

import json
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
# A model's role, encoded the same way in every figure (and in the summary page's legend).
ROLE_COLOURS = {"base": "#0072B2", "tuned": "#D55E00", "derived": "#009E73", "untrained": "#7F7F7F"}
ROLE_LABELS = {"base": "trained (base)", "tuned": "instruction-tuned", "derived": "derived from a trained model",
               "untrained": "untrained control"}
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
COLUMN_IN = 3.4  # one journal column, inches
STYLE = {"figure.dpi": 150, "savefig.dpi": 200, "font.size": 8, "axes.titlesize": 8.5, "axes.labelsize": 8,
         "legend.fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7, "axes.spines.top": False,
         "axes.spines.right": False, "figure.constrained_layout.use": True, "svg.hashsalt": "brainalign",
         "legend.frameon": False}
plt.rcParams.update(STYLE)

CAPTIONS = {
    "headline": "Headline alignment of every model on every dataset (score / noise ceiling where the dataset has one, "
                "else raw r; time series: the gain in r over a word-rate and nuisance baseline), with 95% bootstrap CIs: "
                "read which models align best and whether CIs separate them.",
    "pair_effect": "Each pair's base and derived model per dataset (one line per pair): lines rising to the right mean "
                   "the change (training, instruction-tuning) raises alignment.",
    "alignment_vs_size": "Alignment vs model size, trend fitted within trained models and within untrained controls "
                         "separately: read whether larger trained models align better than controls of the same size.",
    "alignment_vs_mmlu": "Alignment vs MMLU accuracy (trained and untrained fitted separately): read whether more "
                         "capable models align better.",
    "layer_profiles": "Encoding score by relative layer depth for each model (dotted: noise ceiling): read where in the "
                      "network alignment peaks and how far untrained controls stay below.",
    "behaviour_vs_perplexity": "Surprisal-reading time correlation vs perplexity (trained and untrained fitted "
                               "separately): read whether better language models predict reading times better.",
}


def _truthy(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip().str.lower().isin(["1", "1.0", "true", "yes"])


def roles(models: pd.DataFrame) -> dict[str, str]:
    """model -> untrained (``trained`` is 0) | tuned (flagged instruction-tuned) | derived (its ``vanilla_base_model``
    is another trained model of the table) | base (any other trained model, including one trained from an
    untrained control of the same architecture)."""
    out = {}
    untrained = set(models.loc[pd.to_numeric(models["trained"], errors="coerce") == 0, "model"]) if "trained" in models else set()
    derived = {d for b, d in pairs_of(models) if b not in untrained} if "vanilla_base_model" in models else set()
    tuned = set(models.loc[_truthy(models["instruction_tuned"]), "model"]) if "instruction_tuned" in models else set()
    for model in models["model"]:
        out[model] = "untrained" if model in untrained else "tuned" if model in tuned else "derived" if model in derived else "base"
    return out


def _derived_word(models: pd.DataFrame) -> str:
    """What 'derived' means in this study: instruction-tuned when the derived models are, else trained."""
    derived = {d for _, d in pairs_of(models)}
    if "instruction_tuned" in models and derived and _truthy(models.loc[models["model"].isin(derived), "instruction_tuned"]).all():
        return "instruction-tuned"
    untrained = set(models.loc[pd.to_numeric(models["trained"], errors="coerce") == 0, "model"]) if "trained" in models else set()
    if derived and all(b in untrained for b, d in pairs_of(models) if d in derived):
        return "trained"
    return "derived"


class Style:
    """Colour, marker, line and label of each model, from its role (the same in every figure)."""

    def __init__(self, models: pd.DataFrame):
        self.role = roles(models)
        self.derived_word = _derived_word(models)
        order = sorted(self.role)
        self.marker = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(order)}

    def of(self, model: str) -> dict:
        role = self.role.get(model, "base")
        colour = ROLE_COLOURS[role]
        return {"color": colour, "marker": self.marker.get(model, "o"), "ls": "--" if role == "untrained" else "-",
                "mfc": "white" if role == "untrained" else colour}

    def label(self, model: str) -> str:
        role = self.role.get(model, "base")
        return f"{model} (untrained)" if role == "untrained" and "untrained" not in model else model

    def group(self, model: str) -> str:
        """trained | untrained: the groups a trend line is fitted within (never across)."""
        return "untrained" if self.role.get(model) == "untrained" else "trained"


def _save(fig, out_dir: Path, name: str, data: pd.DataFrame) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, metadata in ((".png", {"Software": None}), (".pdf", {"CreationDate": None, "Producer": None})):
        path = out_dir / f"{name}{suffix}"
        with atomic_path(path, suffix=suffix) as tmp:
            fig.savefig(tmp, format=suffix[1:], metadata=metadata)
        paths.append(path)
    plt.close(fig)
    write_table(data, out_dir / "data" / f"{name}.csv")
    return paths[:1]


def _panels(n: int, height: float = 2.4, legend_rows: int = 1):
    """n panels, at most two per row (each a column wide), with room below for the figure's legend."""
    cols = min(n, 2)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(COLUMN_IN * cols, height * rows + 0.25 * legend_rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _legend(fig, axes, ncol: int | None = None):
    """One legend for the figure, below the panels and inside the figure (constrained layout makes room)."""
    handles, labels = {}, []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    if not labels:
        return
    renderer = fig.canvas.get_renderer()
    for columns in range(min(ncol or 3, len(labels)), 0, -1):  # as many columns as fit the figure's width
        legend = fig.legend([handles[label] for label in labels], labels, loc="outside lower center", ncol=columns)
        if columns == 1 or legend.get_window_extent(renderer).width <= 0.98 * fig.bbox.width:
            return
        legend.remove()


def _drawn_texts(fig) -> list:
    """Every drawn text artist of a drawn figure."""
    texts = list(fig.texts)
    if fig._suptitle is not None and fig._suptitle not in texts:
        texts.append(fig._suptitle)
    for legend in fig.legends:
        texts += list(legend.get_texts()) + [legend.get_title()]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis._update_ticks():
                texts += [tick.label1, tick.label2]
        if ax.get_legend() is not None:
            texts += list(ax.get_legend().get_texts()) + [ax.get_legend().get_title()]
    return [t for t in dict.fromkeys(texts) if t.get_visible() and t.get_text().strip()]


def texts_outside(fig) -> list[str]:
    """Drawn texts that the figure's edges cut (e.g. a title wider than its panel)."""
    fig.canvas.draw()
    renderer, edge = fig.canvas.get_renderer(), fig.bbox
    return [t.get_text() for t in _drawn_texts(fig) for box in [t.get_window_extent(renderer)]
            if box.x0 < edge.x0 - 1 or box.x1 > edge.x1 + 1 or box.y0 < edge.y0 - 1 or box.y1 > edge.y1 + 1]


def text_overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of drawn text artists whose boxes overlap (titles, labels, drawn tick labels, annotations, legends);
    the figure test asserts there are none."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in _drawn_texts(fig)]
    overlaps = []
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            if width > 0.5 and height > 0.5:
                overlaps.append((a, b))
    return overlaps


def headline_figure(scores: pd.DataFrame, models: pd.DataFrame, out_dir) -> list[Path]:
    """Every model on every dataset (one row per dataset, one marker per model): score / noise ceiling where the
    dataset has a ceiling (its CI divided by the same ceiling), else raw r, with 95% CIs."""
    if scores.empty:
        return []
    style = Style(models)
    data = scores[["model", "dataset", "kind", "score", "normalised", "ci_low", "ci_high"]].copy()
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
    fig, ax = plt.subplots(figsize=(COLUMN_IN * 1.5, 0.9 + 0.45 * len(datasets) + 0.18 * int(np.ceil(n / 2))))
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
    ax.set_yticks(range(len(datasets)), [f"{d}\n({data.loc[data['dataset'] == d, 'scale'].iloc[0]})" for d in reversed(datasets)])
    ax.set_ylim(-0.6, len(datasets) - 0.4)
    ax.set_xlabel("alignment (Pearson r; divided by the noise ceiling where one exists)")
    _legend(fig, [ax], ncol=2)
    return _save(fig, Path(out_dir), "headline", data)


def pair_slopes(scores: pd.DataFrame, models: pd.DataFrame, out_dir, label: str | None = None) -> list[Path]:
    """Base vs derived score for every pair, one panel per dataset (slope graph), coloured by the derived model's role
    (``label``, the config's name for the comparison, is kept for callers; the caption and the page say it)."""
    pairs = pairs_of(models)
    wide = model_by_dataset(scores, average=False)
    rows = [{"dataset": d, "base": b, "derived": m, "base_score": wide.at[b, d], "derived_score": wide.at[m, d]}
            for d in wide.columns for b, m in pairs if b in wide.index and m in wide.index
            and np.isfinite(wide.at[b, d]) and np.isfinite(wide.at[m, d])]
    data = pd.DataFrame(rows)
    if data.empty:
        log.info("no pairs with scores: pair figure skipped")
        return []
    style = Style(models)
    base_word = "untrained" if all(style.role.get(b) == "untrained" for b in data["base"]) else "base"
    datasets = list(dict.fromkeys(data["dataset"]))
    fig, axes = _panels(len(datasets), height=2.2)
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
        ax.set_ylabel("alignment (Pearson r)")
        ax.axhline(0, color="grey", lw=0.5)
    _legend(fig, axes)  # what the pairs compare (the config's label) is said by the caption and the page, not a title
    return _save(fig, Path(out_dir), "pair_effect", data)


def _scatter(data: pd.DataFrame, x: str, xlabel: str, name: str, out_dir: Path, style: Style) -> list[Path]:
    """One panel per dataset; a least-squares trend and its r within trained models and within untrained controls
    separately (each where it has >= 3 points with distinct x), never through both."""
    from scipy.stats import pearsonr

    data = data.dropna(subset=[x, "score"]).copy()
    if data.empty:
        log.info("nothing to plot for %s", name)
        return []
    data["group"] = data["model"].map(style.group)
    datasets = list(dict.fromkeys(data["dataset"]))
    fig, axes = _panels(len(datasets), height=2.4)
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
        ax.set_ylabel("alignment (Pearson r)")
        ax.margins(x=0.12, y=0.15)
    _legend(fig, axes)
    return _save(fig, out_dir, name, data)


def property_scatter(scores: pd.DataFrame, models: pd.DataFrame, out_dir, subset: str = "all") -> list[Path]:
    """Alignment vs log10 size (all models) and vs MMLU (when the models table has values)."""
    out_dir = Path(out_dir)
    style = Style(models)
    joined = scores.merge(models, on="model", how="inner")
    paths = []
    if "n_params" in joined:
        joined["log10_n_params"] = np.log10(pd.to_numeric(joined["n_params"], errors="coerce"))
        paths += _scatter(joined[["model", "dataset", "score", "log10_n_params"]], "log10_n_params", "model size (log10 parameters)",
                          "alignment_vs_size", out_dir, style)
    if "mmlu_overall" in joined and pd.to_numeric(joined["mmlu_overall"], errors="coerce").notna().any():
        joined["mmlu_overall"] = pd.to_numeric(joined["mmlu_overall"], errors="coerce")
        paths += _scatter(joined[["model", "dataset", "score", "mmlu_overall"]], "mmlu_overall", "MMLU accuracy",
                          "alignment_vs_mmlu", out_dir, style)
    return paths


def layer_profiles(tidy: pd.DataFrame, models: pd.DataFrame, out_dir, protocol: str = "ridge-grouped",
                   dataset_protocols: dict | None = None) -> list[Path]:
    """Score vs relative layer depth, one line per model, one panel per dataset, the ceiling as a dotted line; each
    dataset under the headline's protocol (``protocol``, or its entry in ``dataset_protocols``)."""
    per_dataset = dict(dataset_protocols or {})
    wanted = tidy["dataset"].map(lambda dataset: per_dataset.get(dataset, protocol))
    data = tidy[(tidy["kind"] == "brain") & (tidy["metric"] == "linear") & (tidy["protocol"] == wanted)
                & (tidy["selection"] == "layer")][["model", "dataset", "layer", "layer_depth", "raw_r", "ceiling"]]
    if data.empty:
        return []
    style = Style(models)
    datasets = list(dict.fromkeys(data["dataset"]))
    fig, axes = _panels(len(datasets), height=2.3)
    for ax, dataset in zip(axes, datasets):
        part = data[data["dataset"] == dataset]
        for model, rows in part.groupby("model", sort=True):
            look = style.of(model)
            ax.plot(rows["layer_depth"], rows["raw_r"], ls=look["ls"], marker=look["marker"], ms=3, color=look["color"],
                    mfc=look["mfc"], lw=1.2, label=style.label(model))
        ceiling = part["ceiling"].dropna()
        if len(ceiling):
            ax.axhline(ceiling.iloc[0], color="black", ls=":", lw=1, label="noise ceiling")
        ax.set_title(f"{dataset} ({per_dataset.get(dataset, protocol)})")
        ax.set_xlabel("relative layer depth (0 = embeddings)")
        ax.set_ylabel("encoding score (Pearson r)")
    _legend(fig, axes)
    return _save(fig, Path(out_dir), "layer_profiles", data)


def behaviour_vs_perplexity(tidy: pd.DataFrame, models: pd.DataFrame, out_dir) -> list[Path]:
    behaviour = tidy[tidy["kind"] == "behaviour"]
    r = behaviour[(behaviour["metric"] == "surprisal_r") & (behaviour["protocol"] == "default")][["model", "dataset", "raw_r"]]
    ppl = behaviour[behaviour["metric"] == "perplexity"][["model", "dataset", "raw_r"]].rename(columns={"raw_r": "perplexity"})
    data = r.rename(columns={"raw_r": "score"}).merge(ppl, on=["model", "dataset"])
    if data.empty:
        return []
    data["log10_perplexity"] = np.log10(data["perplexity"])
    return _scatter(data, "log10_perplexity", "perplexity (log10, per token)", "behaviour_vs_perplexity", Path(out_dir), Style(models))


def make_figures(tidy_csv, models_csv, out_dir, label: str | None = None, headline_options: dict | None = None) -> list[Path]:
    """Step of rule figures: every figure from the tidy table and the models table, on the headline scores the
    config's ``analysis.headline`` names, and ``captions.json`` (figure name -> its one-line caption)."""
    from brainalign.tables import HEADLINE_DEFAULTS

    tidy = pd.read_csv(tidy_csv)
    models = pd.read_csv(models_csv)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    headline = {**HEADLINE_DEFAULTS, **dict(headline_options or {})}
    scores = headline_scores(tidy, headline)
    paths = []
    paths += headline_figure(scores, models, out_dir)
    paths += pair_slopes(scores, models, out_dir, label)
    paths += property_scatter(scores, models, out_dir)
    paths += layer_profiles(tidy, models, out_dir, headline["brain_protocol"], headline.get("dataset_protocols"))
    paths += behaviour_vs_perplexity(tidy, models, out_dir)
    captions = {path.stem: CAPTIONS[path.stem] for path in paths}
    with atomic_path(out_dir / "captions.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(captions, indent=1, sort_keys=True) + "\n")
    return paths
