"""Issue 19: a time series' baseline (word rate + nuisance), the joint model and the gain, on planted data with a
known delay and autocorrelated noise; and the FIR delay a planted response is recovered at."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainalign.datasets.base import PreparedDataset
from brainalign.encoding.layers import fit_layer
from brainalign.options import EncodingOptions
from tests.support.timeseries import ar1

TR = 2.0
FAST = {"protocols": ["ridge-grouped"], "similarity": False, "n_bootstrap": 200, "seed": 0, "n_folds": 5, "inner_folds": 4,
        "feature_scaling": "zscore", "alphas": [0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5]}


def planted_story(n_scans=320, n_subjects=4, delay_s=4.0, content=1.0, rate=1.0, motion=0.0, seed=0):
    """Words at bursty times (so the word rate varies), each with a content value; every subject's 3 ROIs respond to
    rate * (1 per word) + content * (the word's value), smoothed (Gaussian, sd 1 s) and lagged by ``delay_s``, plus
    AR(1) noise (phi 0.7) and, with ``motion``, a per-subject random-walk motion trace added to the responses."""
    rng = np.random.default_rng(seed)
    duration = n_scans * TR
    density = 1.5 + 1.2 * np.sin(2 * np.pi * np.arange(0, duration, 0.1) / 37.0) + 0.8 * ar1(rng, int(duration * 10), 0.995, ())
    density = np.clip(density, 0.05, None)
    grid = np.arange(0, duration, 0.1)
    times = np.sort(grid[rng.random(len(grid)) < density * 0.1] + 0.1 * rng.random())
    values = rng.standard_normal(len(times))
    scans = np.arange(n_scans) * TR + 10.0
    kernel = np.exp(-0.5 * ((scans[:, None] - times[None, :] - delay_s) / 1.0) ** 2)
    drive = kernel @ (rate * np.ones(len(times)) + content * values)
    drive = (drive - drive.mean()) / drive.std()
    motion_traces = np.cumsum(rng.standard_normal((n_subjects, n_scans, 2)), axis=1) * 0.3
    responses = np.stack([drive[:, None] * np.array([1.0, 0.8, 0.6]) + 1.5 * ar1(rng, n_scans, 0.7, (3,))
                          + motion * motion_traces[s, :, :1] for s in range(n_subjects)])
    stimuli = pd.DataFrame({"stimulus_id": [f"w{i}" for i in range(len(times))], "text": ["w"] * len(times), "group": "story",
                            "position": np.arange(len(times)), "onset": times - 0.2, "offset": times})
    meta = {"name": "planted", "kind": "timeseries", "tr": TR, "nuisance_names": ["rp_x", "rp_y"]}
    dataset = PreparedDataset(stimuli, responses.astype(np.float32), [f"s{i}" for i in range(n_subjects)], ["a", "b", "c"],
                              scans, np.array(["story"] * n_scans, dtype=object), motion_traces.astype(np.float32), meta)
    return dataset, values


def test_the_planted_delay_is_recovered():
    """A response lagged 4 s (2 scans) behind the words is best predicted at FIR delay 2, nearly as well at
    neighbouring delays, not at 0 or 5; each layer's result records the delays, the gap and the bootstrap block."""
    dataset, values = planted_story(content=1.0, rate=0.0)
    features = np.column_stack([values, np.random.default_rng(1).standard_normal(len(values))])
    scores = {}
    for delay in range(6):
        result = fit_layer(features, dataset, {**FAST, "delays": [delay], "n_bootstrap": 0, "baseline": False})
        scores[delay] = result["protocols"]["ridge-grouped"]["score"]
        assert result["delays"] == [delay] and result["gap"] == 5 and result["bootstrap_block"] == 20
    assert max(scores, key=scores.get) == 2, scores
    assert scores[2] > scores[0] + 0.2 and scores[2] > scores[5] + 0.2, scores


def test_gain_separates_content_from_word_rate():
    """Responses driven by word rate and by each word's content value: a 'model' that only marks words (an untrained
    network's constant part: word rate) has a clear raw score but no gain over the baseline; one that carries the
    content has a gain whose block-bootstrap CI excludes 0; the baseline is the same for both (model-free)."""
    dataset, values = planted_story(content=2.0, rate=1.0, seed=2)
    rng = np.random.default_rng(3)
    marker = np.column_stack([np.ones(len(values)), 0.01 * rng.standard_normal((len(values), 3))])
    content = np.column_stack([values, np.ones(len(values)), 0.01 * rng.standard_normal((len(values), 2))])
    untrained, trained = (fit_layer(f, dataset, FAST) for f in (marker, content))
    raw_untrained = untrained["protocols"]["ridge-grouped"]["score"]
    g_untrained, g_trained = untrained["baseline-gain"], trained["baseline-gain"]
    assert raw_untrained > 0.2  # word rate alone predicts well: a raw score credits it to the model
    assert g_untrained["baseline"]["score"] == pytest.approx(g_trained["baseline"]["score"])
    assert g_untrained["baseline"]["score"] > 0.2
    assert abs(g_untrained["gain"]["score"]) < 0.05 and g_untrained["gain"]["ci_low"] < 0.02
    assert g_trained["gain"]["ci_low"] > 0.05 and g_trained["gain"]["score"] > g_untrained["gain"]["score"] + 0.1
    assert g_trained["variance_added"]["score"] == pytest.approx(g_trained["joint"]["score"] ** 2 - g_trained["baseline"]["score"] ** 2)
    for key in ("baseline", "joint", "gain"):
        assert g_trained[key]["ci_low"] <= g_trained[key]["score"] <= g_trained[key]["ci_high"]
    assert g_trained["regressors"] == ["word_rate@d1", "word_rate@d2", "word_rate@d3", "word_rate@d4"]
    assert g_trained["confounds"] == ["rp_x", "rp_y"] and g_trained["bootstrap"] == "blocks of scans"


def test_motion_is_regressed_out_per_subject():
    """Slow reference: the cleaned responses equal each column's least-squares residual on its own subject's motion
    (and an intercept), and a motion artefact added to the responses no longer inflates the baseline."""
    from brainalign.encoding.baseline import baseline_design, clean_confounds
    from brainalign.encoding.design import responses_matrix

    dataset, _ = planted_story(motion=3.0, seed=4)
    y, names, _ = responses_matrix(dataset)
    baseline = baseline_design(dataset, names, EncodingOptions.from_dict(FAST))
    assert baseline.names == ["word_rate@d1", "word_rate@d2", "word_rate@d3", "word_rate@d4"]  # motion differs by subject
    cleaned = clean_confounds(y, baseline, baseline.runs)
    for j, name in enumerate(names):
        s = dataset.subjects.index(name.split(".")[0])
        design = np.column_stack([np.ones(len(y)), dataset.nuisance[s]])
        expected = y[:, j] - design @ np.linalg.lstsq(design, y[:, j], rcond=None)[0]
        np.testing.assert_allclose(cleaned[:, j], expected, atol=1e-8)
    clean_run, _ = planted_story(motion=0.0, seed=4)
    with_motion = fit_layer(np.ones((len(dataset.stimuli), 1)), dataset, FAST)["baseline-gain"]["baseline"]["score"]
    without = fit_layer(np.ones((len(clean_run.stimuli), 1)), clean_run, FAST)["baseline-gain"]["baseline"]["score"]
    assert with_motion == pytest.approx(without, abs=0.05)


def test_joint_fit_is_ridge_on_the_scaled_bands():
    """Slow reference (sklearn): with one penalty, the joint prediction is sklearn Ridge on [sqrt(p/k) z(baseline),
    z(features)] and the baseline prediction sklearn Ridge on z(baseline), z-scored with training statistics."""
    from sklearn.linear_model import Ridge

    from brainalign.encoding.baseline import _fit_fold

    rng = np.random.default_rng(5)
    n, p, k = 120, 12, 3
    x, b = rng.standard_normal((n, p)), rng.standard_normal((n, k))
    y = x[:, :2] @ [[1.0], [0.5]] + b[:, :1] + rng.standard_normal((n, 1))
    train, test = np.arange(90), np.arange(90, n)
    options = EncodingOptions.from_dict({"inner_folds": 3})
    base, joint, _ = _fit_fold(0, x, y, b, train, test, np.arange(n), np.array([7.0]), options, 0)

    def z(train_rows, test_rows):
        mean, sd = train_rows.mean(0), train_rows.std(0)
        return (train_rows - mean) / sd, (test_rows - mean) / sd

    bz_train, bz_test = z(b[train], b[test])
    xz_train, xz_test = z(x[train], x[test])
    np.testing.assert_allclose(base, Ridge(alpha=7.0).fit(bz_train, y[train]).predict(bz_test).reshape(-1, 1), atol=1e-8)
    w = np.sqrt(p / k)
    reference = Ridge(alpha=7.0).fit(np.hstack([w * bz_train, xz_train]), y[train]).predict(np.hstack([w * bz_test, xz_test]))
    np.testing.assert_allclose(joint, reference.reshape(-1, 1), atol=1e-8)


def test_gain_stays_at_every_layer_when_extras_go_to_the_selected_layers(tmp_path):
    """encoding.extras_layers: selected moves brainscore-2023 / RSA / CKA to the selected layers only; the time-series
    gain is a headline with its own best and nested layers, so every layer keeps it."""
    from brainalign.datasets.base import write_prepared
    from brainalign.encoding.layers import fit_layers_file
    from brainalign.extraction.shards import write_shard

    dataset, values = planted_story(n_scans=200, n_subjects=2)
    dataset.meta.update(description="planted", source="test", licence="none", provenance="test", context="story",
                        group_averaged=False)
    write_prepared(dataset, tmp_path / "ds")
    rng = np.random.default_rng(1)
    layers = ["l0", "l1", "l2", "l3"]
    arrays = {name: np.column_stack([values * k, rng.standard_normal((len(values), 3))]).astype(np.float32)
              for k, name in enumerate(layers)}
    write_shard(tmp_path / "shard.h5", layers, arrays, dataset.stimuli["stimulus_id"].tolist(), {"model": "toy"})
    options = {**FAST, "n_bootstrap": 20, "protocols": ["ridge-grouped", "brainscore-2023"], "similarity": True,
               "extras_layers": "selected"}
    fit_layers_file(tmp_path / "shard.h5", tmp_path / "ds", tmp_path / "part0", options, progress=False)
    results = {name: json.loads((tmp_path / "part0" / f"{name}.json").read_text()) for name in layers}
    assert all("baseline-gain" in result for result in results.values())
    with_extras = [name for name, result in results.items() if "rsa" in result]
    assert 0 < len(with_extras) < len(layers)
    assert all("brainscore-2023" in results[name]["protocols"] for name in with_extras)
