"""The torch back end of the encoding module against the numpy one, planted ground truth, and its errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from brainalign.correlation import pearson_columns
from brainalign.encoding.bootstrap import _bootstrap
from brainalign.encoding.ols import ols_fit_predict
from brainalign.encoding.protocols.scoring import cross_validated_score
from brainalign.encoding.ridge import RidgeSVD, ridge_cv
from brainalign.errors import BrainalignError

torch = pytest.importorskip("torch")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
RESULT_KEYS = ("score", "fold_scores", "inner_scores", "ci_low", "ci_high", "neuroid_r")


def _data(n, p, targets, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p))
    y = x[:, :5] @ rng.standard_normal((5, targets)) + 2 * rng.standard_normal((n, targets))
    return x, y, np.arange(n) // 4


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("protocol, inner_cv", [("ridge-grouped", "grouped"), ("ridge-grouped", "loo"), ("brainscore-2023", None)])
@pytest.mark.parametrize("n, p", [(120, 40), (96, 250)])  # features below and above samples: both spectra
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_equals_numpy(protocol, inner_cv, n, p, dtype, device):
    x, y, groups = _data(n, p, 30, seed=n + p)
    options = {"n_bootstrap": 20, "dtype": dtype, "seed": 3, "inner_cv": inner_cv}
    ours = cross_validated_score(x, y, groups, protocol, options)
    theirs = cross_validated_score(x, y, groups, protocol, {**options, "backend": "torch", "device": device})
    tolerance = 1e-5 if dtype == "float32" else 1e-10
    if dtype == "float32" and inner_cv == "loo":
        tolerance = 5e-5  # features > samples: leave-one-out errors divide by 1 - h_ii near 0, so float32 rounding of
        # the z-scored inputs can tip a near-tied penalty choice (score itself moves by ~3e-6)
    for key in RESULT_KEYS:
        np.testing.assert_allclose(theirs[key], ours[key], atol=tolerance, err_msg=key)
    assert isinstance(theirs["score"], float) and isinstance(theirs["neuroid_r"], list)


@pytest.mark.parametrize("device", DEVICES)
def test_building_blocks_take_tensors(device):
    """RidgeSVD, ridge_cv and ols_fit_predict on tensors return tensors equal to the numpy results."""
    x, y, _ = _data(80, 30, 4, seed=1)
    x_test = np.random.default_rng(2).standard_normal((10, 30))
    tx, ty, tx_test = (torch.as_tensor(a, device=device) for a in (x, y, x_test))
    predicted = RidgeSVD(tx, ty).predict(tx_test, 10.0)
    assert isinstance(predicted, torch.Tensor) and predicted.device.type == device
    np.testing.assert_allclose(predicted.cpu().numpy(), RidgeSVD(x, y).predict(x_test, 10.0), atol=1e-10)
    np.testing.assert_allclose(ols_fit_predict(tx, ty, tx_test).cpu().numpy(), ols_fit_predict(x, y, x_test), atol=1e-10)
    folds = [(np.setdiff1d(np.arange(80), np.arange(k, 80, 4)), np.arange(k, 80, 4)) for k in range(4)]
    alphas = np.logspace(-2, 4, 7)
    best_numpy, pooled_numpy, final_numpy = ridge_cv(x, y, alphas, folds)  # tridiagonal reductions
    best_torch, pooled_torch, final_torch = ridge_cv(tx, ty, alphas, folds)  # eigendecompositions
    np.testing.assert_array_equal(best_torch, best_numpy)
    np.testing.assert_allclose(pooled_torch.cpu().numpy(), pooled_numpy, atol=1e-10)
    np.testing.assert_allclose(final_torch.predict_per_target(tx_test, alphas, best_torch).cpu().numpy(),
                               final_numpy.predict_per_target(x_test, alphas, best_numpy), atol=1e-10)


@pytest.mark.parametrize("constant_column", [False, True])
@pytest.mark.parametrize("device", [None] + DEVICES)
def test_bootstrap_equals_resampling_loop(device, constant_column):
    """The CI from count-weighted correlations equals resampling each fold's rows and correlating, draw for draw."""
    rng = np.random.default_rng(4)
    pairs = []
    for n in (39, 40, 38):
        predicted = rng.standard_normal((n, 50))
        actual = 0.3 * predicted + rng.standard_normal((n, 50)) + 100
        if constant_column:
            actual[:, 7] = 1.0  # NaN, left out of the median
        pairs.append((predicted, actual))
    values = []
    draws = np.random.default_rng(5)
    for _ in range(200):
        scores = []
        for predicted, actual in pairs:
            index = draws.integers(0, len(actual), len(actual))
            scores.append(np.nanmedian(pearson_columns(predicted[index], actual[index])))
        values.append(np.mean(scores))
    if device is not None:
        pairs = [tuple(torch.as_tensor(a, device=device) for a in pair) for pair in pairs]
    np.testing.assert_allclose(_bootstrap(pairs, 200, 5, chunk_elements=1000), np.percentile(values, [2.5, 97.5]), atol=1e-12)


@pytest.mark.parametrize("true_r", [0.2, 0.5])
def test_torch_recovers_planted_correlation(true_r):
    """y = X w + noise with a known correlation between y and X w: the torch back end recovers it within 0.02."""
    rng = np.random.default_rng(7)
    n, p, targets = 5000, 10, 20  # enough samples per feature that estimation noise costs < 0.01 at r = 0.2
    x = rng.standard_normal((n, p))
    signal = x @ rng.standard_normal((p, targets))
    signal /= signal.std(0)
    y = signal + np.sqrt(1 / true_r**2 - 1) * rng.standard_normal((n, targets))
    result = cross_validated_score(x, y, groups=np.arange(n) // 10, options={"backend": "torch", "device": "cpu",
                                                                             "n_bootstrap": 100, "seed": 0})
    assert abs(result["score"] - true_r) < 0.02
    assert result["ci_low"] < result["score"] < result["ci_high"]
    assert abs(np.mean(result["neuroid_r"]) - true_r) < 0.02


@pytest.mark.parametrize("options, message", [
    ({"backend": "jax"}, "unknown encoding backend 'jax' (expected one of numpy, torch)"),
    ({"backend": "torch", "device": "tpu-please"}, "encoding device 'tpu-please' is not a torch device"),
])
def test_bad_backend_or_device_is_a_one_line_error(options, message):
    x, y, groups = _data(40, 5, 2, seed=0)
    with pytest.raises(BrainalignError) as error:
        cross_validated_score(x, y, groups, options=options)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_one_line_error():
    x, y, groups = _data(40, 5, 2, seed=0)
    with pytest.raises(BrainalignError, match="CUDA is not available"):
        cross_validated_score(x, y, groups, options={"backend": "torch", "device": "cuda"})


def test_numpy_backend_never_imports_torch():
    code = ("import sys, numpy as np; from brainalign.encoding.protocols.scoring import cross_validated_score; "
            "x = np.random.default_rng(0).standard_normal((40, 5)); "
            "cross_validated_score(x, x[:, :2], np.arange(40) // 4, options={'n_bootstrap': 0}); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
