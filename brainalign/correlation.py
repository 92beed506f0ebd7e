"""Correlations shared by the encoding scores, the noise ceilings and the behavioural scores.

  * :func:`pearson_columns`: Pearson r between matching columns, on numpy arrays or torch tensors alike (the
    encoding back ends), NaN where a column is constant.
  * :func:`pearson`: one (r, p) pair for two vectors (scipy, imported only when called), NaN when undefined.
  * :func:`spearman_brown`: the reliability of a mean over ``factor`` times as many subjects.
  * :func:`split_halves` / :func:`split_half_r`: the split-half consistency of a group mean, the one procedure
    behind both the brain ceiling (``encoding.ceilings.split_half_ceiling``) and the reading-time ceiling
    (``behaviour.scoring.split_half_rt_ceiling``), so the two draw the same halves from the same seed.

This module imports nothing from brainalign, so the encoding, ceiling and behaviour modules can all use it
without importing each other (and hundreds of per-layer jobs pay no more than numpy for it).
"""

from __future__ import annotations

import numpy as np


def _is_tensor(a) -> bool:
    """A torch tensor (recognised without importing torch)."""
    return not isinstance(a, np.ndarray) and type(a).__module__.startswith("torch")


def pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching columns of a and b (NaN where either column is constant); numpy arrays or
    torch tensors (on any device), the result of the same library."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    squares = (a * a).sum(0) * (b * b).sum(0)
    denominator = squares.sqrt() if _is_tensor(a) else np.sqrt(squares)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(0) / denominator
    r[denominator == 0] = np.nan
    return r


def pearson(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Pearson (r, two-sided p) of two vectors; (NaN, NaN) with fewer than 3 values or a constant vector."""
    from scipy.stats import pearsonr  # scipy.stats costs over a second to import: only where it is used

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    result = pearsonr(x, y)
    return float(result.statistic), float(result.pvalue)


def spearman_brown(r, factor: float = 2.0):
    """The reliability of a mean over ``factor`` times as many subjects as the one with reliability r
    (2r / (1 + r) for a half -> the whole group)."""
    r = np.asarray(r, dtype=float)
    return factor * r / (1 + (factor - 1) * r)


def split_halves(n_subjects: int, n_splits: int = 10, seed: int = 0, equal: bool = False):
    """Yield ``n_splits`` random (first, second) halves of the subject indices, one permutation per split from
    ``RandomState(seed)``. With an odd count the second half takes the spare subject, unless ``equal``: then the
    spare subject is left out, so both halves average the same number of subjects."""
    rng = np.random.RandomState(seed)
    half = n_subjects // 2
    for _ in range(n_splits):
        order = rng.permutation(n_subjects)
        yield order[:half], (order[half:2 * half] if equal else order[half:])


def split_half_r(data: np.ndarray, correlate=pearson_columns, n_splits: int = 10, seed: int = 0,
                 equal: bool = False) -> list:
    """Spearman-Brown corrected r between the means of random subject halves, one value per split.

    ``data``: (subjects, ...), averaged over subjects with NaN ignored; ``correlate(a, b)`` compares the two
    half means (per neuroid with :func:`pearson_columns`; a scalar for one vector per subject)."""
    values = []
    for first, second in split_halves(len(data), n_splits, seed, equal):
        with np.errstate(all="ignore"):
            a, b = np.nanmean(data[first], 0), np.nanmean(data[second], 0)
        values.append(spearman_brown(correlate(a, b)))
    return values
