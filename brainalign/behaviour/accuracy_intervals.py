"""95% intervals for the accuracies of Brain-Score Language's language-model benchmarks (rule ``lm_score``), each
resampling what the benchmark's score is meant to generalise over:

* one SyntaxGym suite (:func:`wilson_interval`): its items, as binomial draws. The Wilson score interval (Wilson
  1927), because the suites have tens of items and models score near 1 on many, where the Wald interval's
  coverage collapses (at 1 it has width 0).
* SyntaxGym2020, the mean over suites (:func:`suite_mean_interval`): the suites are the benchmark's fixed list;
  the items within each are drawn. The mean's variance is the sum of the suites' binomial variances over the
  number of suites squared, each from the suite's Agresti-Coull estimate (x + z^2/2) / (n + z^2), so a suite at 0
  or 1 still adds variance (Agresti & Coull 1998); a normal interval around the mean itself (the reported score),
  clipped to [0, 1].
* Wikitext (:func:`clustered_accuracy_interval`): the next words of one article share its topic, names and style,
  so its contexts are not independent draws and a binomial interval over contexts is too narrow; the articles are
  the units drawn. Accuracy = hits / contexts is a ratio estimator; its cluster-robust variance (CR1:
  K / (K - 1) * sum over articles of (hits_k - p n_k)^2 / N^2, what a regression of the hits on a constant with
  errors clustered by article gives) with a t quantile on K - 1 degrees of freedom; undefined (NaN) with fewer
  than two articles.

Coverage of each, on planted accuracies, is measured in tests/test_accuracy_intervals.py.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

LEVEL = 0.95


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def wilson_interval(correct: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a proportion ``correct / n``; (NaN, NaN) without items."""
    if n <= 0:
        return np.nan, np.nan
    z = _z(level)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def suite_mean_interval(correct, n, level: float = LEVEL) -> tuple[float, float]:
    """Interval of the unweighted mean of per-suite accuracies ``correct[i] / n[i]`` (suites fixed, items drawn),
    centred on that mean; (NaN, NaN) when a suite has no items or there are none."""
    correct, n = np.asarray(correct, dtype=float), np.asarray(n, dtype=float)
    if not len(n) or (n <= 0).any():
        return np.nan, np.nan
    z = _z(level)
    tilde_n = n + z * z
    tilde_p = (correct + z * z / 2) / tilde_n
    centre = (correct / n).mean()
    half = z * np.sqrt((tilde_p * (1 - tilde_p) / tilde_n).sum()) / len(n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def clustered_accuracy_interval(hits, clusters, level: float = LEVEL) -> tuple[float, float]:
    """Interval of the accuracy ``mean(hits)`` with the hits clustered (``clusters``: one label per hit): the
    ratio estimator's CR1 variance, t on (clusters - 1) degrees of freedom, clipped to [0, 1]; (NaN, NaN) with
    fewer than two clusters."""
    hits = np.asarray(hits, dtype=float)
    labels, index = np.unique(np.asarray(clusters), return_inverse=True)
    k = len(labels)
    if k < 2:
        return np.nan, np.nan
    total = len(hits)
    p = hits.mean()
    per_cluster = np.bincount(index, weights=hits - p, minlength=k)
    variance = k / (k - 1) * (per_cluster ** 2).sum() / total ** 2
    half = float(stats.t.ppf(0.5 + level / 2, k - 1)) * np.sqrt(variance)
    return float(max(0.0, p - half)), float(min(1.0, p + half))
