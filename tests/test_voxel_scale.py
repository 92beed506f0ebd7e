"""The voxel-scale fast paths against the slow ones they replace, on planted data: the leave-one-out ridge of
``ridge-grouped`` (``inner_cv: loo``; brainalign.encoding.loo) against ``ridge_loo`` (one scaling at a time), against
leave-one-out by explicit refits and against sklearn RidgeCV, for both scalings and ``auto``, on both back ends, in
chunks of targets or not; its float32 penalty sweep against the float64 one (the same choices except on ties, the
chosen fit exact); the paper protocol's kernel path (brainalign.encoding.ols.ols_kernel_fit) against the
cross-product path and sklearn LinearRegression, with and without the nested-selection inner fits."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, RidgeCV

from brainalign.encoding import loo as loo_module
from brainalign.encoding.backend import to_numpy
from brainalign.encoding.folds import grouped_folds, shuffle_splits
from brainalign.encoding.loo import SWEEP_RTOL, LooSpectrum, loo_scalings
from brainalign.encoding.ols import ols_kernel_fit, ols_with_inner_folds
from brainalign.encoding.protocols import ridge_grouped as ridge_grouped_module
from brainalign.encoding.protocols.scoring import cross_validated_score
from brainalign.encoding.ridge import ridge_loo
from brainalign.encoding.scaling import scale_features

ALPHAS = 10.0 ** np.arange(-1, 6)


def planted(n: int, p: int, targets: int, seed: int = 0):
    """Power-law feature variances (1/k) and each target a random mix of the top directions plus noise (planted
    r ~ U(0.2, 0.6)); float64."""
    rng = np.random.default_rng(seed)
    k = np.arange(1, p + 1)
    x = rng.standard_normal((n, p)) * k**-0.5 + 0.3  # an offset, so centring matters
    signal = x @ (rng.standard_normal((p, targets)) / k[:, None])
    signal = (signal - signal.mean(0)) / signal.std(0)
    rho = rng.uniform(0.2, 0.6, targets)
    return x, rho * signal + np.sqrt(1 - rho**2) * rng.standard_normal((n, targets)) + 2.0


def brute_force_loo_sse(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Each target's leave-one-out squared error from n explicit ridge refits (intercept, centred features)."""
    sse = np.zeros(y.shape[1])
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        x_mean, y_mean = x[keep].mean(0), y[keep].mean(0)
        xc = x[keep] - x_mean
        weights = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y[keep] - y_mean))
        sse += (y[i] - (x[i] - x_mean) @ weights - y_mean) ** 2
    return sse


@pytest.mark.parametrize("p", [90, 25])  # kernel (features > samples) and Gram (features < samples) forms
@pytest.mark.parametrize("scaling", ["zscore", "center"])
def test_sweep_equals_refits_and_ridge_loo(p, scaling):
    x, y = planted(40, p, 6)
    x_train, x_test = scale_features(x[:32], x[32:], scaling)
    spectrum = LooSpectrum(x_train, x_test)
    assert spectrum.complete == (p > 32)
    y_rows = (y[:32] - y[:32].mean(0)).T.copy()
    sse = spectrum.sweep(spectrum.coefficients(y_rows), y_rows, ALPHAS)
    for a in (0, 3, 6):
        np.testing.assert_allclose(sse[a], brute_force_loo_sse(x_train, y[:32], ALPHAS[a]), rtol=1e-9)
    pooled, predicted, chosen, best, best_sse = loo_scalings([(x_train, x_test)], y[:32], ALPHAS)
    old_best, old_pooled, solver, old_sse = ridge_loo(x_train, y[:32], ALPHAS, errors=True)
    np.testing.assert_array_equal(best, old_best)
    assert (chosen == 0).all()
    np.testing.assert_allclose(best_sse, old_sse, rtol=1e-9)
    np.testing.assert_allclose(pooled, old_pooled, rtol=0, atol=1e-9)
    np.testing.assert_allclose(predicted, solver.predict_per_target(x_test, ALPHAS, old_best), rtol=0, atol=1e-9)


def test_sweep_equals_sklearn_ridgecv():
    """sklearn's RidgeCV (cv=None: exact leave-one-out, a penalty per target) on the same centred features."""
    x, y = planted(50, 120, 8, seed=1)
    x_train, x_test = scale_features(x[:44], x[44:], "center")
    _, predicted, _, best, _ = loo_scalings([(x_train, x_test)], y[:44], ALPHAS)
    model = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(x_train, y[:44])
    np.testing.assert_array_equal(ALPHAS[best], model.alpha_)
    np.testing.assert_allclose(predicted, model.predict(x_test), rtol=0, atol=1e-9)


@pytest.mark.parametrize("choice", ["target", "layer"])
def test_auto_chooses_from_both_sweeps_and_chunks_change_nothing(choice):
    x, y = planted(48, 150, 30, seed=2)
    designs = [scale_features(x[:40], x[40:], name) for name in ("zscore", "center")]
    pooled, predicted, chosen, best, sse = loo_scalings(designs, y[:40], ALPHAS, choice)
    fits = [ridge_loo(x_train, y[:40], ALPHAS, errors=True) for x_train, _ in designs]
    errors = np.vstack([fit[3] for fit in fits])
    expected = errors.argmin(0) if choice == "target" else np.full(30, errors.sum(1).argmin())
    np.testing.assert_array_equal(chosen, expected)
    for d, (_, x_test) in enumerate(designs):
        mine = chosen == d
        np.testing.assert_array_equal(best[mine], fits[d][0][mine])
        np.testing.assert_allclose(pooled[:, mine], fits[d][1][:, mine], rtol=0, atol=1e-9)
        np.testing.assert_allclose(predicted[:, mine], fits[d][2].predict_per_target(x_test, ALPHAS, fits[d][0])[:, mine],
                                   rtol=0, atol=1e-9)
    assert 0 < chosen.sum() < 30 or choice == "layer"
    # 7 targets per chunk: the same numbers as one chunk
    chunked = loo_scalings(designs, y[:40], ALPHAS, choice, chunk_bytes=8 * 149 * 7)
    for whole, part in zip((chosen, best), chunked[2:4]):
        np.testing.assert_array_equal(whole, part)
    for whole, part in zip((pooled, predicted, sse), (*chunked[:2], chunked[4])):
        np.testing.assert_allclose(whole, part, rtol=1e-13, atol=1e-13)  # products blocked differently: rounding only


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("choice", ["target", "layer"])
def test_float32_sweep_chooses_as_float64_and_fits_exactly(backend, choice, monkeypatch):
    """The float32 sweep's errors within SWEEP_RTOL of the float64 sweep's; the (scaling, penalty) chosen is the
    float64 sweep's on both back ends, near-ties included (a third of the targets are pure noise, whose errors at
    the largest penalties differ by ~1e-7: without the float64 re-check one of them is chosen differently); the
    returned errors, leave-one-out and test predictions those of an exact float64 ridge at the chosen penalty
    (ridge_loo with that penalty alone)."""
    x, y = planted(80, 200, 60, seed=7)
    y[:, 40:] = np.random.default_rng(8).standard_normal((80, 20)) + 1.0
    alphas = 10.0 ** np.arange(-2, 9)
    designs = [scale_features(x[:70], x[70:], name) for name in ("zscore", "center")]
    y_rows = (y[:70] - y[:70].mean(0)).T.copy()
    exact = []
    for x_train, x_test in designs:
        spectrum = LooSpectrum(x_train, x_test)
        reference = spectrum.sweep(spectrum.coefficients(y_rows), y_rows, alphas)
        fast = spectrum.sweep(spectrum.sweep_coefficients(y_rows.astype(np.float32)), None, alphas)
        assert fast.dtype == np.float32
        np.testing.assert_allclose(fast, reference, rtol=SWEEP_RTOL, atol=0)
        exact.append(reference)
    exact = np.stack(exact)  # scalings x alphas x targets
    if backend == "torch":
        torch = pytest.importorskip("torch")

    def run():
        if backend == "torch":
            return [to_numpy(a) for a in loo_scalings(
                [(torch.as_tensor(a), torch.as_tensor(b)) for a, b in designs], torch.as_tensor(y[:70]), alphas, choice)]
        return loo_scalings(designs, y[:70], alphas, choice)

    pooled, predicted, chosen, best, sse = run()
    targets = np.arange(60)
    if choice == "target":
        floor = exact.min(axis=(0, 1))
        expected = exact.reshape(-1, 60).argmin(0)
        np.testing.assert_array_equal(chosen * len(alphas) + best, expected)
    else:
        floor = exact.min(1)[exact.min(1).sum(1).argmin()]
        np.testing.assert_array_equal(best, exact[chosen[0]].argmin(0))
    np.testing.assert_allclose(sse, exact[chosen, best, targets], rtol=1e-9)  # float64 errors at the choice
    np.testing.assert_allclose(sse, floor, rtol=1e-9)
    for d, (x_train, x_test) in enumerate(designs):
        for a in np.unique(best[chosen == d]):
            group = np.flatnonzero((chosen == d) & (best == a))
            _, loo_fit, solver = ridge_loo(x_train, y[:70, group], alphas[a:a + 1])
            np.testing.assert_allclose(pooled[:, group], loo_fit, rtol=0, atol=1e-9)
            np.testing.assert_allclose(predicted[:, group], solver.predict(x_test, alphas[a]), rtol=0, atol=1e-9)
    monkeypatch.setattr(loo_module, "SWEEP_DTYPE", np.float64)
    float64_sweep = run()
    for ours, theirs in zip((chosen, best), float64_sweep[2:4]):
        np.testing.assert_array_equal(ours, theirs)
    if choice == "target" and backend == "numpy":
        # Whether float32 rounding flips one of the noise targets' near-ties depends on the BLAS's blocking (its
        # thread count), so plant the worst rounding the sweep's contract allows: errors off by up to SWEEP_RTOL / 2,
        # in the direction that favours smaller penalties. Unchecked, that flips choices; the re-check undoes them all.
        monkeypatch.setattr(loo_module, "SWEEP_DTYPE", np.float32)
        exact_sweep = LooSpectrum.sweep

        def adversarial_sweep(self, q_rows, y_rows, sweep_alphas):
            errors = exact_sweep(self, q_rows, y_rows, sweep_alphas)
            if errors.dtype != np.float32:
                return errors
            tilt = 1.0 + 0.5 * SWEEP_RTOL * np.arange(len(sweep_alphas)) / (len(sweep_alphas) - 1)
            return (errors * tilt[:, None]).astype(np.float32)

        monkeypatch.setattr(LooSpectrum, "sweep", adversarial_sweep)
        rechecked = run()
        for ours, theirs in zip((chosen, best), rechecked[2:4]):
            np.testing.assert_array_equal(ours, theirs)
        monkeypatch.setattr(loo_module, "_recheck_near_ties", lambda *args: None)  # the float32 ranking alone
        unchecked = run()
        assert ((unchecked[2] != chosen) | (unchecked[3] != best)).sum() >= 1  # the data hold a near-tie


def _old_loo_fold(fold, scaling, y_train, actual):
    """ridge-grouped's earlier leave-one-out fold: every scaling fitted in full (ridge_loo), then columns picked."""
    module = ridge_grouped_module
    if scaling != "auto":
        pooled, predicted, _ = module._ridge_scaled(fold, scaling, y_train)
        centred = np.full(y_train.shape[1], scaling == "center")
    else:
        pooled, predicted, sse = module._ridge_scaled(fold, "zscore", y_train)
        pooled_c, predicted_c, sse_c = module._ridge_scaled(fold, "center", y_train)
        layer = fold.options.feature_scaling_choice == "layer"
        centred = np.full(len(sse), sse_c.sum() < sse.sum()) if layer else sse_c < sse
        columns = np.flatnonzero(centred)
        pooled = module._with_columns(fold.ops, pooled, pooled_c, columns)
        predicted = module._with_columns(fold.ops, predicted, predicted_c, columns)
    inner = module._median(module.pearson_columns(pooled, y_train))
    return predicted, actual, inner, {"centred_fraction": float(np.mean(centred))}


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("scaling,choice", [("auto", "target"), ("auto", "layer"), ("zscore", "target"), ("center", "target")])
def test_ridge_grouped_loo_equals_the_slow_path(backend, scaling, choice, monkeypatch):
    if backend == "torch":
        pytest.importorskip("torch")
    x, y = planted(60, 140, 12, seed=3)
    options = {"n_bootstrap": 0, "inner_cv": "loo", "feature_scaling": scaling, "feature_scaling_choice": choice,
               "alphas": list(ALPHAS), "backend": backend, "device": "cpu", "dtype": "float64"}
    folds = shuffle_splits(60, 4)
    fast = cross_validated_score(x, y, None, "ridge-grouped", options, folds=folds)
    monkeypatch.setattr(ridge_grouped_module, "_ridge_loo_fold", _old_loo_fold)
    slow = cross_validated_score(x, y, None, "ridge-grouped", options, folds=folds)
    for key in ("score", "fold_scores", "inner_scores", "neuroid_r"):
        np.testing.assert_allclose(fast[key], slow[key], rtol=0, atol=1e-9)
    assert fast["centred_fraction"] == slow["centred_fraction"]


@pytest.mark.parametrize("nested", [True, False])
def test_paper_kernel_path_equals_cross_products_and_sklearn(nested):
    x, y = planted(60, 80, 9, seed=4)
    train, test = shuffle_splits(60)[0]
    inner = grouped_folds(np.arange(len(train)), 3, 0)
    predicted, pooled = ols_kernel_fit(x, y, train, test, inner if nested else None)
    old_predicted, old_pooled = ols_with_inner_folds(x, y, train, test, inner)
    np.testing.assert_allclose(predicted, old_predicted, rtol=0, atol=1e-9)
    np.testing.assert_allclose(predicted, LinearRegression().fit(x[train], y[train]).predict(x[test]), rtol=0, atol=1e-9)
    if nested:
        np.testing.assert_allclose(pooled, old_pooled, rtol=0, atol=1e-9)
        for inner_train, inner_test in inner:
            reference = LinearRegression().fit(x[train][inner_train], y[train][inner_train]).predict(x[train][inner_test])
            np.testing.assert_allclose(pooled[inner_test], reference, rtol=0, atol=1e-9)
    else:
        assert pooled is None


def test_paper_kernel_path_falls_back_on_a_rank_deficient_kernel():
    x, y = planted(40, 60, 3, seed=5)
    x[:, 30:] = x[:, :30]  # duplicated features: fine
    x[5] = x[6]            # two identical stimuli: the training kernel is singular
    train, test = np.arange(8, 40), np.arange(8)
    predicted, _ = ols_kernel_fit(x, y, train, test)
    np.testing.assert_allclose(predicted, LinearRegression().fit(x[train], y[train]).predict(x[test]), rtol=0, atol=1e-8)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_paper_protocol_without_nested_fits_has_the_same_scores(backend):
    if backend == "torch":
        pytest.importorskip("torch")
    x, y = planted(70, 100, 10, seed=6)
    options = {"n_bootstrap": 20, "backend": backend, "device": "cpu", "dtype": "float64"}
    full = cross_validated_score(x, y, None, "brainscore-2023", options)
    lean = cross_validated_score(x, y, None, "brainscore-2023", options, nested=False)
    assert np.isfinite(full["inner_scores"]).all() and np.isnan(lean["inner_scores"]).all()
    for key in ("score", "fold_scores", "neuroid_r", "ci_low", "ci_high"):
        np.testing.assert_allclose(lean[key], full[key], rtol=0, atol=1e-12)
    reference = []
    for train, test in shuffle_splits(70):
        fitted = LinearRegression().fit(x[train], y[train]).predict(x[test])
        reference.append(np.median([np.corrcoef(fitted[:, j], y[test][:, j])[0, 1] for j in range(y.shape[1])]))
    assert abs(full["score"] - np.mean(reference)) < 1e-9
