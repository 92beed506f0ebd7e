"""Exact leave-one-out ridge for many penalties and many targets, for one scaling of the features or several at
once (``encoding.feature_scaling: auto``), with the targets processed in chunks so memory stays bounded.

One eigendecomposition per scaling: of the centred kernel XX' (n x n) when features exceed training samples, else
of the Gram matrix X'X; U (n x k) are the left singular vectors, s their singular values. With an intercept the
hat matrix is 11'/n + U diag(d) U', d = s^2 / (s^2 + alpha), and a sample's leave-one-out residual is its fitted
residual / (1 - h_ii), so no refits (what sklearn's RidgeCV does with ``cv=None``).

Why the sweep over penalties is cheap: when U and the ones vector span all n samples (the usual kernel case: n - 1
directions kept), a target's centred responses are U q (q = U'y), its fitted residual is U diag(g) q with
g = alpha / (s^2 + alpha), and its leave-one-out residuals are P q with P = diag(1 / (1 - h)) U diag(g). Their
squared norm is ||R q||^2 with R the k x k triangular factor of P (a QR of an n x k matrix per penalty, which
every target shares): a triangular product (k^2 multiply-adds per target) instead of forming the n residuals
(2 n k), about half the arithmetic. The residuals themselves are formed only at each target's chosen penalty,
and with several scalings only for the scaling each target keeps. Otherwise (fewer features than samples: U
spans fewer directions) each penalty's residuals are formed as before.

The residuals never subtract two nearly equal numbers: with features > samples and a penalty far below the
kernel's eigenvalues, 1 - h_ii and the fitted residuals are ~alpha / s^2 of the responses, and forming them as
y - fit (as :func:`brainalign.encoding.ridge.ridge_loo` does) loses that many digits (measured: 0.3% of the
leave-one-out error at alpha = 0.01 on 345 z-scored stimuli x 4,096 features, enough to flip a near-tie between
two tiny penalties on ~0.1% of targets); here they match leave-one-out by explicit refits to 1e-9. Otherwise the
same penalties, residuals and predictions as ``ridge_loo`` (tested, and against sklearn's RidgeCV).

Why the sweep runs in float32 (:func:`loo_scalings`, complete case): it only ranks penalties and scalings, and the
triangular products over every target and penalty are most of the work, twice as fast in single precision. The
factor R comes from the float64 QR and is rounded once; the errors keep ~1e-6 relative precision (k-term sums of
once-rounded numbers; :data:`SWEEP_RTOL` is the margin allowed), so where a target's best error has a rival
within twice that (another penalty, or the other scaling's best), its errors are recomputed in float64 from the
cached float64 factors (mostly targets whose errors flatten out over the largest penalties): every choice is then
the float64 sweep's, and the same on every back end. The chosen fit is then formed in float64 from the responses
(its residuals, predictions and squared error): exact at the chosen penalty, as a float64 sweep would give it.
"""

from __future__ import annotations

import numpy as np

from brainalign.encoding.backend import NUMPY, ops_of, to_numpy
from brainalign.errors import BrainalignError

#: a chunk of targets holds at most this many bytes per (k x targets) float64 block; several such blocks (the
#: responses in the eigenbasis of each scaling, one penalty's product) live at once
TARGET_CHUNK_BYTES = 64 * 2**20
RTOL = 1e-7  # as ridge.spectrum: singular values below rtol * s_max are numerically zero directions
#: dtype of the penalty sweep when U and the ones vector span the samples (the ranking only; fits are float64)
SWEEP_DTYPE = np.float32
#: relative error allowed for a float32 sweep's leave-one-out squared errors (k-term sums of once-rounded numbers,
#: ~1e-6 at k ~ 350): candidates within twice this of a target's best are re-ranked in float64
SWEEP_RTOL = 1e-5


def target_chunks(n_targets: int, k: int, chunk_bytes: int | None = None) -> list[slice]:
    """Column slices of at most ``chunk_bytes`` (default :data:`TARGET_CHUNK_BYTES`) per k x chunk float64 block."""
    width = max(1, int((chunk_bytes or TARGET_CHUNK_BYTES) // (8 * max(k, 1))))
    return [slice(start, min(start + width, n_targets)) for start in range(0, n_targets, width)]


class LooSpectrum:
    """One scaling's decomposition of the centred training features, and what the leave-one-out sweep and the
    predictions at any penalty need from it (numpy arrays or torch tensors, float64)."""

    def __init__(self, x_train: np.ndarray, x_test: np.ndarray | None = None):
        ops = ops_of(x_train)
        self.ops = ops
        x_train = ops.asarray(x_train, dtype=np.float64)
        self.x_mean = x_train.mean(0)
        x = x_train - self.x_mean
        n, p = x.shape
        self.n = n
        if p <= n:
            evals, v = ops.eigh(x.T @ x)
            s = ops.sqrt(ops.clip_negative(evals))
            keep = s > RTOL * s.max()
            s, v = s[keep], v[:, keep]
            self.u = (x @ v) / s
            self._test_map = lambda centred: centred @ v
        else:
            evals, u = ops.eigh(x @ x.T)
            s = ops.sqrt(ops.clip_negative(evals))
            keep = s > RTOL * s.max()
            if bool(keep.all()):
                # centring makes the kernel singular along the ones vector; rounding can leave that direction just
                # above the cutoff (its penalised weight and its share of centred responses are ~0 either way):
                # drop it (eigh sorts ascending), so U and the ones vector span the samples
                keep[0] = False
            s, self.u = s[keep], u[:, keep]
            u_scaled = self.u / s
            self._test_map = lambda centred: (centred @ x.T) @ u_scaled
        self.s = s
        self.s2 = s**2
        self.k = int(self.u.shape[1])
        self.u2 = self.u**2
        # 1 - 1/n - sum_k U_ik^2: zero when U and the ones vector span the samples, else the unexplained part of
        # each sample's leverage; with it 1 - h_ii = offset + U^2 g keeps its precision at tiny penalties
        self.offset = 1.0 - 1.0 / n - self.u2.sum(1)
        self.complete = self.k == n - 1
        self._u_sweep = None
        self._factors = {}  # penalty -> R (float64), kept for the float64 re-check of near-ties
        self.test_projection = None if x_test is None else self.project(x_test)

    def project(self, x_test) -> np.ndarray:
        """Test rows in the basis where a prediction at penalty alpha is projection diag(s / (s^2 + alpha)) q."""
        centred = self.ops.asarray(x_test, dtype=np.float64) - self.x_mean
        return self._test_map(centred)

    def coefficients(self, y_rows) -> np.ndarray:
        """q' = Y'U (targets x k) of centred responses given target by target (``y_rows``: targets x samples).

        The sweep works target-major (one row per target) so that choosing targets is a copy of whole rows."""
        return y_rows @ self.u

    def sweep_coefficients(self, y_rows_sweep):
        """q' in the sweep's precision (:data:`SWEEP_DTYPE`) from responses already in it: only when complete."""
        if self._u_sweep is None:
            self._u_sweep = self.ops.asarray(self.u, SWEEP_DTYPE)
        return y_rows_sweep @ self._u_sweep

    def _weights(self, alpha: float):
        """(g, 1 / (1 - h)) at penalty alpha."""
        g = alpha / (self.s2 + alpha)
        return g, 1.0 / (self.offset + self.u2 @ g)

    def sweep(self, q_rows, y_rows, alphas) -> np.ndarray:
        """Leave-one-out squared error of every target at every penalty (alphas x targets) in the precision of
        ``q_rows`` (float64, or float32 when complete: the float64 factor rounded once, the products in float32)."""
        ops = self.ops
        sse = ops.empty((len(alphas), q_rows.shape[0]), dtype=q_rows.dtype if self.complete else np.float64)
        for a, alpha in enumerate(alphas):
            g, inverse = self._weights(float(alpha))
            if self.complete:
                factor = self._factors.get(float(alpha))
                if factor is None:
                    factor = self._factors[float(alpha)] = _triangular_factor(ops, (self.u * g) * inverse[:, None])
                sse[a] = _squared_row_norms_triangular(ops, ops.asarray(factor, q_rows.dtype), q_rows)
            else:
                residual = self.residuals(q_rows, y_rows, alpha)
                sse[a] = (residual * residual).sum(1)
        return sse

    def residuals(self, q_rows, y_rows, alpha: float) -> np.ndarray:
        """Leave-one-out residuals (targets x samples) at one penalty."""
        g, inverse = self._weights(float(alpha))
        if self.complete:
            return q_rows @ ((self.u * g) * inverse[:, None]).T
        return (y_rows - (q_rows * (1.0 - g)) @ self.u.T) * inverse

    def residual_map(self, alpha: float):
        """M (n x n) with leave-one-out residuals y_rows @ M' of centred responses at one penalty: diag(1 / (1 - h))
        U diag(g) U' when U and the ones vector span the samples (no difference of nearly equal numbers), else
        diag(1 / (1 - h)) (I - U diag(1 - g) U'). Applied to the responses directly, a block of targets at one
        penalty costs one n x n product instead of forming q' (n x k) and then U diag(g) q (k x n)."""
        g, inverse = self._weights(float(alpha))
        if self.complete:
            return ((self.u * g) @ self.u.T) * inverse[:, None]
        eye = self.ops.asarray(np.eye(self.n), np.float64)
        return (eye - (self.u * (1.0 - g)) @ self.u.T) * inverse[:, None]

    def test_map(self, alpha: float):
        """T (test rows x n) with centred test predictions y_rows @ T' at one penalty."""
        return (self.test_projection * (self.s / (self.s2 + float(alpha)))) @ self.u.T


def _triangular_factor(ops, p):
    """R of p = QR (k x k upper triangular)."""
    if ops is NUMPY:
        return np.linalg.qr(p, mode="r")
    return ops.torch.linalg.qr(p, mode="r")[1]


def _squared_row_norms_triangular(ops, r, q_rows):
    """||R q_j||^2 for every row q_j of ``q_rows``, R upper triangular: a triangular product (BLAS dtrmm) on numpy."""
    if ops is NUMPY:
        from scipy.linalg.blas import dtrmm, strmm

        # R q' with q' the Fortran-ordered view of the target-major rows: no transposed copy
        product = (strmm if q_rows.dtype == np.float32 else dtrmm)(1.0, r, q_rows.T, overwrite_b=0)
        return np.einsum("ij,ij->j", product, product)
    product = ops.torch.triu(r) @ q_rows.T
    product *= product
    return product.sum(0)


def loo_scalings(designs, y_train, alphas, choice: str = "target", chunk_bytes: int | None = None):
    """Exact leave-one-out ridge of ``y_train`` on each of several scalings of the same samples (``designs``: a list
    of (x_train, x_test) pairs, each already scaled), a penalty per target and scaling, and per target (``choice:
    target``) or for all targets at once (``layer``: summed errors) the scaling with the smaller leave-one-out
    squared error (ties: the first). Returns (leave-one-out predictions of the training rows, test predictions,
    each target's chosen design index, each target's chosen penalty index, its leave-one-out squared error),
    the first two in float64 on the inputs' back end, the rest numpy.

    The choices come from the sweep of :class:`LooSpectrum`, in :data:`SWEEP_DTYPE` where U spans the samples, near-ties
    re-ranked in float64 (the module docstring: the float64 sweep's choices); the chosen fit's
    residuals, squared error and test predictions are then formed in float64, only for the chosen
    design and penalty, from the responses. Targets go in chunks of ``chunk_bytes`` (:func:`target_chunks`)."""
    if choice not in ("target", "layer"):
        raise BrainalignError(f"encoding.feature_scaling_choice: unknown value {choice!r} (expected target or layer)")
    alphas = np.asarray(alphas, dtype=float)
    ops = ops_of(y_train)
    y_train = ops.asarray(y_train)
    y_mean = y_train.mean(0, dtype=ops.dtype(np.float64)) if ops is not NUMPY else y_train.mean(0, dtype=np.float64)
    spectra = [LooSpectrum(x_train, x_test) for x_train, x_test in designs]
    n, n_targets = y_train.shape
    n_test = int(spectra[0].test_projection.shape[0])
    chunks = target_chunks(n_targets, max(s.k for s in spectra), chunk_bytes)
    best = np.zeros((len(spectra), n_targets), dtype=int)
    sse = np.zeros((len(spectra), n_targets), dtype=np.float64)
    pooled = ops.empty((n_targets, n), dtype=np.float64)
    predicted = ops.empty((n_targets, n_test), dtype=np.float64)
    chosen = np.zeros(n_targets, dtype=int)
    two_passes = choice == "layer" and len(spectra) > 1

    def centred(columns):
        """The chunk's centred responses, target-major and contiguous (row gathers are then plain copies)."""
        rows = ops.asarray(y_train[:, columns], dtype=np.float64).T
        rows = np.ascontiguousarray(rows) if ops is NUMPY else rows.contiguous()
        return rows - y_mean[columns, None]

    for columns in chunks:
        y_chunk = centred(columns)
        y_sweep = ops.asarray(y_chunk, SWEEP_DTYPE) if any(s.complete for s in spectra) else None
        errors = []
        for spectrum in spectra:
            q = spectrum.sweep_coefficients(y_sweep) if spectrum.complete else spectrum.coefficients(y_chunk)
            errors.append(to_numpy(spectrum.sweep(q, y_chunk, alphas)).astype(np.float64))
        del y_sweep
        _recheck_near_ties(spectra, errors, y_chunk, alphas, choice, ops)
        for d, error in enumerate(errors):
            best[d, columns] = error.argmin(0)
            sse[d, columns] = error[best[d, columns], np.arange(error.shape[1])]
        if not two_passes:
            chosen[columns] = sse[:, columns].argmin(0)
            _fill(spectra, y_chunk, y_mean[columns], alphas, best[:, columns], chosen[columns], pooled, predicted,
                  sse[:, columns], columns, ops)
    if two_passes:
        chosen[:] = int(sse.sum(1).argmin())
        for columns in chunks:
            y_chunk = centred(columns)
            _fill(spectra, y_chunk, y_mean[columns], alphas, best[:, columns], chosen[columns], pooled, predicted,
                  sse[:, columns], columns, ops)
    picked = np.arange(n_targets)
    pooled, predicted = (np.ascontiguousarray(a.T) if ops is NUMPY else a.T.contiguous() for a in (pooled, predicted))
    return pooled, predicted, chosen, best[chosen, picked], sse[chosen, picked]


def _near_ties(errors, choice: str) -> np.ndarray:
    """Targets whose best leave-one-out error has a rival within 2 x :data:`SWEEP_RTOL`: another penalty of the same
    scaling, or (``choice: target``) the other scaling's best; the float32 sweep cannot rank those."""
    band = 1.0 + 2.0 * SWEEP_RTOL
    ties = np.zeros(errors[0].shape[1], dtype=bool)
    rivals = [error for error in errors if len(error) > 1]
    if choice == "target" and len(errors) > 1:
        rivals.append(np.stack([error.min(0) for error in errors]))
    for error in rivals:
        two = np.partition(error, 1, axis=0)[:2]
        ties |= two[1] <= two[0] * band
    return np.flatnonzero(ties)


def _recheck_near_ties(spectra, errors, y_chunk, alphas, choice, ops):
    """Replace the float32 sweep's errors of near-tied targets (:func:`_near_ties`) with float64 ones, in place: their
    choices are then the float64 sweep's, on every back end (their float32 products round differently)."""
    if np.dtype(SWEEP_DTYPE) == np.float64 or not any(spectrum.complete for spectrum in spectra):
        return
    ties = _near_ties(errors, choice)
    if not len(ties):
        return
    rows = y_chunk[ops.index(ties)]
    for spectrum, error in zip(spectra, errors):
        if spectrum.complete:
            error[:, ties] = to_numpy(spectrum.sweep(spectrum.coefficients(rows), rows, alphas))


def _fill(spectra, y_chunk, y_mean, alphas, best, chosen, pooled, predicted, sse, columns, ops):
    """One chunk's leave-one-out and test predictions (target-major) at each target's chosen design and penalty,
    in float64 from the responses (:meth:`LooSpectrum.residual_map`, :meth:`LooSpectrum.test_map`), and their exact
    leave-one-out squared errors (written into ``sse``, the chunk's view): the targets are gathered once in (design,
    penalty) order, so every penalty's product runs on a contiguous block whose rows are then written to their
    targets."""
    offset = columns.start
    for d, spectrum in enumerate(spectra):
        mine = np.flatnonzero(chosen == d)
        if not len(mine):
            continue
        order = mine[np.argsort(best[d, mine], kind="stable")]
        penalties = best[d, order]
        y_part = y_chunk[ops.index(order)]
        means = y_mean[ops.index(order)][:, None]
        bounds = np.flatnonzero(np.diff(penalties)) + 1
        for start, stop in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(order)]])):
            block = slice(int(start), int(stop))
            alpha = alphas[penalties[start]]
            target = ops.index(order[block] + offset)
            residual = y_part[block] @ spectrum.residual_map(alpha).T
            sse[d, order[block]] = to_numpy((residual * residual).sum(1))
            fitted = y_part[block] - residual
            fitted += means[block]
            pooled[target] = fitted
            tested = y_part[block] @ spectrum.test_map(alpha).T
            tested += means[block]
            predicted[target] = tested
