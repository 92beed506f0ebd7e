"""Ridge with one penalty for all neuroids, chosen by exact leave-one-out error on the training stimuli: the
regression of Brain-Score Language's ``ridge_pearsonr`` (its ``RidgeGCVTorch``, a port of sklearn's ``RidgeCV``
with the default generalised cross-validation, ``alpha_per_target=False``, ``fit_intercept=True``).

Why a separate routine from :mod:`brainalign.encoding.ridge`: the project's ridge picks a penalty per neuroid on
grouped inner folds; Brain-Score's picks one penalty for the whole response matrix by the mean squared
leave-one-out residual over every stimulus and neuroid (ties: the first penalty in the list), with an unpenalised
intercept and the features and responses as they are (no scaling). Reproducing its numbers needs that choice.

The leave-one-out residuals come in closed form from one decomposition of the centred training features
(``e_i / (1 - h_ii)`` with the hat matrix ``H = 11'/n + U diag(s^2 / (s^2 + alpha)) U'``): the eigenvectors of the
Gram matrix when features outnumber stimuli (sklearn's ``eigen`` mode), else the SVD (its ``svd`` mode). Checked
against sklearn's ``RidgeCV`` and against brute-force leave-one-out refits in tests/test_brainscore_protocols.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BRAINSCORE_ALPHAS = np.logspace(-3, 3, 7)  # Brain-Score's ridge_regression: RidgeGCVTorch(alphas=np.logspace(-3, 3, 7))


@dataclass(frozen=True)
class RidgeGCVFit:
    """A fitted ridge: ``alpha`` (the chosen penalty), ``coef`` (features x neuroids), ``intercept`` (neuroids),
    ``loo_predictions`` (each training stimulus predicted by the fit without it, at ``alpha``) and ``loo_errors``
    (the mean squared leave-one-out residual of each candidate penalty)."""

    alpha: float
    coef: np.ndarray
    intercept: np.ndarray
    loo_predictions: np.ndarray
    loo_errors: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.coef + self.intercept


def ridge_gcv(x: np.ndarray, y: np.ndarray, alphas=BRAINSCORE_ALPHAS) -> RidgeGCVFit:
    """Fit ridge on (stimuli x features) ``x`` and (stimuli x neuroids) ``y`` in float64, one penalty of ``alphas``
    for all neuroids, chosen by the smallest mean squared leave-one-out residual (the first on ties)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    n, p = x.shape
    x_mean, y_mean = x.mean(0), y.mean(0)
    xc, yc = x - x_mean, y - y_mean
    if p > n:  # the Gram matrix is the smaller decomposition
        eigenvalues, u = np.linalg.eigh(xc @ xc.T)
        squares = np.clip(eigenvalues, 0.0, None)
    else:
        u, singular, _ = np.linalg.svd(xc, full_matrices=False)
        squares = singular * singular
    uty = u.T @ yc
    u_squared = u * u
    best, errors, best_fit = None, [], None
    for alpha in np.atleast_1d(np.asarray(alphas, dtype=np.float64)):
        shrink = squares / (squares + alpha)
        fitted = u @ (shrink[:, None] * uty)
        leverage = 1.0 / n + u_squared @ shrink
        residual = (yc - fitted) / (1.0 - leverage)[:, None]
        error = float(np.mean(residual * residual))
        errors.append(error)
        if best is None or error < errors[best]:
            best, best_fit = len(errors) - 1, (float(alpha), residual)
    alpha, residual = best_fit
    dual = u @ (uty / (squares + alpha)[:, None])  # (X X' + alpha I)^-1 y on the centred data
    coef = xc.T @ dual
    intercept = y_mean - x_mean @ coef
    return RidgeGCVFit(alpha, coef, intercept, y - residual, np.asarray(errors))
