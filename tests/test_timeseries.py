"""Word features -> scans: Lanczos low-pass, summing within scans, FIR delays."""

from __future__ import annotations

import numpy as np

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
