"""The bootstrap CI of an encoding score: resample the test stimuli of each outer fold (or whole units of them:
passages, blocks of scans), recompute the per-neuroid Pearson r of every resample at once, and read the 95%
percentile interval of the protocol's score (median over neuroids, or the protocol's own aggregate; mean over
folds). Shared by every protocol (:func:`brainalign.encoding.protocols.scoring.cross_validated_score`) and the
time-series baseline (:mod:`brainalign.encoding.gain`), which resample the same draws. Each layer's result keeps
its per-fold draws (:func:`fold_draws`, stored compactly by :func:`encode_draws`), from which the score step builds
the interval of the nested layer choice (:mod:`brainalign.encoding.selection`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from brainalign.bootstrap import percentile_ci, unit_counts, unit_inflation, within_strata_counts
from brainalign.correlation import pearson_columns
from brainalign.encoding.backend import ops_of, to_numpy


def _median(r) -> float:
    """The median over neuroids of per-neuroid r, NaN skipped (NaN when none is finite): a fold's default score."""
    r = to_numpy(r)  # torch's median of an even count is the lower middle value, not numpy's mean of the two
    return float(np.nanmedian(r)) if np.isfinite(r).any() else float("nan")


def _resampled_pearson(counts, a, b):
    """Pearson r between matching columns of a and b (centred) in every resample at once.

    Row i of ``counts`` (resamples x samples) counts how often each sample was drawn; the r of that resample is
    the count-weighted r, so five matrix products replace one copy and one correlation per resample. Columns
    constant within a resample (or throughout) get NaN."""
    ops = ops_of(a)
    n = float(a.shape[0])  # each row of counts sums to n
    sum_a, sum_b = counts @ a, counts @ b
    square_a, square_b = counts @ (a * a), counts @ (b * b)
    var_a = square_a - sum_a * sum_a / n
    var_b = square_b - sum_b * sum_b / n
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (counts @ (a * b) - sum_a * sum_b / n) / ops.sqrt(ops.clip_negative(var_a * var_b))
    r[(var_a <= 1e-10 * square_a) | (var_b <= 1e-10 * square_b)] = np.nan  # zero up to rounding
    return r


@lru_cache(maxsize=2)
def _cached_resample_counts(sizes: tuple[int, ...], n_bootstrap: int, seed: int) -> tuple[np.ndarray, ...]:
    counts = _draw_resample_counts(list(sizes), n_bootstrap, seed)
    for fold in counts:
        fold.setflags(write=False)  # shared by every layer of the job
    return tuple(counts)


def _resample_counts(sizes: list[int], n_bootstrap: int, seed: int) -> list[np.ndarray]:
    """For each fold, (resamples x samples) counts of how often each sample is drawn in each resample (read-only).

    The same for every layer of a job (same folds, same seed), so drawn once per job and kept (:func:`_draw_resample_counts`)."""
    return list(_cached_resample_counts(tuple(int(size) for size in sizes), int(n_bootstrap), int(seed)))


def _draw_resample_counts(sizes: list[int], n_bootstrap: int, seed: int) -> list[np.ndarray]:
    """Each fold's test stimuli resampled within the fold (:func:`brainalign.bootstrap.within_strata_counts`)."""
    return within_strata_counts(sizes, n_bootstrap, seed)


def _bootstrap(pairs, n_bootstrap: int, seed: int, chunk_elements: int = 2_000_000,
               reduce: Callable | None = None, units=None) -> tuple[float, float]:
    """95% percentile CI of the protocol's score, resampling stimuli within each test fold, or with ``units`` (a
    unit label per test sample of each fold: passages, blocks of scans) whole units (brainalign.bootstrap.unit_counts),
    the draws then stretched around the observed score by sqrt(K / (K - 1)) (brainalign.bootstrap.unit_inflation).

    The draws are those of resampling each fold in turn, resample after resample (:func:`fold_draws`); ``reduce``:
    the protocol's aggregate over neuroids (resamples x neuroids -> resamples); None: the median."""
    if n_bootstrap <= 0:
        return float("nan"), float("nan")
    draws, observed = fold_draws(pairs, n_bootstrap, seed, chunk_elements, reduce, units)
    return fold_mean_interval(draws, observed, unit_inflation(units) if units is not None else None)


def fold_draws(pairs, n_bootstrap: int, seed: int, chunk_elements: int = 2_000_000, reduce: Callable | None = None,
               units=None) -> tuple[np.ndarray, np.ndarray]:
    """(resamples x folds) score of each outer fold in each resample of its test stimuli (or ``units``), and each
    fold's observed score: what :func:`_bootstrap` reads its interval from (:func:`fold_mean_interval`).

    The resamples depend only on the folds' sizes (or units), ``n_bootstrap`` and ``seed``, so every layer of one
    model x dataset is resampled with the same draws: resample b of fold k is the same test units for every layer,
    which is what lets the nested layer choice combine the chosen layers' draws fold by fold (encoding.selection).
    The correlations of up to ``chunk_elements / neuroids`` resamples are computed together (:func:`_resampled_pearson`)."""
    counts = (_resample_counts([len(actual) for _, actual in pairs], n_bootstrap, seed) if units is None
              else unit_counts(units, n_bootstrap, seed))
    medians = np.empty((n_bootstrap, len(pairs)))
    observed = np.empty(len(pairs))
    for k, (predicted, actual) in enumerate(pairs):
        ops = ops_of(actual)
        a, b = (ops.asarray(v, np.float64) for v in (predicted, actual))
        a, b = a - a.mean(0), b - b.mean(0)
        r = to_numpy(pearson_columns(a, b))
        observed[k] = _median(r) if reduce is None else float(np.asarray(reduce(r[None]))[0])
        step = max(1, chunk_elements // a.shape[1])
        for start in range(0, n_bootstrap, step):
            r = to_numpy(_resampled_pearson(ops.asarray(counts[k][start:start + step]), a, b))
            if reduce is not None:
                medians[start:start + step, k] = reduce(r)
                continue
            if not np.isnan(r).any():
                medians[start:start + step, k] = np.median(r, axis=1)  # vectorised; nanmedian goes row by row
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples give NaN, as _median does
                medians[start:start + step, k] = np.nanmedian(r, axis=1)
    return medians, observed


def fold_mean_interval(draws: np.ndarray, observed, inflation: float | None = None) -> tuple[float, float]:
    """95% percentile interval of the mean over folds from (resamples x folds) ``draws``; with ``inflation`` (whole
    units resampled: brainalign.bootstrap.unit_inflation) the draws stretched by it around the observed mean over
    folds of ``observed``, as a few units per fold understate the spread."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = np.nanmean(np.asarray(draws, dtype=float), axis=1)
        if inflation is not None:
            score = np.nanmean(np.asarray(observed, dtype=float))
            values = score + inflation * (values - score)
    return percentile_ci(values)


def encode_draws(draws: np.ndarray) -> list[str]:
    """(resamples x folds) draws as one string per fold (float32, little-endian, base64): 1,000 draws of 5 folds
    take 27 kB in a layer's JSON instead of ~100 kB of indented numbers. Read back with :func:`decode_draws`."""
    import base64

    matrix = np.asarray(draws, dtype="<f4")
    return [base64.b64encode(np.ascontiguousarray(matrix[:, k]).tobytes()).decode("ascii") for k in range(matrix.shape[1])]


def decode_draws(encoded: list[str]) -> np.ndarray:
    """The (resamples x folds) float64 draws that :func:`encode_draws` stored."""
    import base64

    columns = [np.frombuffer(base64.b64decode(text), dtype="<f4") for text in encoded]
    return np.column_stack(columns).astype(np.float64) if columns else np.zeros((0, 0))
