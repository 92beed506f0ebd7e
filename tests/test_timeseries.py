"""Word features -> scans: Lanczos low-pass, summing within scans, FIR delays; Wehbe et al.'s word -> TR steps."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.timeseries import lanczos_downsample, make_delays, sum_within_scans


def test_lanczos_keeps_a_slow_sine_and_removes_a_fast_one():
    tr = 2.0
    t = np.arange(0, 600, 0.25)
    scans = np.arange(10, 590, tr)
    slow = np.sin(2 * np.pi * 0.02 * t)[:, None]          # far below the scan Nyquist (0.25 Hz)
    fast = np.sin(2 * np.pi * 1.0 * t)[:, None]           # far above it
    slow_out = lanczos_downsample(slow, t, scans, tr)[:, 0]
    fast_out = lanczos_downsample(fast, t, scans, tr)[:, 0]
    expected = np.sin(2 * np.pi * 0.02 * scans)
    assert np.corrcoef(slow_out, expected)[0, 1] > 0.999
    assert np.abs(fast_out).max() < 0.05 * np.abs(slow_out).max()


def test_sum_within_scans_counts_words():
    features = np.ones((5, 1))
    times = np.array([0.1, 0.5, 2.5, 3.9, 7.0])
    out = sum_within_scans(features, times, np.array([0.0, 2.0, 4.0, 6.0]), 2.0)
    np.testing.assert_array_equal(out[:, 0], [2, 2, 0, 1])


def test_delays_shift_into_the_past_and_respect_runs():
    x = np.arange(1, 7, dtype=float)[:, None]
    out = make_delays(x, [0, 1, 2], groups=np.array([0, 0, 0, 1, 1, 1]))
    np.testing.assert_array_equal(out[:, 0], x[:, 0])
    np.testing.assert_array_equal(out[:, 1], [0, 1, 2, 0, 4, 5])
    np.testing.assert_array_equal(out[:, 2], [0, 0, 1, 0, 0, 4])


def test_scan_of_events_is_the_last_scan_starting_strictly_before():
    """Wehbe et al.'s word -> TR rule (BLS: ``np.where(time_word > time)[0][-1]``), -1 before the first scan."""
    from brainalign.timeseries import scan_of_events

    scans = np.arange(0, 20, 2.0)
    words = np.array([0.0, 0.5, 2.0, 2.5, 3.99, 4.0, 19.0, 30.0])
    expected = [np.where(t > scans)[0][-1] if (t > scans).any() else -1 for t in words]
    np.testing.assert_array_equal(scan_of_events(words, scans), expected)
    np.testing.assert_array_equal(expected, [-1, 0, 0, 1, 1, 1, 9, 9])


def test_mean_within_scans_averages_and_leaves_empty_scans_zero():
    from brainalign.timeseries import mean_within_scans

    features = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    out = mean_within_scans(features, np.array([0, 0, 2, -1]), 4)
    np.testing.assert_array_equal(out, [[2, 3], [0, 0], [5, 6], [0, 0]])


def test_trimmed_scans_and_zscores():
    from scipy.stats import zscore

    from brainalign.timeseries import run_blocks, trimmed_scans, zscore_columns, zscore_per_run

    groups = np.array(["b"] * 6 + ["a"] * 5)
    np.testing.assert_array_equal(trimmed_scans(groups, 2, 1), [2, 3, 4, 8, 9])
    assert [run for run, _ in run_blocks(groups)] == ["b", "a"]
    with pytest.raises(ValueError, match="not contiguous"):
        run_blocks(np.array(["a", "b", "a"]))
    x = np.random.default_rng(0).standard_normal((11, 3))
    x[:, 2] = 4.0
    z = zscore_columns(x)
    np.testing.assert_allclose(z[:, :2], zscore(x[:, :2]), atol=1e-12)
    assert not z[:, 2].any()  # constant: 0, as BLS's nan_to_num
    per_run = zscore_per_run(x[:, :2], groups)
    np.testing.assert_allclose(per_run[:6], zscore(x[:6, :2]), atol=1e-12)
    np.testing.assert_allclose(per_run[6:], zscore(x[6:, :2]), atol=1e-12)
