"""Cross-validation folds: which samples an encoding model is trained on and which it is scored on.

  * :func:`grouped_folds`: whole passages/stories (or runs) per fold, so no context is shared between training
    and test (the default protocol's outer and inner folds).
  * :func:`block_folds`: contiguous blocks of scans with a gap either side, for a time series with a single run.
  * :func:`shuffle_splits`: Brain-Score 2023's ungrouped 90/10 splits over stimuli.

Each returns a list of (train indices, test indices), the same folds as the sklearn splitter it names (tested).
"""

from __future__ import annotations

import numpy as np

from brainalign.errors import BrainalignError

_FOLD_CACHE: dict = {}
_FOLD_CACHE_SIZE = 256


def grouped_folds(groups: np.ndarray, n_folds: int, seed: int):
    """K folds of whole groups (passages/stories), group order shuffled with ``seed``.

    The same folds as sklearn's ``GroupKFold(n_splits, shuffle=True, random_state=seed)`` (tested), written out
    because importing sklearn costs more than a second in each of a run's hundreds of encoding jobs. Every layer of
    a job asks for the same folds (outer, and inner per outer fold): they are computed once per job and handed
    out read-only.
    """
    groups = np.asarray(groups)
    content = groups.astype(str) if groups.dtype == object else groups  # an object array's bytes are pointers
    key = (content.dtype.str, content.shape, content.tobytes(), int(n_folds), int(seed))
    if key not in _FOLD_CACHE:
        if len(_FOLD_CACHE) >= _FOLD_CACHE_SIZE:
            _FOLD_CACHE.pop(next(iter(_FOLD_CACHE)))
        folds = _grouped_folds(groups, n_folds, seed)
        for train, test in folds:
            train.flags.writeable = test.flags.writeable = False
        _FOLD_CACHE[key] = folds
    return list(_FOLD_CACHE[key])


def _grouped_folds(groups: np.ndarray, n_folds: int, seed: int):
    unique_groups = np.unique(groups)
    if len(unique_groups) < 2:
        raise BrainalignError(f"grouped cross-validation needs at least 2 groups, got {len(unique_groups)}")
    shuffled = np.random.RandomState(seed).permutation(unique_groups)
    folds = []
    for test_groups in np.array_split(shuffled, min(n_folds, len(unique_groups))):
        in_test = np.isin(groups, test_groups)
        folds.append((np.flatnonzero(~in_test), np.flatnonzero(in_test)))
    return folds


def block_folds(n: int, n_folds: int, gap: int):
    """Contiguous blocks of samples (scans) as test folds; ``gap`` samples either side are left out of training,
    because neighbouring scans share the slow haemodynamic response."""
    edges = np.linspace(0, n, n_folds + 1).astype(int)
    folds = []
    for start, stop in zip(edges[:-1], edges[1:]):
        test = np.arange(start, stop)
        train = np.setdiff1d(np.arange(n), np.arange(max(0, start - gap), min(n, stop + gap)))
        folds.append((train, test))
    return folds


def shuffle_splits(n: int, n_splits: int = 10, train_size: float = 0.9, seed: int = 1):
    """Brain-Score 2023's splits: the same as sklearn's ``ShuffleSplit(n_splits=10, train_size=0.9,
    random_state=1)`` (tested): floor(0.9 n) training stimuli, the rest held out, a fresh permutation per split."""
    import math

    n_train = math.floor(train_size * n)
    rng = np.random.RandomState(seed)
    splits = []
    for _ in range(n_splits):
        permutation = rng.permutation(n)
        splits.append((permutation[n - n_train:], permutation[:n - n_train]))
    return splits


# ----------------------------------------------------------------------------------------------- bootstrap units
def scan_block_units(groups: np.ndarray, block: int) -> np.ndarray:
    """A resampling unit per scan for a time series: contiguous blocks of ``block`` scans within each run (run =
    ``groups``, scans in presentation order), numbered 0, 1, ... in scan order.

    Why blocks: neighbouring scans share the slow haemodynamic response (and the FIR-delayed features), so scans
    are not independent draws; resampling single scans makes a CI too narrow (tests/test_timeseries.py: coverage
    of a planted correlation under AR(1) noise). Resampling blocks longer than the autocorrelation keeps it
    (the moving/non-overlapping block bootstrap, Kunsch 1989; Carlstein 1986)."""
    groups = np.asarray(groups).astype(str)
    if block < 1:
        raise BrainalignError(f"encoding.bootstrap_block: {block}; expected at least 1 scan")
    units = np.empty(len(groups), dtype=np.int64)
    start, label = 0, 0
    while start < len(groups):
        stop = start
        while stop < len(groups) and groups[stop] == groups[start]:
            stop += 1
        position = np.arange(stop - start)
        units[start:stop] = label + position // block
        label += int(position[-1] // block) + 1
        start = stop
    return units


def fold_units(folds, units: np.ndarray | None) -> list[np.ndarray] | None:
    """Each test fold's resampling units (``units``: one label per sample), or None where every test sample is its
    own unit (then the bootstrap resamples samples, with the draws it always made)."""
    if units is None:
        return None
    units = np.asarray(units)
    per_fold = [units[np.asarray(test)] for _, test in folds]
    if all(len(np.unique(labels)) == len(labels) for labels in per_fold):
        return None
    return per_fold
