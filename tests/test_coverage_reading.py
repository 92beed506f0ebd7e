"""Coverage of the reading regression's intervals on planted crossed data (tests/support/crossed.py; more replicates
and the mixed-model fits: benchmarks/coverage_reading.py), and the pieces the intervals are built from against
explicit references: the two-way cluster-robust covariance against statsmodels' one-way pieces, the mixed fit's GLS
form against its estimates, the two-level draw of sentences inside stories, the crossed resample with nested
columns against the expanded data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign.behaviour.regression_estimator import cluster_robust_cov, fit_regression
from brainalign.behaviour.regression_intervals import crossed_bootstrap, text_units
from brainalign.bootstrap import cell_table, crossed_pooled_means, rng_of, unit_weights
from tests.support.crossed import BALANCED, FRANK_LIKE, mean_coverage, simulate, slope_coverage, smaller


def test_the_crossed_interval_of_a_pooled_mean_covers_the_planted_mean_where_readers_alone_do_not():
    """Frank 2013's shape and variance composition, 300 planted data sets: the crossed (pigeonhole) interval the
    delta log-likelihood and the lag check report holds the truth in >= 93% (it errs wide: it counts the noise more
    than once), the readers-only interval they reported before in about half."""
    result = mean_coverage(FRANK_LIKE, 300, n_bootstrap=400, seed=0)
    assert result["crossed"]["coverage"] >= 0.93, result
    assert result["readers only"]["coverage"] < 0.75, result
    assert result["crossed"]["median_width"] > 2 * result["readers only"]["median_width"]


def test_the_two_way_cluster_robust_interval_covers_the_planted_slope():
    """A word property read by every reader (surprisal), with sentence and word effects and reader slopes: the
    two-way (reader, sentence) cluster-robust interval holds the planted slope in >= 93% of 400 data sets; errors
    clustered by reader alone, or the fit's own, leave the sentences' variance out."""
    result = slope_coverage(smaller(BALANCED, readers=20, sentences=60), 400, mixed=False, seed=0)
    assert result["two-way cluster-robust"]["coverage"] >= 0.93, result
    assert result["readers-clustered"]["coverage"] < 0.88 and result["model-based"]["coverage"] < 0.7, result


def test_cluster_robust_cov_is_statsmodels_sandwich_with_the_two_way_sum():
    import statsmodels.api as sm
    from statsmodels.stats.sandwich_covariance import cov_cluster

    frame = simulate(smaller(BALANCED, readers=8, sentences=30), np.random.default_rng(3))
    design = sm.add_constant(frame[["x"]].to_numpy())
    ols = sm.OLS(frame["rt"].to_numpy(), design).fit()
    pieces = {}
    for name, labels in (("subject", frame["subject"].to_numpy()), ("unit", frame["unit"].to_numpy()),
                         ("both", frame["subject"].to_numpy() * 1000 + frame["unit"].to_numpy())):
        g = len(np.unique(labels))
        pieces[name] = g / (g - 1) * cov_cluster(ols, pd.factorize(labels)[0], use_correction=False)
    one_way = cluster_robust_cov(design, ols.resid, [frame["subject"].to_numpy()])
    np.testing.assert_allclose(one_way, pieces["subject"], rtol=1e-10)
    two_way = cluster_robust_cov(design, ols.resid, [frame["subject"].to_numpy(), frame["unit"].to_numpy()])
    expected = pieces["subject"] + pieces["unit"] - pieces["both"]
    values, vectors = np.linalg.eigh(expected)
    np.testing.assert_allclose(two_way, (vectors * np.clip(values, 0, None)) @ vectors.T, rtol=1e-8, atol=1e-12)


def test_the_mixed_fits_gls_form_reproduces_its_estimates():
    """Least squares on the quasi-demeaned data gives the MixedLM fixed effects: the form whose scores the
    cluster-robust errors use."""
    frame = simulate(smaller(BALANCED, readers=10, sentences=30, sd_reader=3.0), np.random.default_rng(4))
    fit = fit_regression(frame, ["x"], mixed=True)
    assert fit.re_variance > 1.0
    design, y = fit.gls_form(frame)
    np.testing.assert_allclose(np.linalg.lstsq(design, y, rcond=None)[0], fit.params, rtol=1e-4)
    bse, fewest = fit.cluster_bse(frame, ["subject", "group"])
    assert fewest == 10 and np.isfinite(bse).all() and bse[1] > fit.bse[1]  # the sentences' variance, left out before


def test_unit_weights_draw_groups_then_their_units():
    groups = np.repeat(["a", "b", "c"], [2, 3, 5])
    weights = unit_weights(10, 3000, 0, groups)
    times = np.stack([weights[:, :2].sum(1) / 2, weights[:, 2:5].sum(1) / 3, weights[:, 5:].sum(1) / 5], axis=1)
    assert np.array_equal(times, np.round(times)) and (times.sum(1) == 3).all()  # whole groups, three of them
    assert (weights[times[:, 0] == 0][:, :2] == 0).all()  # a group not drawn lends no unit
    np.testing.assert_allclose(weights.mean(0), 1.0, atol=0.06)  # every unit once on average
    plain = unit_weights(10, 50, 0)
    assert plain.shape == (50, 10) and (plain.sum(1) == 10).all()


def test_crossed_resamples_with_nested_columns_equal_the_expanded_resample():
    rng = np.random.default_rng(5)
    readers, units = np.repeat(np.arange(4), 12), np.tile(np.repeat(np.arange(6), 2), 4)
    stories = units // 3  # sentences 0-2 in story 0, 3-5 in story 1
    values = rng.standard_normal(48)
    sums, counts, _, unit_labels = cell_table(values, readers, units)
    means = crossed_pooled_means(sums, counts, 20, 9, col_groups=unit_labels // 3)
    stream = rng_of(9)
    rows = stream.integers(0, 4, (20, 4))
    cols = unit_weights(6, 20, stream, unit_labels // 3)
    for b in range(20):
        weight = np.bincount(rows[b], minlength=4)[readers] * cols[b][units]
        assert means[b] == pytest.approx((weight * values).sum() / weight.sum())
    result = crossed_bootstrap(values, readers, units, 200, seed=9, groups=stories)
    assert result["ci_low"] < values.mean() < result["ci_high"] and len(result["per_reader"]) == 4


def test_text_units_are_sentences_inside_stories_where_a_story_holds_several():
    story = pd.DataFrame({"group": ["s1"] * 4, "sentence_id": ["a", "a", "b", "b"]})
    isolated = pd.DataFrame({"group": ["a", "a", "b"], "sentence_id": ["a", "a", "b"]})
    assert text_units(story).nested and text_units(story).cluster == "groups"
    assert not text_units(isolated).nested and text_units(isolated).name == "sentences"
    assert text_units(story.drop(columns="sentence_id")).name == "groups"
