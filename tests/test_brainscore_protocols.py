"""Brain-Score Language 2.3.0's metrics as protocols (brainscore-ridge, -ridge-shuffle, -linear-shuffle, -rdm,
-cka), its splits, and its extrapolation ceiling: each against a slow sklearn/scipy reference in-process, against
planted ground truth, and against Brain-Score's own code on the same NeuroidAssemblies when its environment
(/tmp/bsl) exists (tests/support/bsl_protocols.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainalign.datasets.base import PreparedDataset
from brainalign.encoding.brainscore_ceiling import brainscore_extrapolation_ceiling, holdout_scores, neuroid_choices
from brainalign.encoding.protocols.brainscore_splits import BrainscoreSplit, brainscore_split, group_kfold, shuffle_split
from brainalign.encoding.protocols.scoring import cross_validated_score
from brainalign.encoding.ridge_gcv import BRAINSCORE_ALPHAS, ridge_gcv
from brainalign.errors import BrainalignError

BSL_PYTHON = Path("/tmp/bsl/bin/python")
SCRIPT = Path(__file__).parent / "support" / "bsl_protocols.py"
OPTIONS = {"n_bootstrap": 0, "dtype": "float64"}
NAMES = ["brainscore-ridge", "brainscore-linear-shuffle", "brainscore-ridge-shuffle", "brainscore-rdm", "brainscore-cka"]


def problem(seed=0, n=120, p=30, k=12, n_groups=12, noise=2.0, subjects=3):
    rng = np.random.RandomState(seed)
    story = np.array([f"st{i % n_groups:02d}" for i in rng.permutation(n)])
    x = rng.randn(n, p)
    y = x @ (rng.randn(p, k) * 0.3) + rng.randn(n, k) * noise
    subject = np.array([f"sub{j % subjects}" for j in range(k)])
    return x, y, story, subject


def ours(x, y, story, splits=5):
    scores = {"brainscore-ridge": cross_validated_score(
        x, y, story, "brainscore-ridge", OPTIONS, folds=group_kfold(BrainscoreSplit("t", "story", story, splits), "t"))["score"]}
    for name in NAMES[1:]:
        scores[name] = cross_validated_score(x, y, None, name, OPTIONS)["score"]
    return scores


# ------------------------------------------------------------------------------------------- slow references
def bs_pearson(a, b):
    a, b = a - a.mean(0), b - b.mean(0)
    return ((a / (np.linalg.norm(a, axis=0) + 1e-8)) * (b / (np.linalg.norm(b, axis=0) + 1e-8))).sum(0)


def reference(x, y, story, splits=5):
    """Brain-Score's metrics written with sklearn / scipy, as its code composes them."""
    from scipy.stats import spearmanr
    from sklearn.linear_model import LinearRegression, RidgeCV
    from sklearn.model_selection import GroupKFold, ShuffleSplit

    def regressed(model, splitter, **kwargs):
        per_split = []
        for train, test in splitter.split(np.zeros(len(x)), **kwargs):
            predicted = model.fit(x[train], y[train]).predict(x[test])
            per_split.append(np.median(bs_pearson(predicted, y[test])))
        return float(np.mean(per_split))

    def test_only(metric):
        return float(np.mean([metric(x[test], y[test])
                              for _, test in ShuffleSplit(10, test_size=0.9, random_state=1).split(np.zeros(len(x)))]))

    def rdm(a, b):
        iu = np.triu_indices(len(a), k=1)
        return spearmanr((1 - np.corrcoef(a))[iu], (1 - np.corrcoef(b))[iu])[0]

    def cka(a, b):
        h = np.eye(len(a)) - np.ones((len(a), len(a))) / len(a)
        hsic = lambda p, q: np.sum((h @ p @ p.T @ h) * (h @ q @ q.T @ h))  # noqa: E731
        return hsic(a, b) / np.sqrt(hsic(a, a) * hsic(b, b))

    shuffle = ShuffleSplit(10, train_size=0.9, random_state=1)
    return {"brainscore-ridge": regressed(RidgeCV(alphas=np.logspace(-3, 3, 7)),
                                          GroupKFold(splits, shuffle=True, random_state=1234), groups=story),
            "brainscore-linear-shuffle": regressed(LinearRegression(), shuffle),
            "brainscore-ridge-shuffle": regressed(RidgeCV(alphas=np.logspace(-3, 3, 7)), shuffle),
            "brainscore-rdm": test_only(rdm), "brainscore-cka": test_only(cka)}


# ------------------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("n,p", [(60, 20), (40, 90)])
def test_ridge_gcv_equals_sklearn_ridgecv_and_brute_force_loo(n, p):
    from sklearn.linear_model import Ridge, RidgeCV

    rng = np.random.RandomState(n)
    x = rng.randn(n + 10, p) * 2 + 1
    y = x[:, :3] @ rng.randn(3, 4) + rng.randn(n + 10, 4) * 3
    fit = ridge_gcv(x[:n], y[:n])
    theirs = RidgeCV(alphas=BRAINSCORE_ALPHAS).fit(x[:n], y[:n])
    assert fit.alpha == theirs.alpha_
    assert np.abs(fit.predict(x[n:]) - theirs.predict(x[n:])).max() < 1e-9
    # leave-one-out predictions by refitting without each stimulus
    brute = np.array([Ridge(alpha=fit.alpha).fit(np.delete(x[:n], i, 0), np.delete(y[:n], i, 0)).predict(x[i:i + 1])[0]
                      for i in range(n)])
    assert np.abs(fit.loo_predictions - brute).max() < 1e-8
    assert fit.loo_errors.min() == pytest.approx(-theirs.best_score_, rel=1e-10)


def test_splits_equal_sklearns():
    from sklearn.model_selection import GroupKFold, ShuffleSplit

    groups = np.array([f"g{i % 7}" for i in np.random.RandomState(0).permutation(50)])
    ours_ = group_kfold(BrainscoreSplit("t", "g", groups, 5), "t")
    theirs = list(GroupKFold(5, shuffle=True, random_state=1234).split(np.zeros(50), groups=groups))
    assert all(np.array_equal(a[1], b[1]) and np.array_equal(np.sort(a[0]), b[0]) for a, b in zip(ours_, theirs))
    for kwargs in ({"train_size": 0.9}, {"train_size": None, "test_size": 0.9}):
        theirs = list(ShuffleSplit(10, random_state=1, **kwargs).split(np.zeros(53)))
        assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
                   for a, b in zip(shuffle_split(53, **kwargs), theirs))
    order = np.random.RandomState(1).permutation(53)  # sample i sits at Brain-Score's position order[i]
    for (train, test), (train_bs, test_bs) in zip(shuffle_split(53, order=order), shuffle_split(53)):
        assert np.array_equal(order[train], train_bs) and np.array_equal(order[test], test_bs)
    with pytest.raises(BrainalignError, match="at least as many groups"):
        group_kfold(BrainscoreSplit("t", "g", groups, 8), "t")
    # an integer split_coord (Fedorenko2016's sentence_id) is sorted as numbers, as GroupKFold sorts it
    ds, _ = dataset({"split_coord": "sentence_id"})
    ds.stimuli["sentence_id"] = np.arange(48) // 3  # 16 sentences: "10" < "2" as text
    split = brainscore_split(ds, 48)
    theirs = list(GroupKFold(10, shuffle=True, random_state=1234).split(np.zeros(48), groups=np.arange(48) // 3))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(group_kfold(split, "t"), theirs))


def test_protocols_equal_the_sklearn_reference():
    x, y, story, _ = problem(seed=3)
    ours_, theirs = ours(x, y, story), reference(x, y, story)
    for name in NAMES:
        assert abs(ours_[name] - theirs[name]) < 1e-9, name


def test_planted_signal_recovered_and_shuffled_features_score_chance():
    x, y, story, _ = problem(seed=4, noise=0.5)
    planted = ours(x, y, story)
    shuffled = ours(x[np.random.RandomState(0).permutation(len(x))], y, story)
    for name in NAMES[:3]:
        assert planted[name] > 0.7 and abs(shuffled[name]) < 0.2, name
    assert planted["brainscore-cka"] > 0.5 > shuffled["brainscore-cka"] and planted["brainscore-rdm"] > 0.3


def test_rdm_and_cka_equal_direct_numpy_scipy_on_one_split():
    from scipy.stats import spearmanr

    from brainalign.encoding.protocols.brainscore_rsa import rdm_spearman
    from brainalign.encoding.similarity import linear_cka

    rng = np.random.RandomState(5)
    a, b = rng.randn(30, 8), rng.randn(30, 5)
    iu = np.triu_indices(30, k=1)
    assert rdm_spearman(a, b) == pytest.approx(spearmanr((1 - np.corrcoef(a))[iu], (1 - np.corrcoef(b))[iu])[0], abs=1e-12)
    h = np.eye(30) - 1 / 30
    k_a, k_b = h @ a @ a.T @ h, h @ b @ b.T @ h
    assert linear_cka(a, b) == pytest.approx((k_a * k_b).sum() / np.sqrt((k_a * k_a).sum() * (k_b * k_b).sum()), abs=1e-12)
    assert np.isnan(rdm_spearman(a[:, :1], b))  # one feature: np.corrcoef's NaN, as Brain-Score's


def dataset(meta_extra=None, order=True, n=48, subjects=3, per=2, seed=6):
    rng = np.random.RandomState(seed)
    shared = rng.randn(n, per)
    responses = np.stack([shared + 0.7 * rng.randn(n, per) for _ in range(subjects)]).astype(np.float32)
    stimuli = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)], "text": [f"w{i}" for i in range(n)],
                            "group": [f"p{i // 4}" for i in range(n)], "position": [i % 4 for i in range(n)],
                            "story": [f"st{i // 8}" for i in range(n)]})
    if order:
        stimuli["brainscore_order"] = rng.permutation(n)
    meta = {"name": "planted", "kind": "sentence", "description": "", "source": "", "licence": "", "provenance": "",
            "context": "group", "group_averaged": False, **(meta_extra or {})}
    return PreparedDataset(stimuli, responses, [f"sub{s}" for s in range(subjects)], [f"n{j}" for j in range(per)],
                           meta=meta), shared


def test_layer_path_uses_split_coord_and_brainscore_order():
    from brainalign.encoding.layer_fits import fit_layer

    ds, shared = dataset({"split_coord": "story", "split_folds": 3})
    features = (shared @ np.random.RandomState(0).randn(2, 10) + np.random.RandomState(1).randn(48, 10)).astype(np.float32)
    options = {**OPTIONS, "protocols": ["brainscore-ridge", "brainscore-linear-shuffle"], "similarity": False}
    result = fit_layer(features, ds, options)
    assert "brainscore_split" not in result
    y = np.transpose(ds.responses, (1, 0, 2)).reshape(48, -1)
    story = ds.stimuli["story"].to_numpy()
    folds = group_kfold(BrainscoreSplit("planted", "story", story, 3), "t")
    assert result["protocols"]["brainscore-ridge"]["score"] == pytest.approx(
        cross_validated_score(features, y, None, "brainscore-ridge", OPTIONS, folds=folds)["score"], abs=1e-12)
    # the shuffle splits are drawn over Brain-Score's order: the same as scoring the rows put back in that order
    back = np.argsort(ds.stimuli["brainscore_order"].to_numpy())
    assert result["protocols"]["brainscore-linear-shuffle"]["score"] == pytest.approx(
        cross_validated_score(features[back], y[back], None, "brainscore-linear-shuffle", OPTIONS)["score"], abs=1e-12)


def test_missing_split_coord_is_a_one_line_error_naming_the_dataset():
    from brainalign.encoding.layer_fits import fit_layer

    ds, _ = dataset()
    with pytest.raises(BrainalignError, match="dataset planted: .*needs meta.json key 'split_coord'") as error:
        fit_layer(np.random.RandomState(0).randn(48, 5), ds, {**OPTIONS, "protocols": ["brainscore-ridge"]})
    assert "\n" not in str(error.value)
    bad, _ = dataset({"split_coord": "passage"})
    with pytest.raises(BrainalignError, match="split_coord 'passage' is not a stimuli column"):
        brainscore_split(bad, 48)


def test_ceiling_choices_equal_an_sklearn_reference_and_planted_ceiling_recovered():
    from sklearn.linear_model import RidgeCV

    ds, _ = dataset()
    y = np.transpose(ds.responses, (1, 0, 2)).reshape(48, -1).astype(np.float64)
    subjects = np.repeat(["sub0", "sub1", "sub2"], 2)
    folds = group_kfold(BrainscoreSplit("planted", "story", ds.stimuli["story"].to_numpy(), 3), "t")
    choices = neuroid_choices(holdout_scores(y, subjects, "brainscore-ridge", folds), 6)
    expected = {}
    for n, combinations in ((2, [("sub0", "sub1"), ("sub0", "sub2")]), (3, [("sub0", "sub1", "sub2")])):
        values = []
        for combination in combinations:
            pool = np.isin(subjects, [s for s in combination if s != "sub0"])
            for train, test in folds:
                predicted = RidgeCV(alphas=BRAINSCORE_ALPHAS).fit(y[train][:, pool], y[train][:, :2]).predict(y[test][:, pool])
                values.append(bs_pearson(predicted, y[test][:, :2])[0])
        expected[n] = np.array(values)
    assert sorted(choices[0]) == [2, 3]
    assert all(np.abs(choices[0][n] - expected[n]).max() < 1e-9 for n in expected)
    # planted: 5 subjects = one shared response + noise of s.d. sigma; the ceiling of one subject is 1/sqrt(1+sigma^2),
    # which Brain-Score's exponential curve approaches from below
    ceilings = []
    for sigma in (0.5, 1.0):
        rng = np.random.RandomState(1)
        shared = rng.randn(90, 1)
        planted = np.hstack([shared + sigma * rng.randn(90, 1) for _ in range(5)])
        story = np.array([f"st{i % 9}" for i in range(90)])
        result = brainscore_extrapolation_ceiling(planted, [f"sub{s}" for s in range(5)], "brainscore-ridge",
                                                  group_kfold(BrainscoreSplit("t", "story", story, 3), "t"), n_bootstraps=20)
        truth = 1 / np.sqrt(1 + sigma**2)
        assert 0.75 * truth < result["ceiling"] < truth + 0.02
        ceilings.append(result["ceiling"])
    assert ceilings[0] > ceilings[1]


def test_ceiling_option_runs_brainscore_extrapolation():
    from brainalign.encoding.ceilings import compute_ceiling

    ds, _ = dataset({"split_coord": "story", "split_folds": 3}, subjects=3, per=1)
    result = compute_ceiling(ds, {"method": "brainscore-extrapolation", "metric": "brainscore-ridge", "n_bootstrap": 10})
    assert result["method"] == "brainscore-extrapolation" and 0 < result["ceiling"] <= 1 and len(result["per_neuroid"]) == 3
    y = ds.responses[:, :, 0].T.astype(np.float64)
    folds = group_kfold(BrainscoreSplit("planted", "story", ds.stimuli["story"].to_numpy(), 3), "t")
    assert result["ceiling"] == brainscore_extrapolation_ceiling(y, ["sub0", "sub1", "sub2"], "brainscore-ridge", folds,
                                                                 n_bootstraps=10)["ceiling"]
    with pytest.raises(BrainalignError, match="needs ceiling option 'metric'"):
        compute_ceiling(ds, {"method": "brainscore-extrapolation"})
    with pytest.raises(BrainalignError, match="not one of Brain-Score's regression protocols"):
        compute_ceiling(ds, {"method": "brainscore-extrapolation", "metric": "brainscore-rdm"})
    # voxels / electrodes that differ between subjects, stored pooled (Pereira, Fedorenko): the same ceiling
    pooled = PreparedDataset(ds.stimuli, y[None].astype(np.float32), ["pooled"], ["a", "b", "c"], meta=ds.meta,
                             neuroid_subjects=["sub0", "sub1", "sub2"])
    assert compute_ceiling(pooled, {"method": "brainscore-extrapolation", "metric": "brainscore-ridge",
                                    "n_bootstrap": 10})["ceiling"] == result["ceiling"]


@pytest.fixture(scope="module")
def bsl_scores(tmp_path_factory):
    """Brain-Score's own metrics (and its ExtrapolationCeiling with ridge_pearsonr) on one problem."""
    if not BSL_PYTHON.exists():
        pytest.skip("Brain-Score Language's environment /tmp/bsl is absent (python3 -m venv /tmp/bsl && "
                    "/tmp/bsl/bin/pip install brainscore-language==2.3.0): parity with its own code not checked")
    folder = tmp_path_factory.mktemp("bsl")
    x, y, story, subject = problem(seed=7, k=3, subjects=3, n_groups=10)
    np.savez(folder / "problem.npz", x=x, y=y, story=story, subject=subject, splits=5, ceiling=1)
    subprocess.run([str(BSL_PYTHON), str(SCRIPT), str(folder / "problem.npz"), str(folder / "out.json")], check=True,
                   capture_output=True, timeout=600)
    return (x, y, story, subject), json.loads((folder / "out.json").read_text())


def test_protocols_equal_brainscores_own_metrics(bsl_scores):
    (x, y, story, _), theirs = bsl_scores
    ours_ = ours(x, y, story)
    for name in NAMES:
        assert abs(ours_[name] - theirs[name]) <= 1e-6, (name, ours_[name], theirs[name])


def test_ceiling_equals_brainscores_extrapolation_ceiling(bsl_scores):
    (x, y, story, subject), theirs = bsl_scores
    folds = group_kfold(BrainscoreSplit("t", "story", story, 5), "t")
    ceiling = brainscore_extrapolation_ceiling(y, subject, "brainscore-ridge", folds)["ceiling"]
    assert abs(ceiling - theirs["ceiling"]) <= 1e-6, (ceiling, theirs["ceiling"])


def test_a_dataset_entry_selects_the_protocols_and_brainscores_ceiling():
    import copy

    import yaml

    from brainalign.config import ConfigError, load_and_check
    from brainalign.options import CeilingOptions, ceiling_options, dataset_encoding_options

    repo = Path(__file__).resolve().parents[1]
    base = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    adapters = {entry["adapter"]: None for entry in base["datasets"]}
    config = copy.deepcopy(base)
    name = config["datasets"][0]["name"]
    config["datasets"][0]["encoding"] = {"protocols": ["brainscore-ridge", "brainscore-linear-shuffle"], "extras_layers": "all"}
    config["datasets"][0]["ceiling"] = {"method": "brainscore-extrapolation", "metric": "brainscore-ridge"}
    config = load_and_check(config, adapters)
    assert dataset_encoding_options(config, name)["protocols"] == ["brainscore-ridge", "brainscore-linear-shuffle"]
    options = CeilingOptions.from_dict(ceiling_options(config, name))
    assert (options.method, options.metric) == ("brainscore-extrapolation", "brainscore-ridge")
    other = config["datasets"][1]["name"] if len(config["datasets"]) > 1 else None
    if other:
        assert CeilingOptions.from_dict(ceiling_options(config, other)).metric is None
    bad = copy.deepcopy(base)
    bad["datasets"][0]["ceiling"] = {"method": "brainscore"}
    with pytest.raises(ConfigError, match="ceiling"):
        load_and_check(bad, adapters)


def _stored(y, story, subject):
    """A pooled prepared dataset of ``y`` (its responses stored float32, as every prepared dataset's are)."""
    n, k = y.shape
    stimuli = pd.DataFrame({"stimulus_id": [f"s{i:04d}" for i in range(n)], "text": [f"w{i}" for i in range(n)],
                            "group": list(story), "position": [0] * n, "story": list(story)})
    meta = {"name": "planted", "kind": "sentence", "description": "", "source": "", "licence": "", "provenance": "",
            "context": "group", "group_averaged": False, "split_coord": "story", "split_folds": 5}
    return PreparedDataset(stimuli, y[None].astype(np.float32), ["pooled"], [f"n{j:04d}" for j in range(k)], meta=meta,
                           neuroid_subjects=list(subject))


def test_ceiling_reads_the_stored_float32_responses():
    """The ceiling of a prepared dataset is Brain-Score's procedure on the responses as stored (float32), not on the
    assembly's float64 values: the extrapolation is discontinuous in its inputs (a bootstrap's curve fit that exhausts
    scipy's evaluations makes its neuroid NaN, left out of the median), so parity holds for the same values only."""
    from brainalign.encoding.ceilings import compute_ceiling

    x, y, story, subject = problem(seed=4, n=60, k=6, subjects=3, n_groups=10, noise=4.0)
    result = compute_ceiling(_stored(y, story, subject), {"method": "brainscore-extrapolation",
                                                          "metric": "brainscore-ridge", "n_bootstrap": 100})
    folds = group_kfold(BrainscoreSplit("t", "story", story, 5), "t")
    stored = brainscore_extrapolation_ceiling(y.astype(np.float32).astype(np.float64), subject, "brainscore-ridge", folds)
    assert result["ceiling"] == stored["ceiling"]
    np.testing.assert_array_equal(result["per_neuroid"], stored["per_neuroid"])
    assert np.isnan(result["per_neuroid"]).sum() == 1  # this problem has one neuroid whose bootstrap fit fails


def test_a_failed_bootstrap_fit_makes_its_neuroid_nan_and_the_median_skips_it(monkeypatch):
    """Brain-Score: a fit that raises (scipy's RuntimeError when max_nfev is exceeded) gives that bootstrap NaN
    parameters; the neuroid's ceiling is numpy's median over bootstraps (NaN with one NaN), and the ceiling the
    median over the other neuroids (xarray's median skips NaN)."""
    import scipy.optimize

    from brainalign.encoding import brainscore_ceiling as module

    x, y, story, subject = problem(seed=0, n=60, k=6, subjects=3, n_groups=10, noise=1.0)
    folds = group_kfold(BrainscoreSplit("t", "story", story, 5), "t")
    choices = neuroid_choices(holdout_scores(y, subject, "brainscore-ridge", folds), 6)
    clean = [module.extrapolate_neuroid(c, n_bootstraps=20) for c in choices]
    assert np.isfinite(clean).all()
    real_fit, calls = scipy.optimize.curve_fit, []

    def failing_fit(*args, **kwargs):  # the 7th fit (of the first neuroid's 20 bootstraps) fails
        calls.append(1)
        if len(calls) == 7:
            raise RuntimeError("Optimal parameters not found: The maximum number of function evaluations is exceeded.")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "curve_fit", failing_fit)
    calls.clear()
    assert np.isnan(module.extrapolate_neuroid(choices[0], n_bootstraps=20))
    calls.clear()
    result = brainscore_extrapolation_ceiling(y, subject, "brainscore-ridge", folds, n_bootstraps=20)
    per_neuroid = np.array(result["per_neuroid"])
    assert np.isnan(per_neuroid[0]) and np.allclose(per_neuroid[1:], clean[1:], rtol=0, atol=1e-12)
    assert result["ceiling"] == float(np.median(clean[1:]))  # 5 neuroids left: their middle one, not the 6's mean of two
    assert result["ceiling"] != float(np.median(clean))


@pytest.fixture(scope="module")
def bsl_stored_ceiling(tmp_path_factory):
    """Brain-Score's ExtrapolationCeiling (ridge_pearsonr, grouped K-fold) on responses rounded to float32 as a
    prepared dataset stores them, on a problem where one neuroid's bootstrap fit fails."""
    if not BSL_PYTHON.exists():
        pytest.skip("Brain-Score Language's environment /tmp/bsl is absent: parity with its own code not checked")
    folder = tmp_path_factory.mktemp("bsl_stored")
    x, y, story, subject = problem(seed=4, n=60, k=6, subjects=3, n_groups=10, noise=4.0)
    stored = y.astype(np.float32).astype(np.float64)
    np.savez(folder / "problem.npz", x=x, y=stored, story=story, subject=subject, splits=5, ceiling=1)
    subprocess.run([str(BSL_PYTHON), str(SCRIPT), str(folder / "problem.npz"), str(folder / "out.json")], check=True,
                   capture_output=True, timeout=600)
    return (y, story, subject), json.loads((folder / "out.json").read_text())


def test_dataset_ceiling_equals_brainscores_per_neuroid_on_the_stored_responses(bsl_stored_ceiling):
    from brainalign.encoding.ceilings import compute_ceiling

    (y, story, subject), theirs = bsl_stored_ceiling
    result = compute_ceiling(_stored(y, story, subject), {"method": "brainscore-extrapolation",
                                                          "metric": "brainscore-ridge", "n_bootstrap": 100})
    theirs_per_neuroid = np.array([theirs["ceiling_per_neuroid"][f"n{j:04d}"] for j in range(y.shape[1])])
    ours_per_neuroid = np.array(result["per_neuroid"])
    assert np.isnan(theirs_per_neuroid).sum() == 1  # the discontinuity is exercised
    np.testing.assert_array_equal(np.isnan(ours_per_neuroid), np.isnan(theirs_per_neuroid))
    finite = np.isfinite(theirs_per_neuroid)
    assert np.abs(ours_per_neuroid[finite] - theirs_per_neuroid[finite]).max() <= 1e-6
    assert abs(result["ceiling"] - theirs["ceiling"]) <= 1e-6, (result["ceiling"], theirs["ceiling"])
