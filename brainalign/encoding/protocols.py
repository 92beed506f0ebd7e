"""The encoding protocols, as a registry: what is fitted in each outer fold, on which folds, and how one layer's
design changes them; :func:`cross_validated_score` runs any registered protocol and scores it the same way.

Every protocol is scored alike: Pearson r per neuroid on each held-out fold, median over neuroids, mean over
folds; per fold also a training-only score (``inner_scores``, for the nested layer choice) and, over all folds,
a bootstrap CI over stimuli (:func:`_bootstrap`). A protocol only says how one fold is fitted and predicted.

Adding a protocol is one registered fold function, plus its name in the ``encoding.protocols`` enum of
workflow/schemas/config.schema.yaml so a config may select it::

    @register_protocol("ols-grouped")  # grouped outer folds (the default ``outer_folds``)
    def ols_grouped(fold: Fold):
        x, y, train, test = fold.x, fold.y, fold.train, fold.test
        fitted = ols_fit_predict(x[train], y[train], x[train])  # a training-only score for the nested choice
        return ols_fit_predict(x[train], y[train], x[test]), y[test], _median(pearson_columns(fitted, y[train]))

It then runs in every layer job (``fit_layer``) and gets its layer, best and nested rows (``score_layers_file``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainalign.correlation import pearson_columns
from brainalign.encoding.backend import backend_ops, ops_of, to_numpy
from brainalign.encoding.folds import block_folds, grouped_folds, shuffle_splits
from brainalign.encoding.ridge import DEFAULT_ALPHAS, _standardise, ols_fit_predict, ridge_cv, ridge_loo
from brainalign.errors import BrainalignError


# ----------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Fold:
    """What a protocol's fold function gets: one outer fold of one scoring run, its data on the run's back end."""

    k: int                    # the fold's number (inner folds are seeded with seed + k)
    x: Any                    # all samples' features (samples x features), numpy array or torch tensor
    y: Any                    # all samples' responses (samples x neuroids)
    train_index: np.ndarray   # the fold's training and test samples, numpy indices
    test_index: np.ndarray
    train: Any                # the same indices for indexing x and y on the back end
    test: Any
    groups: np.ndarray        # every sample's CV group (passage, story, run)
    alphas: np.ndarray        # the ridge penalties to choose from
    options: dict             # the encoding options of this run
    seed: int
    ops: Any                  # the back end's operations (encoding.backend)


def grouped_outer_folds(n: int, groups: np.ndarray, options: dict, seed: int, folds):
    """The caller's folds if it gave any, else ``n_folds`` folds of whole groups."""
    return folds if folds is not None else grouped_folds(groups, int(options.get("n_folds", 5)), seed)


def unchanged_layer_folds(n_samples: int, overrides: dict, options: dict):
    """No folds of the layer design's own (the protocol's outer folds apply), the options as they are."""
    return None, dict(options)


@dataclass(frozen=True)
class Protocol:
    """A registered protocol: ``fit_fold(fold) -> (predicted, actual, training-only score)`` on one outer fold;
    ``outer_folds(n, groups, options, seed, folds)`` the folds it runs on (``folds``: the caller's, or None);
    ``layer_folds(n_samples, overrides, options) -> (folds or None, options)`` how a layer's design (e.g. a
    single-run time series, ``overrides["blocks"]``) sets its folds and options in ``fit_layer``."""

    name: str
    fit_fold: Callable
    outer_folds: Callable = grouped_outer_folds
    layer_folds: Callable = unchanged_layer_folds


PROTOCOLS: dict[str, Protocol] = {}  # name -> protocol, in registration order (the default order of a layer's)


def register_protocol(name: str, *, outer_folds: Callable = grouped_outer_folds,
                      layer_folds: Callable = unchanged_layer_folds):
    """Decorator: register ``fit_fold`` as protocol ``name`` (see :class:`Protocol` for the two fold hooks)."""

    def decorator(fit_fold: Callable) -> Callable:
        PROTOCOLS[name] = Protocol(name, fit_fold, outer_folds, layer_folds)
        return fit_fold

    return decorator


def get_protocol(name: str) -> Protocol:
    """The registered protocol of this name; an unknown name is an error that lists the known ones."""
    if name not in PROTOCOLS:
        raise BrainalignError(f"unknown encoding protocol {name!r} (expected one of {', '.join(PROTOCOLS)})")
    return PROTOCOLS[name]


# ----------------------------------------------------------------------------------------------- protocols
def _single_run_blocks(n_samples: int, overrides: dict, options: dict):
    """A time series of one run (``overrides["blocks"]``): contiguous blocks of scans with ``gap`` scans left out
    either side, as outer folds and (``inner_blocks``) as inner folds."""
    protocol_options = dict(options)
    if "blocks" not in overrides:
        return None, protocol_options
    gap = int(options.get("gap", 5))
    folds = block_folds(n_samples, overrides["blocks"], gap)
    protocol_options.update(inner_blocks=int(options.get("inner_folds", 5)), gap=gap)
    return folds, protocol_options


@register_protocol("ridge-grouped", layer_folds=_single_run_blocks)
def ridge_grouped(fold: Fold):
    """The project's default: z-scoring with training statistics, ridge with a penalty per neuroid chosen on the
    training fold only (grouped inner folds, blocks of scans, or exact leave-one-out with ``inner_cv: loo``)."""
    options = fold.options
    x_train, x_test = _standardise(fold.x[fold.train], fold.x[fold.test])
    y_train, actual = _standardise(fold.y[fold.train], fold.y[fold.test])
    if options.get("inner_cv") == "loo":
        best, pooled, solver = ridge_loo(x_train, y_train, fold.alphas)
    else:
        inner = (grouped_folds(fold.groups[fold.train_index], int(options.get("inner_folds", 5)), fold.seed + fold.k)
                 if options.get("inner_blocks") is None
                 else block_folds(len(fold.train_index), int(options["inner_blocks"]), int(options.get("gap", 0))))
        best, pooled, solver = ridge_cv(x_train, y_train, fold.alphas, inner)
    inner_score = _median(pearson_columns(pooled, y_train))
    predicted = solver.predict_per_target(x_test, fold.alphas, best)
    return predicted, actual, inner_score


@register_protocol("brainscore-2023", outer_folds=lambda n, groups, options, seed, folds: shuffle_splits(n))
def brainscore_2023(fold: Fold):
    """Brain-Score Language 2023: OLS with intercept on Brain-Score's ShuffleSplits (whatever folds are given);
    the training-only score pools 3 ungrouped inner folds of the training stimuli."""
    x, y, ops, train, test = fold.x, fold.y, fold.ops, fold.train, fold.test
    predicted = ols_fit_predict(x[train], y[train], x[test])
    actual = y[test]
    inner = grouped_folds(np.arange(len(fold.train_index)), 3, fold.seed + fold.k)  # training-only score for nested layer choice
    x_train, y_train = x[train], y[train]
    pooled = ops.empty(y_train.shape, dtype=y.dtype)
    for inner_train, inner_test in inner:
        inner_train, inner_test = ops.index(inner_train), ops.index(inner_test)
        pooled[inner_test] = ops.asarray(ols_fit_predict(x_train[inner_train], y_train[inner_train], x_train[inner_test]), y.dtype)
    return predicted, actual, _median(pearson_columns(pooled, y_train))


# ----------------------------------------------------------------------------------------------- scoring
def cross_validated_score(x: np.ndarray, y: np.ndarray, groups=None, protocol: str = "ridge-grouped",
                          options: dict | None = None, folds=None) -> dict:
    """Score one feature matrix against responses (samples x neuroids) under a registered protocol, on the back
    end that ``options["backend"]`` names (numpy or torch, ``options["device"]``)."""
    options = dict(options or {})
    seed = int(options.get("seed", 0))
    dtype = np.dtype(options.get("dtype", "float32"))
    ops = backend_ops(options)
    x = ops.asarray(x, dtype=dtype)
    y = ops.asarray(y, dtype=dtype)
    alphas = np.asarray(options.get("alphas") or DEFAULT_ALPHAS, dtype=float)
    n = len(x)
    groups = np.arange(n) if groups is None else np.asarray(groups)
    chosen = get_protocol(protocol)
    folds = chosen.outer_folds(n, groups, options, seed, folds)
    fold_scores, inner_scores, pairs, neuroid_r = [], [], [], []
    for k, (train_index, test_index) in enumerate(folds):
        fold = Fold(k, x, y, train_index, test_index, ops.index(train_index), ops.index(test_index), groups, alphas,
                    options, seed, ops)
        predicted, actual, inner_score = chosen.fit_fold(fold)
        inner_scores.append(inner_score)
        r = to_numpy(pearson_columns(predicted, actual))
        neuroid_r.append(r)
        fold_scores.append(_median(r))
        pairs.append((predicted, actual))
    ci_low, ci_high = _bootstrap(pairs, int(options.get("n_bootstrap", 1000)), seed)
    return {
        "score": float(np.nanmean(fold_scores)),
        "fold_scores": fold_scores,
        "inner_scores": inner_scores,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "n": int(n),
        "neuroid_r": np.nanmean(np.vstack(neuroid_r), axis=0).tolist(),
    }


# ----------------------------------------------------------------------------------------------- bootstrap
def _median(r) -> float:
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


def _bootstrap(pairs, n_bootstrap: int, seed: int, chunk_elements: int = 2_000_000) -> tuple[float, float]:
    """95% percentile CI of the protocol's score, resampling stimuli within each test fold.

    The draws are those of resampling each fold in turn, resample after resample; the correlations of up to
    ``chunk_elements / neuroids`` resamples are computed together (:func:`_resampled_pearson`)."""
    if n_bootstrap <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    counts = [np.empty((n_bootstrap, len(actual))) for _, actual in pairs]
    for b in range(n_bootstrap):
        for k, (_, actual) in enumerate(pairs):
            counts[k][b] = np.bincount(rng.integers(0, len(actual), len(actual)), minlength=len(actual))
    medians = np.empty((n_bootstrap, len(pairs)))
    for k, (predicted, actual) in enumerate(pairs):
        ops = ops_of(actual)
        a, b = (ops.asarray(v, np.float64) for v in (predicted, actual))
        a, b = a - a.mean(0), b - b.mean(0)
        step = max(1, chunk_elements // a.shape[1])
        for start in range(0, n_bootstrap, step):
            r = to_numpy(_resampled_pearson(ops.asarray(counts[k][start:start + step]), a, b))
            if not np.isnan(r).any():
                medians[start:start + step, k] = np.median(r, axis=1)  # vectorised; nanmedian goes row by row
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples give NaN, as _median does
                medians[start:start + step, k] = np.nanmedian(r, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = np.nanmean(medians, axis=1)
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return float(low), float(high)
