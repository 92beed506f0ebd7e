"""Ridge regression for many penalties and many targets at once, each penalty read off one small decomposition
of the centred training features.

  * :class:`RidgeSVD`: one symmetric eigendecomposition (:func:`spectrum`), numpy or torch.
  * :class:`RidgeTridiagonal` (numpy): one tridiagonal reduction (:class:`ShiftedSystems`), about a third of the
    work, over Gram matrices that :class:`FoldCrossProducts` cuts for all the folds of one problem from
    cross-products computed once.
  * :func:`ridge_cv` chooses a penalty per target by inner K-fold CV, :func:`ridge_loo` by exact leave-one-out.

Ordinary least squares lives in :mod:`brainalign.encoding.ols`, the feature scalings in
:mod:`brainalign.encoding.scaling`.
"""

from __future__ import annotations

import numpy as np

from brainalign.encoding.backend import NUMPY, ops_of, to_numpy
from brainalign.errors import BrainalignError

DEFAULT_ALPHAS = tuple(10.0 ** np.arange(-2, 8))  # 10 penalties, z-scored features


def spectrum(x_centred: np.ndarray, y_centred: np.ndarray, rtol: float = 1e-7):
    """Thin SVD pieces (s, Vt, U'Y) of centred features from one symmetric eigendecomposition.

    Features <= samples: eigh of X'X (p x p); features > samples: eigh of the kernel XX' (n x n). Either way one
    small decomposition replaces a full SVD of the n x p matrix (less work; the same solutions).
    Singular values below ``rtol * s_max`` are dropped (numerically zero directions, as lstsq does; through the
    Gram matrix, singular values are resolved to about sqrt(eps) * s_max, hence the float64 and rtol=1e-7).
    """
    ops = ops_of(x_centred)
    x_centred = ops.asarray(x_centred, dtype=np.float64)
    y_centred = ops.asarray(y_centred, dtype=np.float64)  # numpy would promote it anyway; torch needs it said
    n, p = x_centred.shape
    if p <= n:
        evals, v = ops.eigh(x_centred.T @ x_centred)
        s = ops.sqrt(ops.clip_negative(evals))
        keep = s > rtol * s.max()
        s, v = s[keep], v[:, keep]
        vt = v.T
        uty = (vt @ (x_centred.T @ y_centred)) / s[:, None]  # U'Y without forming U = XV/s
    else:
        evals, u = ops.eigh(x_centred @ x_centred.T)
        s = ops.sqrt(ops.clip_negative(evals))
        keep = s > rtol * s.max()
        s, u = s[keep], u[:, keep]
        vt = (u.T @ x_centred) / s[:, None]
        uty = u.T @ y_centred
    return s, vt, uty


class RidgeSVD:
    """Ridge solutions for many penalties from one decomposition of the (centred) training features.

    w(alpha) = V diag(s / (s^2 + alpha)) U' y, so a prediction for any penalty costs two small products and no
    (alphas x samples x targets) array is ever built.
    """

    def __init__(self, x_train: np.ndarray, y_train: np.ndarray):
        self.x_mean = x_train.mean(0)
        self.y_mean = y_train.mean(0)
        self.s, self.vt, self.uty = spectrum(x_train - self.x_mean, y_train - self.y_mean)

    def project(self, x_test: np.ndarray) -> np.ndarray:
        return ops_of(x_test).asarray(x_test - self.x_mean, self.vt.dtype) @ self.vt.T

    def predict(self, x_test: np.ndarray, alpha: float, columns=slice(None), projected=None) -> np.ndarray:
        projected = self.project(x_test) if projected is None else projected
        shrink = self.s / (self.s**2 + alpha)
        return (projected * shrink) @ self.uty[:, columns] + self.y_mean[columns]

    def predict_per_target(self, x_test: np.ndarray, alphas: np.ndarray, alpha_per_target: np.ndarray) -> np.ndarray:
        ops = ops_of(self.uty)
        alpha_per_target = to_numpy(alpha_per_target)
        projected = self.project(x_test)
        out = ops.empty((len(x_test), self.uty.shape[1]), dtype=self.uty.dtype)
        for index in np.unique(alpha_per_target):
            columns = ops.index(np.flatnonzero(alpha_per_target == index))
            out[:, columns] = self.predict(x_test, float(alphas[index]), columns, projected)
        return out


class ShiftedSystems:
    """Solutions of (M + alpha I) Z = R for any penalty alpha from ONE tridiagonal reduction of symmetric M.

    LAPACK's dsytrd writes M = Q T Q' (T tridiagonal, Q as Householder reflectors): a quarter of the work of an
    eigendecomposition, because no eigenvectors are formed. Then (T + alpha I) z = Q'r costs O(k) per column and
    penalty, and Q is applied as reflectors (dormqr) only to the few matrices that need it. When the caller knows
    it needs at most two penalties (a final fit), a Cholesky factor per penalty is cheaper still (Q = I then).
    """

    CHOLESKY_MAX_PENALTIES = 2  # up to this many penalties, a Cholesky factor each costs less than the reduction

    def __init__(self, m: np.ndarray, r: np.ndarray, penalties=None):
        from scipy.linalg import lapack

        self._lapack = lapack
        m = np.asarray(m, dtype=np.float64)
        self.vectors, self.factors = None, None
        if penalties is not None and len(penalties) <= self.CHOLESKY_MAX_PENALTIES:
            self.factors = self._cholesky_factors(m, penalties)
        if self.factors is not None:
            self.qt_r = np.asarray(r, dtype=np.float64)
            return
        k = len(m)
        lwork = max(1, int(lapack.dsytrd_lwork(k, lower=1)[0]))
        reduced, self.diagonal, self.off_diagonal, self.tau, info = lapack.dsytrd(m, lower=1, lwork=lwork, overwrite_a=1)
        if info != 0:
            raise BrainalignError(f"tridiagonal reduction failed (LAPACK dsytrd info={info}) on a {k} x {k} matrix")
        # Q = 1 (+) the reflectors stored below T's subdiagonal: the layout of a QR factorisation, which is how
        # LAPACK's own dormtr applies a lower-triangle reduction; copied once so dormqr never copies it again
        self.vectors = np.asfortranarray(reduced[1:, :-1])
        self.qt_r = self.apply_q(r, transpose=True)

    def _cholesky_factors(self, m: np.ndarray, penalties) -> dict | None:
        factors = {}
        for alpha in penalties:
            factor, info = self._lapack.dpotrf(m + float(alpha) * np.eye(len(m)), lower=1, clean=0)
            if info != 0:
                return None  # not numerically positive definite at this penalty: the reduction handles it
            factors[float(alpha)] = factor
        return factors

    def apply_q(self, c: np.ndarray, transpose: bool = False) -> np.ndarray:
        """Q c (or Q' c) for a k x n matrix c."""
        c = np.array(c, dtype=np.float64, order="F")
        if self.vectors is not None and len(c) > 1 and c.shape[1] > 0:
            trans = "T" if transpose else "N"
            rows = np.asfortranarray(c[1:])
            lwork = max(1, int(self._lapack.dormqr("L", trans, self.vectors, self.tau, rows, -1)[1][0]))
            c[1:], _, info = self._lapack.dormqr("L", trans, self.vectors, self.tau, rows, lwork, overwrite_c=1)
            if info != 0:
                raise BrainalignError(f"applying the tridiagonal reduction's reflectors failed (LAPACK dormqr info={info})")
        return c

    def solve(self, alpha: float, columns=slice(None)) -> np.ndarray:
        """z = (T + alpha I)^-1 Q'r for the chosen columns of r: Q z solves the original system."""
        rhs = self.qt_r[:, columns]
        if self.factors is not None:
            z, info = self._lapack.dpotrs(self.factors[float(alpha)], rhs, lower=1)
            if info != 0:
                raise BrainalignError(f"Cholesky solve failed (LAPACK dpotrs info={info}) at penalty {alpha:g}")
            return z
        if len(self.diagonal) == 1:  # a 1 x 1 system (one regressor): LAPACK's tridiagonal solvers want k >= 2
            if not self.diagonal[0] + alpha > 0:
                raise BrainalignError(f"ridge system is singular at penalty {alpha:g}: use larger encoding.alphas")
            return rhs / (self.diagonal[0] + alpha)
        _, _, z, info = self._lapack.dptsv(self.diagonal + alpha, self.off_diagonal, rhs)
        if info != 0:  # not numerically positive definite (a tiny penalty on a singular M): pivoted LU instead
            _, _, _, z, info = self._lapack.dgtsv(self.off_diagonal, self.diagonal + alpha, self.off_diagonal, rhs)
            if info != 0:
                raise BrainalignError(f"ridge system is singular at penalty {alpha:g}: use larger encoding.alphas")
        return z


class RidgeTridiagonal:
    """Ridge predictions for many penalties from one tridiagonal reduction of the centred Gram matrix X'X
    (features <= samples) or kernel XX' (features > samples): prediction(alpha) = P (M + alpha I)^-1 R + mean(y)
    with P = x_test - mean (R = X'Y) or (x_test - mean) X' (R = Y). Same predictions as :class:`RidgeSVD`, from
    about a third of its work; numpy only (torch has no tridiagonal reduction), alpha > 0 only (OLS needs the SVD).
    """

    def __init__(self, m: np.ndarray, r: np.ndarray, x_mean, y_mean: np.ndarray,
                 x_train_centred=None, penalties=None, cross_kernel=None):
        self.systems = ShiftedSystems(m, r, penalties)
        self.y_mean = y_mean
        # dual form: x_train_centred; both may come as a function that gives (x_mean, x_train_centred) when a
        # prediction first needs them (the shared problem's own rows never do: cross_kernel maps them)
        self._x_mean, self._x_train_centred = x_mean, x_train_centred
        self.cross_kernel = cross_kernel  # dual form: rows of the shared problem -> their centred kernel with training

    def _training_side(self):
        if callable(self._x_train_centred):
            self._x_mean, self._x_train_centred = self._x_train_centred()
        return self._x_mean, self._x_train_centred

    def _mapped(self, x_test: np.ndarray, rows=None) -> np.ndarray:
        if rows is not None and self.cross_kernel is not None:
            return self.cross_kernel(rows)
        x_mean, x_train_centred = self._training_side()
        centred = np.asarray(x_test, dtype=np.float64) - x_mean
        return centred if x_train_centred is None else centred @ x_train_centred.T

    def predictions(self, x_test: np.ndarray, alpha_columns, rows=None) -> list[np.ndarray]:
        """Predictions of x_test for each (alpha, columns) pair. Whichever is cheaper: take the test rows into
        T's basis once (many columns), or take all the penalties' coefficient vectors out of it at once (few).
        ``rows``: x_test's rows in the problem the solver came from (:class:`FoldCrossProducts`), whose kernel
        then gives the dual form's test-by-training products without touching the features."""
        mapped = self._mapped(x_test, rows)
        solutions = [self.systems.solve(alpha, columns) for alpha, columns in alpha_columns]
        y_means = [self.y_mean[columns] for _, columns in alpha_columns]
        widths = [z.shape[1] for z in solutions]
        if len(mapped) < sum(widths):
            projected = self.systems.apply_q(mapped.T, transpose=True).T
            return [projected @ z + y_mean for z, y_mean in zip(solutions, y_means)]
        coefficients = np.split(self.systems.apply_q(np.hstack(solutions)), np.cumsum(widths)[:-1], axis=1)
        return [mapped @ c + y_mean for c, y_mean in zip(coefficients, y_means)]

    def predict_per_target(self, x_test: np.ndarray, alphas: np.ndarray, alpha_per_target: np.ndarray, rows=None) -> np.ndarray:
        alpha_per_target = np.asarray(alpha_per_target)
        groups = [(float(alphas[index]), np.flatnonzero(alpha_per_target == index)) for index in np.unique(alpha_per_target)]
        out = np.empty((len(x_test), len(self.y_mean)))
        for (_, columns), predicted in zip(groups, self.predictions(x_test, groups, rows)):
            out[:, columns] = predicted
        return out


class FoldCrossProducts:
    """The cross-products of one (x, y) problem and its folds, computed once and shared by all of them.

    Features <= training samples: a fold's centred Gram matrix X'X is the whole problem's minus its left-out rows'
    part, minus a rank-one correction for the training mean; when the left-out rows partition the samples (K-fold),
    the whole is the sum of the parts, so all K + 1 Gram matrices cost one product over the samples (the parts are
    kept while they fit in ``PARTS_BUDGET_BYTES``). Otherwise a fold's kernel XX' is a block of the whole kernel,
    double-centred. Only the reductions are per fold.
    """

    PARTS_BUDGET_BYTES = 512 * 2**20

    def __init__(self, x: np.ndarray, y: np.ndarray, folds):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.x_mean, self.y_mean = x.mean(0), y.mean(0)
        self.x, self.y = x - self.x_mean, y - self.y_mean  # centring first keeps the subtractions below exact
        self.folds = [np.asarray(train) for train, _ in folds]
        n, p = x.shape
        self.primal = p <= min([n] + [len(train) for train in self.folds])
        self._kernel, self._left_out, self._whole = None, [None] * len(self.folds), None
        self._left_out_rows = [np.setdiff1d(np.arange(n), train) for train in self.folds] if self.primal else []
        if self.primal and len(self.folds) * p * (p + y.shape[1]) * 8 <= self.PARTS_BUDGET_BYTES:
            left_out = self._left_out_rows
            self._left_out = [self._products(out) if len(out) < len(train) else None for out, train in zip(left_out, self.folds)]
            everything = np.concatenate(left_out) if left_out else np.arange(0)
            if all(part is not None for part in self._left_out) and len(everything) == n and len(np.unique(everything)) == n:
                self._whole = tuple(sum(parts) for parts in zip(*self._left_out))

    def _products(self, rows) -> tuple:
        x, y = self.x[rows], self.y[rows]
        return x.T @ x, x.T @ y, x.sum(0), y.sum(0)

    def _whole_products(self) -> tuple:
        if self._whole is None:
            self._whole = self._products(slice(None))
        return self._whole

    def ridge_fold(self, k: int) -> RidgeTridiagonal:
        """The ridge solver fitted on fold k's training rows."""
        train = self.folds[k]
        if not self.primal:
            return self._ridge_dual(train)
        left_out = self._left_out_rows[k]
        if len(left_out) >= len(train):
            return self._ridge_primal(self._products(train), len(train))
        out = self._left_out[k] if self._left_out[k] is not None else self._products(left_out)
        return self._ridge_primal(tuple(w - o for w, o in zip(self._whole_products(), out)), len(train))

    def ridge_all(self, penalties=None) -> RidgeTridiagonal:
        """The ridge solver fitted on every row (``penalties``: the only ones it will be asked for, if known)."""
        if self.x.shape[1] > len(self.x):
            return self._ridge_dual(np.arange(len(self.x)), penalties)
        return self._ridge_primal(self._whole_products(), len(self.x), penalties)

    def _ridge_primal(self, products: tuple, n_train: int, penalties=None) -> RidgeTridiagonal:
        gram, xty, x_sum, y_sum = products
        x_mean, y_mean = x_sum / n_train, y_sum / n_train
        gram = gram - n_train * np.outer(x_mean, x_mean)
        xty = xty - n_train * np.outer(x_mean, y_mean)
        return RidgeTridiagonal(gram, xty, self.x_mean + x_mean, self.y_mean + y_mean, penalties=penalties)

    def _ridge_dual(self, train: np.ndarray, penalties=None) -> RidgeTridiagonal:
        if self._kernel is None:
            self._kernel = self.x @ self.x.T
        y_train = self.y[train]
        y_mean = y_train.mean(0)
        kernel = self._kernel[np.ix_(train, train)]
        row_means = kernel.mean(0)
        total_mean = row_means.mean()
        kernel += total_mean - row_means[:, None] - row_means[None, :]

        def cross_kernel(rows):
            """(x_rows - m)(x_train - m)' with m the training mean, from the kernel alone."""
            block = self._kernel[np.ix_(np.asarray(rows), train)]
            return block - block.mean(1, keepdims=True) - row_means[None, :] + total_mean

        def training_side():
            """The training features' mean and centred copy: only new rows' predictions need them (a copy of
            training rows x features per fold that the inner folds never use)."""
            x_train = self.x[train]
            x_mean = x_train.mean(0)
            return self.x_mean + x_mean, x_train - x_mean

        return RidgeTridiagonal(kernel, y_train - y_mean, None, self.y_mean + y_mean, x_train_centred=training_side,
                                penalties=penalties, cross_kernel=cross_kernel)


def ridge_cv(x: np.ndarray, y: np.ndarray, alphas, inner_folds, errors: bool = False):
    """Choose a penalty per target by inner CV (pooled squared error); return (alpha index per target, pooled
    inner predictions at the chosen penalties, the solver fitted on all of x, y), and with ``errors`` also each
    target's pooled inner squared error at its chosen penalty (numpy), the yardstick that compares this fit with
    another scaling of the same features on the same inner folds (``encoding.feature_scaling: auto``).

    numpy: each fold is one tridiagonal reduction of a Gram/kernel matrix cut from cross-products shared by all
    folds (:class:`FoldCrossProducts`); torch: one eigendecomposition per fold (:class:`RidgeSVD`). Same choices.
    """
    ops = ops_of(y)
    alphas = np.asarray(alphas, dtype=float)
    sse = ops.zeros((len(alphas), y.shape[1]))
    shared = FoldCrossProducts(x, y, inner_folds) if ops is NUMPY else None
    solvers = []
    for k, (train, test) in enumerate(inner_folds):
        if shared is not None:
            solver = shared.ridge_fold(k)
            fold_predictions = solver.predictions(x[test], [(alpha, slice(None)) for alpha in alphas], rows=test)
        else:
            train, test = ops.index(train), ops.index(test)
            solver = RidgeSVD(x[train], y[train])
            projected = solver.project(x[test])
            fold_predictions = (solver.predict(x[test], alpha, projected=projected) for alpha in alphas)
        solvers.append((solver, test))
        for a, predicted in enumerate(fold_predictions):
            sse[a] += ((predicted - y[test]) ** 2).sum(0)
    best = to_numpy(sse).argmin(0)
    pooled = ops.empty(y.shape, dtype=y.dtype)
    for solver, test in solvers:
        rows = {"rows": test} if shared is not None else {}
        pooled[test] = ops.asarray(solver.predict_per_target(x[test], alphas, best, **rows), y.dtype)
    final = shared.ridge_all(alphas[np.unique(best)]) if shared is not None else RidgeSVD(x, y)
    if errors:
        return best, pooled, final, to_numpy(sse)[best, np.arange(len(best))].astype(np.float64)
    return best, pooled, final


def ridge_loo(x: np.ndarray, y: np.ndarray, alphas, errors: bool = False):
    """Choose a penalty per target by exact leave-one-out CV from ONE decomposition (what sklearn's RidgeCV does
    with ``cv=None``); return (alpha index per target, leave-one-out predictions at the chosen penalties, and the
    fitted :class:`RidgeSVD` on all of x, y, whose decomposition the leave-one-out reused), and with ``errors``
    each target's leave-one-out squared error at its chosen penalty (as :func:`ridge_cv`).

    With an intercept, the hat matrix is 11'/n + U diag(s^2/(s^2+alpha)) U' (U, s of the centred features), and
    each sample's leave-one-out residual is its fitted residual / (1 - h_ii): no refits. Cheaper than K-fold CV
    plus a refit, and the same folds as sklearn, but only honest when samples are independent: with
    passages or stories, leaving one sentence out keeps its neighbours in training (grouped inner folds there).
    """
    ops = ops_of(y)
    alphas = np.asarray(alphas, dtype=float)
    # float64 from the start: with features > samples and small penalties, 1 - h_ii is tiny and amplifies rounding
    solver = RidgeSVD(ops.asarray(x, dtype=np.float64), y)
    s, uty = solver.s, solver.uty
    u = solver.project(ops.asarray(x, dtype=np.float64)) / s  # n x k left singular vectors of the centred features
    y64 = ops.asarray(y, dtype=np.float64)
    y_centred = y64 - y64.mean(0)
    u_squared = u**2
    best_sse, best = None, np.zeros(y.shape[1], dtype=int)
    loo = ops.empty(y.shape, dtype=np.float64)
    for a, alpha in enumerate(alphas):
        shrink = s**2 / (s**2 + alpha)
        leverage = 1.0 / len(x) + u_squared @ shrink
        residual = (y_centred - u @ (shrink[:, None] * uty)) / (1.0 - leverage)[:, None]
        sse = to_numpy((residual**2).sum(0))
        better = np.ones(len(sse), dtype=bool) if best_sse is None else sse < best_sse
        if better.any():
            best_sse = sse if best_sse is None else np.where(better, sse, best_sse)
            best[better] = a
            columns = ops.index(np.flatnonzero(better))
            loo[:, columns] = y64[:, columns] - residual[:, columns]
    if errors:
        return best, ops.asarray(loo, y.dtype), solver, np.asarray(best_sse, dtype=np.float64)
    return best, ops.asarray(loo, y.dtype), solver
