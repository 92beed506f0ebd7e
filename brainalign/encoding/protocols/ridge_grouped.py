"""Protocol ``ridge-grouped``, the project's default: features scaled with training statistics only
(``encoding.feature_scaling``), ridge with a penalty per neuroid chosen on the training fold only (grouped inner
folds, contiguous blocks of scans on a single-run time series, or exact leave-one-out with ``inner_cv: loo``);
outer folds of whole passages/stories (or blocks of scans), so no context is shared between training and test.
"""

from __future__ import annotations

import numpy as np

from brainalign.correlation import pearson_columns
from brainalign.encoding.bootstrap import _median
from brainalign.encoding.folds import block_folds, grouped_folds
from brainalign.encoding.loo import loo_scalings
from brainalign.encoding.protocols.registry import Fold, register_protocol
from brainalign.encoding.ridge import ridge_cv, ridge_loo
from brainalign.encoding.scaling import FEATURE_SCALINGS, _standardise, scale_features
from brainalign.errors import BrainalignError


def _single_run_blocks(n_samples: int, overrides: dict, options):
    """A time series of one run (``overrides["blocks"]``): contiguous blocks of scans with ``gap`` scans left out
    either side as outer folds, and ``inner_folds`` blocks as inner folds; (None, None) for any other design."""
    if "blocks" not in overrides:
        return None, None
    folds = block_folds(n_samples, overrides["blocks"], int(options.gap))
    return folds, int(options.inner_folds)


def _feature_scaling_option(options) -> str:
    """The ridge-grouped feature scaling of these options (``encoding.feature_scaling``), checked."""
    scaling = options.feature_scaling
    if scaling not in (*FEATURE_SCALINGS, "auto"):
        raise BrainalignError(f"encoding.feature_scaling: unknown value {scaling!r} (expected one of "
                              f"{', '.join(FEATURE_SCALINGS)}, auto)")
    if scaling == "auto":
        choice = options.feature_scaling_choice
        if choice not in ("target", "layer"):
            raise BrainalignError(f"encoding.feature_scaling_choice: unknown value {choice!r} (expected target or layer)")
    return scaling


def ridge_inner_folds(fold: Fold) -> list:
    """The inner folds of an outer fold's training samples: ``inner_blocks`` contiguous blocks of scans (a single
    run, with the ``gap``), else ``inner_folds`` folds of whole groups seeded with seed + k."""
    options = fold.options
    if fold.inner_blocks is None:
        return grouped_folds(fold.groups[fold.train_index], int(options.inner_folds), fold.seed + fold.k)
    return block_folds(len(fold.train_index), int(fold.inner_blocks), int(options.gap))


def _ridge_scaled(fold: Fold, scaling: str, y_train):
    """One scaling's ridge fit of an outer fold: (pooled inner predictions, test predictions, each neuroid's pooled
    inner squared error at its penalty), the penalty chosen per neuroid on the training rows only."""
    x_train, x_test = scale_features(fold.x[fold.train], fold.x[fold.test], scaling)
    if fold.options.inner_cv == "loo":
        best, pooled, solver, sse = ridge_loo(x_train, y_train, fold.alphas, errors=True)
    else:
        best, pooled, solver, sse = ridge_cv(x_train, y_train, fold.alphas, ridge_inner_folds(fold), errors=True)
    return pooled, solver.predict_per_target(x_test, fold.alphas, best), sse


def _with_columns(ops, base, other, columns: np.ndarray):
    """A copy of ``base`` whose ``columns`` come from ``other`` (numpy arrays or tensors alike)."""
    out = ops.empty(tuple(base.shape), base.dtype)
    out[:] = base
    if len(columns):
        index = ops.index(columns)
        out[:, index] = ops.asarray(other, out.dtype)[:, index]
    return out


@register_protocol("ridge-grouped", layer_folds=_single_run_blocks, feature_scaling=_feature_scaling_option)
def ridge_grouped(fold: Fold):
    """One outer fold of ``ridge-grouped``: responses z-scored with training statistics, features scaled, ridge
    with a penalty per neuroid from the inner CV on the training rows.

    Scaling: ``zscore`` gives every feature unit variance; ``center`` keeps the features' relative variances (one
    common scale), so ridge shrinks the low-variance directions most, which is right when the signal rides on the
    few directions that carry most of a language model's variance and wrong when it hides in the many quiet ones;
    ``auto`` fits both on the same inner folds and keeps, per neuroid (``feature_scaling_choice: target``) or for
    the whole layer (``layer``: summed over neuroids), the one with the smaller inner squared error: the choice is
    made on the training fold only, by the same inner CV (same folds, same errors) that picks the penalty."""
    scaling = _feature_scaling_option(fold.options)
    y_train, actual = _standardise(fold.y[fold.train], fold.y[fold.test])
    if fold.options.inner_cv == "loo" and scaling == "auto":
        return _ridge_loo_fold(fold, scaling, y_train, actual)
    if scaling != "auto":
        pooled, predicted, _ = _ridge_scaled(fold, scaling, y_train)
        centred = np.full(y_train.shape[1], scaling == "center")
    else:
        pooled, predicted, sse = _ridge_scaled(fold, "zscore", y_train)
        pooled_centred, predicted_centred, sse_centred = _ridge_scaled(fold, "center", y_train)
        if fold.options.feature_scaling_choice == "layer":
            centred = np.full(len(sse), sse_centred.sum() < sse.sum())
        else:
            centred = sse_centred < sse  # ties: z-scoring
        columns = np.flatnonzero(centred)
        pooled = _with_columns(fold.ops, pooled, pooled_centred, columns)
        predicted = _with_columns(fold.ops, predicted, predicted_centred, columns)
    inner_score = _median(pearson_columns(pooled, y_train))
    return predicted, actual, inner_score, {"centred_fraction": float(np.mean(centred))}


def _ridge_loo_fold(fold: Fold, scaling: str, y_train, actual):
    """``inner_cv: loo`` with ``feature_scaling: auto``: both scalings' leave-one-out sweeps
    (encoding.loo.loo_scalings: ranked in float32, near-ties re-ranked in float64, so the choices of a float64
    sweep), the scaling chosen per neuroid or per layer from the same errors, residuals and test predictions formed
    in float64 only for the choice: the numbers of fitting each scaling in full and picking columns
    (:func:`_ridge_scaled`) to rounding, for a fraction of the work. A single scaling keeps :func:`_ridge_scaled`
    (``ridge_loo``), bit for bit the protocol as it was."""
    scalings = FEATURE_SCALINGS if scaling == "auto" else (scaling,)
    x_train, x_test = fold.x[fold.train], fold.x[fold.test]
    designs = [scale_features(x_train, x_test, name) for name in scalings]
    choice = fold.options.feature_scaling_choice if scaling == "auto" else "target"
    pooled, predicted, chosen, _, _ = loo_scalings(designs, y_train, fold.alphas, choice)
    centred = np.asarray([scalings[d] == "center" for d in chosen], dtype=bool)
    pooled = fold.ops.asarray(pooled, y_train.dtype)
    inner_score = _median(pearson_columns(pooled, y_train))
    return predicted, actual, inner_score, {"centred_fraction": float(np.mean(centred))}
