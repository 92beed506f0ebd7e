"""Wehbe et al. 2014: the adapter's word groups are the scans' runs (so words reach their scans), and the paper's
pipeline (Aw & Toneva's BLS code) as encoding protocol ``wehbe-2014``: planted truth through adapter + fit_layer,
each step checked on its own (PCA on training words, trimming, fold gaps, the inner ridge against sklearn, the
aggregation), and its registration and configuration.

The raw files are synthetic, in the real CMU format (subject_N.mat with data, time, words; BLS ROI indices)."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from brainalign.datasets import load_prepared, prepare_dataset
from brainalign.encoding import timeseries as ts
from brainalign.encoding.design import layer_design
from brainalign.encoding.protocols import wehbe_2014 as P
from brainalign.encoding.protocols.registry import PROTOCOLS, default_protocols, get_protocol
from brainalign.encoding.protocols.scoring import cross_validated_score
from brainalign.errors import BrainalignError
from brainalign.options import EncodingOptions

REPO = Path(__file__).resolve().parents[1]
TR = 2.0
LETTERS = ("F", "H", "I", "J", "K", "L", "M", "N")


def write_raw(folder: Path, n_runs=4, trs_per_run=12, lead=2, tail=1, n_vox=4, responses=None) -> dict:
    """subject_{1..8}.mat + HP_subj_roi_inds.npy: ``n_runs`` runs of ``trs_per_run`` 2 s scans, words every 0.5 s
    from ``lead`` scans into each run to ``tail`` scans before its end. ``responses(times, runs, onsets, letter)`` ->
    scans x voxels (default: noise)."""
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n = n_runs * trs_per_run
    times, runs = np.arange(n) * TR, np.repeat(np.arange(1, n_runs + 1), trs_per_run)
    onsets = np.concatenate([(r * trs_per_run + lead) * TR + 0.5 * np.arange((trs_per_run - lead - tail) * 4)
                             for r in range(n_runs)])
    words = np.zeros((1, len(onsets)), dtype=[("text", "O"), ("start", "O")])
    for i, onset in enumerate(onsets):
        words[0, i] = (np.array([f"w{i}"]), np.array([[onset]]))
    time = np.column_stack([times, runs]).astype(float)
    for number, letter in enumerate(LETTERS, 1):
        data = responses(times, runs, onsets, letter) if responses else rng.standard_normal((n, n_vox))
        savemat(folder / f"subject_{number}.mat", {"data": data.astype(np.float32), "time": time, "words": words})
    np.save(folder / "HP_subj_roi_inds.npy", {letter: {"all": np.arange(n_vox)} for letter in LETTERS}, allow_pickle=True)
    return {"times": times, "runs": runs, "onsets": onsets}


def prepared(tmp_path, **kwargs):
    raw = write_raw(tmp_path / "raw", **kwargs)
    prepare_dataset({"name": "wehbe2014", "adapter": "wehbe2014"}, tmp_path / "raw", tmp_path / "out")
    return load_prepared(tmp_path / "out"), raw


# ------------------------------------------------------------------------------------------------ adapter + design
def test_words_are_grouped_by_the_run_of_their_scans_and_every_run_gets_features(tmp_path):
    ds, raw = prepared(tmp_path)
    stimuli = ds.stimuli
    scan = np.searchsorted(ds.sample_times, stimuli["onset"].to_numpy(), side="right") - 1
    assert (stimuli["group"].to_numpy() == ds.sample_groups[scan]).all()
    assert set(stimuli["group"]) == set(ds.sample_groups) == {"run1", "run2", "run3", "run4"}
    assert (stimuli.groupby("group", sort=False)["position"].apply(lambda p: (p.to_numpy() == np.arange(len(p))).all())).all()
    features = np.random.default_rng(1).standard_normal((len(stimuli), 3))
    design, groups, _ = layer_design(features, ds, EncodingOptions.from_dict({}))
    for run in np.unique(ds.sample_groups):
        block = design[np.asarray(ds.sample_groups) == run]
        assert np.abs(block).sum() > 0, f"{run}: all-zero design block (no word reached its scans)"
    assert list(groups) == list(ds.sample_groups)


def test_a_run_whose_scans_get_no_words_is_refused(tmp_path):
    ds, _ = prepared(tmp_path)
    ds.stimuli["group"] = "hp9"  # the adapter's old, single word group
    with pytest.raises(BrainalignError, match=r"^dataset wehbe2014: run 'run1' has 12 scans but no word") as error:
        layer_design(np.ones((len(ds.stimuli), 2)), ds, EncodingOptions.from_dict({}))
    assert "\n" not in str(error.value)


# ------------------------------------------------------------------------------------------------ the steps
def test_trimming_drops_exactly_the_run_edges():
    groups = np.repeat(["run1", "run2", "run3"], [50, 60, 36])
    kept = ts.trimmed_scans(groups, 20, 15)
    starts = {"run1": 0, "run2": 50, "run3": 110}
    for run, length in (("run1", 50), ("run2", 60), ("run3", 36)):
        in_run = kept[groups[kept] == run]
        np.testing.assert_array_equal(in_run, np.arange(starts[run] + 20, starts[run] + length - 15))
    assert len(kept) == 146 - 3 * 35
    with pytest.raises(ValueError, match="run 'run3' has 36 scans, none left"):
        ts.trimmed_scans(groups, 20, 16)
    options = EncodingOptions.from_dict({"trim_run_edges": [20, 15]})
    np.testing.assert_array_equal(P.wehbe_kept_scans(groups, options), kept)
    with pytest.raises(BrainalignError, match=r"wehbe-2014: run 'run3' .*encoding.trim_run_edges: \[30, 15\]"):
        P.wehbe_kept_scans(groups, EncodingOptions.from_dict({"trim_run_edges": [30, 15]}))


def _bls_folds(n, n_folds, skip):
    """BLS's CV_ind and its skip logic, written out from its description (utils.py run_class_time_CV_...)."""
    ind = np.zeros(n)
    n_items = n // n_folds
    for i in range(n_folds - 1):
        ind[i * n_items:(i + 1) * n_items] = i
    ind[(n_folds - 1) * n_items:] = n_folds - 1
    out = []
    for k in range(n_folds):
        train, test = np.flatnonzero(ind != k), np.flatnonzero(ind == k)
        if k == 0:
            train = train[skip:]
        elif k == n_folds - 1:
            train = train[:-skip]
        else:
            test = test[skip:-skip]
        out.append((train, test))
    return out


@pytest.mark.parametrize("gap", [5, 10])
def test_the_fold_gap_drops_exactly_gap_scans_at_each_boundary(gap):
    n = 1211
    folds = P.wehbe_folds(n, 4, gap)
    size = n // 4
    blocks = [np.arange(0, size), np.arange(size, 2 * size), np.arange(2 * size, 3 * size), np.arange(3 * size, n)]
    for k, (train, test) in enumerate(folds):
        left_out = np.setdiff1d(np.arange(n), np.concatenate([train, test]))
        block = blocks[k]
        if k == 0:      # one boundary (after the test block): gap training scans dropped after it
            np.testing.assert_array_equal(test, block)
            np.testing.assert_array_equal(left_out, np.arange(block[-1] + 1, block[-1] + 1 + gap))
        elif k == 3:    # one boundary (before the test block): gap training scans dropped before it
            np.testing.assert_array_equal(test, block)
            np.testing.assert_array_equal(left_out, np.arange(block[0] - gap, block[0]))
        else:           # two boundaries: gap test scans dropped at each end (where BLS drops them)
            np.testing.assert_array_equal(test, block[gap:-gap])
            np.testing.assert_array_equal(left_out, np.concatenate([block[:gap], block[-gap:]]))
            np.testing.assert_array_equal(train, np.setdiff1d(np.arange(n), block))
        assert not np.intersect1d(train, test).size
    for (train, test), (bls_train, bls_test) in zip(folds, _bls_folds(n, 4, gap)):
        np.testing.assert_array_equal(train, bls_train)
        np.testing.assert_array_equal(test, bls_test)
    no_gap = P.wehbe_folds(n, 4, 0)
    assert all(len(train) + len(test) == n for train, test in no_gap)


def test_too_few_scans_per_run_is_one_line_error():
    groups = np.repeat(["run1", "run2", "run3", "run4"], 45)  # 10 scans per run after 20 + 15: middle test folds empty
    with pytest.raises(BrainalignError, match=r"^wehbe-2014: outer fold 1 has 0 test and 30 training scans of the 40") as e:
        P._wehbe_outer_folds(len(groups), groups, EncodingOptions.from_dict({}), 0, None)
    assert "\n" not in str(e.value)


def test_pca_matches_sklearn_and_is_fitted_on_training_words_only():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(2)
    for n, p in ((200, 30), (40, 90), (700, 600), (600, 700)):  # Gram of features / of samples; dense / Lanczos
        train = rng.standard_normal((n, p)) * np.linspace(3, 0.5, p)
        data = rng.standard_normal((70, p))
        ours = P.pca_projection(train, data, 10)
        theirs = PCA(10, svd_solver="full").fit(train).transform(data)
        signs = np.sign((ours * theirs).sum(0))
        np.testing.assert_allclose(ours * signs, theirs, atol=1e-8)


def _words(n_runs=4, trs_per_run=60, hidden=16, seed=3):
    from brainalign.encoding.design import WordLevel

    rng = np.random.default_rng(seed)
    n_scans = n_runs * trs_per_run
    onsets = np.concatenate([(r * trs_per_run + 1) * TR + 0.5 * np.arange((trs_per_run - 2) * 4) for r in range(n_runs)])
    groups = np.repeat([f"run{r + 1}" for r in range(n_runs)], trs_per_run)
    word_scans = ts.scan_of_events(onsets, np.arange(n_scans) * TR)
    return WordLevel(rng.standard_normal((len(onsets), hidden)), word_scans, groups, np.array(["a"]), "toy")


def test_changing_the_test_words_leaves_the_training_projection_unchanged():
    words = _words()
    options = EncodingOptions.from_dict({"trim_run_edges": [20, 15]})
    kept = P.wehbe_kept_scans(words.scan_groups, options)
    train_pos, test_pos = P.wehbe_folds(len(kept), 4, 5)[0]
    train_scans, test_scans = kept[train_pos], kept[test_pos]
    usable = np.arange(len(words.features)) >= 20
    in_train = usable & np.isin(words.word_scans, train_scans)
    in_test = usable & np.isin(words.word_scans, test_scans)
    assert in_train.sum() > 200 and in_test.sum() >= 100

    changed = copy.copy(words)
    object.__setattr__(changed, "features", words.features.copy())
    changed.features[in_test] = 50 * np.random.default_rng(4).standard_normal((in_test.sum(), words.features.shape[1]))
    before = P.pca_projection(words.features[in_train], words.features[in_train], 10)
    after = P.pca_projection(changed.features[in_train], changed.features[in_train], 10)
    np.testing.assert_array_equal(before, after)
    # through the fold's scan features: runs holding no test scan keep exactly their features
    a = P.wehbe_scan_features(words, train_scans, kept, options)
    b = P.wehbe_scan_features(changed, train_scans, kept, options)
    test_runs = set(words.scan_groups[test_scans])
    other_runs = np.isin(words.scan_groups, sorted(set(words.scan_groups) - test_runs))
    assert other_runs.sum() > 0
    np.testing.assert_allclose(a[other_runs], b[other_runs], atol=1e-12)
    assert not np.allclose(a[test_scans], b[test_scans])
    # a changed TRAINING word does change the projection (the check above is not vacuous)
    moved = copy.copy(words)
    object.__setattr__(moved, "features", words.features.copy())
    moved.features[np.flatnonzero(in_train)[:50]] *= 20
    c = P.wehbe_scan_features(moved, train_scans, kept, options)
    assert not np.allclose(a[other_runs], c[other_runs])


def test_scan_features_are_tr_means_delayed_trimmed_and_zscored_per_run():
    words = _words(hidden=12)
    options = EncodingOptions.from_dict({"trim_run_edges": [20, 15], "pca_components": 3, "delays": [1, 2]})
    kept = P.wehbe_kept_scans(words.scan_groups, options)
    train_scans = kept[P.wehbe_folds(len(kept), 4, 5)[1][0]]
    out = P.wehbe_scan_features(words, train_scans, kept, options)
    assert out.shape == (len(words.scan_groups), 6)
    assert not out[np.setdiff1d(np.arange(len(out)), kept)].any()
    for run in np.unique(words.scan_groups):
        rows = kept[words.scan_groups[kept] == run]
        np.testing.assert_allclose(out[rows].mean(0), 0, atol=1e-12)
        np.testing.assert_allclose(out[rows].std(0), 1, atol=1e-12)
    # by hand, for one scan: the mean of its words' projections, one and two scans back
    usable = np.arange(len(words.features)) >= 20
    training = usable & np.isin(words.word_scans, train_scans)
    projected = P.pca_projection(words.features[training], words.features, 3)
    raw = np.zeros((len(words.scan_groups), 3))
    for s in range(len(raw)):
        members = usable & (words.word_scans == s)
        raw[s] = projected[members].mean(0) if members.any() else 0
    delayed = np.hstack([np.roll(raw, 1, axis=0), np.roll(raw, 2, axis=0)])
    run1 = kept[words.scan_groups[kept] == "run1"]
    expected = (delayed[run1] - delayed[run1].mean(0)) / delayed[run1].std(0)
    np.testing.assert_allclose(out[run1], expected, atol=1e-10)


def test_kfold_splits_are_sklearns():
    from sklearn.model_selection import KFold

    for n in (100, 103, 907):
        for (a, b), (c, d) in zip(P.kfold_splits(n, 10), KFold(10).split(np.zeros(n))):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)


def test_inner_ridge_equals_sklearn_ridge_without_intercept_and_its_own_kfold_search():
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold

    rng = np.random.default_rng(5)
    n, p = 240, 8
    x = ts.zscore_columns(rng.standard_normal((n, p)) + 0.3 * rng.standard_normal((n, 1)))
    signal = x @ rng.standard_normal((p, 6))
    y = ts.zscore_columns(signal * np.array([3, 1, 0.3, 0.1, 0.03, 0.0]) + rng.standard_normal((n, 6)))
    alphas = np.asarray(P.WEHBE_ALPHAS)
    best, pooled, solver = P.ridge_cv_no_intercept(x, y, alphas, P.kfold_splits(n, 10))

    cost = np.zeros((len(alphas), y.shape[1]))
    predictions = np.zeros((len(alphas),) + y.shape)
    for train, test in KFold(10).split(x):
        for a, alpha in enumerate(alphas):
            model = Ridge(alpha=alpha, fit_intercept=False).fit(x[train], y[train])
            predictions[a, test] = model.predict(x[test])
            cost[a] += 1 - r2_score(y[test], predictions[a, test], multioutput="raw_values")
    np.testing.assert_array_equal(best, cost.argmin(0))
    for j in range(y.shape[1]):
        model = Ridge(alpha=alphas[best[j]], fit_intercept=False).fit(x, y[:, j])
        np.testing.assert_allclose(solver.weights(alphas[best[j]], [j])[:, 0], model.coef_, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(pooled[:, j], predictions[best[j], :, j], rtol=1e-7, atol=1e-10)
    x_test = rng.standard_normal((30, p))
    expected = np.column_stack([Ridge(alpha=alphas[best[j]], fit_intercept=False).fit(x, y[:, j]).predict(x_test)
                                for j in range(y.shape[1])])
    np.testing.assert_allclose(solver.predict_per_target(x_test, alphas, best), expected, rtol=1e-7, atol=1e-10)
    assert len(set(best)) > 1  # the penalties chosen differ between targets


# ------------------------------------------------------------------------------------------------ planted truth
def _planted_responses(features_f0, onsets, n_planted, noise=0.6, seed=7):
    """Responses of a reader: the first ``n_planted`` voxels follow f0's TR means 1-4 scans later; the rest noise."""
    weights = (0.5, 1.0, 0.8, 0.4)
    rng = np.random.default_rng(seed)

    def responses(times, runs, onsets_, letter):
        scans = ts.scan_of_events(onsets, times)
        mean = np.zeros(len(times))
        for s in range(len(times)):
            members = scans == s
            mean[s] = features_f0[members].mean() if members.any() else 0.0
        drive = sum(w * np.concatenate([np.zeros(d), mean[:-d]]) for d, w in enumerate(weights, 1))
        data = noise * rng.standard_normal((len(times), 6))
        data[:, :n_planted] += rng.uniform(0.8, 1.2, n_planted) * drive[:, None] / drive.std()
        return data

    return responses


def test_planted_signal_is_recovered_and_noise_voxels_score_zero(tmp_path):
    from brainalign.encoding.layer_fits import fit_layer

    n_runs, trs_per_run, lead, tail = 4, 90, 3, 2
    n_words = n_runs * (trs_per_run - lead - tail) * 4
    rng = np.random.default_rng(8)
    features = rng.standard_normal((n_words, 24))
    features[:, 0] *= 3.0  # the planted feature has the largest variance: the first principal component
    onsets = np.concatenate([(r * trs_per_run + lead) * TR + 0.5 * np.arange((trs_per_run - lead - tail) * 4)
                             for r in range(n_runs)])
    ds, _ = prepared(tmp_path, n_runs=n_runs, trs_per_run=trs_per_run, lead=lead, tail=tail, n_vox=6,
                     responses=_planted_responses(features[:, 0], onsets, n_planted=3))
    result = fit_layer(features, ds, {"protocols": ["wehbe-2014"], "n_bootstrap": 200, "similarity": False, "seed": 0})
    assert list(result["protocols"]) == ["wehbe-2014"]
    wehbe = result["protocols"]["wehbe-2014"]
    r = dict(zip(result["neuroids"], wehbe["neuroid_r"]))
    planted = [r[f"{s}.{v}"] for s in LETTERS for v in range(3)]
    noise = [r[f"{s}.{v}"] for s in LETTERS for v in range(3, 6)]
    assert min(planted) > 0.5 and np.mean(planted) > 0.7, planted
    assert abs(np.mean(noise)) < 0.05 and max(abs(v) for v in noise) < 0.35, noise
    assert len(wehbe["fold_scores"]) == 4 and len(wehbe["inner_scores"]) == 4
    assert wehbe["ci_low"] < wehbe["score"] < wehbe["ci_high"]
    # the aggregate by hand: mean over folds (neuroid_r), over each subject's voxels, then over subjects
    by_subject = [np.mean([r[f"{s}.{v}"] for v in range(6)]) for s in LETTERS]
    assert wehbe["score"] == pytest.approx(np.mean(by_subject), abs=1e-12)
    assert wehbe["score"] == pytest.approx(np.mean(wehbe["fold_scores"]), abs=1e-12)


def _bls_transcription(features, onsets, times, runs, data, n_folds=4, skip=5, skip_words=20):
    """Aw & Toneva's pipeline transcribed from its description, step by step on the TRIMMED data as BLS has it
    (utils.py run_class_time_CV_fmri_crossval_ridge, prepare_fmri_features, ridge_tools.cross_val_ridge), except
    the training-word rule: a word trains the PCA when its scan is a training scan (BLS shifts the scan index by
    one and wraps the words of trimmed scans around). Per-fold, per-voxel r (folds x voxels)."""
    from scipy.stats import zscore
    from sklearn.decomposition import PCA
    from sklearn.model_selection import KFold

    words_id = np.array([np.where(t > times)[0][-1] for t in onsets[skip_words:]])
    feats = features[skip_words:]
    kept = np.concatenate([np.flatnonzero(runs == r)[20:-15] for r in np.unique(runs)])
    n = len(kept)
    ind = np.full(n, n_folds - 1)
    for i in range(n_folds - 1):
        ind[i * (n // n_folds):(i + 1) * (n // n_folds)] = i
    lambdas = np.array([10.0 ** i for i in range(-6, 10)])
    corrs = []
    for k in range(n_folds):
        train_ind = ind != k
        train_rows, test_rows = np.flatnonzero(train_ind), np.flatnonzero(~train_ind)
        if k == 0:
            train_rows = train_rows[skip:]
        elif k == n_folds - 1:
            train_rows = train_rows[:-skip]
        else:
            test_rows = test_rows[skip:-skip]
        word_train = np.isin(words_id, kept[train_rows])
        pca = PCA(n_components=10, svd_solver="full").fit(feats[word_train])
        projected = pca.transform(feats)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # scans without words: NaN, as in BLS (none is kept)
            tmp = np.array([projected[words_id == i].mean(0) for i in range(len(times))])
        tmp = np.concatenate([np.vstack([np.zeros((d, 10)), tmp[:-d]]) for d in (1, 2, 3, 4)], axis=1)
        tmp = np.nan_to_num(np.vstack([zscore(tmp[runs == r][20:-15]) for r in np.unique(runs)]))
        x_train, x_test = np.nan_to_num(zscore(tmp[train_rows])), np.nan_to_num(zscore(tmp[test_rows]))
        y_train, y_test = np.nan_to_num(zscore(data[train_rows])), np.nan_to_num(zscore(data[test_rows]))
        cost = np.zeros((len(lambdas), data.shape[1]))
        for inner_train, inner_val in KFold(n_splits=10).split(y_train):
            xt, yt, xv, yv = x_train[inner_train], y_train[inner_train], x_train[inner_val], y_train[inner_val]
            for a, lam in enumerate(lambdas):
                w = np.linalg.inv(xt.T @ xt + lam * np.eye(xt.shape[1])) @ xt.T @ yt
                cost[a] += 1 - np.nan_to_num(1 - np.mean((yv - xv @ w) ** 2, 0) / np.var(yv, 0))
        chosen = cost.argmin(0)
        weights = np.zeros((x_train.shape[1], data.shape[1]))
        for a, lam in enumerate(lambdas):
            columns = chosen == a
            weights[:, columns] = np.linalg.inv(x_train.T @ x_train + lam * np.eye(x_train.shape[1])) @ x_train.T @ y_train[:, columns]
        corrs.append(np.mean(zscore(x_test @ weights) * zscore(y_test), 0))
    return np.array(corrs)


def test_equals_a_transcription_of_the_bls_pipeline(tmp_path):
    from brainalign.encoding.layer_fits import fit_layer

    n_runs, trs_per_run, lead, tail = 4, 70, 3, 2
    n_words = n_runs * (trs_per_run - lead - tail) * 4
    features = np.random.default_rng(9).standard_normal((n_words, 30)) * np.linspace(3, 1, 30)
    onsets = np.concatenate([(r * trs_per_run + lead) * TR + 0.5 * np.arange((trs_per_run - lead - tail) * 4)
                             for r in range(n_runs)])
    ds, raw = prepared(tmp_path, n_runs=n_runs, trs_per_run=trs_per_run, lead=lead, tail=tail, n_vox=3,
                       responses=_planted_responses(features[:, 1], onsets, n_planted=2, noise=1.0))
    result = fit_layer(features, ds, {"protocols": ["wehbe-2014"], "n_bootstrap": 0, "similarity": False})
    ours = result["protocols"]["wehbe-2014"]
    kept = np.concatenate([np.flatnonzero(raw["runs"] == r)[20:-15] for r in range(1, n_runs + 1)])
    theirs = _bls_transcription(features, onsets, raw["times"], raw["runs"], ds.responses[0][kept].astype(np.float64))
    assert np.isfinite(theirs).all()
    np.testing.assert_allclose(ours["neuroid_r"], theirs.mean(0), atol=1e-9)
    subjects = np.array(ds.neuroid_subjects)
    by_hand = [np.mean([fold[subjects == s].mean() for s in LETTERS]) for fold in theirs]
    np.testing.assert_allclose(ours["fold_scores"], by_hand, atol=1e-9)
    assert np.mean(theirs[:, subjects == "F"][:, :2]) > 0.3  # the planted voxels: not a comparison of noise


def test_subject_mean_is_per_subject_then_over_subjects():
    words = type("W", (), {"neuroid_subjects": np.array(["a", "a", "a", "b"])})()
    r = np.array([0.1, 0.2, 0.3, 0.9])
    assert P.subject_mean(r, words) == pytest.approx((0.2 + 0.9) / 2)  # not the voxel mean 0.375
    two = P.subject_mean(np.vstack([r, r * 2]), words)
    np.testing.assert_allclose(two, [0.55, 1.1])
    assert P.subject_mean(np.array([np.nan, 0.2, 0.3, 0.9]), words) == pytest.approx((0.25 + 0.9) / 2)


def test_word_level_protocol_refuses_sentence_data():
    import pandas as pd

    from brainalign.datasets.base import PreparedDataset
    from brainalign.encoding.layer_fits import fit_layer

    n = 40
    stimuli = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)], "text": ["x"] * n,
                            "group": [f"g{i // 4}" for i in range(n)], "position": np.arange(n) % 4})
    dataset = PreparedDataset(stimuli, np.ones((1, n, 2), np.float32) + np.arange(n)[None, :, None], ["avg"], ["a", "b"],
                              meta={"kind": "sentence", "name": "toy"})
    with pytest.raises(BrainalignError, match=r"^dataset toy: a word-level protocol \(wehbe-2014\) needs a time series"):
        fit_layer(np.random.default_rng(0).standard_normal((n, 3)), dataset, {"protocols": ["wehbe-2014"], "n_bootstrap": 0})
    with pytest.raises(BrainalignError, match="needs the word-level input"):
        cross_validated_score(np.zeros((n, 2)), np.zeros((n, 2)), protocol="wehbe-2014")


# ------------------------------------------------------------------------------------------------ registry + config
def test_the_protocol_is_registered_opt_in_and_in_the_schema():
    from brainalign import options as opts
    from brainalign.config import _with_registered_protocols

    assert "wehbe-2014" in PROTOCOLS and get_protocol("wehbe-2014").word_level
    assert "wehbe-2014" not in default_protocols() and {"ridge-grouped", "brainscore-2023"} <= set(default_protocols())
    encoding = _with_registered_protocols(opts.schema())["properties"]["encoding"]["properties"]
    enum = encoding["protocols"]["items"]["enum"]
    assert enum == list(PROTOCOLS) and enum[:3] == ["ridge-grouped", "brainscore-2023", "wehbe-2014"]
    assert opts.schema_defaults("encoding")["protocols"] == ["ridge-grouped", "brainscore-2023"]
    defaults = opts.schema_defaults("encoding")
    assert (defaults["gap"], defaults["pca_components"], defaults["skip_first_words"], defaults["trim_run_edges"]) == (5, 10, 20, [20, 15])


def _config(*names):
    config: dict = {}
    for name in names:
        for key, value in yaml.safe_load((REPO / "config" / name).read_text()).items():
            config[key] = value if not (isinstance(value, dict) and isinstance(config.get(key), dict)) else {**config[key], **value}
    return config


def test_a_config_selecting_wehbe_2014_for_one_dataset_validates():
    from brainalign import options as opts
    from brainalign.config import ConfigError, load_and_check

    config = load_and_check(_config("config.yaml", "paper.yaml"))
    assert opts.dataset_encoding_options(config, "wehbe2014")["protocols"] == ["wehbe-2014"]
    for other in ("pereira2018_243", "blank2014"):
        assert opts.dataset_encoding_options(config, other)["protocols"] == ["ridge-grouped", "brainscore-2023"]
    bad = _config("config.yaml", "paper.yaml")
    next(d for d in bad["datasets"] if d["name"] == "wehbe2014")["encoding"] = {"protocols": ["wehbe-2015"]}
    with pytest.raises(ConfigError, match=r"config.datasets\[\d\].encoding.protocols\[0\]"):
        load_and_check(bad)
    bad["datasets"][3]["encoding"] = {"trim_run_edges": [20]}
    with pytest.raises(ConfigError, match="trim_run_edges"):
        load_and_check(bad)
