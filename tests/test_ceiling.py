"""Noise ceilings on synthetic subjects with known reliability, and the group-averaged case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign.correlation import spearman_brown
from brainalign.datasets.base import PreparedDataset
from brainalign.encoding.ceilings import compute_ceiling, extrapolation_ceiling, split_half_ceiling


def synthetic_subjects(n_subjects=10, n_samples=400, n_neuroids=3, noise_sd=1.5, seed=0):
    """Each subject = shared signal (variance 1) + independent noise: the true reliabilities are known."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((1, n_samples, n_neuroids))
    return signal + noise_sd * rng.standard_normal((n_subjects, n_samples, n_neuroids))


def test_split_half_matches_the_known_reliability_of_the_group_mean():
    n, noise = 10, 1.5
    responses = synthetic_subjects(n_subjects=n, noise_sd=noise, n_samples=4000)
    # r between two half-means of n/2 subjects each: 1 / (1 + noise^2 / (n/2)); Spearman-Brown to n subjects
    half = 1 / (1 + noise**2 / (n / 2))
    expected = float(spearman_brown(half))
    assert abs(split_half_ceiling(responses)["ceiling"] - expected) < 0.02


def test_extrapolation_ceiling_approaches_the_single_subject_limit():
    """With infinitely many other subjects the pool mean is the signal, so a subject's r -> 1/sqrt(1 + noise^2)."""
    noise = 1.0
    responses = synthetic_subjects(n_subjects=12, noise_sd=noise, n_samples=3000, n_neuroids=2)
    result = extrapolation_ceiling(responses, n_draws=5, n_bootstrap=10)
    expected = 1 / np.sqrt(1 + noise**2)
    assert abs(result["ceiling"] - expected) < 0.02
    # and the curve it extrapolates rises with the pool size
    curve = result["mean_consistency_by_pool_size"]
    assert curve[-1] > curve[0]
    # Brain-Score's exponential curve underestimates the same planted ceiling
    exponential = extrapolation_ceiling(responses, n_draws=5, n_bootstrap=10, curve="exponential")
    assert exponential["ceiling"] < expected - 0.03


def test_group_averaged_data_get_no_ceiling_and_a_note():
    stimuli = pd.DataFrame({"stimulus_id": ["a", "b", "c"], "text": ["x"] * 3, "group": ["g"] * 3, "position": [0, 1, 2]})
    dataset = PreparedDataset(stimuli, np.ones((1, 3, 1), np.float32), ["average"], ["lang"],
                              meta={"kind": "sentence", "group_averaged": True})
    result = compute_ceiling(dataset)
    assert result["ceiling"] is None and result["method"] == "none" and "raw r" in result["note"]


def test_per_subject_dataset_uses_extrapolation_and_reports_split_half():
    responses = synthetic_subjects(n_subjects=6, n_samples=300, n_neuroids=2).astype(np.float32)
    stimuli = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(300)], "text": ["x"] * 300, "group": ["g"] * 300,
                            "position": range(300)})
    dataset = PreparedDataset(stimuli, responses, [f"p{i}" for i in range(6)], ["a", "b"],
                              meta={"kind": "sentence", "group_averaged": False})
    result = compute_ceiling(dataset, {"n_bootstrap": 5})
    assert result["method"] == "extrapolation" and 0 < result["ceiling"] <= 1
    assert 0 < result["split_half"]["ceiling"] <= 1


# ----------------------------------------------------------------------------------------------- issue 19: ISC
def _shared_plus_noise(n_subjects, n_samples, reliabilities, seed=0):
    """Subjects = one shared signal per neuroid + independent noise, scaled so that two subjects correlate at
    ``reliabilities[j]`` (rho) for neuroid j; the true per-subject ceiling is sqrt(rho)."""
    rng = np.random.default_rng(seed)
    rho = np.asarray(reliabilities)
    shared = rng.standard_normal((n_samples, len(rho)))
    noise = rng.standard_normal((n_subjects, n_samples, len(rho)))
    return np.sqrt(rho) * shared[None] + np.sqrt(1 - rho) * noise


def test_isc_ceiling_recovers_a_planted_reliability_and_matches_a_slow_reference():
    from brainalign.encoding.ceilings import isc_ceiling, leave_one_out_isc, subject_reliability

    rho = np.array([0.05, 0.1, 0.2, 0.4])
    responses = _shared_plus_noise(25, 2000, rho)
    result = isc_ceiling(responses, n_bootstrap=200, seed=0)
    # slow reference: a loop of np.corrcoef, each subject against the mean of the others
    slow = np.array([[np.corrcoef(responses[s, :, j], np.delete(responses, s, 0)[:, :, j].mean(0))[0, 1] for j in range(4)]
                     for s in range(25)])
    np.testing.assert_allclose(leave_one_out_isc(responses), slow, atol=1e-10)
    np.testing.assert_allclose(result["per_neuroid_isc"], slow.mean(0), atol=1e-10)
    # the closed form inverts the expected ISC against S - 1 others, sqrt(rho * SB(rho, S - 1))
    np.testing.assert_allclose(subject_reliability(np.sqrt(rho * spearman_brown(rho, 24)), 25), rho, atol=1e-12)
    np.testing.assert_allclose(result["per_neuroid"], np.sqrt(rho), atol=0.03)
    np.testing.assert_allclose(result["per_neuroid_group_mean"], np.sqrt(spearman_brown(rho, 25)), atol=0.02)
    low, high = result["ci"]
    assert low <= result["ceiling"] <= high and high - low < 0.1
    per_ci = np.array(result["per_neuroid_ci"])  # resampling subjects: covers the planted ceilings
    assert ((per_ci[:, 0] - 0.01 <= np.sqrt(rho)) & (np.sqrt(rho) <= per_ci[:, 1] + 0.01)).all(), (per_ci, np.sqrt(rho))
    assert result["ceiling"] == pytest.approx(np.median(result["per_neuroid"]))


def test_isc_ceiling_is_stable_where_the_extrapolation_fit_is_not():
    """Few scans, weak and negative ROIs (as Brennan 2016's 6 ROIs over 362 scans): every ISC ceiling stays inside
    [0, 1) with a CI, where per-subject x ROI asymptotes of the extrapolation fit run to the bounds."""
    from brainalign.encoding.ceilings import isc_ceiling

    responses = _shared_plus_noise(12, 150, [0.0, 0.01, 0.03, 0.08, 0.15, 0.3], seed=3)
    isc = isc_ceiling(responses, n_bootstrap=100)
    assert all(0 <= v < 0.7 for v in isc["per_neuroid"]) and isc["ci"][0] <= isc["ceiling"] <= isc["ci"][1]
    extrapolated = np.array(extrapolation_ceiling(responses, n_bootstrap=10, n_draws=4)["per_neuroid"])
    assert np.nanmax(np.abs(extrapolated)) > 0.95  # the per-neuroid curve fit hits its bounds


def _moving_subjects(n_subjects=10, n_scans=400, rho=(0.1, 0.2), motion_gain=1.0, seed=0):
    """A time series whose subjects share a response (two subjects correlate at ``rho``) plus head motion locked to
    the stimulus: every subject's two movement traces = a component common to all (they move at the same moments of
    the story) + their own, so each subject's trace correlates ~0.7 with the subjects' mean (a per-subject confound,
    not a shared stimulus regressor); the motion reaches the responses with ``motion_gain``."""
    from tests.support.timeseries import ar1

    rng = np.random.default_rng(seed)
    responses = _shared_plus_noise(n_subjects, n_scans, list(rho), seed=seed)
    common = ar1(rng, n_scans, 0.9, (2,))
    motion = np.stack([common + ar1(rng, n_scans, 0.9, (2,)) for _ in range(n_subjects)])
    responses = responses + motion_gain * motion[:, :, :1] * np.array([1.0, -0.8])
    words = pd.DataFrame({"stimulus_id": ["w0"], "text": ["a"], "group": ["s"], "position": [0], "onset": [0.0], "offset": [0.1]})
    return PreparedDataset(words, responses.astype(np.float32), [f"s{i}" for i in range(n_subjects)], ["a", "b"],
                           np.arange(n_scans) * 2.0, np.array(["s"] * n_scans, dtype=object), motion.astype(np.float32),
                           {"name": "moving", "kind": "timeseries", "tr": 2.0, "nuisance_names": ["rp_x", "rp_y"]})


def test_time_series_ceiling_is_computed_on_the_responses_the_scores_use():
    """Stimulus-locked head motion is shared between subjects, so it inflates the raw ISC (here 0.55-0.6 against a
    planted 0.32-0.45); the baseline and joint scores are computed on responses cleaned of each subject's motion, so
    the ceiling is too: it recovers the planted sqrt(rho), keeps the raw ISC beside, says which one normalises, and
    its cleaned responses are exactly the columns the scores use (encoding.baseline.clean_confounds). Before, the
    ceiling was the raw responses' ISC."""
    from brainalign.encoding.baseline import baseline_design, clean_confounds, cleaned_responses
    from brainalign.encoding.design import responses_matrix
    from brainalign.options import EncodingOptions

    rho = np.array([0.1, 0.2])
    dataset = _moving_subjects(rho=tuple(rho))
    result = compute_ceiling(dataset, {"n_bootstrap": 50})
    assert result["method"] == "isc" and result["responses"] == "confound-cleaned" and result["confounds"] == ["rp_x", "rp_y"]
    np.testing.assert_allclose(result["isc"]["per_neuroid"], np.sqrt(rho), atol=0.05)
    assert result["ceiling"] == pytest.approx(float(np.median(np.sqrt(rho))), abs=0.04)
    assert result["raw_ceiling"] == result["raw_isc"]["ceiling"] > result["ceiling"] + 0.15  # motion shared: inflated
    assert "cleaned" in result["note"]
    # the same cleaning as the scores': column by column
    y, names, _ = responses_matrix(dataset)
    scored = clean_confounds(y, baseline_design(dataset, names, EncodingOptions.from_dict({})), dataset.sample_groups)
    cleaned, confounds = cleaned_responses(dataset)
    np.testing.assert_allclose(np.transpose(cleaned, (1, 0, 2)).reshape(len(y), -1), scored, atol=1e-8)
    # without the baseline (only raw scores), the raw responses' ISC normalises
    raw = compute_ceiling(dataset, {"n_bootstrap": 50, "encoding": {"baseline": False}})
    assert raw["responses"] == "raw" and raw["ceiling"] == pytest.approx(result["raw_ceiling"]) and "raw_isc" not in raw


def test_time_series_ceiling_is_the_isc_by_default():
    responses = _shared_plus_noise(6, 200, [0.1, 0.3], seed=1).astype(np.float32)
    dataset = PreparedDataset(pd.DataFrame({"stimulus_id": ["w0"], "text": ["a"], "group": ["s"], "position": [0], "onset": [0.0],
                                            "offset": [0.1]}), responses, [f"s{i}" for i in range(6)], ["a", "b"],
                              np.arange(200) * 2.0, np.array(["s"] * 200, dtype=object), None,
                              {"name": "ts", "kind": "timeseries", "tr": 2.0})
    result = compute_ceiling(dataset, {"method": "auto", "n_bootstrap": 50})
    assert result["method"] == "isc" and result["ceiling"] == result["isc"]["ceiling"] and len(result["ci"]) == 2
    assert "normalises" in result["note"] and result["responses"] == "raw" and "raw_isc" not in result
