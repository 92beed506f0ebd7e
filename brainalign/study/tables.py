"""The tidy scores table: the one format every score file, the study-wide table, the analysis, the figures and the
report share, and the documented way to analyse published numbers with the same code (docs/DESIGN.md).

Columns (``TIDY_COLUMNS``): model, dataset, kind (brain | behaviour), metric (linear, rsa, cka, surprisal_r,
perplexity, ...), protocol, selection (best | nested | layer | empty), layer, layer_index, layer_depth, raw_r,
ceiling, normalised (raw / ceiling, unclipped), ci_low, ci_high (95% CI of raw_r), n.

This module owns the table: the row constructor (``tidy_row``, the one place ``normalised`` is computed), the frame
(``tidy_frame``), reading and checking score files (``read_tidy``) and the metric names of a time series'
baseline-gain rows (``GAIN_METRICS``). What is read from it sits beside it: :mod:`brainalign.study.headline` (one
score per model x dataset: ``Headline``, ``headline_scores``), :mod:`brainalign.study.table_checks` (the headline and
models tables as the analysis reads them) and :mod:`brainalign.study.comparisons` (the model x dataset pivot, the
analysis measures, the (base, derived) model pairs, the untrained controls). No statistics and no plotting here:
``statistics`` and ``figures`` build on them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from brainalign.errors import BrainalignError

TIDY_COLUMNS = [
    "model", "dataset", "kind", "metric", "protocol", "selection", "layer", "layer_index", "layer_depth",
    "raw_r", "ceiling", "normalised", "ci_low", "ci_high", "n",
]
SORT_ORDER = ["model", "dataset", "kind", "metric", "protocol", "selection", "layer_index"]


def normalise(raw: float, ceiling) -> float:
    """raw / ceiling where the ceiling is a positive finite number, else NaN (never clipped)."""
    if ceiling is None or not isinstance(ceiling, (int, float, np.floating)) or not math.isfinite(ceiling) or ceiling <= 0:
        return np.nan
    return raw / ceiling


def tidy_row(model: str, dataset: str, kind: str, metric: str, protocol: str, raw_r: float, *, selection: str = "",
             layer: str = "", layer_index=np.nan, layer_depth=np.nan, ceiling=np.nan, ci=(np.nan, np.nan),
             n=np.nan) -> dict:
    """One row of the tidy table; ``normalised`` is derived from ``raw_r`` and ``ceiling`` here, nowhere else."""
    ceiling = float(ceiling) if ceiling is not None and np.isfinite(ceiling) else np.nan
    return {"model": model, "dataset": dataset, "kind": kind, "metric": metric, "protocol": protocol,
            "selection": selection, "layer": layer, "layer_index": layer_index, "layer_depth": layer_depth,
            "raw_r": raw_r, "ceiling": ceiling, "normalised": normalise(raw_r, ceiling),
            "ci_low": ci[0], "ci_high": ci[1], "n": n}


def tidy_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows in the table's column order (an empty table keeps its columns)."""
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


# A time series' baseline-gain rows (brainalign.encoding.gain): tidy metric of each stored quantity, and their protocol
GAIN_METRICS = {"baseline": "baseline_r", "joint": "joint_r", "gain": "gain_r", "variance_added": "variance_added"}
GAIN_PROTOCOL = "ridge-grouped"  # the joint model's ridge, folds and penalties are ridge-grouped's


def read_tidy(paths) -> pd.DataFrame:
    """Concatenate per-model score files, checking they carry the tidy columns; sorted for determinism."""
    frames = []
    for path in paths:
        frame = pd.read_csv(path, keep_default_na=True)
        missing = [c for c in TIDY_COLUMNS if c not in frame.columns]
        if missing:
            raise BrainalignError(f"{path}: missing tidy-table columns {missing}")
        frames.append(frame[TIDY_COLUMNS])
    if not frames:
        return pd.DataFrame(columns=TIDY_COLUMNS)
    tidy = pd.concat(frames, ignore_index=True)
    return tidy.sort_values(SORT_ORDER, kind="mergesort", na_position="first").reset_index(drop=True)
