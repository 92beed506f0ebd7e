"""Ordinary least squares with intercept (sklearn ``LinearRegression``: the minimum-norm solution when features
exceed samples), the ``brainscore-2023`` protocol's regression: one fit (:func:`ols_fit_predict`), or one outer
fit with its inner folds' fits from shared cross-products (:func:`ols_with_inner_folds`).

Well-conditioned problems are solved by Cholesky (of the Gram matrix X'X, or of the kernel XX' when features >=
samples); rank-deficient or ill-conditioned ones, and the torch back end, take the SVD of the ridge solvers
(:func:`brainalign.encoding.ridge.spectrum`).
"""

from __future__ import annotations

import numpy as np

from brainalign.encoding.backend import NUMPY, ops_of
from brainalign.encoding.ridge import spectrum

#: the Cholesky shortcut of :func:`ols_fit_predict` is taken only when the centred Gram matrix's reciprocal condition
#: number is above this: its eigenvalues are then all far above the cutoff (rtol^2 = 1e-14 of the largest) below
#: which :func:`spectrum` drops a direction, so both solve the same full-rank system
CHOLESKY_MIN_RCOND = 1e-10


def _positive_definite_solve(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray | None:
    """matrix^-1 rhs by Cholesky for a symmetric ``matrix``, or None where it is not positive definite or its
    reciprocal condition number is not above :data:`CHOLESKY_MIN_RCOND` (the caller then takes the SVD)."""
    from scipy.linalg import lapack

    norm = np.abs(matrix).sum(0).max()
    factor, info = lapack.dpotrf(matrix, lower=False, clean=True)
    if info != 0:
        return None
    rcond, info = lapack.dpocon(factor, norm)  # upper triangle, as dpotrf wrote it
    if info != 0 or not rcond > CHOLESKY_MIN_RCOND:
        return None
    solution, info = lapack.dpotrs(factor, rhs, lower=False)
    return solution if info == 0 else None


def _cholesky_ols_weights(x_centred: np.ndarray, y_centred: np.ndarray) -> np.ndarray | None:
    """(X'X)^-1 X'Y by Cholesky, or None where X'X is singular or ill-conditioned (then the SVD decides)."""
    return _positive_definite_solve(x_centred.T @ x_centred, x_centred.T @ y_centred)


def _kernel_ols_dual(x_centred: np.ndarray, y_centred: np.ndarray) -> np.ndarray | None:
    """Dual coefficients z with X'z the minimum-norm least-squares weights, by Cholesky, when features >= samples and
    the centred features have full rank n - 1; None otherwise (then the SVD decides).

    Centring leaves the kernel K = XX' singular along the ones vector only, and the centred targets are orthogonal
    to it, so K^+ y = (K + c 11')^-1 y for any c > 0: one Cholesky solve instead of an eigendecomposition."""
    n = len(x_centred)
    kernel = x_centred @ x_centred.T
    kernel += np.trace(kernel) / n**2  # c 11' with eigenvalue trace / n: the mean eigenvalue of the kernel
    return _positive_definite_solve(kernel, y_centred)


def ols_fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """sklearn LinearRegression's prediction (intercept, minimum-norm least squares) from the centred SVD.

    With fewer features than training samples and a well-conditioned Gram matrix the least-squares solution is
    unique, and a Cholesky solve gives it for less work than the eigendecomposition (the protocol fits several
    per outer fold); with at least as many features as samples and full-rank centred features, a
    Cholesky solve of the kernel (:func:`_kernel_ols_dual`) gives the minimum-norm one. Rank-deficient or
    ill-conditioned problems, and the torch back end, take the SVD."""
    ops = ops_of(x_train)
    x_train, y_train, x_test = (ops.asarray(a, dtype=np.float64) for a in (x_train, y_train, x_test))
    x_mean, y_mean = x_train.mean(0), y_train.mean(0)
    if ops is NUMPY:
        x_centred, y_centred = x_train - x_mean, y_train - y_mean
        if x_train.shape[1] < x_train.shape[0]:  # else the centred Gram is singular
            weights = _cholesky_ols_weights(x_centred, y_centred)
            if weights is not None:
                return (x_test - x_mean) @ weights + y_mean
        else:
            dual = _kernel_ols_dual(x_centred, y_centred)
            if dual is not None:
                return ((x_test - x_mean) @ x_centred.T) @ dual + y_mean
    s, vt, uty = spectrum(x_train - x_mean, y_train - y_mean)
    projected = (x_test - x_mean) @ vt.T
    return (projected / s) @ uty + y_mean


def _ols_from_products(products: tuple, x_eval: np.ndarray) -> np.ndarray | None:
    """OLS predictions of ``x_eval`` from a training set's cross-products (X'X, X'Y, column sums, row count), by
    Cholesky of the centred Gram matrix; None where it is singular or ill-conditioned."""
    gram, xty, x_sum, y_sum, n = products
    x_mean, y_mean = x_sum / n, y_sum / n
    weights = _positive_definite_solve(gram - n * np.outer(x_mean, x_mean), xty - n * np.outer(x_mean, y_mean))
    return None if weights is None else (x_eval - x_mean) @ weights + y_mean


def _cross_products(x: np.ndarray, y: np.ndarray) -> tuple:
    """(X'X, X'Y, column sums of X and Y, rows); ``x.T @ x`` of one array is a symmetric rank-k update (half a product)."""
    return x.T @ x, x.T @ y, x.sum(0), y.sum(0), len(x)


def _kernel_ols_predict(kernel: np.ndarray, train: np.ndarray, rows: np.ndarray, y_train: np.ndarray) -> np.ndarray | None:
    """:func:`_kernel_ols_dual`'s prediction for ``rows`` from the ``train`` rows, both indexing one kernel over all
    rows (so no feature product per fit); None where the centred features are not of full rank n - 1."""
    block = kernel[np.ix_(train, train)]
    row_means = block.mean(0)
    total_mean = row_means.mean()
    centred = block + (total_mean - row_means[:, None] - row_means[None, :])
    centred += np.trace(centred) / len(train)**2  # as _kernel_ols_dual
    y_mean = y_train.mean(0)
    dual = _positive_definite_solve(centred, y_train - y_mean)
    if dual is None:
        return None
    cross = kernel[np.ix_(rows, train)]
    cross = cross - cross.mean(1, keepdims=True) - row_means[None, :] + total_mean
    return cross @ dual + y_mean


def _ols_with_inner_folds_dual(x_train, y_train, x_test, inner_folds, y_mean):
    """:func:`ols_with_inner_folds` when features >= samples: one kernel over the training and test rows, each
    fit's centred blocks cut from it (:func:`_kernel_ols_predict`), the SVD for a fit that is rank-deficient."""
    n_train = len(x_train)
    rows = np.vstack([x_train, x_test])
    kernel = rows @ rows.T
    everything = np.arange(n_train)
    predicted = _kernel_ols_predict(kernel, everything, np.arange(n_train, len(rows)), y_train)
    if predicted is None:
        predicted = ols_fit_predict(x_train, y_train, x_test)
    pooled = np.empty_like(y_train)
    for inner_train, inner_test in inner_folds:
        fitted = _kernel_ols_predict(kernel, np.asarray(inner_train), np.asarray(inner_test), y_train[inner_train])
        if fitted is None:
            fitted = ols_fit_predict(x_train[inner_train], y_train[inner_train], x_train[inner_test])
        pooled[inner_test] = fitted
    return predicted + y_mean, pooled + y_mean


def ols_with_inner_folds(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, inner_folds):
    """OLS (:func:`ols_fit_predict`) of the test rows from the training rows, and of each inner fold's test rows
    from the rest of the training rows (``inner_folds``: index pairs into ``train``): (test predictions, pooled
    inner predictions), numpy.

    When the inner test folds partition the training rows and every fit has more rows than features, the Gram
    matrices come from cross-products computed once: each inner fold's part, their sum for the whole training
    set, the sum minus a part for an inner fit (one pass over the training rows instead of one per fit).
    Rows are centred with the training mean first, so the subtractions stay exact to rounding. Any fit whose Gram
    is ill-conditioned takes :func:`ols_fit_predict`."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x_mean, y_mean = x[train].mean(0), y[train].mean(0)
    x_train, y_train, x_test = x[train] - x_mean, y[train] - y_mean, x[test] - x_mean
    n_train, p = x_train.shape
    inner_tests = [np.asarray(t) for _, t in inner_folds]
    if p >= n_train - max([len(t) for t in inner_tests] + [0]):  # some fit has features >= samples: the kernel form
        return _ols_with_inner_folds_dual(x_train, y_train, x_test, inner_folds, y_mean)
    everything = np.concatenate(inner_tests) if inner_tests else np.arange(0)
    partition = len(everything) == n_train and len(np.unique(everything)) == n_train
    parts = [_cross_products(x_train[t], y_train[t]) for t in inner_tests] if partition else None
    whole = tuple(sum(values) for values in zip(*parts)) if parts else None
    predicted = _ols_from_products(whole, x_test) if parts else None
    if predicted is None:
        predicted = ols_fit_predict(x_train, y_train, x_test)
    pooled = np.empty_like(y_train)
    for k, (inner_train, inner_test) in enumerate(inner_folds):
        fitted = _ols_from_products(tuple(w - q for w, q in zip(whole, parts[k])), x_train[inner_test]) if parts else None
        if fitted is None:
            fitted = ols_fit_predict(x_train[inner_train], y_train[inner_train], x_train[inner_test])
        pooled[inner_test] = fitted
    return predicted + y_mean, pooled + y_mean


def _kernel_ols_map(kernel: np.ndarray, fit_rows: np.ndarray, eval_rows: np.ndarray) -> np.ndarray | None:
    """The matrix M with M @ y[fit_rows] the minimum-norm OLS predictions (intercept included) of ``eval_rows`` from
    ``fit_rows``, both indexing one kernel over all rows; None where the centred features of the fit rows are not of
    full rank n - 1 (then the SVD decides).

    Predictions are C K^-1 (y - mean) + mean with K the fit rows' centred kernel (shifted along the ones vector as in
    :func:`_kernel_ols_dual`) and C the evaluated rows' centred cross-kernel: solving K for C's few rows instead of
    for every target's responses leaves one product with the responses per fit, the least arithmetic the fit needs."""
    block = kernel[np.ix_(fit_rows, fit_rows)]
    row_means = block.mean(0)
    total_mean = row_means.mean()
    centred = block + (total_mean - row_means[:, None] - row_means[None, :])
    centred += np.trace(centred) / len(fit_rows)**2  # as _kernel_ols_dual
    cross = kernel[np.ix_(eval_rows, fit_rows)]
    cross = cross - cross.mean(1, keepdims=True) - row_means[None, :] + total_mean
    solved = _positive_definite_solve(centred, np.ascontiguousarray(cross.T))
    if solved is None:
        return None
    weights = solved.T
    return weights + (1.0 - weights.sum(1, keepdims=True)) / len(fit_rows)  # (y - 1 mean')'s mean as a row of 1/n


def ols_kernel_fit(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, inner_folds=None):
    """:func:`ols_with_inner_folds` (numpy) when features are at least the training rows: (test predictions, pooled
    inner predictions or None when ``inner_folds`` is None, i.e. no nested layer choice reads them).

    One kernel of the rows centred with the training mean per split; every fit (the outer one, each inner fold's)
    is a small linear map of the responses (:func:`_kernel_ols_map`), applied in one product with the responses
    (one more for all the inner fits together). A fit whose kernel is singular or ill-conditioned
    sends the split to :func:`ols_with_inner_folds` (SVD where needed)."""
    x = np.asarray(x, dtype=np.float64)
    train, test = np.asarray(train), np.asarray(test)
    rows = x - x[train].mean(0)
    kernel = rows @ rows.T  # a symmetric rank-k update
    fits = [(train, test, np.arange(len(test)))]
    offset = len(test)
    for inner_train, inner_test in inner_folds or []:
        fits.append((train[np.asarray(inner_train)], train[np.asarray(inner_test)], offset + np.asarray(inner_test)))
    operator = np.zeros((offset + (len(train) if inner_folds is not None else 0), len(x)))
    for fit_rows, eval_rows, out_rows in fits:
        mapped = _kernel_ols_map(kernel, fit_rows, eval_rows)
        if mapped is None:
            predicted, pooled = ols_with_inner_folds(x, y, train, test, inner_folds or [])
            return predicted, pooled if inner_folds is not None else None
        operator[np.ix_(out_rows, fit_rows)] = mapped
    y = np.asarray(y, dtype=np.float64)
    # the outer fit's product alone, so its predictions are the same to the bit with or without the inner fits
    return operator[:offset] @ y, (operator[offset:] @ y if inner_folds is not None else None)
