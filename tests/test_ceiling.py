"""Noise ceilings on synthetic subjects with known reliability, and the group-averaged case."""

from __future__ import annotations

import numpy as np
import pandas as pd

from brainalign.ceiling import compute_ceiling, extrapolation_ceiling, split_half_ceiling
from brainalign.correlation import spearman_brown
from brainalign.datasets.base import PreparedDataset


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
