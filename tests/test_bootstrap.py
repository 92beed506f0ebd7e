"""The resampling schemes of brainalign/bootstrap.py against slow, explicit references (loops over resamples)."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign import bootstrap


def test_within_strata_counts_equal_the_loop_over_resamples_then_strata():
    sizes, n_bootstrap = [5, 3, 4], 7
    counts = bootstrap.within_strata_counts(sizes, n_bootstrap, 11)
    rng = np.random.default_rng(11)
    for b in range(n_bootstrap):
        for k, size in enumerate(sizes):
            drawn = np.bincount(rng.integers(0, size, size), minlength=size)
            assert np.array_equal(counts[k][b], drawn)


def test_unit_counts_draw_whole_units_and_keep_the_stratum_size():
    labels = np.array([0, 0, 0, 1, 1, 2])
    counts = bootstrap.unit_counts([labels], 50, 3)[0]
    assert counts.shape == (50, 6) and np.allclose(counts.sum(1), 6)
    for row in counts:  # samples of one unit always share a weight
        assert len(set(row[:3])) == 1 and len(set(row[3:5])) == 1


def test_crossed_pooled_means_equal_the_expanded_resample():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((4, 3, 2))  # readers x texts x observations per cell
    sums, counts = values.sum(2), np.full((4, 3), 2.0)
    means = bootstrap.crossed_pooled_means(sums, counts, 20, 5)
    rows, cols = bootstrap.draw_crossed(4, 3, 20, 5)
    for b in range(20):
        expanded = np.concatenate([values[i, j] for i in rows[b] for j in cols[b]])
        assert means[b] == pytest.approx(expanded.mean())


def test_two_level_counts_draw_subjects_then_their_blocks():
    subjects = np.repeat(["s0", "s1", "s2"], 6)
    blocks = np.tile(np.repeat([0, 1, 2], 2), 3)
    weights = bootstrap.two_level_counts(subjects, blocks, 30, 1)
    assert weights.shape == (30, 18)
    assert np.allclose(weights.sum(1), 18)  # 3 subjects drawn x 3 blocks of 2 scans each
    for row in weights:
        for s in range(3):
            subject = row[6 * s:6 * s + 6]
            assert np.array_equal(subject[0::2], subject[1::2])  # the two scans of a block share a weight


def test_percentile_ci_is_nan_when_nothing_is_finite():
    assert all(np.isnan(bootstrap.percentile_ci([np.nan, np.nan])))
    assert bootstrap.percentile_ci(np.arange(101.0)) == (2.5, 97.5)
