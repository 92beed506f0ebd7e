"""Protocol ``brainscore-2023``, the instruction-tuning paper's (Brain-Score Language 2023): ordinary least squares
with intercept (sklearn ``LinearRegression``; the minimum-norm solution when features exceed stimuli) on 10
ShuffleSplits 90/10 with random_state=1 over stimuli (not grouped, so context leaks between training and test),
Pearson r per neuroid, median over neuroids per split, mean over splits. The features are used as they are.
"""

from __future__ import annotations

import numpy as np

from brainalign.correlation import pearson_columns
from brainalign.encoding.backend import NUMPY
from brainalign.encoding.bootstrap import _median
from brainalign.encoding.folds import grouped_folds, shuffle_splits
from brainalign.encoding.ols import ols_fit_predict, ols_kernel_fit, ols_with_inner_folds
from brainalign.encoding.protocols.registry import Fold, register_protocol


def _shuffle_split_folds(n: int, groups: np.ndarray, options, seed: int, folds):
    """Brain-Score's ShuffleSplits over the ``n`` stimuli, whatever folds the caller gave."""
    return shuffle_splits(n)


@register_protocol("brainscore-2023", outer_folds=_shuffle_split_folds)
def brainscore_2023(fold: Fold):
    """One split: OLS with intercept on the training stimuli; the training-only score pools 3 ungrouped inner
    folds of the training stimuli (for the nested layer choice; NaN without those fits where no nested choice
    reads it, ``fold.nested`` False)."""
    x, y, ops, train, test = fold.x, fold.y, fold.ops, fold.train, fold.test
    actual = y[test]
    inner = grouped_folds(np.arange(len(fold.train_index)), 3, fold.seed + fold.k)
    x_train, y_train = x[train], y[train]
    if ops is NUMPY and x.shape[1] >= len(fold.train_index):  # every fit a small map of the responses, one product
        predicted, pooled = ols_kernel_fit(x, y, fold.train_index, fold.test_index, inner if fold.nested else None)
        inner_score = _median(pearson_columns(pooled.astype(y.dtype), y_train)) if fold.nested else float("nan")
        return predicted, actual, inner_score
    if ops is NUMPY:  # the four fits of the fold from shared cross-products (the outer Gram is their sum)
        predicted, pooled = ols_with_inner_folds(x, y, fold.train_index, fold.test_index, inner)
        return predicted, actual, _median(pearson_columns(pooled.astype(y.dtype), y_train)) if fold.nested else float("nan")
    if not fold.nested:
        return ols_fit_predict(x_train, y_train, x[test]), actual, float("nan")
    predicted = ols_fit_predict(x[train], y[train], x[test])
    pooled = ops.empty(y_train.shape, dtype=y.dtype)
    for inner_train, inner_test in inner:
        inner_train, inner_test = ops.index(inner_train), ops.index(inner_test)
        pooled[inner_test] = ops.asarray(ols_fit_predict(x_train[inner_train], y_train[inner_train], x_train[inner_test]), y.dtype)
    return predicted, actual, _median(pearson_columns(pooled, y_train))
