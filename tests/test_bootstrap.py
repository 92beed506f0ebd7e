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


def test_passage_bootstrap_covers_a_planted_correlation_where_single_sentences_do_not():
    """Sentences of one passage share context: prediction and response both carry a passage-level component (the
    errors too). Over 200 simulated 5-fold grouped splits of 150 passages (30 per test fold, about Pereira 2018's
    size), the encoding CI that resamples whole passages (``unit_counts``, the default for sentence data with
    groups) covers the population r at about the nominal rate; resampling single sentences runs narrow. With 12
    passages per test fold the passage CI runs slightly narrow too (0.91): docs/statistics.md."""
    from brainalign.encoding.bootstrap import _bootstrap
    from brainalign.encoding.folds import fold_units, grouped_folds

    rng = np.random.default_rng(0)
    n_passages, per, weight, spread = 150, 5, 0.6, 1.0
    groups = np.repeat(np.arange(n_passages), per).astype(str)
    var_s = var_e = spread**2 + 1
    truth = weight * var_s / np.sqrt(var_s * (weight**2 * var_s + var_e))
    folds = grouped_folds(groups, 5, 0)
    units = fold_units(folds, groups)
    covered = {"passages": 0, "sentences": 0}
    n_sims = 200
    for _ in range(n_sims):
        def passage_level(size=1):
            return np.repeat(rng.standard_normal((n_passages, size)) * spread, per, axis=0) + rng.standard_normal((n_passages * per, size))

        signal = passage_level()
        response = weight * signal + passage_level()
        pairs = [(signal[test], response[test]) for _, test in folds]
        seed = int(rng.integers(1 << 30))
        for name, fold_unit in (("passages", units), ("sentences", None)):
            low, high = _bootstrap(pairs, 400, seed, units=fold_unit)
            covered[name] += low <= truth <= high
    rates = {name: count / n_sims for name, count in covered.items()}
    assert rates["passages"] >= 0.92, rates
    assert rates["sentences"] <= rates["passages"] - 0.1, rates


def test_the_pair_effect_interval_and_sign_flip_test_on_planted_pairs():
    """The study's pair effect (mean over model pairs): its bootstrap CI over pairs covers a planted mean change,
    and the sign-flip test keeps its size under no change (17 pairs, as the paper's headline)."""
    from brainalign.study.statistics import bootstrap_mean_ci, sign_flip_test

    rng = np.random.default_rng(1)
    n_sims, n_pairs = 400, 17
    covered = rejected = 0
    for _ in range(n_sims):
        change = 0.02 + 0.03 * rng.standard_normal(n_pairs)
        low, high = bootstrap_mean_ci(change, 2000, seed=int(rng.integers(1 << 30)))
        covered += low <= 0.02 <= high
        null = 0.03 * rng.standard_normal(n_pairs)
        rejected += sign_flip_test(null, 2000, seed=int(rng.integers(1 << 30))) < 0.05
    assert covered / n_sims >= 0.90, covered / n_sims  # percentile intervals of a mean of 17 run slightly narrow
    assert rejected / n_sims <= 0.08, rejected / n_sims
