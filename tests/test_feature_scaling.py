"""Feature scaling in the ridge-grouped protocol (``encoding.feature_scaling``), on planted truth with the spectra
language models really have: power-law feature variances, a few outlier dimensions, the signal either in the
high-variance directions (where z-scoring loses it) or in the low-variance ones (where centring loses it).

The references are sklearn ``RidgeCV`` (exact leave-one-out, a penalty per target, a wide grid) on the same outer
folds, on centred and on z-scored features: the schema default must come within 0.03 of the better one in each
case, since which case a layer is in is unknown before fitting.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV

from brainalign.correlation import pearson_columns
from brainalign.encoding.bootstrap import _median
from brainalign.encoding.folds import block_folds, grouped_folds
from brainalign.encoding.protocols.registry import PROTOCOLS, Fold, Protocol, get_protocol
from brainalign.encoding.protocols.ridge_grouped import _single_run_blocks
from brainalign.encoding.protocols.scoring import cross_validated_score
from brainalign.encoding.ridge import DEFAULT_ALPHAS, ridge_cv, ridge_loo
from brainalign.encoding.scaling import _centre, _standardise, scale_features
from brainalign.errors import BrainalignError
from brainalign.options import EncodingOptions, schema_defaults

RESULT_KEYS = ("score", "fold_scores", "inner_scores", "ci_low", "ci_high", "neuroid_r")
REFERENCE_ALPHAS = 10.0 ** np.arange(-4, 9)  # wide: the reference must not lose for want of a penalty


def planted_anisotropic(n: int, p: int, targets: int, seed: int, signal: str, n_outliers: int = 3):
    """Features with variance 1/k (k = 1..p, as a language model's spectrum falls) and ``n_outliers`` dimensions
    with SD 3, ~50x the median (the "massive activations" of real layers: they carry no signal here). Each target's
    signal is a random combination of the top directions with weights falling as 1/k (``signal="high"``) or of the
    lowest-variance half, each feature weighted by 1/SD so all contribute alike (``"low"``). Planted correlation
    rho ~ U(0.1, 0.5) per target; groups of 10 consecutive samples (passages). float32, as shards are stored."""
    rng = np.random.default_rng(seed)
    k = np.arange(1, p + 1)
    sd = k**-0.5
    x = rng.standard_normal((n, p)) * sd
    outliers = rng.choice(np.arange(p // 4, p), n_outliers, replace=False)
    x[:, outliers] *= 3.0 / sd[outliers]
    if signal == "high":
        weights = rng.standard_normal((p, targets)) / k[:, None]
    else:
        weights = rng.standard_normal((p, targets)) * (k[:, None] > p // 2) / sd[:, None]
    weights[outliers] = 0
    planted = x @ weights
    planted = (planted - planted.mean(0)) / planted.std(0)
    rho = rng.uniform(0.1, 0.5, targets)
    y = rho * planted + np.sqrt(1 - rho**2) * rng.standard_normal((n, targets))
    return x.astype(np.float32), y.astype(np.float32), np.arange(n) // 10, rho


def sklearn_loo_score(x, y, groups, scaling: str, seed: int = 0, n_folds: int = 5) -> float:
    """sklearn RidgeCV (exact leave-one-out, a penalty per target) on centred or z-scored training features, on the
    ridge-grouped protocol's outer folds: median r over targets, mean over folds."""
    scores = []
    for train, test in grouped_folds(groups, n_folds, seed):
        x_train, x_test = x[train].astype(np.float64), x[test].astype(np.float64)
        mean = x_train.mean(0)
        sd = x_train.std(0) if scaling == "zscore" else np.ones(x.shape[1])
        y_train = y[train].astype(np.float64)
        model = RidgeCV(alphas=REFERENCE_ALPHAS, alpha_per_target=True)
        model.fit((x_train - mean) / sd, (y_train - y_train.mean(0)) / y_train.std(0))
        scores.append(np.median(pearson_columns(model.predict((x_test - mean) / sd), y[test].astype(np.float64))))
    return float(np.mean(scores))


def default_options(**extra) -> dict:
    """The encoding options a run gets by default (every schema default), without the CI (not needed here)."""
    return {**schema_defaults("encoding"), "n_bootstrap": 0, **extra}


@pytest.fixture(scope="module")
def high():
    return planted_anisotropic(800, 256, 40, seed=0, signal="high")


@pytest.fixture(scope="module")
def low():
    return planted_anisotropic(800, 256, 40, seed=1, signal="low")


# ----------------------------------------------------------------------------------------------- planted truth
def test_default_keeps_signal_in_high_variance_directions(high):
    """Signal in the few high-variance directions: the default recovers what ridge on centred features recovers
    (within 0.03), where z-scoring loses most of it (the issue's case)."""
    x, y, groups, _ = high
    reference = sklearn_loo_score(x, y, groups, "center")
    default = cross_validated_score(x, y, groups, options=default_options())["score"]
    zscored = cross_validated_score(x, y, groups, options=default_options(feature_scaling="zscore"))["score"]
    assert abs(default - reference) <= 0.03, (default, reference)
    assert zscored < reference - 0.08, (zscored, reference)  # the case really discriminates the scalings


def test_default_keeps_signal_in_low_variance_directions(low):
    """Signal spread over the many low-variance directions: the default recovers what ridge on z-scored features
    recovers (within 0.03), where centring shrinks it away."""
    x, y, groups, _ = low
    reference = sklearn_loo_score(x, y, groups, "zscore")
    default = cross_validated_score(x, y, groups, options=default_options())["score"]
    centred = cross_validated_score(x, y, groups, options=default_options(feature_scaling="center"))["score"]
    assert abs(default - reference) <= 0.03, (default, reference)
    assert centred < reference - 0.05, (centred, reference)


def test_auto_chooses_per_target_on_mixed_signal(high, low):
    """Half the targets with each kind of signal, on the same features: per target, ``auto`` keeps each target's
    better scaling (about half centred), so it beats both fixed scalings; per layer, one scaling for all."""
    x = high[0]
    y = np.hstack([high[1][:, :20], planted_response(x, low_weights(x, 20, seed=5), seed=6)])
    groups = high[2]
    scores = {scaling: cross_validated_score(x, y, groups, options=default_options(feature_scaling=scaling))
              for scaling in ("zscore", "center", "auto")}
    per_layer = cross_validated_score(x, y, groups, options=default_options(feature_scaling="auto", feature_scaling_choice="layer"))
    assert 0.3 <= np.mean(scores["auto"]["centred_fraction"]) <= 0.7
    assert set(per_layer["centred_fraction"]) <= {0.0, 1.0}
    assert scores["auto"]["score"] > max(scores["zscore"]["score"], scores["center"]["score"]) + 0.01, scores


def low_weights(x, targets: int, seed: int) -> np.ndarray:
    """Weights on the lowest-variance half of ``x``'s features, each weighted by 1/SD (as ``signal="low"``)."""
    rng = np.random.default_rng(seed)
    sd = x.std(0)
    quiet = np.argsort(sd)[: x.shape[1] // 2]
    weights = np.zeros((x.shape[1], targets))
    weights[quiet] = rng.standard_normal((len(quiet), targets)) / sd[quiet, None]
    return weights


def planted_response(x, weights, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    signal = x.astype(np.float64) @ weights
    signal = (signal - signal.mean(0)) / signal.std(0)
    rho = rng.uniform(0.1, 0.5, weights.shape[1])
    return (rho * signal + np.sqrt(1 - rho**2) * rng.standard_normal(signal.shape)).astype(np.float32)


def test_auto_takes_each_targets_fit_from_one_scaling(high, low):
    """On one outer fold, every target's r under ``auto`` is exactly its r under z-scoring or under centring: the
    choice swaps whole fits, it never mixes them; and the choice follows the inner errors of the two fits."""
    x = high[0][:400]
    y = np.hstack([high[1][:400, :10], planted_response(x, low_weights(x, 10, seed=7), seed=8)])
    groups = high[2][:400]
    fold = [grouped_folds(groups, 5, 0)[0]]
    r = {scaling: np.asarray(cross_validated_score(x, y, groups, options=default_options(feature_scaling=scaling, dtype="float64"),
                                                   folds=fold)["neuroid_r"]) for scaling in ("zscore", "center", "auto")}
    same_as_z, same_as_c = r["auto"] == r["zscore"], r["auto"] == r["center"]
    assert (same_as_z | same_as_c).all()
    assert same_as_c.any() and same_as_z.any()
    # the choice: the smaller pooled inner squared error on the training rows
    train, _ = fold[0]
    y_train, _ = _standardise(y[train].astype(np.float64), y[train].astype(np.float64))
    inner = grouped_folds(groups[train], 5, 0)
    sse = {s: ridge_cv(scale_features(x[train].astype(np.float64), x[train].astype(np.float64), s)[0], y_train, DEFAULT_ALPHAS,
                       inner, errors=True)[3] for s in ("zscore", "center")}
    differs = r["zscore"] != r["center"]
    np.testing.assert_array_equal(same_as_c[differs], (sse["center"] < sse["zscore"])[differs])


# ----------------------------------------------------------------------------------------------- references
@pytest.mark.parametrize("scaling", ["zscore", "center"])
def test_fixed_scalings_equal_sklearn_ridgecv(high, scaling):
    """``inner_cv: loo`` under each fixed scaling is sklearn RidgeCV (leave-one-out, a penalty per target, our
    grid) on the same scaled features: per-target r equal to 1e-6."""
    x, y, groups, _ = high
    x, y = x[:400].astype(np.float64), y[:400, :10].astype(np.float64)
    groups = groups[:400]
    ours = cross_validated_score(x, y, groups, options=default_options(feature_scaling=scaling, inner_cv="loo", dtype="float64"))
    r = []
    for train, test in grouped_folds(groups, 5, 0):
        x_train, x_test = scale_features(x[train], x[test], scaling)
        y_train, y_test = _standardise(y[train], y[test])
        model = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True).fit(x_train, y_train)
        r.append(pearson_columns(model.predict(x_test), y_test))
    np.testing.assert_allclose(ours["neuroid_r"], np.mean(r, axis=0), atol=1e-6)
    assert ours["feature_scaling"] == scaling
    assert ours["centred_fraction"] == [float(scaling == "center")] * 5


def test_centring_keeps_relative_variances_and_the_mean_variance_of_zscoring():
    """``center`` subtracts the training mean and divides by one number: the features' variance ratios are kept,
    their mean variance is 1 (as after z-scoring, so the penalty grid means the same), and test rows get the
    training statistics."""
    rng = np.random.default_rng(0)
    train = rng.standard_normal((50, 6)) * np.array([10.0, 1, 1, 0.1, 0.1, 0]) + 3
    test = rng.standard_normal((7, 6))
    centred_train, centred_test = _centre(train, test)
    np.testing.assert_allclose(centred_train.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(centred_train.var(0).mean(), 1.0)
    np.testing.assert_allclose(centred_train.std(0)[:5] / centred_train.std(0)[0], train.std(0)[:5] / train.std(0)[0])
    scale = train.std(0)[0] / centred_train.std(0)[0]
    np.testing.assert_allclose(centred_test, (test - train.mean(0)) / scale)
    constant = np.ones((5, 3))
    np.testing.assert_array_equal(_centre(constant, constant)[0], 0.0)  # all constant: centred, not divided by 0


# ----------------------------------------------------------------------------------------------- today's numbers
def _todays_ridge_grouped(fold: Fold):
    """ridge-grouped exactly as it was before feature scaling became an option (commit 1181896), kept verbatim but
    for reading the typed options and the inner blocks from the fold."""
    options = fold.options
    x_train, x_test = _standardise(fold.x[fold.train], fold.x[fold.test])
    y_train, actual = _standardise(fold.y[fold.train], fold.y[fold.test])
    if options.inner_cv == "loo":
        best, pooled, solver = ridge_loo(x_train, y_train, fold.alphas)
    else:
        inner = (grouped_folds(fold.groups[fold.train_index], int(options.inner_folds), fold.seed + fold.k)
                 if fold.inner_blocks is None
                 else block_folds(len(fold.train_index), int(fold.inner_blocks), int(options.gap)))
        best, pooled, solver = ridge_cv(x_train, y_train, fold.alphas, inner)
    inner_score = _median(pearson_columns(pooled, y_train))
    predicted = solver.predict_per_target(x_test, fold.alphas, best)
    return predicted, actual, inner_score


@pytest.mark.parametrize("inner_cv, blocks, dtype", [("grouped", False, "float32"), ("loo", False, "float32"),
                                                     ("grouped", True, "float32"), ("grouped", False, "float64")])
def test_zscore_gives_exactly_todays_results(monkeypatch, high, inner_cv, blocks, dtype):
    """``feature_scaling: zscore`` is bit for bit the protocol as it was: every score, fold, inner score, CI bound
    and per-neuroid r identical (sentence data, leave-one-out, a single-run time series' blocks; both dtypes)."""
    monkeypatch.setitem(PROTOCOLS, "today", Protocol("today", _todays_ridge_grouped, layer_folds=_single_run_blocks))
    x, y, groups, _ = high
    x, y, groups = x[:300, :120], y[:300, :8], groups[:300]
    options = default_options(feature_scaling="zscore", inner_cv=inner_cv, n_bootstrap=50, dtype=dtype)
    results = []
    for name in ("today", "ridge-grouped"):
        typed = EncodingOptions.from_dict(options)
        folds, inner_blocks = get_protocol(name).layer_folds(len(x), {"blocks": 5} if blocks else {}, typed)
        results.append(cross_validated_score(x, y, None if blocks else groups, name, typed, folds=folds, inner_blocks=inner_blocks))
    today, now = results
    for key in RESULT_KEYS:
        np.testing.assert_array_equal(np.asarray(now[key]), np.asarray(today[key]), err_msg=key)


# ----------------------------------------------------------------------------------------------- where it applies
def test_time_series_blocks_honour_the_option(high):
    """A single-run time series (contiguous blocks of scans with a gap, inner blocks too): the scaling applies
    there the same way, and is recorded."""
    x, y, _, _ = high
    options = EncodingOptions.from_dict(default_options())
    folds, inner_blocks = get_protocol("ridge-grouped").layer_folds(len(x), {"blocks": 5}, options)
    scores = {}
    for scaling in ("zscore", "center", "auto"):
        result = cross_validated_score(x, y, None, "ridge-grouped", options.replace(feature_scaling=scaling), folds=folds,
                                       inner_blocks=inner_blocks)
        assert result["feature_scaling"] == scaling and len(result["centred_fraction"]) == 5
        scores[scaling] = result["score"]
    assert scores["center"] > scores["zscore"] + 0.08
    assert abs(scores["auto"] - scores["center"]) <= 0.03, scores


def test_paper_protocol_ignores_the_option(high):
    """brainscore-2023 (the paper's OLS) never scales: the same numbers under every feature_scaling, recorded as
    "none"."""
    x, y, groups, _ = high
    x, y = x[:200, :64], y[:200, :5]
    results = [cross_validated_score(x, y, groups[:200], "brainscore-2023", default_options(feature_scaling=s))
               for s in ("zscore", "center", "auto")]
    for result in results[1:]:
        for key in RESULT_KEYS:
            np.testing.assert_array_equal(np.asarray(result[key]), np.asarray(results[0][key]), err_msg=key)
    assert {result["feature_scaling"] for result in results} == {"none"}
    assert "centred_fraction" not in results[0]


def test_layer_result_records_the_scaling(tmp_path):
    """fit_layer's stored result says, per protocol, how features were scaled and (ridge-grouped) what fraction
    of neuroids each outer fold fitted on centred features."""
    import pandas as pd

    from brainalign.encoding.layer_fits import fit_layer

    x, y, groups, _ = planted_anisotropic(200, 32, 3, seed=3, signal="high")

    class Dataset:
        meta = {"kind": "sentence", "name": "planted"}
        stimuli = pd.DataFrame({"group": groups, "stimulus_id": np.arange(len(x)).astype(str)})
        responses = y[None]  # subjects x samples x neuroids
        subjects, neuroids = ["s"], [f"n{i}" for i in range(y.shape[1])]

    result = fit_layer(x, Dataset(), default_options(feature_scaling="auto", similarity=False))
    ridge = result["protocols"]["ridge-grouped"]
    assert ridge["feature_scaling"] == "auto" and len(ridge["centred_fraction"]) == 5
    assert all(0.0 <= f <= 1.0 for f in ridge["centred_fraction"])
    assert result["protocols"]["brainscore-2023"]["feature_scaling"] == "none"
    assert result["options"]["feature_scaling"] == "auto"


@pytest.mark.parametrize("key, value", [("feature_scaling", "whiten"), ("feature_scaling_choice", "neuroid")])
def test_bad_option_names_the_field(high, key, value):
    x, y, groups, _ = high
    options = {**default_options(feature_scaling="auto"), key: value}
    with pytest.raises(BrainalignError, match=f"encoding.{key}") as error:
        cross_validated_score(x[:100], y[:100], groups[:100], options=options)
    assert "\n" not in str(error.value)
