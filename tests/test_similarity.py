"""RSA and linear CKA against direct formulas and their invariances."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from brainalign.encoding.similarity import linear_cka, rdm, rsa


def test_rdm_is_correlation_distance():
    x = np.random.default_rng(0).standard_normal((12, 5))
    np.testing.assert_allclose(rdm(x), pdist(x, metric="correlation"), atol=1e-12)


def test_rsa_equals_spearman_of_rdms():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((15, 6)), rng.standard_normal((15, 4))
    expected = spearmanr(pdist(x, "correlation"), pdist(y, "correlation")).statistic
    assert abs(rsa(x, y) - expected) < 1e-12


def test_cka_invariances_and_identity():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 8))
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    assert abs(linear_cka(x, x) - 1) < 1e-12
    assert abs(linear_cka(x, 3.0 * x @ q) - 1) < 1e-12
    y = rng.standard_normal((40, 3))
    assert 0 <= linear_cka(x, y) < 0.5
    # kernel form (features > samples) equals the feature form
    wide = rng.standard_normal((10, 30))
    centred_w, centred_y = wide - wide.mean(0), y[:10] - y[:10].mean(0)
    feature_form = np.linalg.norm(centred_y.T @ centred_w) ** 2 / (
        np.linalg.norm(centred_w.T @ centred_w) * np.linalg.norm(centred_y.T @ centred_y))
    assert abs(linear_cka(wide, y[:10]) - feature_form) < 1e-10


def test_rankdata_matches_scipy_with_ties():
    from scipy.stats import rankdata as scipy_rankdata

    from brainalign.encoding.similarity import rankdata

    values = np.random.default_rng(3).integers(0, 7, size=200).astype(float)
    np.testing.assert_array_equal(rankdata(values), scipy_rankdata(values))
    distinct = np.random.default_rng(4).standard_normal(5000)  # no ties: the one-argsort path
    np.testing.assert_array_equal(rankdata(distinct), scipy_rankdata(distinct))
    one_tie = np.append(distinct, distinct[17])
    np.testing.assert_array_equal(rankdata(one_tie), scipy_rankdata(one_tie))


def test_rsa_reuses_the_brain_ranks_only_for_the_same_responses():
    from brainalign.encoding import similarity

    rng = np.random.default_rng(11)
    brain, other = rng.standard_normal((30, 4)), rng.standard_normal((30, 4))
    features = rng.standard_normal((30, 6))
    first = similarity.rsa(features, brain)
    assert first == similarity.rsa(features, brain.copy())  # same content, another array: cached ranks, same value
    uncached = float(np.corrcoef(similarity.rankdata(similarity.rdm(features)), similarity.rankdata(similarity.rdm(other)))[0, 1])
    assert similarity.rsa(features, other) == uncached  # other responses: not the cached ranks
    assert similarity.rsa(features, brain) == first
