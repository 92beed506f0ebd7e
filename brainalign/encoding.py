"""Encoding models: how well a model layer's activations predict brain responses to the same stimuli.

Two protocols, both reported:
  * ``ridge-grouped`` (the project's default): ridge regression, the penalty chosen per neuroid by inner
    cross-validation on the training fold only, every penalty solved from one tridiagonal reduction per fold
    (numpy; one eigendecomposition per fold on torch); folds group whole
    passages/stories (or contiguous blocks of scans), so no context is shared between train and test;
    z-scoring uses training statistics only. Pearson r per neuroid on held-out data, median over neuroids,
    mean over folds.
  * ``brainscore-2023`` (the paper's, Brain-Score Language 2023): ordinary least squares with intercept
    (sklearn LinearRegression; the minimum-norm solution when features exceed stimuli), 10 ShuffleSplits 90/10
    with random_state=1 over stimuli (not grouped: context leaks), Pearson r per neuroid, median over neuroids
    per split, mean over splits. Computed from one SVD per split, it equals sklearn + scipy to 1e-6 (tested).
Each layer also stores, per outer fold, a training-only score (``inner_scores``) so the layer can be chosen
without looking at the test fold (the nested estimate), and a bootstrap CI over stimuli.

Back ends (``encoding.backend``): ``numpy`` (default) or ``torch`` (``encoding.device``: cpu, cuda, cuda:1, ...;
auto or unset = cuda if available). The same functions serve both: they take numpy arrays or torch tensors,
and the few operations that differ go through :func:`_ops_of` (torch is imported only for tensors). Both run the
decompositions in float64; scores agree to ~1e-7 from float32 inputs (the means differ in rounding) and ~1e-13
from float64 inputs.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import h5py
import numpy as np

from brainalign.errors import BrainalignError
from brainalign.io import write_json, write_table

log = logging.getLogger("brainalign.encoding")

DEFAULT_ALPHAS = tuple(10.0 ** np.arange(-2, 8))  # 10 penalties, z-scored features
PROTOCOLS = ("ridge-grouped", "brainscore-2023")
BACKENDS = ("numpy", "torch")


# ----------------------------------------------------------------------------------------------- back ends
class _NumpyOps:
    """The array operations whose spelling differs between numpy and torch; operators, ``.mean(0)``, ``.T``,
    ``.sum(0)`` and indexing by index arrays or masks are shared and used directly."""

    def asarray(self, a, dtype=None):
        return np.asarray(a, dtype=dtype)

    def index(self, i):
        return i

    def eigh(self, a):
        return np.linalg.eigh(a)

    def sqrt(self, a):
        return np.sqrt(a)

    def clip_negative(self, a):
        return np.clip(a, 0, None)

    def std(self, a):
        return a.std(0)

    def zeros(self, shape, dtype=np.float64):
        return np.zeros(shape, dtype=dtype)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype=dtype)


class _TorchOps(_NumpyOps):
    """The same operations on torch tensors living on ``device``."""

    def __init__(self, device):
        import torch

        self.torch = torch
        self.device = torch.device(device)

    def dtype(self, dtype):
        return dtype if isinstance(dtype, self.torch.dtype) else getattr(self.torch, np.dtype(dtype).name)

    def asarray(self, a, dtype=None):
        if isinstance(a, np.ndarray) and not a.flags.writeable:
            a = a.copy()  # torch warns on read-only buffers (h5py, memory maps)
        return self.torch.as_tensor(a, dtype=None if dtype is None else self.dtype(dtype), device=self.device)

    def index(self, i):
        return i if isinstance(i, slice) else self.torch.as_tensor(i, device=self.device)

    def eigh(self, a):
        return self.torch.linalg.eigh(a)

    def sqrt(self, a):
        return self.torch.sqrt(a)

    def clip_negative(self, a):
        return a.clamp(min=0)

    def std(self, a):
        return a.std(0, correction=0)

    def zeros(self, shape, dtype=np.float64):
        return self.torch.zeros(shape, dtype=self.dtype(dtype), device=self.device)

    def empty(self, shape, dtype):
        return self.torch.empty(shape, dtype=self.dtype(dtype), device=self.device)


_NUMPY = _NumpyOps()


def _ops_of(array):
    """The operations for this array's library (and, for a tensor, its device)."""
    return _NUMPY if isinstance(array, np.ndarray) or not type(array).__module__.startswith("torch") else _TorchOps(array.device)


def _to_numpy(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.detach().cpu().numpy()


def backend_ops(options: dict | None = None):
    """The operations of the back end an options dict asks for (``backend``, ``device``), checked."""
    options = options or {}
    backend = options.get("backend") or "numpy"
    if backend == "numpy":
        return _NUMPY
    if backend != "torch":
        raise BrainalignError(f"unknown encoding backend {backend!r} (expected one of {', '.join(BACKENDS)})")
    try:
        import torch
    except ImportError as error:
        raise BrainalignError(f"encoding backend 'torch' needs PyTorch, which is not importable ({error})") from None
    device = options.get("device") or "auto"
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise BrainalignError(f"encoding device {device!r} is not a torch device ({error})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BrainalignError(f"encoding device {str(device)!r}: CUDA is not available (use device: cpu or auto)")
    return _TorchOps(device)


# ----------------------------------------------------------------------------------------------- basics
def pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching columns of a and b (NaN where either column is constant)."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    denominator = _ops_of(a).sqrt((a * a).sum(0) * (b * b).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(0) / denominator
    r[denominator == 0] = np.nan
    return r


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-score with the training fold's mean and SD only (constant training columns are centred, not scaled)."""
    mean = train.mean(0)
    sd = _ops_of(train).std(train)
    sd[sd == 0] = 1.0
    return (train - mean) / sd, (test - mean) / sd


def spectrum(x_centred: np.ndarray, y_centred: np.ndarray, rtol: float = 1e-7):
    """Thin SVD pieces (s, Vt, U'Y) of centred features from one symmetric eigendecomposition.

    Features <= samples: eigh of X'X (p x p); features > samples: eigh of the kernel XX' (n x n). Either way one
    small decomposition replaces a full SVD of the n x p matrix (several times faster; same solutions).
    Singular values below ``rtol * s_max`` are dropped (numerically zero directions, as lstsq does; through the
    Gram matrix, singular values are resolved to about sqrt(eps) * s_max, hence the float64 and rtol=1e-7).
    """
    ops = _ops_of(x_centred)
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


# ----------------------------------------------------------------------------------------------- ridge
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
        return _ops_of(x_test).asarray(x_test - self.x_mean, self.vt.dtype) @ self.vt.T

    def predict(self, x_test: np.ndarray, alpha: float, columns=slice(None), projected=None) -> np.ndarray:
        projected = self.project(x_test) if projected is None else projected
        shrink = self.s / (self.s**2 + alpha)
        return (projected * shrink) @ self.uty[:, columns] + self.y_mean[columns]

    def predict_per_target(self, x_test: np.ndarray, alphas: np.ndarray, alpha_per_target: np.ndarray) -> np.ndarray:
        ops = _ops_of(self.uty)
        alpha_per_target = _to_numpy(alpha_per_target)
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

    CHOLESKY_MAX_PENALTIES = 2  # one Cholesky costs ~0.4 of the reduction (1024 x 1024, one BLAS thread)

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

    def __init__(self, m: np.ndarray, r: np.ndarray, x_mean: np.ndarray, y_mean: np.ndarray,
                 x_train_centred: np.ndarray | None = None, penalties=None):
        self.systems = ShiftedSystems(m, r, penalties)
        self.x_mean, self.y_mean = x_mean, y_mean
        self.x_train_centred = x_train_centred  # dual form only

    def _mapped(self, x_test: np.ndarray) -> np.ndarray:
        centred = np.asarray(x_test, dtype=np.float64) - self.x_mean
        return centred if self.x_train_centred is None else centred @ self.x_train_centred.T

    def predictions(self, x_test: np.ndarray, alpha_columns) -> list[np.ndarray]:
        """Predictions of x_test for each (alpha, columns) pair. Whichever is cheaper: take the test rows into
        T's basis once (many columns), or take all the penalties' coefficient vectors out of it at once (few)."""
        mapped = self._mapped(x_test)
        solutions = [self.systems.solve(alpha, columns) for alpha, columns in alpha_columns]
        y_means = [self.y_mean[columns] for _, columns in alpha_columns]
        widths = [z.shape[1] for z in solutions]
        if len(mapped) < sum(widths):
            projected = self.systems.apply_q(mapped.T, transpose=True).T
            return [projected @ z + y_mean for z, y_mean in zip(solutions, y_means)]
        coefficients = np.split(self.systems.apply_q(np.hstack(solutions)), np.cumsum(widths)[:-1], axis=1)
        return [mapped @ c + y_mean for c, y_mean in zip(coefficients, y_means)]

    def predict_per_target(self, x_test: np.ndarray, alphas: np.ndarray, alpha_per_target: np.ndarray) -> np.ndarray:
        alpha_per_target = np.asarray(alpha_per_target)
        groups = [(float(alphas[index]), np.flatnonzero(alpha_per_target == index)) for index in np.unique(alpha_per_target)]
        out = np.empty((len(x_test), len(self.y_mean)))
        for (_, columns), predicted in zip(groups, self.predictions(x_test, groups)):
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
        x_train, y_train = self.x[train], self.y[train]
        x_mean, y_mean = x_train.mean(0), y_train.mean(0)
        kernel = self._kernel[np.ix_(train, train)]
        row_means = kernel.mean(0)
        kernel += row_means.mean() - row_means[:, None] - row_means[None, :]
        return RidgeTridiagonal(kernel, y_train - y_mean, self.x_mean + x_mean, self.y_mean + y_mean,
                                x_train_centred=x_train - x_mean, penalties=penalties)


def ridge_cv(x: np.ndarray, y: np.ndarray, alphas, inner_folds):
    """Choose a penalty per target by inner CV (pooled squared error); return (alpha index per target, pooled
    inner predictions at the chosen penalties, the solver fitted on all of x, y).

    numpy: each fold is one tridiagonal reduction of a Gram/kernel matrix cut from cross-products shared by all
    folds (:class:`FoldCrossProducts`); torch: one eigendecomposition per fold (:class:`RidgeSVD`). Same choices.
    """
    ops = _ops_of(y)
    alphas = np.asarray(alphas, dtype=float)
    sse = ops.zeros((len(alphas), y.shape[1]))
    shared = FoldCrossProducts(x, y, inner_folds) if ops is _NUMPY else None
    solvers = []
    for k, (train, test) in enumerate(inner_folds):
        if shared is not None:
            solver = shared.ridge_fold(k)
            fold_predictions = solver.predictions(x[test], [(alpha, slice(None)) for alpha in alphas])
        else:
            train, test = ops.index(train), ops.index(test)
            solver = RidgeSVD(x[train], y[train])
            projected = solver.project(x[test])
            fold_predictions = (solver.predict(x[test], alpha, projected=projected) for alpha in alphas)
        solvers.append((solver, test))
        for a, predicted in enumerate(fold_predictions):
            sse[a] += ((predicted - y[test]) ** 2).sum(0)
    best = _to_numpy(sse).argmin(0)
    pooled = ops.empty(y.shape, dtype=y.dtype)
    for solver, test in solvers:
        pooled[test] = ops.asarray(solver.predict_per_target(x[test], alphas, best), y.dtype)
    final = shared.ridge_all(alphas[np.unique(best)]) if shared is not None else RidgeSVD(x, y)
    return best, pooled, final


def ridge_loo(x: np.ndarray, y: np.ndarray, alphas) -> tuple[np.ndarray, np.ndarray, RidgeSVD]:
    """Choose a penalty per target by exact leave-one-out CV from ONE decomposition (what sklearn's RidgeCV does
    with ``cv=None``); return (alpha index per target, leave-one-out predictions at the chosen penalties, and the
    fitted :class:`RidgeSVD` on all of x, y, whose decomposition the leave-one-out reused).

    With an intercept, the hat matrix is 11'/n + U diag(s^2/(s^2+alpha)) U' (U, s of the centred features), and
    each sample's leave-one-out residual is its fitted residual / (1 - h_ii): no refits. About five times cheaper
    than 5-fold CV plus a refit, and the same folds as sklearn, but only honest when samples are independent: with
    passages or stories, leaving one sentence out keeps its neighbours in training (grouped inner folds there).
    """
    ops = _ops_of(y)
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
        sse = _to_numpy((residual**2).sum(0))
        better = np.ones(len(sse), dtype=bool) if best_sse is None else sse < best_sse
        if better.any():
            best_sse = sse if best_sse is None else np.where(better, sse, best_sse)
            best[better] = a
            columns = ops.index(np.flatnonzero(better))
            loo[:, columns] = y64[:, columns] - residual[:, columns]
    return best, ops.asarray(loo, y.dtype), solver


def ols_fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """sklearn LinearRegression's prediction (intercept, minimum-norm least squares) from the centred SVD."""
    ops = _ops_of(x_train)
    x_train, y_train, x_test = (ops.asarray(a, dtype=np.float64) for a in (x_train, y_train, x_test))
    x_mean, y_mean = x_train.mean(0), y_train.mean(0)
    s, vt, uty = spectrum(x_train - x_mean, y_train - y_mean)
    projected = (x_test - x_mean) @ vt.T
    return (projected / s) @ uty + y_mean


# ----------------------------------------------------------------------------------------------- folds
def grouped_folds(groups: np.ndarray, n_folds: int, seed: int):
    """K folds of whole groups (passages/stories), group order shuffled with ``seed``.

    The same folds as sklearn's ``GroupKFold(n_splits, shuffle=True, random_state=seed)`` (tested), written out
    because importing sklearn costs more than a second in each of a run's hundreds of encoding jobs.
    """
    groups = np.asarray(groups)
    unique_groups = np.unique(groups)
    if len(unique_groups) < 2:
        raise BrainalignError(f"grouped cross-validation needs at least 2 groups, got {len(unique_groups)}")
    shuffled = np.random.RandomState(seed).permutation(unique_groups)
    folds = []
    for test_groups in np.array_split(shuffled, min(n_folds, len(unique_groups))):
        in_test = np.isin(groups, test_groups)
        folds.append((np.flatnonzero(~in_test), np.flatnonzero(in_test)))
    return folds


def block_folds(n: int, n_folds: int, gap: int):
    """Contiguous blocks of samples (scans) as test folds; ``gap`` samples either side are left out of training,
    because neighbouring scans share the slow haemodynamic response."""
    edges = np.linspace(0, n, n_folds + 1).astype(int)
    folds = []
    for start, stop in zip(edges[:-1], edges[1:]):
        test = np.arange(start, stop)
        train = np.setdiff1d(np.arange(n), np.arange(max(0, start - gap), min(n, stop + gap)))
        folds.append((train, test))
    return folds


def shuffle_splits(n: int, n_splits: int = 10, train_size: float = 0.9, seed: int = 1):
    """Brain-Score 2023's splits: the same as sklearn's ``ShuffleSplit(n_splits=10, train_size=0.9,
    random_state=1)`` (tested): floor(0.9 n) training stimuli, the rest held out, a fresh permutation per split."""
    import math

    n_train = math.floor(train_size * n)
    rng = np.random.RandomState(seed)
    splits = []
    for _ in range(n_splits):
        permutation = rng.permutation(n)
        splits.append((permutation[n - n_train:], permutation[:n - n_train]))
    return splits


# ----------------------------------------------------------------------------------------------- protocols
def _median(r) -> float:
    r = _to_numpy(r)  # torch's median of an even count is the lower middle value, not numpy's mean of the two
    return float(np.nanmedian(r)) if np.isfinite(r).any() else float("nan")


def _resampled_pearson(counts, a, b):
    """Pearson r between matching columns of a and b (centred) in every resample at once.

    Row i of ``counts`` (resamples x samples) counts how often each sample was drawn; the r of that resample is
    the count-weighted r, so five matrix products replace one copy and one correlation per resample. Columns
    constant within a resample (or throughout) get NaN."""
    ops = _ops_of(a)
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
        ops = _ops_of(actual)
        a, b = (ops.asarray(v, np.float64) for v in (predicted, actual))
        a, b = a - a.mean(0), b - b.mean(0)
        step = max(1, chunk_elements // a.shape[1])
        for start in range(0, n_bootstrap, step):
            r = _to_numpy(_resampled_pearson(ops.asarray(counts[k][start:start + step]), a, b))
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


def cross_validated_score(x: np.ndarray, y: np.ndarray, groups=None, protocol: str = "ridge-grouped",
                          options: dict | None = None, folds=None) -> dict:
    """Score one feature matrix against responses (samples x neuroids) under a protocol, on the back end that
    ``options["backend"]`` names (numpy or torch, ``options["device"]``)."""
    options = dict(options or {})
    seed = int(options.get("seed", 0))
    dtype = np.dtype(options.get("dtype", "float32"))
    ops = backend_ops(options)
    x = ops.asarray(x, dtype=dtype)
    y = ops.asarray(y, dtype=dtype)
    alphas = np.asarray(options.get("alphas") or DEFAULT_ALPHAS, dtype=float)
    n = len(x)
    groups = np.arange(n) if groups is None else np.asarray(groups)
    if protocol == "brainscore-2023":
        folds = shuffle_splits(n)
    elif folds is None:
        folds = grouped_folds(groups, int(options.get("n_folds", 5)), seed)
    fold_scores, inner_scores, pairs, neuroid_r = [], [], [], []
    for k, (train_index, test_index) in enumerate(folds):
        train, test = ops.index(train_index), ops.index(test_index)
        if protocol == "brainscore-2023":
            predicted = ols_fit_predict(x[train], y[train], x[test])
            actual = y[test]
            inner = grouped_folds(np.arange(len(train_index)), 3, seed + k)  # training-only score for nested layer choice
            x_train, y_train = x[train], y[train]
            pooled = ops.empty(y_train.shape, dtype=y.dtype)
            for inner_train, inner_test in inner:
                inner_train, inner_test = ops.index(inner_train), ops.index(inner_test)
                pooled[inner_test] = ops.asarray(ols_fit_predict(x_train[inner_train], y_train[inner_train], x_train[inner_test]), y.dtype)
            inner_scores.append(_median(pearson_columns(pooled, y_train)))
        elif protocol == "ridge-grouped":
            x_train, x_test = _standardise(x[train], x[test])
            y_train, actual = _standardise(y[train], y[test])
            if options.get("inner_cv") == "loo":
                best, pooled, solver = ridge_loo(x_train, y_train, alphas)
            else:
                inner = (grouped_folds(groups[train_index], int(options.get("inner_folds", 5)), seed + k)
                         if options.get("inner_blocks") is None else block_folds(len(train_index), int(options["inner_blocks"]), int(options.get("gap", 0))))
                best, pooled, solver = ridge_cv(x_train, y_train, alphas, inner)
            inner_scores.append(_median(pearson_columns(pooled, y_train)))
            predicted = solver.predict_per_target(x_test, alphas, best)
        else:
            raise BrainalignError(f"unknown encoding protocol {protocol!r} (expected one of {', '.join(PROTOCOLS)})")
        r = _to_numpy(pearson_columns(predicted, actual))
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


# ----------------------------------------------------------------------------------------------- data
def responses_matrix(dataset) -> tuple[np.ndarray, list[str], list[dict]]:
    """Responses as samples x (subject, neuroid) columns, NaN/constant columns dropped with a note."""
    r = dataset.responses
    y = np.transpose(r, (1, 0, 2)).reshape(r.shape[1], -1)
    names = [f"{s}.{n}" if len(dataset.subjects) > 1 else str(n) for s in dataset.subjects for n in dataset.neuroids]
    excluded = []
    keep = np.ones(y.shape[1], dtype=bool)
    for j in range(y.shape[1]):
        column = y[:, j]
        if not np.isfinite(column).all():
            keep[j], reason = False, "non-finite values"
        elif np.ptp(column) == 0:
            keep[j], reason = False, "constant"
        else:
            continue
        excluded.append({"neuroid": names[j], "reason": reason})
        log.warning("excluded neuroid %s: %s", names[j], reason)
    if not keep.any():
        raise BrainalignError(f"dataset {dataset.meta.get('name')}: no usable neuroid (all NaN or constant)")
    return y[:, keep], [n for n, k in zip(names, keep) if k], excluded


def layer_design(features: np.ndarray, dataset, options: dict) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """The feature matrix aligned to the response samples, the CV groups, and protocol overrides.

    Sentence data: rows already match. Time series: words -> scans (Lanczos by default) -> FIR delays, CV by
    runs or contiguous blocks with a gap, unless the dataset already paired each scan with its text and applied
    the haemodynamic lag (Blank 2014: ``lag_applied``)."""
    from brainalign.timeseries import make_delays, words_to_scans

    meta = dataset.meta
    if meta["kind"] != "timeseries":
        return features, dataset.stimuli["group"].astype(str).to_numpy(), {}
    scan_groups = np.asarray(dataset.sample_groups).astype(str) if dataset.sample_groups is not None else np.zeros(dataset.responses.shape[1], dtype=str)
    if meta.get("lag_applied") and len(features) == dataset.responses.shape[1]:
        scans, delays = features, [0]
    else:
        stimuli = dataset.stimuli
        scans = np.zeros((dataset.responses.shape[1], features.shape[1]), dtype=np.float64)
        for run in np.unique(scan_groups):
            in_run = scan_groups == run
            words = (stimuli["group"].astype(str) == run).to_numpy() if len(np.unique(scan_groups)) > 1 else np.ones(len(stimuli), bool)
            scans[in_run] = words_to_scans(features[words].astype(np.float64), stimuli.loc[words, "onset"].to_numpy(),
                                           stimuli.loc[words, "offset"].to_numpy(), dataset.sample_times[in_run],
                                           float(meta["tr"]), options.get("downsample", "lanczos"))
        delays = list(options.get("delays") or [1, 2, 3, 4])
    design = make_delays(scans, delays, scan_groups)
    overrides = {"delays": delays}
    if len(np.unique(scan_groups)) >= 2:
        return design, scan_groups, overrides
    overrides["blocks"] = int(options.get("n_folds", 5))
    return design, None, overrides


def fit_layer(features: np.ndarray, dataset, options: dict | None = None) -> dict:
    """Every protocol, RSA and CKA for one layer's features against a prepared dataset."""
    from brainalign.similarity import linear_cka, rsa

    options = dict(options or {})
    y, names, excluded = responses_matrix(dataset)
    x, groups, overrides = layer_design(np.asarray(features, dtype=np.float64), dataset, options)
    result = {"n_samples": int(len(x)), "n_features": int(x.shape[1]), "n_neuroids": len(names), "neuroids": names,
              "excluded_neuroids": excluded, "protocols": {}, "options": dict(sorted(options.items())),
              **{k: v for k, v in overrides.items() if k != "blocks"}}
    result["distinct_feature_rows"] = distinct = int(len(np.unique(x, axis=0)))
    if distinct < max(10, len(x) // 10):
        log.warning("only %d distinct feature rows among %d samples (e.g. a token-embedding layer read out at the same "
                    "final token of every stimulus): its scores rest on near-ties between penalties, read them as chance",
                    distinct, len(x))
    for protocol in options.get("protocols") or PROTOCOLS:
        folds, protocol_options = None, dict(options)
        if protocol == "ridge-grouped" and "blocks" in overrides:
            gap = int(options.get("gap", 5))
            folds = block_folds(len(x), overrides["blocks"], gap)
            protocol_options.update(inner_blocks=int(options.get("inner_folds", 5)), gap=gap)
        result["protocols"][protocol] = cross_validated_score(x, y, groups, protocol, protocol_options, folds=folds)
    if options.get("similarity", True):
        result["rsa"] = rsa(x, y)
        result["cka"] = linear_cka(x, y)
    return result


def read_layer(shard_path, layer: str) -> np.ndarray:
    with h5py.File(shard_path, "r") as handle:
        if layer not in handle["layers"]:
            raise BrainalignError(f"{shard_path}: no layer {layer!r} (layers: {', '.join(list(handle['layers'])[:5])}, ...)")
        return handle["layers"][layer][:]


def fit_layer_file(shard_path, layer: str, dataset_dir, out_path, options: dict | None = None) -> dict:
    """Step of rule fit_encoding: one layer of one shard against one prepared dataset -> JSON."""
    from brainalign.datasets.base import load_prepared

    dataset = load_prepared(dataset_dir)
    features = read_layer(shard_path, layer)
    with h5py.File(shard_path, "r") as handle:
        shard_ids = [s.decode() if isinstance(s, bytes) else str(s) for s in handle["stimulus_ids"][:]]
    if shard_ids != dataset.stimuli["stimulus_id"].astype(str).tolist():
        raise BrainalignError(f"{shard_path}: stimulus ids differ from {dataset_dir}/stimuli.tsv (re-extract the shard)")
    result = fit_layer(features, dataset, options)
    result["layer"] = layer
    write_json(result, out_path)
    scores = {p: round(v["score"], 4) for p, v in result["protocols"].items()}
    log.info("layer %s: %s", layer, scores)
    return result


# ----------------------------------------------------------------------------------------------- scores
def _row(model, dataset, metric, protocol, selection, layer, index, depth, raw, ceiling, ci=(np.nan, np.nan), n=np.nan):
    normalised = raw / ceiling if ceiling and np.isfinite(ceiling) and ceiling > 0 else np.nan
    return {"model": model, "dataset": dataset, "kind": "brain", "metric": metric, "protocol": protocol,
            "selection": selection, "layer": layer, "layer_index": index, "layer_depth": depth, "raw_r": raw,
            "ceiling": ceiling if ceiling else np.nan, "normalised": normalised, "ci_low": ci[0], "ci_high": ci[1], "n": n}


def score_layers_file(layer_json_paths: list, ceiling_path, out_csv, model: str, dataset: str, layer_names: list,
                      options: dict | None = None):
    """Step of rule score: the layer profile, the best layer and the nested (training-chosen) layer, as tidy rows."""
    import pandas as pd

    by_layer = {}
    for path in layer_json_paths:
        result = json.loads(Path(path).read_text())
        by_layer[result["layer"]] = result
    missing = [name for name in layer_names if name not in by_layer]
    if missing:
        raise BrainalignError(f"score {model}/{dataset}: no encoding result for layers {missing[:3]}")
    ceiling_info = json.loads(Path(ceiling_path).read_text())
    ceiling = ceiling_info.get("ceiling")
    ceiling = float(ceiling) if ceiling is not None else np.nan
    depth = {name: (i / (len(layer_names) - 1) if len(layer_names) > 1 else 0.0) for i, name in enumerate(layer_names)}
    index = {name: i for i, name in enumerate(layer_names)}
    rows = []
    protocols = list(by_layer[layer_names[0]]["protocols"])
    for protocol in protocols:
        scores = []
        for name in layer_names:
            p = by_layer[name]["protocols"][protocol]
            scores.append(p["score"])
            rows.append(_row(model, dataset, "linear", protocol, "layer", name, index[name], depth[name], p["score"], ceiling,
                             (p["ci_low"], p["ci_high"]), p["n"]))
        best = layer_names[int(np.nanargmax(scores))]
        p = by_layer[best]["protocols"][protocol]
        rows.append(_row(model, dataset, "linear", protocol, "best", best, index[best], depth[best], p["score"], ceiling,
                         (p["ci_low"], p["ci_high"]), p["n"]))
        # nested: in each outer fold pick the layer with the best training-only score, take its test score
        n_folds = len(p["fold_scores"])
        chosen, test_scores = [], []
        for k in range(n_folds):
            inner = [by_layer[name]["protocols"][protocol]["inner_scores"][k] for name in layer_names]
            pick = layer_names[int(np.nanargmax(inner))]
            chosen.append(pick)
            test_scores.append(by_layer[pick]["protocols"][protocol]["fold_scores"][k])
        mode = max(set(chosen), key=lambda name: (chosen.count(name), -index[name]))
        rows.append(_row(model, dataset, "linear", protocol, "nested", mode, index[mode], depth[mode],
                         float(np.nanmean(test_scores)), ceiling, n=p["n"]))
    for metric in ("rsa", "cka"):
        if metric not in by_layer[layer_names[0]]:
            continue
        values = [by_layer[name][metric] for name in layer_names]
        for name, value in zip(layer_names, values):
            rows.append(_row(model, dataset, metric, "", "layer", name, index[name], depth[name], value, np.nan,
                             n=by_layer[name]["n_samples"]))
        best = layer_names[int(np.nanargmax(values))]
        rows.append(_row(model, dataset, metric, "", "best", best, index[best], depth[best], by_layer[best][metric], np.nan,
                         n=by_layer[best]["n_samples"]))
    table = pd.DataFrame(rows)
    write_table(table, out_csv)
    return table
