"""Brain-Score Language 2.3.0's regression metrics as opt-in protocols, reproducing its choices exactly:

  * ``brainscore-ridge``: its ``ridge_pearsonr`` with the grouped K-fold of Pereira2018/Blank2014/Fedorenko2016
    ``-ridge`` (GroupKFold over the dataset's ``split_coord``, shuffled with random_state 1234; 10 splits, or
    meta ``split_folds``): ridge with one penalty for all neuroids from logspace(-3, 3, 7) by exact leave-one-out
    error on the training stimuli, intercept, features and responses unscaled (brainalign.encoding.ridge_gcv);
  * ``brainscore-ridge-shuffle``: the same ridge on Brain-Score's default splits (ShuffleSplit 10 x 90/10,
    random_state 1), Tuckute2024-ridge;
  * ``brainscore-linear-shuffle``: its ``linear_pearsonr`` on those splits (the ``-linear-shuffle`` benchmarks and
    Tuckute2024-linear): the fit of protocol ``brainscore-2023`` (OLS with intercept, minimum-norm when features
    exceed stimuli), on the splits drawn in Brain-Score's presentation order (stimuli column ``brainscore_order``).

All three: Pearson r per neuroid of the held-out predictions with Brain-Score's epsilon (each centred column's norm
+ 1e-8, :func:`brainscore_pearson`), median over neuroids per split, mean over splits; fitted in float64 whatever
``encoding.dtype`` (the inputs, float32 on disk, are cast without loss). The training-only score of a split (for the
nested layer choice) is the median r of the leave-one-out predictions on the training stimuli (ridge) or
``brainscore-2023``'s inner folds (linear). The splits come from the dataset (protocols.brainscore_splits).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from brainalign.correlation import pearson_columns
from brainalign.encoding.backend import NUMPY, to_numpy
from brainalign.encoding.bootstrap import _median
from brainalign.encoding.protocols.brainscore_splits import BrainscoreSplit, group_kfold, shuffle_split
from brainalign.encoding.protocols.registry import PROTOCOLS, Fold, register_protocol
from brainalign.encoding.ridge_gcv import BRAINSCORE_ALPHAS, ridge_gcv
from brainalign.errors import BrainalignError

SPLIT_KEY = "brainscore_split"  # the layer design's overrides entry (encoding.design.layer_design)


def brainscore_pearson(predicted, actual) -> np.ndarray:
    """Brain-Score's per-neuroid Pearson r (metrics.linear_predictivity.metric.pearsonr): each column centred and
    divided by its norm + 1e-8, so a constant column gives 0, not NaN."""
    a = np.asarray(to_numpy(predicted), dtype=np.float64)
    b = np.asarray(to_numpy(actual), dtype=np.float64)
    a = a - a.mean(0, keepdims=True)
    b = b - b.mean(0, keepdims=True)
    a = a / (np.linalg.norm(a, axis=0, keepdims=True) + 1e-8)
    b = b / (np.linalg.norm(b, axis=0, keepdims=True) + 1e-8)
    return (a * b).sum(0)


def _split_of(overrides: dict, protocol: str) -> BrainscoreSplit:
    split = overrides.get(SPLIT_KEY)
    if split is None:
        raise BrainalignError(f"encoding protocol {protocol!r} needs a prepared dataset's Brain-Score split "
                              "(encoding.design.layer_design), or the caller's folds")
    return split


def _grouped_layer_folds(n_samples: int, overrides: dict, options):
    return group_kfold(_split_of(overrides, "brainscore-ridge"), "brainscore-ridge"), None


def _grouped_outer_folds(n: int, groups: np.ndarray, options, seed: int, folds):
    """The caller's folds (a layer's: the dataset's split_coord), else Brain-Score's grouped K-fold on ``groups``."""
    if folds is not None:
        return folds
    return group_kfold(BrainscoreSplit("(caller's groups)", "groups", np.asarray(groups).astype(str)), "brainscore-ridge")


def _shuffle_layer_folds(protocol: str):
    def layer_folds(n_samples: int, overrides: dict, options):
        split = _split_of(overrides, protocol)
        if split.problem:
            raise BrainalignError(f"dataset {split.dataset}: encoding protocol {protocol!r}: {split.problem}")
        return shuffle_split(n_samples, order=split.order), None
    return layer_folds


def _shuffle_outer_folds(n: int, groups: np.ndarray, options, seed: int, folds):
    """The caller's folds (a layer's: in Brain-Score's presentation order), else ShuffleSplit over the samples as given."""
    return folds if folds is not None else shuffle_split(n)


def float64_fold(fold: Fold) -> Fold:
    """The fold on numpy float64 (Brain-Score fits in float64)."""
    x = np.asarray(to_numpy(fold.x), dtype=np.float64)
    y = np.asarray(to_numpy(fold.y), dtype=np.float64)
    return replace(fold, x=x, y=y, train=fold.train_index, test=fold.test_index, ops=NUMPY)


def _ridge_fold(fold: Fold):
    """One split: Brain-Score's ridge on the training stimuli, predictions of the test stimuli."""
    fold = float64_fold(fold)
    y_train = fold.y[fold.train_index]
    fit = ridge_gcv(fold.x[fold.train_index], y_train, BRAINSCORE_ALPHAS)
    inner = _median(pearson_columns(fit.loo_predictions, y_train))
    return fit.predict(fold.x[fold.test_index]), fold.y[fold.test_index], inner, {"alpha": fit.alpha}


register_protocol("brainscore-ridge", outer_folds=_grouped_outer_folds, layer_folds=_grouped_layer_folds, opt_in=True,
                  correlation=brainscore_pearson)(_ridge_fold)
register_protocol("brainscore-ridge-shuffle", outer_folds=_shuffle_outer_folds,
                  layer_folds=_shuffle_layer_folds("brainscore-ridge-shuffle"), opt_in=True,
                  correlation=brainscore_pearson)(_ridge_fold)


def _linear_fold(fold: Fold):
    """One split: the fit of ``brainscore-2023`` (sklearn LinearRegression's), in float64."""
    return PROTOCOLS["brainscore-2023"].fit_fold(float64_fold(fold))


register_protocol("brainscore-linear-shuffle", outer_folds=_shuffle_outer_folds,
                  layer_folds=_shuffle_layer_folds("brainscore-linear-shuffle"), opt_in=True,
                  correlation=brainscore_pearson)(_linear_fold)
