"""The one style every figure shares, so figures can go into a paper as they are, and how a figure is saved.

Constrained layout (no text collides: ``text_overlaps`` and ``texts_outside`` let a test check every text box),
sized for a journal column (``COLUMN_IN`` wide per panel), one legend inside the figure below the panels, and one
encoding of a model's role everywhere: colour says base (trained) / instruction-tuned / derived / untrained control
(Okabe-Ito, colour-blind safe), untrained controls are hollow and dashed, and marker shape tells models of the same
role apart. A figure is saved as PNG + PDF without timestamps, so reruns give the same bytes, with the numbers it
plots beside it (``data/<figure>.csv``).

matplotlib is imported on the first drawing (``pyplot()``), not with this module, so the workflow can read the
figure registry without it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.io import atomic_path, write_table
from brainalign.study.comparisons import pairs_of

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


@functools.cache
def pyplot():
    """matplotlib.pyplot on the file-only Agg backend with ``STYLE`` applied (done once, on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)
    return plt


# ----------------------------------------------------------------------------------------------- a model's look
def _truthy(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip().str.lower().isin(["1", "1.0", "true", "yes"])


def _untrained(models: pd.DataFrame) -> set[str]:
    return set(models.loc[pd.to_numeric(models["trained"], errors="coerce") == 0, "model"]) if "trained" in models else set()


def roles(models: pd.DataFrame) -> dict[str, str]:
    """model -> untrained (``trained`` is 0) | tuned (flagged instruction-tuned) | derived (its ``vanilla_base_model``
    is another trained model of the table) | base (any other trained model, including one trained from an
    untrained control of the same architecture)."""
    out = {}
    untrained = _untrained(models)
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
    untrained = _untrained(models)
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


# ----------------------------------------------------------------------------------------------- layout and files
def panels(n: int, height: float = 2.4, legend_rows: int = 1):
    """n panels, at most two per row (each a column wide), with room below for the figure's legend."""
    plt = pyplot()
    cols = min(n, 2)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(COLUMN_IN * cols, height * rows + 0.25 * legend_rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def legend(fig, axes, ncol: int | None = None):
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
        drawn = fig.legend([handles[label] for label in labels], labels, loc="outside lower center", ncol=columns)
        if columns == 1 or drawn.get_window_extent(renderer).width <= 0.98 * fig.bbox.width:
            return
        drawn.remove()


def save_figure(fig, out_dir: Path, name: str, data: pd.DataFrame) -> Path:
    """``<name>.png`` and ``<name>.pdf`` (no timestamps or software stamps) and the plotted numbers as
    ``data/<name>.csv``; the figure is closed. Returns the PNG's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, metadata in ((".png", {"Software": None}), (".pdf", {"CreationDate": None, "Producer": None})):
        path = out_dir / f"{name}{suffix}"
        with atomic_path(path, suffix=suffix) as tmp:
            fig.savefig(tmp, format=suffix[1:], metadata=metadata)
        paths.append(path)
    pyplot().close(fig)
    write_table(data, out_dir / "data" / f"{name}.csv")
    return paths[0]


# ----------------------------------------------------------------------------------------------- text checks
def _drawn_texts(fig) -> list:
    """Every drawn text artist of a drawn figure."""
    texts = list(fig.texts)
    if fig._suptitle is not None and fig._suptitle not in texts:
        texts.append(fig._suptitle)
    for drawn in fig.legends:
        texts += list(drawn.get_texts()) + [drawn.get_title()]
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
