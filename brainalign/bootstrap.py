"""Resampling for every interval the project reports. Each function says what it resamples: a bootstrap is only
as honest as its unit, and observations that share context (words of one story, scans of one haemodynamic
response, readers of one text) must be resampled together, never one by one.

The schemes:

* :func:`draw_units`: whole units with replacement (readers, subjects, pairs of models, folds): the plain
  cluster bootstrap.
* :func:`within_strata_counts`: every sample of each stratum (an outer test fold) drawn with replacement inside
  its stratum, as counts per sample (the encoding score's CI over test stimuli).
* :func:`unit_counts`: whole units (passages, blocks of scans) within each stratum, as counts per sample, and
  :func:`unit_inflation`, the small-K correction of their spread.
* :func:`draw_crossed`: rows and columns of a crossed design (readers x texts) resampled independently: the
  pigeonhole bootstrap (McCullagh 2000; Owen 2007), which keeps both sources of variance and errs wide
  (:func:`crossed_pooled_means` on the per-cell sums and counts of :func:`cell_table`; its columns, when nested in
  groups, drawn in two levels by :func:`unit_weights`).
* :func:`two_level_counts`: units of a first level (subjects), then units of a second level inside each drawn one
  (blocks of scans): the population the first level samples, with the within-unit noise kept.
* :func:`cluster_members`: the members (response columns) of whole clusters (subjects) drawn with replacement, for
  a statistic over members (the median over columns); with :func:`unit_counts`' blocks of scans, drawn once and
  shared by the drawn subjects, the time-series CI crosses subjects and stretches of story
  (encoding.gain.resampled_fold_scores).

:func:`percentile_ci` reads the 95% percentile interval of any of them. docs/statistics.md lists every interval
the project reports, its scheme, and its coverage measured on planted data.
"""

from __future__ import annotations

import numpy as np

LEVELS = (2.5, 97.5)  # the 95% percentile interval


def rng_of(seed_or_rng) -> np.random.Generator:
    """A generator from a seed (or the generator itself, to continue its stream)."""
    return seed_or_rng if isinstance(seed_or_rng, np.random.Generator) else np.random.default_rng(seed_or_rng)


def draw_units(n_units: int, n_bootstrap: int, seed_or_rng) -> np.ndarray:
    """(resamples x units) indices of whole units drawn with replacement, as many as there are."""
    return rng_of(seed_or_rng).integers(0, n_units, (int(n_bootstrap), int(n_units)))


def within_strata_counts(sizes: list[int], n_bootstrap: int, seed_or_rng) -> list[np.ndarray]:
    """For each stratum of ``sizes[k]`` samples, (resamples x samples) counts of how often each sample is drawn when
    every stratum is resampled in turn, resample after resample (``rng.integers(0, size, size)`` each time).

    numpy's bounded draws consume the stream value by value, so one call with a per-draw bound in that order gives
    the same indices as the Python loop over resamples and strata, without it."""
    rng = rng_of(seed_or_rng)
    sizes = [int(size) for size in sizes]
    bounds = np.concatenate([np.full(size, size) for size in sizes]) if sizes else np.zeros(0, dtype=int)
    draws = rng.integers(0, np.tile(bounds, n_bootstrap)).reshape(n_bootstrap, len(bounds))
    counts, start = [], 0
    for size in sizes:
        stratum = draws[:, start:start + size] + (np.arange(n_bootstrap) * size)[:, None]
        counts.append(np.bincount(stratum.ravel(), minlength=n_bootstrap * size).reshape(n_bootstrap, size).astype(float))
        start += size
    return counts


def unit_counts(units: list[np.ndarray], n_bootstrap: int, seed_or_rng) -> list[np.ndarray]:
    """For each stratum (``units[k]``: a unit label per sample: a passage, a block of scans), (resamples x samples)
    counts of a cluster bootstrap: each resample draws the stratum's units with replacement, as many as it has, and
    every sample counts as often as its unit was drawn. Units of unequal size make a resample's total differ from
    the stratum's size; each row is rescaled to sum to the stratum's size (a weighted Pearson r is unchanged by
    it, and the encoding bootstrap's vectorised r assumes it)."""
    rng = rng_of(seed_or_rng)
    counts = []
    for labels in units:
        _, inverse = np.unique(np.asarray(labels), return_inverse=True)
        n_units = int(inverse.max()) + 1 if len(inverse) else 0
        if not n_units:
            counts.append(np.zeros((n_bootstrap, 0)))
            continue
        drawn = np.zeros((n_bootstrap, n_units))
        draws = rng.integers(0, n_units, (n_bootstrap, n_units))
        np.add.at(drawn, (np.repeat(np.arange(n_bootstrap), n_units), draws.ravel()), 1.0)
        weights = drawn[:, inverse]
        counts.append(weights * (len(inverse) / weights.sum(1, keepdims=True)))
    return counts


def unit_inflation(units: list[np.ndarray]) -> float:
    """sqrt of the mean over strata of K / (K - 1), K the stratum's units: the factor by which a bootstrap over K
    units understates the spread of a statistic of K units ((K - 1) / K of its variance, the plug-in variance's
    bias). Negligible for dozens of passages; it matters for a time series cut into a few blocks per fold, whose
    CIs stretch their draws by it around the observed score (coverage in docs/statistics.md)."""
    ratios = [k / (k - 1) for k in (len(np.unique(labels)) for labels in units) if k > 1]
    return float(np.sqrt(np.mean(ratios))) if ratios else 1.0


def draw_crossed(n_rows: int, n_cols: int, n_bootstrap: int, seed_or_rng) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a crossed (pigeonhole) bootstrap: rows (readers) and columns (texts) each drawn
    with replacement, independently; a resample holds every (drawn row, drawn column) cell, repeated as often as
    both were drawn."""
    rng = rng_of(seed_or_rng)
    return rng.integers(0, n_rows, (n_bootstrap, n_rows)), rng.integers(0, n_cols, (n_bootstrap, n_cols))


def cell_table(values, rows, cols) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-observation ``values`` with a row label (reader) and a column label (text unit) each, as the (rows x
    columns) tables of per-cell sums and counts that :func:`crossed_pooled_means` takes, and the sorted labels of
    the rows and columns (labels of one kind: all strings, or all numbers)."""
    import pandas as pd  # hash-based factorising: np.unique sorts every label, which dominates on long tables

    values = np.asarray(values, dtype=float)
    row_index, row_labels = pd.factorize(np.asarray(rows), sort=True)
    col_index, col_labels = pd.factorize(np.asarray(cols), sort=True)
    row_labels, col_labels = np.asarray(row_labels), np.asarray(col_labels)
    sums, counts = np.zeros((len(row_labels), len(col_labels))), np.zeros((len(row_labels), len(col_labels)))
    np.add.at(sums, (row_index, col_index), values)
    np.add.at(counts, (row_index, col_index), 1.0)
    return sums, counts, row_labels, col_labels


def unit_weights(n_units: int, n_bootstrap: int, seed_or_rng, groups=None) -> np.ndarray:
    """(resamples x units) how often each unit is drawn: the units with replacement (:func:`draw_units`), or, with
    ``groups`` (one label per unit: the story of each sentence), the groups with replacement and then, inside each
    drawn group, its units with replacement (the scheme of :func:`two_level_counts`, vectorised: all groups of all
    resamples in one draw, then all their units in one more, each bounded by its group's size; sentences that share
    a story share its variance, which a draw of sentences alone leaves out)."""
    n_bootstrap, n_units = int(n_bootstrap), int(n_units)
    if groups is None:
        draws = draw_units(n_units, n_bootstrap, seed_or_rng)
        return np.stack([np.bincount(d, minlength=n_units) for d in draws]).astype(float).reshape(n_bootstrap, n_units)
    rng = rng_of(seed_or_rng)
    _, group_of = np.unique(np.asarray(groups), return_inverse=True)
    members = np.argsort(group_of, kind="stable")  # units, group by group
    sizes = np.bincount(group_of)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    drawn = rng.integers(0, len(sizes), (n_bootstrap, len(sizes))).ravel()  # groups, resample by resample
    bounds = np.repeat(sizes[drawn], sizes[drawn])  # one draw per unit of each drawn group, below its size
    units = members[np.repeat(starts[drawn], sizes[drawn]) + rng.integers(0, bounds)]
    resample = np.repeat(np.repeat(np.arange(n_bootstrap), len(sizes)), sizes[drawn])
    return np.bincount(resample * n_units + units, minlength=n_bootstrap * n_units).reshape(n_bootstrap, n_units).astype(float)


def crossed_pooled_means(sums: np.ndarray, counts: np.ndarray, n_bootstrap: int, seed_or_rng, col_groups=None) -> np.ndarray:
    """The pooled mean (sum of values / number of observations) in each crossed resample of a (rows x columns)
    table of per-cell ``sums`` and ``counts`` (empty cells 0): a resample's weight of cell (i, j) is how often row
    i times how often column j was drawn. With ``col_groups`` (a label per column: sentences nested in stories) the
    columns are drawn in two levels (:func:`unit_weights`); without, as :func:`draw_crossed` draws them."""
    sums, counts = np.asarray(sums, dtype=float), np.asarray(counts, dtype=float)
    if col_groups is not None:
        rng = rng_of(seed_or_rng)
        rows = rng.integers(0, sums.shape[0], (n_bootstrap, sums.shape[0]))
        row_weights = np.stack([np.bincount(r, minlength=sums.shape[0]) for r in rows]).astype(float)
        col_weights = unit_weights(sums.shape[1], n_bootstrap, rng, col_groups)
    else:
        rows, cols = draw_crossed(sums.shape[0], sums.shape[1], n_bootstrap, seed_or_rng)
        row_weights = np.stack([np.bincount(r, minlength=sums.shape[0]) for r in rows]).astype(float)
        col_weights = np.stack([np.bincount(c, minlength=sums.shape[1]) for c in cols]).astype(float)
    total = np.einsum("bi,ij,bj->b", row_weights, sums, col_weights)
    number = np.einsum("bi,ij,bj->b", row_weights, counts, col_weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / number


def two_level_counts(first: np.ndarray, second: np.ndarray, n_bootstrap: int, seed_or_rng) -> np.ndarray:
    """(resamples x samples) weights of a two-level bootstrap: first-level units (subjects, one label per sample)
    drawn with replacement, then, inside each drawn one, its second-level units (blocks of scans) drawn with
    replacement; a sample's weight is how often its (subject, block) pair was drawn."""
    rng = rng_of(seed_or_rng)
    first, second = np.asarray(first), np.asarray(second)
    first_ids, first_index = np.unique(first, return_inverse=True)
    weights = np.zeros((n_bootstrap, len(first)))
    members = [np.flatnonzero(first_index == i) for i in range(len(first_ids))]
    blocks = [np.unique(second[m], return_inverse=True) for m in members]
    for b in range(n_bootstrap):
        for unit in rng.integers(0, len(first_ids), len(first_ids)):
            labels, inverse = blocks[unit]
            drawn = np.bincount(rng.integers(0, len(labels), len(labels)), minlength=len(labels))
            weights[b, members[unit]] += drawn[inverse]
    return weights


def cluster_members(labels, n_bootstrap: int, seed_or_rng) -> np.ndarray:
    """(resamples x draws * largest cluster) indices of the members of whole clusters drawn with replacement
    (``labels``: every member's cluster, e.g. the subject of each response column): each resample draws as many
    clusters as there are (:func:`draw_units`) and lists each drawn cluster's members, so a cluster drawn twice
    counts twice in a statistic over members. Clusters smaller than the largest are padded with -1 (the caller maps
    it to a value its statistic skips, a NaN)."""
    _, inverse = np.unique(np.asarray(labels), return_inverse=True)
    n_clusters = int(inverse.max()) + 1 if len(inverse) else 0
    members = [np.flatnonzero(inverse == c) for c in range(n_clusters)]
    table = np.full((n_clusters, max((len(m) for m in members), default=0)), -1, dtype=np.int64)
    for c, m in enumerate(members):
        table[c, :len(m)] = m
    return table[draw_units(n_clusters, n_bootstrap, seed_or_rng)].reshape(int(n_bootstrap), -1)


def percentile_ci(values, axis=None) -> tuple:
    """The 95% percentile interval of resampled statistics, NaN resamples left out (NaN when none is finite)."""
    values = np.asarray(values, dtype=float)
    if axis is None and not np.isfinite(values).any():
        return float("nan"), float("nan")
    low, high = np.nanpercentile(values, LEVELS, axis=axis)
    return (float(low), float(high)) if axis is None else (low, high)
