"""The figure registry: every figure of the study is one drawing function registered with its name, its one-line
caption and its place on the summary page. Nothing else lists figures: ``make_figures`` draws what is registered,
the summary page orders and captions from here, and so do ``captions.json`` and the Snakemake report (the figures
rule passes ``figure_captions()`` to workflow/report/figures.rst).

    @register_figure("headline", caption="Headline alignment of every model ...", order=10)
    def headline(study: FigureInputs):
        fig, ax = pyplot().subplots()
        ...
        return fig, data            # or None: nothing to draw for this study

``data`` is the table of the numbers drawn, written beside the figure as ``data/<name>.csv``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from brainalign.study.headline import Headline


@dataclass(frozen=True)
class FigureInputs:
    """What every drawing function gets: the study-wide tidy table (empty when only headline scores are known, as
    in ``brainalign analyse``), the headline scores (one per model x dataset), the models table, the headline
    choice and the config's label of the comparison."""

    tidy: pd.DataFrame
    scores: pd.DataFrame
    models: pd.DataFrame
    headline: Headline = Headline()
    label: str | None = None

    def layer_choice(self, dataset: str) -> str:
        """Which layer the headline scores of ``dataset`` are (``best layer``, ``nested layer``: the headline table's
        ``selection``, analysis.headline.brain_selection), for axis labels; "" for behaviour, a table that does not
        say (a published one) or mixed choices."""
        if "selection" not in self.scores.columns:
            return ""
        values = {v for v in self.scores.loc[self.scores["dataset"] == dataset, "selection"] if isinstance(v, str) and v}
        return f"{values.pop()} layer" if len(values) == 1 else ""

    def score_label(self, dataset: str, text: str = "alignment (Pearson r)") -> str:
        """An axis label of ``dataset``'s headline scores: ``text``, and the layer choice under it where known."""
        choice = self.layer_choice(dataset)
        return f"{text}\n{choice}" if choice else text

    @functools.cached_property
    def style(self):
        """The models' look (``style.Style``), shared by every figure of one drawing."""
        from brainalign.study.figures.style import Style

        return Style(self.models)


@dataclass(frozen=True)
class Figure:
    name: str  # file stem: <name>.png, <name>.pdf, data/<name>.csv
    caption: str  # one line: what is drawn and what to read from it
    order: int  # place on the summary page (ascending)
    draw: Callable  # FigureInputs -> (matplotlib figure, plotted data) | None


FIGURES: dict[str, Figure] = {}


def register_figure(name: str, caption: str, order: int):
    """Decorator: register the drawing function as figure ``name``."""
    def register(draw: Callable) -> Callable:
        if name in FIGURES:
            raise ValueError(f"figure {name!r} is registered twice ({FIGURES[name].draw.__qualname__} and "
                             f"{draw.__qualname__})")
        FIGURES[name] = Figure(name=name, caption=caption, order=order, draw=draw)
        return draw

    return register


def unregister_figure(name: str) -> None:
    """Remove figure ``name`` from the registry (tests register toy figures and remove them afterwards)."""
    del FIGURES[name]


def registered_figures() -> list[Figure]:
    """Every registered figure in page order (``order``, then name)."""
    return sorted(FIGURES.values(), key=lambda figure: (figure.order, figure.name))


def figure_captions() -> dict[str, str]:
    """Figure name -> its caption, in page order."""
    return {figure.name: figure.caption for figure in registered_figures()}


def page_order(names) -> list[str]:
    """``names`` (figure file stems) in page order; names no figure registers go last, alphabetically."""
    rank = {figure.name: i for i, figure in enumerate(registered_figures())}
    return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))
