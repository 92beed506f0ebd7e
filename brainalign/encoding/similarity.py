"""Representational similarity analysis and linear CKA: the two alignment measures beside linear predictivity
that the paper's v2 (Table 8) reports. Both compare the geometry of model and brain responses over the same
stimuli without fitting a mapping, so they complement the encoding score."""

from __future__ import annotations

import hashlib

import numpy as np


def rankdata(values: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share their mean rank), as scipy.stats.rankdata, without importing
    scipy.stats (over a second per process, paid by every per-layer job). Without ties (the dissimilarities of
    real features) one unstable argsort gives them, with no pass to find the ties."""
    values = np.asarray(values).ravel()
    order = np.argsort(values)
    ordered = values[order]
    if not (ordered[1:] == ordered[:-1]).any():
        ranks = np.empty(len(values))
        ranks[order] = np.arange(1, len(values) + 1)
        return ranks
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]


_UPPER_TRIANGLES: dict = {}  # n -> the indices of the upper triangle of an n x n matrix (every layer of a job: same n)


def _upper_triangle(n: int) -> tuple:
    if n not in _UPPER_TRIANGLES:
        _UPPER_TRIANGLES.clear()
        _UPPER_TRIANGLES[n] = np.triu_indices(n, k=1)
    return _UPPER_TRIANGLES[n]


def rdm(responses: np.ndarray) -> np.ndarray:
    """Condensed representational dissimilarity matrix: 1 - Pearson r between stimuli (rows); for a single
    feature, the absolute difference (correlation distance is undefined in one dimension)."""
    responses = np.asarray(responses, dtype=np.float64)
    iu = _upper_triangle(len(responses))
    if responses.shape[1] == 1:
        values = responses[:, 0]
        return np.abs(values[:, None] - values[None, :])[iu]
    centred = responses - responses.mean(1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1)
    norms[norms == 0] = 1.0
    unit = centred / norms[:, None]
    return (1.0 - unit @ unit.T)[iu]


_RANKED_BRAIN_RDM: dict = {}  # one entry: the ranks of the last brain RDM (the same for every layer of a job)


def ranked_rdm(responses: np.ndarray, cache: bool = False) -> np.ndarray:
    """Average ranks of a condensed RDM. With ``cache``, the ranks of the responses last seen are reused: an
    encoding job scores every layer of a model against the same brain responses, and ranking their 2 million
    dissimilarities (2,000 stimuli) cost more than the layer's own."""
    if not cache:
        return rankdata(rdm(responses))
    responses = np.ascontiguousarray(responses)
    key = (responses.shape, responses.dtype.str, hashlib.blake2b(responses.tobytes(), digest_size=16).hexdigest())
    if key not in _RANKED_BRAIN_RDM:
        _RANKED_BRAIN_RDM.clear()
        _RANKED_BRAIN_RDM[key] = rankdata(rdm(responses))
    return _RANKED_BRAIN_RDM[key]


def rsa(model_features: np.ndarray, brain: np.ndarray) -> float:
    """Spearman correlation between the model's and the brain's RDMs (upper triangles)."""
    a, b = rankdata(rdm(model_features)), ranked_rdm(brain, cache=True)
    return float(np.corrcoef(a, b)[0, 1])


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019): ||Yc'Xc||_F^2 / (||Xc'Xc||_F ||Yc'Yc||_F).
    Invariant to orthogonal transforms and isotropic scaling of either side; 1 for identical geometry."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = x - x.mean(0)
    y = y - y.mean(0)
    # Gram-matrix form costs n^2 (d_x + d_y), cheaper than the feature form when features exceed samples
    if x.shape[1] > x.shape[0] or y.shape[1] > y.shape[0]:
        kx, ky = x @ x.T, y @ y.T
        return float((kx * ky).sum() / (np.linalg.norm(kx) * np.linalg.norm(ky)))
    cross = np.linalg.norm(y.T @ x) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))
