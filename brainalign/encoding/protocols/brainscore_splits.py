"""Brain-Score Language 2.3.0's cross-validation splits (its ``utils.transformations.CrossValidation``), and what a
prepared dataset tells them (:func:`brainscore_split`).

Brain-Score splits the target assembly's presentations, in the assembly's own order, either
  * ``kfold="group"``: sklearn ``GroupKFold(n_splits, shuffle=True, random_state=1234)`` over the values of a
    coordinate (``split_coord``: Pereira ``story`` = experiment.passage_category, Blank ``story``, Fedorenko
    ``sentence_id``), 10 splits unless the benchmark says otherwise (Blank2014: 8); a group never straddles
    training and test; or
  * ``kfold=False``: sklearn ``ShuffleSplit(10, train_size=0.9 | test_size=0.9, random_state=1)`` over the
    stimuli (linear-shuffle and Tuckute2024's ridge: train 90 %; Tuckute2024's RDM and CKA, test-only metrics:
    test 90 %).
Scores are per split (median over neuroids for the regressions), then the mean over splits.

A dataset declares its grouping in ``meta.json``: ``"split_coord": "<stimuli column>"`` and, where the benchmark
uses other than 10 splits, ``"split_folds": <k>``. Adapters that reorder Brain-Score's presentations keep their
position in its assembly in the stimuli column ``brainscore_order``, so the shuffled splits pick the same
stimuli as Brain-Score's (a ShuffleSplit draws positions, not stimuli).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from brainalign.encoding.folds import grouped_folds
from brainalign.errors import BrainalignError

GROUP_SEED = 1234     # Brain-Score's grouped K-fold random_state
SHUFFLE_SEED = 1      # its ShuffleSplit random_state
DEFAULT_SPLITS = 10   # its Split.Defaults.splits
ORDER_COLUMN = "brainscore_order"


@dataclass(frozen=True)
class BrainscoreSplit:
    """What a prepared dataset gives Brain-Score's splits: ``dataset`` (its name, for errors), ``coord`` (meta
    ``split_coord``, or None), ``groups`` (that column per sample, or None), ``n_splits`` (meta ``split_folds``,
    default 10), ``order`` (every sample's position in Brain-Score's assembly, or None: the samples are in its
    order) and ``problem`` (why the dataset cannot be split Brain-Score's way, or None)."""

    dataset: str
    coord: str | None = None
    groups: np.ndarray | None = None
    n_splits: int = DEFAULT_SPLITS
    order: np.ndarray | None = None
    problem: str | None = None


def brainscore_split(dataset, n_samples: int) -> BrainscoreSplit:
    """The dataset's :class:`BrainscoreSplit` for a design of ``n_samples`` samples (one per stimulus, else the
    grouping is marked unusable: Brain-Score splits presentations, which are this workflow's stimuli)."""
    meta, stimuli = dataset.meta, dataset.stimuli
    name = str(meta.get("name"))
    coord = meta.get("split_coord")
    n_splits = meta.get("split_folds", DEFAULT_SPLITS)
    if not isinstance(n_splits, int) or isinstance(n_splits, bool) or n_splits < 2:
        raise BrainalignError(f"dataset {name}: meta.json split_folds {n_splits!r}; expected an integer >= 2")
    if len(stimuli) != n_samples:
        return BrainscoreSplit(name, coord, None, n_splits, None,
                               f"{len(stimuli)} stimuli for {n_samples} samples; Brain-Score's splits need one stimulus per sample")
    order = None
    if ORDER_COLUMN in stimuli.columns:
        order = stimuli[ORDER_COLUMN].to_numpy(dtype=np.int64)
        if sorted(order.tolist()) != list(range(n_samples)):
            raise BrainalignError(f"dataset {name}: stimuli column {ORDER_COLUMN} is not a permutation of 0..{n_samples - 1}")
    groups = None
    if coord is not None:
        if coord not in stimuli.columns:
            raise BrainalignError(f"dataset {name}: meta.json split_coord {coord!r} is not a stimuli column "
                                  f"(columns: {', '.join(map(str, stimuli.columns))})")
        groups = stimuli[coord].to_numpy()  # native values: GroupKFold sorts integers as numbers, not as text
        if groups.dtype == object:
            groups = groups.astype(str)
    return BrainscoreSplit(name, coord, groups, n_splits, order)


def group_kfold(split: BrainscoreSplit | None, protocol: str) -> list:
    """Brain-Score's grouped K-fold on the dataset's ``split_coord`` (sklearn ``GroupKFold(n_splits, shuffle=True,
    random_state=1234)``: the groups, sorted, permuted, cut into ``n_splits`` nearly equal runs of groups)."""
    if split is None:
        raise BrainalignError(f"encoding protocol {protocol!r} needs the dataset's Brain-Score split (a layer design of a "
                              "prepared dataset, or the caller's folds)")
    if split.problem:
        raise BrainalignError(f"dataset {split.dataset}: encoding protocol {protocol!r}: {split.problem}")
    if split.groups is None:
        raise BrainalignError(f"dataset {split.dataset}: encoding protocol {protocol!r} needs meta.json key 'split_coord' "
                              "(the stimuli column Brain-Score's grouped K-fold splits on); the dataset has none")
    n_groups = len(np.unique(split.groups))
    if split.n_splits > n_groups:
        raise BrainalignError(f"dataset {split.dataset}: {split.n_splits} Brain-Score splits (split_folds) but only "
                              f"{n_groups} values of {split.coord}; expected at least as many groups as splits")
    return grouped_folds(split.groups, split.n_splits, GROUP_SEED)


def shuffle_split(n: int, *, train_size: float | None = 0.9, test_size: float | None = None, n_splits: int = DEFAULT_SPLITS,
                  seed: int = SHUFFLE_SEED, order: np.ndarray | None = None) -> list:
    """sklearn's ``ShuffleSplit(n_splits, train_size, test_size, random_state=seed)`` over ``n`` positions (the same
    sizes: test = ceil(test_size n) or n - floor(train_size n); train = floor(train_size n) or the rest), mapped to
    sample indices through ``order`` (sample i is at position ``order[i]`` in Brain-Score's assembly)."""
    if test_size is not None:
        n_test = math.ceil(test_size * n)
        n_train = math.floor(train_size * n) if train_size is not None else n - n_test
    else:
        n_train = math.floor(train_size * n)
        n_test = n - n_train
    if n_train < 1 or n_test < 1:
        raise BrainalignError(f"Brain-Score's shuffle split of {n} stimuli leaves {n_train} for training and {n_test} "
                              "for test; expected at least one of each")
    sample_at = np.arange(n) if order is None else np.argsort(order)
    rng = np.random.RandomState(seed)
    splits = []
    for _ in range(n_splits):
        permutation = rng.permutation(n)
        splits.append((sample_at[permutation[n_test:n_test + n_train]], sample_at[permutation[:n_test]]))
    return splits
