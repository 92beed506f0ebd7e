"""Feature scalings for the ridge protocols, fitted on the training rows of a fold only and applied to its test
rows: ``zscore`` (every feature to unit variance) and ``center`` (centred, one common scale that keeps the
features' relative variances). ``encoding.feature_scaling: auto`` chooses between them per neuroid
(``protocols.ridge_grouped``).
"""

from __future__ import annotations

import numpy as np

from brainalign.encoding.backend import ops_of, to_numpy
from brainalign.errors import BrainalignError

FEATURE_SCALINGS = ("zscore", "center")  # what encoding.feature_scaling may fix; ``auto`` chooses between them


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-score with the training fold's mean and SD only (constant training columns are centred, not scaled)."""
    mean = train.mean(0)
    sd = ops_of(train).std(train)
    sd[sd == 0] = 1.0
    return (train - mean) / sd, (test - mean) / sd


def _centre(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre with the training fold's mean, then divide every feature by ONE number, the root mean feature variance
    of the training rows. The relative variances (a language model's anisotropy: a few directions carrying most of
    the variance) are kept, so ridge's prior favours the high-variance directions; the common scale makes the mean
    feature variance 1, as after z-scoring, so the same penalty grid means the same amount of shrinkage."""
    mean = train.mean(0)
    variance = to_numpy(ops_of(train).std(train)).astype(np.float64) ** 2
    scale = float(np.sqrt(variance.mean())) if variance.size else 0.0
    scale = scale if scale > 0 else 1.0
    return (train - mean) / scale, (test - mean) / scale


def scale_features(train: np.ndarray, test: np.ndarray, scaling: str) -> tuple[np.ndarray, np.ndarray]:
    """Training and test features scaled by statistics of the training rows only: ``zscore`` (every feature to unit
    variance) or ``center`` (:func:`_centre`: centred, one common scale)."""
    if scaling == "zscore":
        return _standardise(train, test)
    if scaling == "center":
        return _centre(train, test)
    raise BrainalignError(f"encoding.feature_scaling: unknown scaling {scaling!r} (expected one of "
                          f"{', '.join(FEATURE_SCALINGS)} or auto)")

