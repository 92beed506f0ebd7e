"""The encoding protocols, as a registry: what is fitted in each outer fold, on which folds, and how one layer's
design changes them; :func:`cross_validated_score` runs any registered protocol and scores it the same way.

Every protocol is scored alike: Pearson r per neuroid on each held-out fold, median over neuroids (or the
protocol's own ``aggregate``), mean over folds; per fold also a training-only score (``inner_scores``, for the
nested layer choice) and, over all folds, a bootstrap CI over stimuli (:func:`_bootstrap`). A protocol only says
how one fold is fitted and predicted.

Registered: ``ridge-grouped`` and ``brainscore-2023`` (run by default), and the opt-in ``wehbe-2014``, Wehbe et
al. 2014 as the instruction-tuning paper scored it with Aw & Toneva's code: a word-level protocol (its folds get
``Fold.words``, the words' features and scans, because its PCA is fitted on each fold's training words) scored as
the mean over each subject's neuroids, then over subjects.

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
from functools import lru_cache, partial
from typing import Any

import numpy as np

from brainalign.correlation import pearson_columns
from brainalign.encoding.backend import NUMPY, backend_ops, ops_of, to_numpy
from brainalign.encoding.folds import (
    block_folds,
    fold_units,
    grouped_folds,
    shuffle_splits,
    unit_bootstrap_inflation,
    unit_resample_counts,
)
from brainalign.encoding.ridge import (
                                        DEFAULT_ALPHAS,
                                        FEATURE_SCALINGS,
                                        _standardise,
                                        ols_fit_predict,
                                        ols_with_inner_folds,
                                        ridge_cv,
                                        ridge_loo,
                                        scale_features,
)
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
    words: Any = None         # word-level protocols only: the layer's encoding.design.WordLevel, else None


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
    single-run time series, ``overrides["blocks"]``) sets its folds and options in ``fit_layer``;
    ``word_level``: its folds need the word-level input (``Fold.words``, encoding.design.WordLevel), and its
    scans are grouped by run; ``opt_in``: it runs only when ``options["protocols"]`` names it;
    ``aggregate(r, words)``: how per-neuroid r (last axis) become one score (None: the median over neuroids);
    ``feature_scaling(options)``: what it does to the features before fitting, recorded in each layer's result.
    ``fit_fold`` may return a fourth item, a dict of per-fold details, stored as one list per key in the result."""

    name: str
    fit_fold: Callable
    outer_folds: Callable = grouped_outer_folds
    layer_folds: Callable = unchanged_layer_folds
    word_level: bool = False
    opt_in: bool = False
    aggregate: Callable | None = None
    feature_scaling: Callable = lambda options: "none"


PROTOCOLS: dict[str, Protocol] = {}  # name -> protocol, in registration order (the default order of a layer's)


def register_protocol(name: str, *, outer_folds: Callable = grouped_outer_folds,
                      layer_folds: Callable = unchanged_layer_folds, word_level: bool = False, opt_in: bool = False,
                      aggregate: Callable | None = None, feature_scaling: Callable = lambda options: "none"):
    """Decorator: register ``fit_fold`` as protocol ``name`` (see :class:`Protocol` for the hooks and flags)."""

    def decorator(fit_fold: Callable) -> Callable:
        PROTOCOLS[name] = Protocol(name, fit_fold, outer_folds, layer_folds, word_level, opt_in, aggregate, feature_scaling)
        return fit_fold

    return decorator


def default_protocols() -> list[str]:
    """The protocols a layer is scored with when ``options["protocols"]`` is unset: every registered one that is
    not opt-in, in registration order."""
    return [name for name, protocol in PROTOCOLS.items() if not protocol.opt_in]


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


def _feature_scaling_option(options: dict) -> str:
    """The ridge-grouped feature scaling of these options (``encoding.feature_scaling``), checked."""
    scaling = options.get("feature_scaling", "auto")
    if scaling not in (*FEATURE_SCALINGS, "auto"):
        raise BrainalignError(f"encoding.feature_scaling: unknown value {scaling!r} (expected one of "
                              f"{', '.join(FEATURE_SCALINGS)}, auto)")
    if scaling == "auto":
        choice = options.get("feature_scaling_choice", "target")
        if choice not in ("target", "layer"):
            raise BrainalignError(f"encoding.feature_scaling_choice: unknown value {choice!r} (expected target or layer)")
    return scaling


def _ridge_scaled(fold: Fold, scaling: str, y_train):
    """One scaling's ridge fit of an outer fold: (pooled inner predictions, test predictions, each neuroid's pooled
    inner squared error at its penalty), the penalty chosen per neuroid on the training rows only."""
    options = fold.options
    x_train, x_test = scale_features(fold.x[fold.train], fold.x[fold.test], scaling)
    if options.get("inner_cv") == "loo":
        best, pooled, solver, sse = ridge_loo(x_train, y_train, fold.alphas, errors=True)
    else:
        inner = (grouped_folds(fold.groups[fold.train_index], int(options.get("inner_folds", 5)), fold.seed + fold.k)
                 if options.get("inner_blocks") is None
                 else block_folds(len(fold.train_index), int(options["inner_blocks"]), int(options.get("gap", 5))))
        best, pooled, solver, sse = ridge_cv(x_train, y_train, fold.alphas, inner, errors=True)
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
    """The project's default: features scaled with training statistics (``encoding.feature_scaling``), ridge with a
    penalty per neuroid chosen on the training fold only (grouped inner folds, blocks of scans, or exact
    leave-one-out with ``inner_cv: loo``).

    Scaling: ``zscore`` gives every feature unit variance; ``center`` keeps the features' relative variances (one
    common scale), so ridge shrinks the low-variance directions most, which is right when the signal rides on the
    few directions that carry most of a language model's variance and wrong when it hides in the many quiet ones;
    ``auto`` fits both on the same inner folds and keeps, per neuroid (``feature_scaling_choice: target``) or for
    the whole layer (``layer``: summed over neuroids), the one with the smaller inner squared error: the choice is
    made on the training fold only, by the same inner CV (same folds, same errors) that picks the penalty."""
    options = fold.options
    scaling = _feature_scaling_option(options)
    y_train, actual = _standardise(fold.y[fold.train], fold.y[fold.test])
    if scaling != "auto":
        pooled, predicted, _ = _ridge_scaled(fold, scaling, y_train)
        centred = np.full(y_train.shape[1], scaling == "center")
    else:
        pooled, predicted, sse = _ridge_scaled(fold, "zscore", y_train)
        pooled_centred, predicted_centred, sse_centred = _ridge_scaled(fold, "center", y_train)
        if options.get("feature_scaling_choice", "target") == "layer":
            centred = np.full(len(sse), sse_centred.sum() < sse.sum())
        else:
            centred = sse_centred < sse  # ties: z-scoring, the project's earlier default
        columns = np.flatnonzero(centred)
        pooled = _with_columns(fold.ops, pooled, pooled_centred, columns)
        predicted = _with_columns(fold.ops, predicted, predicted_centred, columns)
    inner_score = _median(pearson_columns(pooled, y_train))
    return predicted, actual, inner_score, {"centred_fraction": float(np.mean(centred))}


@register_protocol("brainscore-2023", outer_folds=lambda n, groups, options, seed, folds: shuffle_splits(n))
def brainscore_2023(fold: Fold):
    """Brain-Score Language 2023: OLS with intercept on Brain-Score's ShuffleSplits (whatever folds are given);
    the training-only score pools 3 ungrouped inner folds of the training stimuli."""
    x, y, ops, train, test = fold.x, fold.y, fold.ops, fold.train, fold.test
    actual = y[test]
    inner = grouped_folds(np.arange(len(fold.train_index)), 3, fold.seed + fold.k)  # training-only score for nested layer choice
    x_train, y_train = x[train], y[train]
    if ops is NUMPY:  # the four fits of the fold from shared cross-products
        predicted, pooled = ols_with_inner_folds(x, y, fold.train_index, fold.test_index, inner)
        return predicted, actual, _median(pearson_columns(pooled.astype(y.dtype), y_train))
    predicted = ols_fit_predict(x[train], y[train], x[test])
    pooled = ops.empty(y_train.shape, dtype=y.dtype)
    for inner_train, inner_test in inner:
        inner_train, inner_test = ops.index(inner_train), ops.index(inner_test)
        pooled[inner_test] = ops.asarray(ols_fit_predict(x_train[inner_train], y_train[inner_train], x_train[inner_test]), y.dtype)
    return predicted, actual, _median(pearson_columns(pooled, y_train))


# ----------------------------------------------------------------------------------------------- wehbe-2014
# Wehbe et al. 2014 as the instruction-tuning paper scored it (Aw et al. 2023 App. C.1), with Aw & Toneva's
# brain_language_summarization code ("BLS": utils/utils.py run_class_time_CV_fmri_crossval_ridge,
# utils/ridge_tools.py cross_val_ridge). Where BLS's indexing is accidental, the intent is kept (noted below).
WEHBE_FOLDS = 4                                  # contiguous outer folds over the trimmed scans (BLS CV_ind)
WEHBE_INNER_FOLDS = 10                           # unshuffled inner KFold over the training scans
WEHBE_ALPHAS = tuple(10.0 ** np.arange(-6, 10))  # 1e-6 ... 1e9: 16 penalties


def subject_mean(r, words) -> np.ndarray:
    """Mean over each subject's neuroids, then over subjects (BLS: mean over a subject's ROI voxels, then over the 8
    subjects); ``r``: (..., neuroids), NaN skipped; subjects from ``words.neuroid_subjects``."""
    r = to_numpy(r)
    subjects = np.asarray(words.neuroid_subjects)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a subject (or resample) without finite r gives NaN
        per_subject = np.stack([np.nanmean(r[..., subjects == s], axis=-1) for s in np.unique(subjects)], axis=-1)
        return np.nanmean(per_subject, axis=-1)


def wehbe_kept_scans(groups: np.ndarray, options: dict) -> np.ndarray:
    """The scans scored: every run without its first and last ``trim_run_edges`` scans (20 and 15)."""
    from brainalign.timeseries import trimmed_scans

    first, last = (int(v) for v in options.get("trim_run_edges", [20, 15]))
    try:
        return trimmed_scans(groups, first, last)
    except ValueError as error:
        raise BrainalignError(f"wehbe-2014: {error} (encoding.trim_run_edges: [{first}, {last}])") from None


def wehbe_folds(n_kept: int, n_folds: int, gap: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """BLS's outer folds over ``n_kept`` trimmed scans (positions): ``n_folds`` contiguous blocks of
    floor(n_kept / n_folds) scans, the last one taking the rest, and ``gap`` scans dropped at every train/test
    boundary: from the training scans after the first fold's test block and before the last fold's, and from both
    ends of a middle fold's test block (where BLS drops them)."""
    size = max(n_kept // n_folds, 1)
    label = np.minimum(np.arange(n_kept) // size, n_folds - 1)
    folds = []
    for k in range(n_folds):
        train, test = np.flatnonzero(label != k), np.flatnonzero(label == k)
        if gap > 0 and k == 0:
            train = train[gap:]
        elif gap > 0 and k == n_folds - 1:
            train = train[:-gap]
        elif gap > 0:
            test = test[gap:-gap]
        folds.append((train, test))
    return folds


def kfold_splits(n: int, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """sklearn ``KFold(n_folds)`` (unshuffled): contiguous blocks, the first n % n_folds one sample larger."""
    sizes = np.full(n_folds, n // n_folds)
    sizes[: n % n_folds] += 1
    edges = np.concatenate([[0], np.cumsum(sizes)])
    return [(np.concatenate([np.arange(start), np.arange(stop, n)]), np.arange(start, stop))
            for start, stop in zip(edges[:-1], edges[1:])]


def _wehbe_outer_folds(n: int, groups: np.ndarray, options: dict, seed: int, folds):
    """The caller's folds if it gave any, else :func:`wehbe_folds` over the trimmed scans, as scan indices."""
    if folds is not None:
        return folds
    kept = wehbe_kept_scans(groups, options)
    gap = int(options.get("gap", 5))
    out = []
    for k, (train, test) in enumerate(wehbe_folds(len(kept), WEHBE_FOLDS, gap)):
        if len(test) == 0 or len(train) < 2 * WEHBE_INNER_FOLDS:
            raise BrainalignError(
                f"wehbe-2014: outer fold {k} has {len(test)} test and {len(train)} training scans of the {len(kept)} left "
                f"after trimming the run edges (encoding.trim_run_edges) and the gap ({gap}): too few scans per run")
        out.append((kept[train], kept[test]))
    return out


def _leading_eigenvectors(gram: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenvalues (descending) of a symmetric matrix and their eigenvectors: by Lanczos (ARPACK,
    from a fixed start vector, so a rerun gives the same bytes) on a large matrix, where a dense solver's full
    tridiagonal reduction would cost ~10x more, and densely on a small one."""
    from scipy.linalg import eigh
    from scipy.sparse.linalg import eigsh

    m = len(gram)
    if m <= 500 or k >= m - 1:
        values, vectors = eigh(gram, subset_by_index=[m - k, m - 1])
    else:
        values, vectors = eigsh(gram, k=k, which="LA", v0=np.random.default_rng(0).standard_normal(m), tol=0)
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order]


def pca_projection(train: np.ndarray, data: np.ndarray, n_components: int) -> np.ndarray:
    """``data`` projected on the first ``n_components`` principal axes of ``train`` (centred by the training mean):
    sklearn ``PCA(n_components, svd_solver="full").fit(train).transform(data)`` up to each component's sign, from
    the leading eigenvectors of the smaller Gram matrix of the centred training rows."""
    train = np.asarray(train, dtype=np.float64)
    mean = train.mean(0)
    centred = train - mean
    n, p = centred.shape
    if n_components > min(n, p):
        raise BrainalignError(f"wehbe-2014: {n_components} principal components (encoding.pca_components) from {n} "
                              f"training words of {p} features")
    if p <= n:
        _, axes = _leading_eigenvectors(centred.T @ centred, n_components)
    else:
        values, vectors = _leading_eigenvectors(centred @ centred.T, n_components)
        axes = centred.T @ (vectors / np.sqrt(np.clip(values, 1e-300, None)))
    return (np.asarray(data, dtype=np.float64) - mean) @ axes


def wehbe_scan_features(words, train_scans: np.ndarray, kept: np.ndarray, options: dict) -> np.ndarray:
    """One outer fold's scan features (scans x components * delays; rows outside ``kept`` are 0): the words after
    the first ``skip_first_words``, projected on ``pca_components`` principal axes fitted on the words of the
    training scans only, averaged within each scan, delayed by ``delays`` scans (default 1-4), then z-scored within
    each run over the kept scans. (BLS marks a word as training by the trimmed index of its scan minus one and
    wraps the words of trimmed scans around to the end; here a word is a training word when its scan is one.)"""
    from brainalign.timeseries import make_delays, mean_within_scans, zscore_per_run

    skip = int(options.get("skip_first_words", 20))
    n_components = int(options.get("pca_components", 10))
    delays = list(options.get("delays") or [1, 2, 3, 4])
    n_scans = len(words.scan_groups)
    usable = (np.arange(len(words.features)) >= skip) & (words.word_scans >= 0)
    training = usable & np.isin(words.word_scans, train_scans)
    projected = pca_projection(words.features[training], words.features[usable], n_components)
    scans = make_delays(mean_within_scans(projected, words.word_scans[usable], n_scans), delays, words.scan_groups)
    out = np.zeros_like(scans)
    out[kept] = zscore_per_run(scans[kept], words.scan_groups[kept])
    return out


@register_protocol("wehbe-2014", outer_folds=_wehbe_outer_folds, word_level=True, opt_in=True, aggregate=subject_mean,
                   feature_scaling=lambda options: "zscore")  # the paper's: z-scored per run, then per fold
def wehbe_2014(fold: Fold):
    """Wehbe et al. 2014 as the paper computed it (BLS): per outer fold, word PCA fitted on the training words ->
    scan means -> FIR delays -> trimmed runs z-scored per run (:func:`wehbe_scan_features`); training and test
    features and responses z-scored separately; ridge without intercept, the penalty per neuroid from BLS's 16 by
    unshuffled 10-fold KFold on the training scans (least summed 1 - R^2); Pearson r per neuroid on the test
    scans, aggregated as mean over each subject's neuroids, then over subjects (:func:`subject_mean`)."""
    from brainalign.encoding.ridge import ridge_cv_no_intercept
    from brainalign.timeseries import zscore_columns

    kept = wehbe_kept_scans(fold.groups, fold.options)
    features = wehbe_scan_features(fold.words, fold.train_index, kept, fold.options)
    y = to_numpy(fold.y)
    x_train, x_test = zscore_columns(features[fold.train_index]), zscore_columns(features[fold.test_index])
    y_train, actual = zscore_columns(y[fold.train_index]), zscore_columns(y[fold.test_index])
    alphas = np.asarray(WEHBE_ALPHAS)
    best, pooled, solver = ridge_cv_no_intercept(x_train, y_train, alphas, kfold_splits(len(x_train), WEHBE_INNER_FOLDS))
    predicted = solver.predict_per_target(x_test, alphas, best)
    return predicted, actual, float(subject_mean(pearson_columns(pooled, y_train), fold.words))


# ----------------------------------------------------------------------------------------------- scoring
def cross_validated_score(x: np.ndarray, y: np.ndarray, groups=None, protocol: str = "ridge-grouped",
                          options: dict | None = None, folds=None, words=None, units=None) -> dict:
    """Score one feature matrix against responses (samples x neuroids) under a registered protocol, on the back
    end that ``options["backend"]`` names (numpy or torch, ``options["device"]``). ``words``: the word-level input
    (encoding.design.WordLevel) that a word-level protocol needs; its scans are then grouped by run. ``units``: the
    bootstrap's resampling unit of every sample (passages, blocks of scans: encoding.folds.scan_block_units); None:
    single samples."""
    options = dict(options or {})
    seed = int(options.get("seed", 0))
    dtype = np.dtype(options.get("dtype", "float32"))
    ops = backend_ops(options)
    x = ops.asarray(x, dtype=dtype)
    y = ops.asarray(y, dtype=dtype)
    alphas = np.asarray(options.get("alphas") or DEFAULT_ALPHAS, dtype=float)
    n = len(x)
    chosen = get_protocol(protocol)
    if chosen.word_level:
        if words is None:
            raise BrainalignError(f"encoding protocol {protocol!r} needs the word-level input of a time series of words "
                                  "with onsets (encoding.design.word_level_design)")
        groups = words.scan_groups
    groups = np.arange(n) if groups is None else np.asarray(groups)
    aggregate = None if chosen.aggregate is None else partial(chosen.aggregate, words=words)
    folds = chosen.outer_folds(n, groups, options, seed, folds)
    fold_scores, inner_scores, pairs, neuroid_r, details = [], [], [], [], {}
    for k, (train_index, test_index) in enumerate(folds):
        fold = Fold(k, x, y, train_index, test_index, ops.index(train_index), ops.index(test_index), groups, alphas,
                    options, seed, ops, words)
        predicted, actual, inner_score, *extra = chosen.fit_fold(fold)
        for key, value in (extra[0] if extra else {}).items():
            details.setdefault(key, []).append(value)
        inner_scores.append(inner_score)
        r = to_numpy(pearson_columns(predicted, actual))
        neuroid_r.append(r)
        fold_scores.append(_median(r) if aggregate is None else float(aggregate(r)))
        pairs.append((predicted, actual))
    ci_low, ci_high = _bootstrap(pairs, int(options.get("n_bootstrap", 1000)), seed, reduce=aggregate,
                                 units=fold_units(folds, units))
    return {
        "score": float(np.nanmean(fold_scores)),
        "fold_scores": fold_scores,
        "inner_scores": inner_scores,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "n": int(n),
        "neuroid_r": np.nanmean(np.vstack(neuroid_r), axis=0).tolist(),
        "feature_scaling": chosen.feature_scaling(options),
        **details,
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


@lru_cache(maxsize=2)
def _cached_resample_counts(sizes: tuple[int, ...], n_bootstrap: int, seed: int) -> tuple[np.ndarray, ...]:
    counts = _draw_resample_counts(list(sizes), n_bootstrap, seed)
    for fold in counts:
        fold.setflags(write=False)  # shared by every layer of the job
    return tuple(counts)


def _resample_counts(sizes: list[int], n_bootstrap: int, seed: int) -> list[np.ndarray]:
    """For each fold, (resamples x samples) counts of how often each sample is drawn in each resample (read-only).

    The same for every layer of a job (same folds, same seed), so drawn once per job and kept (:func:`_draw_resample_counts`)."""
    return list(_cached_resample_counts(tuple(int(size) for size in sizes), int(n_bootstrap), int(seed)))


def _draw_resample_counts(sizes: list[int], n_bootstrap: int, seed: int) -> list[np.ndarray]:
    """The draws are those of a loop over resamples, then folds, each fold drawing ``size`` indices below ``size``
    (``rng.integers(0, size, size)``): numpy's bounded draws consume the stream value by value, so one call with a
    per-draw bound in that order gives the same indices without a Python loop of n_bootstrap x folds calls."""
    rng = np.random.default_rng(seed)
    sizes = [int(size) for size in sizes]
    bounds = np.concatenate([np.full(size, size) for size in sizes]) if sizes else np.zeros(0, dtype=int)
    draws = rng.integers(0, np.tile(bounds, n_bootstrap)).reshape(n_bootstrap, len(bounds))
    counts, start = [], 0
    for size in sizes:
        fold = draws[:, start:start + size] + (np.arange(n_bootstrap) * size)[:, None]
        counts.append(np.bincount(fold.ravel(), minlength=n_bootstrap * size).reshape(n_bootstrap, size).astype(float))
        start += size
    return counts


def _bootstrap(pairs, n_bootstrap: int, seed: int, chunk_elements: int = 2_000_000,
               reduce: Callable | None = None, units=None) -> tuple[float, float]:
    """95% percentile CI of the protocol's score, resampling stimuli within each test fold, or with ``units`` (a
    unit label per test sample of each fold: passages, blocks of scans) whole units (folds.unit_resample_counts),
    the draws then stretched around the observed score by sqrt(K / (K - 1)) (folds.unit_bootstrap_inflation).

    The draws are those of resampling each fold in turn, resample after resample; the correlations of up to
    ``chunk_elements / neuroids`` resamples are computed together (:func:`_resampled_pearson`). ``reduce``: the
    protocol's aggregate over neuroids (resamples x neuroids -> resamples); None: the median."""
    if n_bootstrap <= 0:
        return float("nan"), float("nan")
    counts = (_resample_counts([len(actual) for _, actual in pairs], n_bootstrap, seed) if units is None
              else unit_resample_counts(units, n_bootstrap, seed))
    medians = np.empty((n_bootstrap, len(pairs)))
    observed = np.empty(len(pairs))
    for k, (predicted, actual) in enumerate(pairs):
        ops = ops_of(actual)
        a, b = (ops.asarray(v, np.float64) for v in (predicted, actual))
        a, b = a - a.mean(0), b - b.mean(0)
        r = to_numpy(pearson_columns(a, b))
        observed[k] = _median(r) if reduce is None else float(np.asarray(reduce(r[None]))[0])
        step = max(1, chunk_elements // a.shape[1])
        for start in range(0, n_bootstrap, step):
            r = to_numpy(_resampled_pearson(ops.asarray(counts[k][start:start + step]), a, b))
            if reduce is not None:
                medians[start:start + step, k] = reduce(r)
                continue
            if not np.isnan(r).any():
                medians[start:start + step, k] = np.median(r, axis=1)  # vectorised; nanmedian goes row by row
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples give NaN, as _median does
                medians[start:start + step, k] = np.nanmedian(r, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = np.nanmean(medians, axis=1)
        if units is not None:  # a few units per fold: their bootstrap understates the spread (folds.unit_bootstrap_inflation)
            score = np.nanmean(observed)
            values = score + unit_bootstrap_inflation(units) * (values - score)
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return float(low), float(high)
