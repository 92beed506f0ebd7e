"""Tuckute2024's two similarity metrics in Brain-Score Language 2.3.0, as opt-in protocols:

  * ``brainscore-rdm`` (its ``rdm``, RDMCrossValidated): in each of 10 ShuffleSplits with test_size 0.9
    (random_state 1) the test stimuli only: each side's RDM = 1 - Pearson r between stimuli (rows) over
    features / neuroids (``np.corrcoef``; a stimulus whose row is constant makes it NaN), the Spearman r of the two
    upper triangles; the mean over splits;
  * ``brainscore-cka`` (its ``cka``, CKACrossValidated): on the same test stimuli, linear CKA
    (HSIC(X, Y) / sqrt(HSIC(X, X) HSIC(Y, Y)) with doubly centred Gram matrices, Kornblith et al. 2019), the mean
    over splits.

Nothing is fitted: a split's "prediction" is the model's features of the test stimuli and its "actual" the
responses, and the protocol's correlation is the metric itself (one value per split). No bootstrap CI (resampling
stimuli would repeat rows of an RDM, which Brain-Score's metric does not define). Brain-Score's RDM differs from
the project's ``rsa`` (brainalign.encoding.similarity) in its splits and in a single feature (NaN there, the
absolute difference here); its CKA equals ``linear_cka`` on each split.
"""

from __future__ import annotations

import numpy as np

from brainalign.encoding.backend import to_numpy
from brainalign.encoding.protocols.brainscore_ridge import _split_of
from brainalign.encoding.protocols.brainscore_splits import shuffle_split
from brainalign.encoding.protocols.registry import Fold, register_protocol
from brainalign.encoding.similarity import linear_cka, rankdata
from brainalign.errors import BrainalignError

TEST_SIZE = 0.9  # RDMCrossValidated / CKACrossValidated: crossvalidation_defaults = dict(test_size=.9)


def correlation_rdm(values: np.ndarray) -> np.ndarray:
    """The upper triangle of 1 - Pearson r between rows (``np.corrcoef``'s: NaN where a row is constant)."""
    values = np.asarray(values, dtype=np.float64)
    centred = values - values.mean(1, keepdims=True)
    norms = np.sqrt((centred * centred).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = centred / norms[:, None]
    correlation = np.clip(unit @ unit.T, -1.0, 1.0)  # np.corrcoef clips to [-1, 1] too
    return (1.0 - correlation)[np.triu_indices(len(values), k=1)]


def rdm_spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman r of the two sides' correlation-distance RDMs (NaN if either has a NaN, as scipy's spearmanr)."""
    first, second = correlation_rdm(a), correlation_rdm(b)
    if len(first) < 2 or not (np.isfinite(first).all() and np.isfinite(second).all()):
        return float("nan")
    return float(np.corrcoef(rankdata(first), rankdata(second))[0, 1])


def _one_value(metric):
    """A protocol correlation giving the split's one value (its 'neuroid' r)."""
    def correlation(predicted, actual) -> np.ndarray:
        return np.array([metric(to_numpy(predicted), to_numpy(actual))], dtype=np.float64)
    return correlation


def _cka(a: np.ndarray, b: np.ndarray) -> float:
    return linear_cka(a, b) if len(a) >= 2 else float("nan")


def _test_only_layer_folds(protocol: str):
    def layer_folds(n_samples: int, overrides: dict, options):
        split = _split_of(overrides, protocol)
        if split.problem:
            raise BrainalignError(f"dataset {split.dataset}: encoding protocol {protocol!r}: {split.problem}")
        return shuffle_split(n_samples, train_size=None, test_size=TEST_SIZE, order=split.order), None
    return layer_folds


def _test_only_outer_folds(n: int, groups, options, seed: int, folds):
    return folds if folds is not None else shuffle_split(n, train_size=None, test_size=TEST_SIZE)


def _similarity_fold(metric):
    def fit_fold(fold: Fold):
        """The split's test stimuli as they are; the training-only score: the metric on the training stimuli."""
        x, y = to_numpy(fold.x), to_numpy(fold.y)
        train, test = fold.train_index, fold.test_index
        inner = metric(x[train], y[train]) if len(train) >= 3 else float("nan")
        return np.asarray(x[test], dtype=np.float64), np.asarray(y[test], dtype=np.float64), inner
    return fit_fold


register_protocol("brainscore-rdm", outer_folds=_test_only_outer_folds, layer_folds=_test_only_layer_folds("brainscore-rdm"),
                  opt_in=True, correlation=_one_value(rdm_spearman), bootstrap=False)(_similarity_fold(rdm_spearman))
register_protocol("brainscore-cka", outer_folds=_test_only_outer_folds, layer_folds=_test_only_layer_folds("brainscore-cka"),
                  opt_in=True, correlation=_one_value(_cka), bootstrap=False)(_similarity_fold(_cka))
