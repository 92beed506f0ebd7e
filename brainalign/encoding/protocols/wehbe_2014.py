"""Protocol ``wehbe-2014`` (opt-in): Wehbe et al. 2014 as the instruction-tuning paper scored it (Aw et al. 2023
App. C.1), with Aw & Toneva's brain_language_summarization code ("BLS": utils/utils.py
run_class_time_CV_fmri_crossval_ridge, utils/ridge_tools.py cross_val_ridge). Where BLS's indexing is accidental,
the intent is kept (noted below).

Per outer fold (4 contiguous folds over the scans left after trimming each run's edges, a gap at every boundary):
word PCA fitted on the training words, words averaged per scan, FIR delays, z-scored per run
(:func:`wehbe_scan_features`); ridge without intercept (:class:`RidgeNoIntercept`), the penalty per voxel from an
inner 10-fold CV (:func:`ridge_cv_no_intercept`); scored as the mean r over each subject's voxels, then over
subjects (:func:`subject_mean`). A word-level protocol: its folds get ``Fold.words`` (encoding.design.WordLevel).
"""

from __future__ import annotations

import warnings

import numpy as np

from brainalign.correlation import pearson_columns
from brainalign.encoding.backend import to_numpy
from brainalign.encoding.protocols.registry import Fold, register_protocol
from brainalign.errors import BrainalignError

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


def wehbe_kept_scans(groups: np.ndarray, options) -> np.ndarray:
    """The scans scored: every run without its first and last ``options.trim_run_edges`` scans."""
    from brainalign.encoding.timeseries import trimmed_scans

    first, last = (int(v) for v in options.trim_run_edges)
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


def _wehbe_outer_folds(n: int, groups: np.ndarray, options, seed: int, folds):
    """The caller's folds if it gave any, else :func:`wehbe_folds` over the trimmed scans, as scan indices."""
    if folds is not None:
        return folds
    kept = wehbe_kept_scans(groups, options)
    gap = int(options.gap)
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
    tridiagonal reduction would cost far more, and densely on a small one."""
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


def wehbe_scan_features(words, train_scans: np.ndarray, kept: np.ndarray, options) -> np.ndarray:
    """One outer fold's scan features (scans x components * delays; rows outside ``kept`` are 0): the words after
    the first ``skip_first_words``, projected on ``pca_components`` principal axes fitted on the words of the
    training scans only, averaged within each scan, delayed by ``delays`` scans, then z-scored within
    each run over the kept scans. (BLS marks a word as training by the trimmed index of its scan minus one and
    wraps the words of trimmed scans around to the end; here a word is a training word when its scan is one.)"""
    from brainalign.encoding.timeseries import make_delays, mean_within_scans, zscore_per_run

    skip = int(options.skip_first_words)
    n_components = int(options.pca_components)
    delays = list(options.delays)
    n_scans = len(words.scan_groups)
    usable = (np.arange(len(words.features)) >= skip) & (words.word_scans >= 0)
    training = usable & np.isin(words.word_scans, train_scans)
    projected = pca_projection(words.features[training], words.features[usable], n_components)
    scans = make_delays(mean_within_scans(projected, words.word_scans[usable], n_scans), delays, words.scan_groups)
    out = np.zeros_like(scans)
    out[kept] = zscore_per_run(scans[kept], words.scan_groups[kept])
    return out


# ----------------------------------------------------------------------------------------------- no-intercept ridge
class RidgeNoIntercept:
    """Closed-form ridge WITHOUT intercept or centring, w(alpha) = (X'X + alpha I)^-1 X'Y, for many penalties from
    one thin SVD of X (w = V diag(s / (s^2 + alpha)) U'Y): Wehbe et al.'s (BLS ``ridge_tools.ridge``) on their
    z-scored features, whose inner folds are not centred (so the centring solvers of :mod:`brainalign.encoding.ridge`
    would differ)."""

    def __init__(self, x_train: np.ndarray, y_train: np.ndarray):
        x_train = np.asarray(x_train, dtype=np.float64)
        u, self.s, self.vt = np.linalg.svd(x_train, full_matrices=False)
        self.uty = u.T @ np.asarray(y_train, dtype=np.float64)

    def weights(self, alpha: float, columns=slice(None)) -> np.ndarray:
        return self.vt.T @ ((self.s / (self.s**2 + alpha))[:, None] * self.uty[:, columns])

    def predict(self, x_test: np.ndarray, alpha: float, columns=slice(None), projected=None) -> np.ndarray:
        projected = np.asarray(x_test, dtype=np.float64) @ self.vt.T if projected is None else projected
        return (projected * (self.s / (self.s**2 + alpha))) @ self.uty[:, columns]

    def predict_per_target(self, x_test: np.ndarray, alphas: np.ndarray, alpha_per_target: np.ndarray) -> np.ndarray:
        projected = np.asarray(x_test, dtype=np.float64) @ self.vt.T
        out = np.empty((len(x_test), self.uty.shape[1]))
        for index in np.unique(alpha_per_target):
            columns = np.flatnonzero(alpha_per_target == index)
            out[:, columns] = self.predict(x_test, float(alphas[index]), columns, projected)
        return out


def r2_columns(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Coefficient of determination per column, 1 - mean squared error / variance (BLS ``R2``; 0 where the
    column is constant)."""
    residual = np.mean((actual - predicted) ** 2, axis=0)
    total = np.var(actual, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(1.0 - residual / total)


def ridge_cv_no_intercept(x: np.ndarray, y: np.ndarray, alphas, folds):
    """Wehbe et al.'s penalty search (BLS ``cross_val_ridge``, method ``plain``): per target, the penalty with the
    least summed 1 - R^2 over the validation folds of ridge without intercept; return (alpha index per target,
    pooled validation predictions at the chosen penalties, the :class:`RidgeNoIntercept` fitted on all of x, y)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    alphas = np.asarray(alphas, dtype=float)
    cost = np.zeros((len(alphas), y.shape[1]))
    solvers = []
    for train, test in folds:
        solver = RidgeNoIntercept(x[train], y[train])
        projected = x[test] @ solver.vt.T
        for a, alpha in enumerate(alphas):
            cost[a] += 1.0 - r2_columns(solver.predict(x[test], alpha, projected=projected), y[test])
        solvers.append((solver, test))
    best = cost.argmin(0)
    pooled = np.empty(y.shape)
    for solver, test in solvers:
        pooled[test] = solver.predict_per_target(x[test], alphas, best)
    return best, pooled, RidgeNoIntercept(x, y)


# ----------------------------------------------------------------------------------------------- the protocol
def _zscored(options) -> str:
    """The paper's feature scaling: z-scored per run, then per fold."""
    return "zscore"


@register_protocol("wehbe-2014", outer_folds=_wehbe_outer_folds, word_level=True, opt_in=True, aggregate=subject_mean,
                   feature_scaling=_zscored)
def wehbe_2014(fold: Fold):
    """Wehbe et al. 2014 as the paper computed it (BLS): per outer fold, word PCA fitted on the training words ->
    scan means -> FIR delays -> trimmed runs z-scored per run (:func:`wehbe_scan_features`); training and test
    features and responses z-scored separately; ridge without intercept, the penalty per neuroid from BLS's 16 by
    unshuffled 10-fold KFold on the training scans (least summed 1 - R^2); Pearson r per neuroid on the test
    scans, aggregated as mean over each subject's neuroids, then over subjects (:func:`subject_mean`)."""
    from brainalign.encoding.timeseries import zscore_columns

    kept = wehbe_kept_scans(fold.groups, fold.options)
    features = wehbe_scan_features(fold.words, fold.train_index, kept, fold.options)
    y = to_numpy(fold.y)
    x_train, x_test = zscore_columns(features[fold.train_index]), zscore_columns(features[fold.test_index])
    y_train, actual = zscore_columns(y[fold.train_index]), zscore_columns(y[fold.test_index])
    alphas = np.asarray(WEHBE_ALPHAS)
    best, pooled, solver = ridge_cv_no_intercept(x_train, y_train, alphas, kfold_splits(len(x_train), WEHBE_INNER_FOLDS))
    predicted = solver.predict_per_target(x_test, alphas, best)
    return predicted, actual, float(subject_mean(pearson_columns(pooled, y_train), fold.words))
