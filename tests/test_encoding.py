"""Encoding models against sklearn/scipy references and planted ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.linear_model import LinearRegression, Ridge, RidgeCV
from sklearn.model_selection import KFold, ShuffleSplit

from brainalign.correlation import pearson_columns
from brainalign.encoding.folds import block_folds, grouped_folds, shuffle_splits
from brainalign.encoding.layer_scores import score_layers_file
from brainalign.encoding.ols import ols_fit_predict, ols_with_inner_folds
from brainalign.encoding.protocols.scoring import cross_validated_score
from brainalign.encoding.ridge import FoldCrossProducts, RidgeSVD, ShiftedSystems, ridge_cv, ridge_loo


@pytest.mark.parametrize("n, p", [(120, 30), (60, 200)])
def test_ridge_and_ols_equal_sklearn(n, p):
    rng = np.random.default_rng(0)
    x, y, x_test = rng.standard_normal((n, p)), rng.standard_normal((n, 4)), rng.standard_normal((15, p))
    for alpha in (0.1, 10.0, 1000.0):
        np.testing.assert_allclose(RidgeSVD(x, y).predict(x_test, alpha), Ridge(alpha=alpha).fit(x, y).predict(x_test), atol=1e-5)
    np.testing.assert_allclose(ols_fit_predict(x, y, x_test), LinearRegression().fit(x, y).predict(x_test), atol=1e-5)


@pytest.mark.parametrize("case", ["anisotropic", "collinear", "wide", "square"])
def test_ols_equals_sklearn_on_language_model_like_features(case):
    """The OLS of the paper protocol equals sklearn LinearRegression (minimum-norm lstsq) on the features it
    meets: power-law variances with one shared direction (the Cholesky shortcut), duplicated columns and more
    features than samples (singular Gram: the SVD), and features = samples (centring leaves rank samples - 1)."""
    from brainalign.encoding.ols import _cholesky_ols_weights, _kernel_ols_dual

    rng = np.random.default_rng(11)
    n, p = {"anisotropic": (300, 120), "collinear": (300, 120), "wide": (60, 120), "square": (120, 120)}[case]
    x = rng.standard_normal((n, p)) * 30 / np.sqrt(np.arange(1, p + 1)) + rng.standard_normal((n, 1)) @ rng.standard_normal((1, p)) * 5
    if case == "collinear":
        x[:, 1] = 2 * x[:, 0]
    y = x[:, :3] @ rng.standard_normal((3, 4)) + 3 * rng.standard_normal((n, 4))
    x_test = rng.standard_normal((20, p)) * 30 / np.sqrt(np.arange(1, p + 1))
    expected = LinearRegression().fit(x, y).predict(x_test)
    np.testing.assert_allclose(ols_fit_predict(x, y, x_test), expected, rtol=1e-8, atol=1e-8 * np.abs(expected).max())
    takes_cholesky = _cholesky_ols_weights(x - x.mean(0), y - y.mean(0)) is not None
    assert takes_cholesky == (case == "anisotropic")
    takes_kernel = p >= n and _kernel_ols_dual(x - x.mean(0), y - y.mean(0)) is not None
    assert takes_kernel == (case in ("wide", "square"))  # full rank n - 1 once centred


@pytest.mark.parametrize("case", ["anisotropic", "collinear", "wide"])
def test_ols_with_shared_cross_products_equals_one_fit_each(case):
    """The paper protocol's four fits per fold (training rows -> test rows, and 3 inner folds) from shared
    cross-products equal sklearn's LinearRegression fitted on each training set; rank-deficient and wide
    problems take the per-fit path and still do."""
    rng = np.random.default_rng(5)
    n, p = (400, 60) if case != "wide" else (90, 120)
    x = rng.standard_normal((n, p)) * 30 / np.sqrt(np.arange(1, p + 1)) + 40.0  # a large common offset
    if case == "collinear":
        x[:, 1] = 2 * x[:, 0]
    y = x[:, :3] @ rng.standard_normal((3, 2)) + rng.standard_normal((n, 2))
    train, test = rng.permutation(n)[:n - n // 10], rng.permutation(n)[:n // 10]
    inner = grouped_folds(np.arange(len(train)), 3, 0)
    predicted, pooled = ols_with_inner_folds(x.astype(np.float32), y.astype(np.float32), train, test, inner)
    x32, y32 = x.astype(np.float32).astype(float), y.astype(np.float32).astype(float)
    expected = LinearRegression().fit(x32[train], y32[train]).predict(x32[test])
    np.testing.assert_allclose(predicted, expected, rtol=1e-7, atol=1e-7 * np.abs(expected).max())
    for inner_train, inner_test in inner:
        fitted = LinearRegression().fit(x32[train][inner_train], y32[train][inner_train]).predict(x32[train][inner_test])
        np.testing.assert_allclose(pooled[inner_test], fitted, rtol=1e-7, atol=1e-7 * np.abs(fitted).max())


def test_ridge_cv_chooses_alpha_per_target_like_sklearn():
    """Per-target penalties chosen by K-fold CV equal RidgeCV(alpha_per_target=True, cv=KFold) choices."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((150, 20))
    w = rng.standard_normal((20, 3)) * np.array([3.0, 0.3, 0.03])
    y = x @ w + rng.standard_normal((150, 3))
    alphas = np.logspace(-2, 4, 7)
    folds = list(KFold(5).split(x))
    best, _, _ = ridge_cv(x, y, alphas, folds)
    reference = []
    for j in range(y.shape[1]):  # slow reference: sklearn Ridge refitted per fold, penalty and target
        errors = [sum(((Ridge(alpha=a).fit(x[tr], y[tr, j]).predict(x[te]) - y[te, j]) ** 2).sum() for tr, te in folds) for a in alphas]
        reference.append(alphas[int(np.argmin(errors))])
    np.testing.assert_allclose(alphas[best], reference, rtol=1e-12)
    assert len(set(reference)) > 1  # the targets really need different penalties


def test_ridge_cv_with_one_feature_equals_sklearn():
    """One regressor (a time-series baseline of words per scan): a 1 x 1 system, which LAPACK's tridiagonal solvers
    refuse; the penalties and predictions still equal sklearn's Ridge."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((80, 1))
    y = 2 * x + rng.standard_normal((80, 2))
    alphas = np.logspace(-2, 3, 6)
    folds = list(KFold(4).split(x))
    best, pooled, solver = ridge_cv(x, y, alphas, folds)
    for j in range(y.shape[1]):
        errors = [sum(((Ridge(alpha=a).fit(x[tr], y[tr, j]).predict(x[te]) - y[te, j]) ** 2).sum() for tr, te in folds) for a in alphas]
        assert best[j] == int(np.argmin(errors))
        a = alphas[best[j]]
        expected = np.concatenate([Ridge(alpha=a).fit(x[tr], y[tr, j]).predict(x[te]) for tr, te in folds])
        np.testing.assert_allclose(pooled[np.concatenate([te for _, te in folds]), j], expected, atol=1e-10)
    np.testing.assert_allclose(solver.predict_per_target(x[:5], alphas, best)[:, 0],
                               Ridge(alpha=alphas[best[0]]).fit(x, y[:, 0]).predict(x[:5]), atol=1e-10)


@pytest.mark.parametrize("n, p, fold_kind", [
    (150, 20, "kfold"),  # Gram matrices: the whole one is the sum of the left-out parts
    (150, 20, "gap"),  # Gram matrices: left-out rows (test + gap) are not a partition
    (150, 20, "small-train"),  # Gram matrices: fewer training than left-out rows, products of the training rows
    (150, 20, "kfold-over-budget"),  # Gram matrices: left-out parts too big to keep, computed per fold
    (60, 200, "kfold"),  # kernels (features > samples)
    (150, 130, "kfold"),  # kernels in the folds (120 training rows), the Gram matrix for the final fit
])
def test_tridiagonal_ridge_on_shared_cross_products_equals_sklearn(n, p, fold_kind, monkeypatch):
    """Every fold's solver (cut from shared cross-products, one tridiagonal reduction) and the final fit predict
    what sklearn Ridge fitted on that fold's training rows predicts, for every penalty; so does the Cholesky refit."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, p)) + rng.standard_normal(p) * 3  # off-centre features: the intercept matters
    y = x @ rng.standard_normal((p, 3)) + rng.standard_normal((n, 3)) + 10.0
    x_new = rng.standard_normal((9, p))
    if fold_kind == "kfold-over-budget":
        monkeypatch.setattr(FoldCrossProducts, "PARTS_BUDGET_BYTES", 0)
    folds = {"kfold": list(KFold(5).split(x)), "kfold-over-budget": list(KFold(5).split(x)), "gap": block_folds(n, 5, gap=4),
             "small-train": [(np.arange(k * 10, k * 10 + 40), np.setdiff1d(np.arange(n), np.arange(k * 10, k * 10 + 40)))
                             for k in range(3)]}[fold_kind]
    shared = FoldCrossProducts(x, y, folds)
    alphas = (0.01, 1.0, 100.0, 1e5)
    for k, (train, _) in enumerate(folds):
        solver = shared.ridge_fold(k)
        for alpha, predicted in zip(alphas, solver.predictions(x_new, [(alpha, slice(None)) for alpha in alphas])):
            np.testing.assert_allclose(predicted, Ridge(alpha=alpha).fit(x[train], y[train]).predict(x_new), atol=1e-8)
    chosen = np.array([0, 2, 2])
    for penalties in (None, np.asarray(alphas)[np.unique(chosen)]):  # tridiagonal / one Cholesky per penalty
        final = shared.ridge_all(penalties)
        expected = np.column_stack([Ridge(alpha=alphas[c]).fit(x, y[:, j]).predict(x_new) for j, c in enumerate(chosen)])
        np.testing.assert_allclose(final.predict_per_target(x_new, np.asarray(alphas), chosen), expected, atol=1e-8)
    assert (final.systems.factors is not None) == (len(np.unique(chosen)) <= ShiftedSystems.CHOLESKY_MAX_PENALTIES)


def test_shifted_systems_fall_back_when_not_positive_definite():
    """M + alpha I indefinite (no ridge problem makes one, but rounding can on a singular Gram matrix with a tiny
    penalty): the pivoted tridiagonal solve and the reduction take over from the positive-definite paths."""
    rng = np.random.default_rng(6)
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    m = q @ np.diag(np.linspace(-5, 20, 30) + 0.37) @ q.T
    r = rng.standard_normal((30, 2))
    for penalties in (None, [0.5]):
        systems = ShiftedSystems(m, r, penalties)
        assert systems.factors is None
        np.testing.assert_allclose(systems.apply_q(systems.solve(0.5)), np.linalg.solve(m + 0.5 * np.eye(30), r), atol=1e-10)


@pytest.mark.parametrize("n, p", [(150, 20), (60, 200)])
def test_ridge_loo_equals_sklearn_and_brute_force(n, p):
    """One-decomposition leave-one-out = sklearn RidgeCV(alpha_per_target=True) (its GCV mode) and = refitting
    sklearn Ridge without each sample (samples > features and features > samples)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((n, p))
    w = rng.standard_normal((p, 4)) * np.array([1.0, 0.3, 0.05, 0.0])
    y = x @ w + rng.standard_normal((n, 4))
    alphas = np.logspace(-2, 5, 8)
    best, loo, solver = ridge_loo(x, y, alphas)
    sklearn = RidgeCV(alphas=alphas, alpha_per_target=True).fit(x, y)
    np.testing.assert_allclose(alphas[best], sklearn.alpha_, rtol=1e-12)
    assert len(set(best.tolist())) > 1  # the targets really need different penalties
    x_new = rng.standard_normal((10, p))
    np.testing.assert_allclose(solver.predict_per_target(x_new, alphas, best), sklearn.predict(x_new), atol=1e-5)
    for i in (0, n // 2, n - 1):
        keep = np.arange(n) != i
        for j in range(y.shape[1]):
            refit = Ridge(alpha=alphas[best[j]]).fit(x[keep], y[keep, j]).predict(x[i:i + 1])[0]
            assert abs(refit - loo[i, j]) < 1e-8


def test_leave_one_out_inner_cv_recovers_planted_correlation():
    rng = np.random.default_rng(12)
    n, p, true_r = 2000, 40, 0.4
    x = rng.standard_normal((n, p))
    signal = x @ rng.standard_normal(p)
    y = (signal / signal.std() + np.sqrt(1 / true_r**2 - 1) * rng.standard_normal(n))[:, None]
    loo = cross_validated_score(x, y, options={"n_bootstrap": 0, "inner_cv": "loo"})
    grouped = cross_validated_score(x, y, options={"n_bootstrap": 0})
    assert abs(loo["score"] - true_r) < 0.02
    assert abs(loo["score"] - grouped["score"]) < 0.005  # same outer folds; only the penalty search differs


def test_brainscore_protocol_equals_slow_reference():
    """OLS + ShuffleSplit(10, 0.9, random_state=1) + per-neuroid scipy pearsonr + median + mean (Brain-Score 2023)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((80, 120))
    y = x[:, :3] @ rng.standard_normal((3, 6)) + rng.standard_normal((80, 6))
    ours = cross_validated_score(x, y, protocol="brainscore-2023", options={"n_bootstrap": 0, "dtype": "float64"})
    split_scores = []
    for train, test in ShuffleSplit(n_splits=10, train_size=0.9, random_state=1).split(x):
        predicted = LinearRegression().fit(x[train], y[train]).predict(x[test])
        split_scores.append(np.median([pearsonr(predicted[:, j], y[test][:, j]).statistic for j in range(y.shape[1])]))
    assert abs(ours["score"] - np.mean(split_scores)) < 1e-6


@pytest.fixture
def toy_protocol():
    """A protocol registered in Python only (OLS on grouped folds, the recipe of encoding/protocols/__init__.py),
    removed from the registry afterwards."""
    from brainalign.encoding.bootstrap import _median
    from brainalign.encoding.protocols.registry import PROTOCOLS, register_protocol

    @register_protocol("toy-ols")
    def toy_ols(fold):
        x, y, train, test = fold.x, fold.y, fold.train, fold.test
        fitted = ols_fit_predict(x[train], y[train], x[train])
        return ols_fit_predict(x[train], y[train], x[test]), y[test], _median(pearson_columns(fitted, y[train]))

    try:
        yield "toy-ols"
    finally:
        PROTOCOLS.pop("toy-ols", None)


def test_a_protocol_registered_in_python_is_selectable_in_the_config_and_scored(toy_protocol):
    """The schema's protocol enum comes from the registry: a config selecting a newly registered protocol (top level
    and a dataset's override) validates with no schema edit, and is rejected once the protocol is gone; the protocol
    is scored like any other (cross_validated_score, and fit_layer as a layer metric)."""
    import copy
    from pathlib import Path

    import pandas as pd
    import yaml

    from brainalign.config import ConfigError, load_and_check
    from brainalign.datasets.base import PreparedDataset
    from brainalign.encoding.layer_fits import fit_layer
    from brainalign.encoding.protocols.registry import PROTOCOLS
    from brainalign.options import dataset_encoding_options

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
    config.setdefault("encoding", {})["protocols"] = ["ridge-grouped", toy_protocol]
    first = config["datasets"][0]
    first["encoding"] = {**(first.get("encoding") or {}), "protocols": [toy_protocol], "extras_layers": "all"}  # not the headline
    checked = load_and_check(copy.deepcopy(config))
    assert dataset_encoding_options(checked, first["name"])["protocols"] == [toy_protocol]
    assert dataset_encoding_options(checked, config["datasets"][1]["name"])["protocols"] == ["ridge-grouped", toy_protocol]

    rng = np.random.default_rng(6)
    n = 120
    x = rng.standard_normal((n, 4))
    y = x @ rng.standard_normal((4, 3)) + rng.standard_normal((n, 3))
    groups = np.arange(n) // 4
    result = cross_validated_score(x, y, groups, protocol=toy_protocol, options={"n_bootstrap": 20, "seed": 0})
    assert len(result["fold_scores"]) == 5 and result["score"] > 0.5 and result["feature_scaling"] == "none"
    assert result["ci_low"] <= result["score"] <= result["ci_high"]
    stimuli = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)], "text": ["x"] * n, "group": groups.astype(str),
                            "position": np.arange(n) % 4})
    dataset = PreparedDataset(stimuli, y[None].astype(np.float32), ["average"], ["a", "b", "c"], meta={"kind": "sentence", "name": "toy"})
    layer = fit_layer(x, dataset, {"protocols": [toy_protocol], "n_bootstrap": 20, "seed": 0, "similarity": False})
    assert list(layer["protocols"]) == [toy_protocol]

    PROTOCOLS.pop(toy_protocol)
    with pytest.raises(ConfigError, match=r"config.encoding.protocols\[1\]: 'toy-ols' is not one of"):
        load_and_check(copy.deepcopy(config))


def test_planted_correlation_is_recovered():
    """y = X w + noise with a known correlation between y and X w: ridge recovers it within 0.02."""
    rng = np.random.default_rng(3)
    n, p, true_r = 3000, 40, 0.5
    x = rng.standard_normal((n, p))
    signal = x @ rng.standard_normal(p)
    signal /= signal.std()
    noise_sd = np.sqrt(1 / true_r**2 - 1)
    y = (signal + noise_sd * rng.standard_normal(n))[:, None]
    result = cross_validated_score(x, y, groups=np.arange(n) // 10, options={"n_bootstrap": 200, "seed": 0})
    assert abs(result["score"] - true_r) < 0.02
    assert result["ci_low"] < result["score"] < result["ci_high"]


def test_grouped_folds_never_split_a_group_and_are_seeded():
    groups = np.repeat(np.arange(30), 4)
    folds = grouped_folds(groups, 5, seed=7)
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
    assert sorted(np.concatenate([t for _, t in folds]).tolist()) == list(range(len(groups)))
    again = grouped_folds(groups, 5, seed=7)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))


def test_folds_equal_sklearn_group_kfold_and_shuffle_split():
    """Our fold generators are written out (no sklearn import per job) but must give sklearn's exact folds."""
    from sklearn.model_selection import GroupKFold, ShuffleSplit

    rng = np.random.default_rng(3)
    for n_groups, n_folds, seed in ((30, 5, 7), (7, 5, 0), (96, 5, 11), (4, 10, 2)):
        groups = rng.permutation(np.repeat([f"passage{g}" for g in range(n_groups)], rng.integers(1, 6)))
        ours = grouped_folds(groups, n_folds, seed)
        theirs = GroupKFold(min(n_folds, n_groups), shuffle=True, random_state=seed).split(groups, groups=groups)
        for (train, test), (train_ref, test_ref) in zip(ours, theirs, strict=True):
            assert train.tolist() == train_ref.tolist() and test.tolist() == test_ref.tolist()
    for n in (10, 243, 384, 627, 1999, 2000):
        theirs = ShuffleSplit(n_splits=10, train_size=0.9, random_state=1).split(np.zeros(n))
        for (train, test), (train_ref, test_ref) in zip(shuffle_splits(n), theirs, strict=True):
            assert train.tolist() == train_ref.tolist() and test.tolist() == test_ref.tolist()


def test_block_folds_leave_a_gap():
    for train, test in block_folds(100, 5, gap=3):
        assert np.min(np.abs(train[:, None] - test[None, :])) > 3


def test_zscoring_uses_training_statistics_only():
    from brainalign.encoding.scaling import _standardise

    rng = np.random.default_rng(4)
    train, test = rng.normal(5, 3, (100, 4)), rng.normal(-50, 10, (20, 4))
    z_train, z_test = _standardise(train, test)
    np.testing.assert_allclose(z_test, (test - train.mean(0)) / train.std(0))
    np.testing.assert_allclose(z_train.mean(0), 0, atol=1e-12)
    assert abs(z_test.mean()) > 5  # the test fold keeps its offset: its own statistics were not used


def test_pearson_columns_matches_scipy_and_flags_constant():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((50, 3)), rng.standard_normal((50, 3))
    b[:, 2] = 1.0
    r = pearson_columns(a, b)
    for j in range(2):
        assert abs(r[j] - pearsonr(a[:, j], b[:, j]).statistic) < 1e-12
    assert np.isnan(r[2])


def test_nested_layer_choice_finds_the_informative_layer(tmp_path):
    """Three layers, only the middle one carries the signal: best and nested rows pick it."""
    import json

    import pandas as pd

    from brainalign.datasets.base import PreparedDataset
    from brainalign.encoding.layer_fits import fit_layer

    rng = np.random.default_rng(6)
    n = 400
    stimuli = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)], "text": ["x"] * n, "group": [f"g{i // 4}" for i in range(n)],
                            "position": np.arange(n) % 4})
    informative = rng.standard_normal((n, 10))
    y = informative @ rng.standard_normal(10) + rng.standard_normal(n)
    dataset = PreparedDataset(stimuli, y[None, :, None].astype(np.float32), ["average"], ["lang"], meta={"kind": "sentence", "name": "toy"})
    names = ["l0", "l1", "l2"]
    (tmp_path / "part0").mkdir()
    for name, features in zip(names, [rng.standard_normal((n, 10)), informative, rng.standard_normal((n, 10))]):
        result = fit_layer(features, dataset, {"n_bootstrap": 50})
        result["layer"] = name
        (tmp_path / "part0" / f"{name}.json").write_text(json.dumps(result))
    ceiling = tmp_path / "ceiling.json"
    ceiling.write_text(json.dumps({"ceiling": 0.8}))
    table = score_layers_file([tmp_path / "part0"], ceiling, tmp_path / "scores.csv", "toy-model", "toy", names)
    best = table[(table["selection"] == "best") & (table["metric"] == "linear")]
    nested = table[(table["selection"] == "nested")]
    assert set(best["layer"]) == {"l1"} and set(nested["layer"]) == {"l1"}
    # the nested row's CI is its own estimator's (here l1 in every fold: l1's CI, up to the float32 draws it is read from)
    for protocol in ("ridge-grouped", "brainscore-2023"):
        n_row, b_row = (part[part["protocol"] == protocol].iloc[0] for part in (nested, best))
        assert n_row["ci_low"] < n_row["raw_r"] < n_row["ci_high"]
        assert (n_row["ci_low"], n_row["ci_high"]) == pytest.approx((b_row["ci_low"], b_row["ci_high"]), abs=2e-6)
    ridge = best[best["protocol"] == "ridge-grouped"].iloc[0]
    assert abs(ridge["normalised"] - ridge["raw_r"] / 0.8) < 1e-12
    assert len(table[(table["selection"] == "layer") & (table["metric"] == "linear")]) == 6


def test_layer_with_few_distinct_rows_is_flagged(caplog):
    """A last-token readout of the embedding layer gives the same row for every stimulus ending in '.': the layer
    result says how many distinct rows there were, and a warning says the score is chance."""
    import pandas as pd

    from brainalign.datasets.base import PreparedDataset
    from brainalign.encoding.layer_fits import fit_layer

    rng = np.random.default_rng(8)
    n = 120
    stimuli = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)], "text": ["x."] * n, "group": [f"g{i // 4}" for i in range(n)],
                            "position": np.arange(n) % 4})
    dataset = PreparedDataset(stimuli, rng.standard_normal((1, n, 3)).astype(np.float32), ["average"], ["a", "b", "c"],
                              meta={"kind": "sentence", "name": "toy"})
    options = {"n_bootstrap": 0, "protocols": ["ridge-grouped"], "similarity": False}
    three_rows = rng.standard_normal((3, 8))[rng.integers(0, 3, n)]
    with caplog.at_level("WARNING", logger="brainalign.encoding"):
        flagged = fit_layer(three_rows, dataset, options)
    assert flagged["distinct_feature_rows"] == 3 and "only 3 distinct feature rows among 120 samples" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="brainalign.encoding"):
        ordinary = fit_layer(rng.standard_normal((n, 8)), dataset, options)
    assert ordinary["distinct_feature_rows"] == n and "distinct feature rows" not in caplog.text


def test_grouped_folds_are_computed_once_per_job_and_read_only():
    """Every layer of a job asks for the same folds: the second call hands out the first call's arrays (read-only, so
    no caller can change another's folds); string groups are keyed by content, not by object identity."""
    groups = np.array([f"passage{i // 4}" for i in range(40)], dtype=object)
    first = grouped_folds(groups, 5, seed=3)
    again = grouped_folds(np.array([f"passage{i // 4}" for i in range(40)], dtype=object), 5, seed=3)
    assert all(a[0] is b[0] and a[1] is b[1] for a, b in zip(first, again))
    assert not first[0][0].flags.writeable
    other = grouped_folds(groups, 5, seed=4)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(first, other))
    from sklearn.model_selection import GroupKFold

    expected = list(GroupKFold(n_splits=5, shuffle=True, random_state=3).split(np.zeros(40), groups=groups))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, expected))


def test_sentence_bootstrap_resamples_whole_passages():
    """Issue 19: sentences nested in passages are resampled passage by passage (the layer design's units are the CV
    groups); unique groups keep the old per-sample draws exactly. With passage-level shared noise, the passage CI
    is wider than the sentence CI."""
    from brainalign.encoding.folds import fold_units, grouped_folds
    from brainalign.encoding.protocols.scoring import cross_validated_score

    rng = np.random.default_rng(0)
    groups = np.repeat([f"p{i:02d}" for i in range(40)], 5)
    passage_noise = np.repeat(rng.standard_normal((40, 4)), 5, axis=0)
    x = np.repeat(rng.standard_normal((40, 6)), 5, axis=0) + 0.3 * rng.standard_normal((200, 6))  # passage topics
    y = x[:, :1] @ np.ones((1, 4)) + 2.0 * passage_noise + rng.standard_normal((200, 4))
    folds = grouped_folds(groups, 5, 0)
    assert fold_units(folds, np.arange(200)) is None and len(fold_units(folds, groups)) == 5
    options = {"n_bootstrap": 300, "feature_scaling": "zscore", "protocols": ["ridge-grouped"]}
    by_sentence = cross_validated_score(x, y, groups, "ridge-grouped", options)
    by_passage = cross_validated_score(x, y, groups, "ridge-grouped", options, units=groups)
    assert by_passage["score"] == by_sentence["score"]
    assert (by_passage["ci_high"] - by_passage["ci_low"]) > 1.3 * (by_sentence["ci_high"] - by_sentence["ci_low"])
    same = cross_validated_score(x, y, groups, "ridge-grouped", options, units=np.arange(200))
    assert (same["ci_low"], same["ci_high"]) == (by_sentence["ci_low"], by_sentence["ci_high"])
