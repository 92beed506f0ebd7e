"""The study's figures: a registry of drawing functions (``registry``), one shared style (``style``) and the
figure families (``scores``, ``layers``, ``trends``), each module registering its figures on import.

``make_figures`` (rule figures) draws every registered figure from the tidy table and the models table, with its
plotted numbers beside it (``data/<name>.csv``), and writes ``captions.json`` (name -> caption) for the summary
page. Importing this package registers every figure without importing matplotlib, so the workflow can read
``figure_captions()`` when it parses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from brainalign.io import atomic_path
from brainalign.study.figures import layers, scores, trends  # noqa: F401  (registers their figures)
from brainalign.study.figures.registry import (
    FigureInputs,
    figure_captions,
    page_order,
    register_figure,
    registered_figures,
    unregister_figure,
)
from brainalign.study.figures.style import ROLE_COLOURS, ROLE_LABELS, save_figure, text_overlaps, texts_outside
from brainalign.study.headline import Headline, headline_scores

__all__ = ["FigureInputs", "ROLE_COLOURS", "ROLE_LABELS", "draw_figures", "figure_captions", "make_figures", "page_order",
           "register_figure", "registered_figures", "text_overlaps", "texts_outside", "unregister_figure"]


def draw_figures(study: FigureInputs, out_dir, names=None) -> list[Path]:
    """Draw the registered figures (only ``names``, if given) into ``out_dir``, in page order; a figure with
    nothing to draw for this study is left out. Returns the PNG paths."""
    paths = []
    for figure in registered_figures():
        if names is not None and figure.name not in names:
            continue
        drawn = figure.draw(study)
        if drawn is not None:
            fig, data = drawn
            paths.append(save_figure(fig, Path(out_dir), figure.name, data))
    return paths


def make_figures(tidy_csv, models_csv, out_dir, label: str | None = None, headline_options=None) -> list[Path]:
    """Step of rule figures: every registered figure from the tidy table and the models table, on the headline
    scores the config's ``analysis.headline`` names, and ``captions.json`` (figure name -> its caption)."""
    tidy = pd.read_csv(tidy_csv)
    headline = Headline.from_options(headline_options)
    study = FigureInputs(tidy=tidy, scores=headline_scores(tidy, headline), models=pd.read_csv(models_csv),
                         headline=headline, label=label)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = draw_figures(study, out_dir)
    captions = figure_captions()
    with atomic_path(out_dir / "captions.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps({path.stem: captions[path.stem] for path in paths}, indent=1, sort_keys=True) + "\n")
    return paths
