"""Word features -> scans: Lanczos low-pass, summing within scans, FIR delays; Wehbe et al.'s word -> TR steps."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.encoding.timeseries import lanczos_downsample, make_delays, sum_within_scans
from tests.support.timeseries import ar1


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
    from brainalign.encoding.timeseries import scan_of_events

    scans = np.arange(0, 20, 2.0)
    words = np.array([0.0, 0.5, 2.0, 2.5, 3.99, 4.0, 19.0, 30.0])
    expected = [np.where(t > scans)[0][-1] if (t > scans).any() else -1 for t in words]
    np.testing.assert_array_equal(scan_of_events(words, scans), expected)
    np.testing.assert_array_equal(expected, [-1, 0, 0, 1, 1, 1, 9, 9])


def test_mean_within_scans_averages_and_leaves_empty_scans_zero():
    from brainalign.encoding.timeseries import mean_within_scans

    features = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    out = mean_within_scans(features, np.array([0, 0, 2, -1]), 4)
    np.testing.assert_array_equal(out, [[2, 3], [0, 0], [5, 6], [0, 0]])


def test_trimmed_scans_and_zscores():
    from scipy.stats import zscore

    from brainalign.encoding.timeseries import run_blocks, trimmed_scans, zscore_columns, zscore_per_run

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


# ----------------------------------------------------------------------------------------------- issue 19
def test_lanczos_passes_a_sinusoid_below_nyquist_at_its_amplitude():
    """A sinusoid carried by words (impulses at Poisson times, rate rho) comes out of the downsampling with amplitude
    A * rho * tr * gain(f): gain ~1 well below the scan Nyquist (0.25 Hz at TR 2 s), 1/2 at Nyquist, ~0 above. The
    old cutoff (1 / (2 tr)) low-passed at half the Nyquist with twice the passband gain: 2.0 at 0.05 Hz, 0.45 at 0.15."""
    from brainalign.encoding.timeseries import lanczos_gain

    tr, rho, amplitude = 2.0, 5.0, 1.5
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 2000, int(rho * 2000)))
    scans = np.arange(40, 1960, tr)
    # the kernel's frequency response, independently: ~1 in the passband, 1/2 at Nyquist (a windowed sinc's edge)
    np.testing.assert_allclose(lanczos_gain([0.02, 0.05, 0.1, 0.25], tr), [1.0, 1.0, 1.0, 0.5], atol=0.02)
    for frequency, expected in ((0.05, 1.0), (0.1, 1.0), (0.15, None), (0.2, None), (0.4, 0.0)):
        out = lanczos_downsample(amplitude * np.sin(2 * np.pi * frequency * times)[:, None], times, scans, tr)[:, 0]
        basis = np.column_stack([np.sin(2 * np.pi * frequency * scans), np.cos(2 * np.pi * frequency * scans)])
        measured = np.hypot(*np.linalg.lstsq(basis, out, rcond=None)[0]) / (amplitude * rho * tr)
        reference = float(lanczos_gain(frequency, tr)[0]) if expected is None else expected
        assert abs(measured - reference) < 0.05, (frequency, measured, reference)
    assert lanczos_gain(0.2, tr)[0] > 0.75  # 0.8 of Nyquist still passes (old cutoff: < 0.1)


def test_the_default_kernel_is_half_gain_at_nyquist_and_the_antialias_option_rejects_above_it():
    """The default kernel (cutoff 1 / TR) interpolates, it does not anti-alias: gain 1/2 at the scan Nyquist and 0.18
    at 1.2 x Nyquist, so a feature oscillating at 0.3 Hz (TR 2 s) reaches the scans folded to 0.2 Hz at 0.18 of its
    amplitude. ``downsample: lanczos-antialias`` (cutoff 0.7 / TR) keeps the BOLD band (>= 0.9 up to 0.125 Hz), the
    same passband gain, and rejects everything from the Nyquist up (|gain| <= 0.012): the folded 0.3 Hz is gone."""
    from brainalign.encoding.timeseries import ANTIALIAS_CUTOFF, lanczos_gain, words_to_scans

    tr, rho, amplitude = 2.0, 5.0, 1.5
    np.testing.assert_allclose(lanczos_gain([0.25, 0.3], tr), [0.5, 0.18], atol=0.01)
    above = np.linspace(0.25, 1.0, 151)
    assert np.abs(lanczos_gain(above, tr, fraction=ANTIALIAS_CUTOFF)).max() <= 0.012
    assert (lanczos_gain([0.02, 0.05, 0.1, 0.125], tr, fraction=ANTIALIAS_CUTOFF) >= 0.9).all()
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 2000, int(rho * 2000)))
    scans = np.arange(40, 1960, tr)

    def measured(frequency, seen_at, method):
        out = words_to_scans(amplitude * np.sin(2 * np.pi * frequency * times)[:, None], None, times, scans, tr, method)[:, 0]
        basis = np.column_stack([np.sin(2 * np.pi * seen_at * scans), np.cos(2 * np.pi * seen_at * scans)])
        return np.hypot(*np.linalg.lstsq(basis, out, rcond=None)[0]) / (amplitude * rho * tr)

    for method, fraction in (("lanczos", 1.0), ("lanczos-antialias", ANTIALIAS_CUTOFF)):
        assert measured(0.05, 0.05, method) == pytest.approx(1.0, abs=0.05)  # the same passband gain
        folded = measured(0.3, 1 / tr - 0.3, method)  # 0.3 Hz sampled every 2 s is seen at 0.2 Hz
        assert folded == pytest.approx(abs(float(lanczos_gain(0.3, tr, fraction=fraction)[0])), abs=0.05), method
    assert measured(0.3, 0.2, "lanczos") > 0.13 and measured(0.3, 0.2, "lanczos-antialias") < 0.05


def test_block_units_and_their_counts_equal_a_resample_of_whole_blocks():
    """Slow reference: the count-weighted r of a resample equals np.corrcoef over the concatenated drawn blocks."""
    from brainalign.bootstrap import unit_counts as unit_resample_counts
    from brainalign.encoding.bootstrap import _resampled_pearson
    from brainalign.encoding.folds import scan_block_units

    units = scan_block_units(np.array(["a"] * 23 + ["b"] * 7), 5)
    assert units.tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5 + [4] * 3 + [5] * 5 + [6] * 2
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((30, 3)), rng.standard_normal((30, 3))
    counts = unit_resample_counts([units], 40, 3)[0]
    assert counts.shape == (40, 30) and np.allclose(counts.sum(1), 30)
    fast = _resampled_pearson(counts, a - a.mean(0), b - b.mean(0))
    labels = np.unique(units)
    for row, weights in enumerate(counts):
        assert all(np.ptp(weights[units == u]) == 0 for u in labels)  # every unit's rows share one weight
        per_unit = np.array([weights[units == u][0] for u in labels])
        draws = np.round(len(labels) * per_unit / per_unit.sum()).astype(int)  # times each unit was drawn (7 draws)
        assert draws.sum() == len(labels)
        index = np.concatenate([np.repeat(np.flatnonzero(units == u), k) for u, k in zip(labels, draws)])
        slow = [np.corrcoef(a[index, j], b[index, j])[0, 1] for j in range(3)]
        np.testing.assert_allclose(fast[row], slow, atol=1e-10)


def test_block_bootstrap_covers_a_planted_correlation_at_the_nominal_rate():
    """Prediction = an AR(1) signal, response = signal + AR(1) noise (phi 0.8, as slow BOLD), population r known.
    Over 200 simulated 5-fold time series the 95% CI from blocks of 20 scans (the default), stretched by
    sqrt(K / (K - 1)) for the ~4 blocks per fold, covers it at about the nominal rate; the same blocks without the
    stretch, and blocks of 10, run narrow; resampling single scans (the old bootstrap) is far too narrow."""
    from brainalign.encoding import bootstrap as bootstrap_module
    from brainalign.encoding.bootstrap import _bootstrap
    from brainalign.encoding.folds import block_folds, fold_units, scan_block_units

    rng = np.random.default_rng(0)
    n, weight, phi = 360, 0.5, 0.8
    truth = weight / np.sqrt(weight**2 + 1)
    folds = block_folds(n, 5, 0)
    units = {size: fold_units(folds, scan_block_units(np.zeros(n, dtype=str), size)) for size in (10, 20)}
    covered = {"blocks of 20": 0, "blocks of 20, unstretched": 0, "blocks of 10": 0, "scans": 0}
    n_sims = 200
    stretch = bootstrap_module.unit_inflation
    for _ in range(n_sims):
        signal, noise = ar1(rng, n, phi, (1,)), ar1(rng, n, phi, (1,))
        response = weight * signal + noise
        pairs = [(signal[test], response[test]) for _, test in folds]
        seed = int(rng.integers(1 << 30))
        for name, fold_unit in (("blocks of 20", units[20]), ("blocks of 10", units[10]), ("scans", None)):
            low, high = _bootstrap(pairs, 400, seed, units=fold_unit)
            covered[name] += low <= truth <= high
        bootstrap_module.unit_inflation = lambda units: 1.0
        try:
            low, high = _bootstrap(pairs, 400, seed, units=units[20])
        finally:
            bootstrap_module.unit_inflation = stretch
        covered["blocks of 20, unstretched"] += low <= truth <= high
    rates = {name: count / n_sims for name, count in covered.items()}
    assert rates["blocks of 20"] >= 0.92, rates  # 0.945 with this seed
    assert rates["blocks of 20, unstretched"] < rates["blocks of 20"] and rates["blocks of 10"] < rates["blocks of 20"], rates
    assert rates["scans"] <= 0.75, rates


def test_delays_gap_and_block_are_checked_and_recorded():
    from brainalign.encoding.design import checked_delays, timeseries_overrides
    from brainalign.errors import BrainalignError
    from brainalign.options import EncodingOptions

    typed = EncodingOptions.from_dict
    assert checked_delays(typed({})) == [1, 2, 3, 4] and checked_delays(typed({"delays": [0, 3]})) == [0, 3]
    for bad in ([2, 2], [-1, 1], []):
        with pytest.raises(BrainalignError, match="encoding.delays"):
            checked_delays(typed({"delays": bad}), "x")
    overrides = timeseries_overrides(np.zeros(25, dtype=str), typed({"gap": 3, "bootstrap_block": 10}))
    assert overrides["gap"] == 3 and overrides["bootstrap_block"] == 10 and overrides["bootstrap_units"].max() == 2


def test_unit_bootstrap_inflation_is_the_plug_in_variance_correction():
    """sqrt(mean K / (K - 1)) over folds; folds of one unit (nothing to resample) and sample-level bootstraps: 1."""
    from brainalign.bootstrap import unit_inflation as unit_bootstrap_inflation

    units = [np.repeat(np.arange(4), 18), np.repeat(np.arange(4), 18), np.repeat(np.arange(5), 14)]
    assert unit_bootstrap_inflation(units) == pytest.approx(np.sqrt(np.mean([4 / 3, 4 / 3, 5 / 4])))
    assert unit_bootstrap_inflation([np.zeros(10)]) == 1.0
    # the plug-in bootstrap variance of a mean of K equal-size units is (K - 1) / K of the usual unbiased estimate
    rng = np.random.default_rng(2)
    means = rng.standard_normal(4)
    draws = rng.integers(0, 4, size=(200_000, 4))
    bootstrap_var = means[draws].mean(1).var()
    assert bootstrap_var * unit_bootstrap_inflation([np.arange(4)]) ** 2 == pytest.approx(means.var(ddof=1) / 4, rel=0.02)
