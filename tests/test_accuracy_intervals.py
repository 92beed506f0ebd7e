"""The language-model benchmarks' accuracy intervals (brainalign.behaviour.accuracy_intervals): equal to the
reference implementations (statsmodels), and their coverage on planted accuracies, where the naive intervals'
coverage falls short."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.proportion import proportion_confint

from brainalign.behaviour.accuracy_intervals import clustered_accuracy_interval, suite_mean_interval, wilson_interval
from brainalign.datasets.wikitext import article_numbers

Z = 1.959963984540054


@pytest.mark.parametrize("correct,n", [(0, 10), (3, 10), (19, 20), (20, 20), (17, 38), (1, 1)])
def test_wilson_equals_statsmodels(correct, n):
    np.testing.assert_allclose(wilson_interval(correct, n), proportion_confint(correct, n, method="wilson"), atol=1e-12)


def test_suite_mean_width_is_agresti_coull_for_one_suite_and_adds_variances():
    low, high = suite_mean_interval([15], [20])
    ac_low, ac_high = proportion_confint(15, 20, method="agresti_coull")
    assert high - low == pytest.approx(ac_high - ac_low, abs=1e-12)  # unclipped here: same width
    assert (low + high) / 2 == pytest.approx(15 / 20)
    correct, n = np.array([15, 8, 30]), np.array([20, 10, 40])
    halves = [(h - lo) / 2 for lo, h in (proportion_confint(c, m, method="agresti_coull") for c, m in zip(correct, n))]
    low, high = suite_mean_interval(correct, n)
    assert (high - low) / 2 == pytest.approx(np.sqrt(np.sum(np.square(halves))) / 3, rel=1e-9)
    assert suite_mean_interval([], []) == (pytest.approx(np.nan, nan_ok=True),) * 2


def test_clustered_interval_equals_a_cluster_robust_regression_on_a_constant():
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(12), rng.integers(5, 40, 12))
    hits = (rng.random(len(clusters)) < rng.uniform(0.2, 0.8, 12)[clusters]).astype(float)
    fit = sm.OLS(hits, np.ones((len(hits), 1))).fit(cov_type="cluster", cov_kwds={"groups": clusters, "use_correction": True},
                                                    use_t=True)
    np.testing.assert_allclose(clustered_accuracy_interval(hits, clusters), fit.conf_int(0.05)[0], rtol=1e-9)
    assert np.isnan(clustered_accuracy_interval(hits, np.zeros(len(hits)))).all()


def _coverage(intervals, truth):
    intervals = np.asarray(intervals)
    return float(np.mean((intervals[:, 0] <= truth) & (truth <= intervals[:, 1])))


def test_wilson_covers_suites_near_ceiling_where_wald_does_not():
    """Suites of 20-40 items at accuracies up to 0.97: Wilson's coverage near 95% on average and never below 89%;
    the Wald interval's falls far short at high accuracy."""
    rng = np.random.default_rng(1)
    worst, mean, wald = [], [], []
    for p in (0.5, 0.7, 0.85, 0.9, 0.95, 0.97):
        for n in (20, 40):
            draws = rng.binomial(n, p, 4000)
            coverage = _coverage([wilson_interval(c, n) for c in draws], p)
            half = Z * np.sqrt(draws / n * (1 - draws / n) / n)
            wald.append(_coverage(np.c_[draws / n - half, draws / n + half], p))
            worst.append(coverage)
            mean.append(coverage)
    assert 0.93 <= np.mean(mean) <= 0.975 and min(worst) >= 0.89, (np.mean(mean), min(worst))
    assert min(wald) < 0.80  # what the naive interval does at p = 0.97, n = 20


def test_suite_mean_interval_covers_the_planted_mean_over_31_suites():
    rng = np.random.default_rng(2)
    n = rng.integers(15, 45, 31)
    p = rng.uniform(0.4, 1.0, 31)
    p[:5] = 1.0  # suites every model gets right: zero binomial variance, still covered by the mean's interval
    draws = rng.binomial(n, p, (3000, 31))
    coverage = _coverage([suite_mean_interval(d, n) for d in draws], p.mean())
    assert 0.935 <= coverage <= 0.965, coverage


def test_clustered_interval_covers_article_accuracy_where_a_binomial_over_contexts_does_not():
    """60 articles of uneven length whose accuracies vary around the planted 0.3 (a beta spread): the
    article-clustered interval covers the planted accuracy; Wilson over contexts (contexts as independent) does not."""
    rng = np.random.default_rng(3)
    clustered, binomial = [], []
    for _ in range(1500):
        lengths = rng.integers(50, 600, 60)
        article_p = rng.beta(3, 7, 60)  # mean 0.3
        clusters = np.repeat(np.arange(60), lengths)
        hits = rng.random(lengths.sum()) < article_p[clusters]
        clustered.append(clustered_accuracy_interval(hits, clusters))
        binomial.append(wilson_interval(int(hits.sum()), len(hits)))
    truth = 0.3  # the accuracy of a new article's next word, length-weighted in expectation: lengths independent of p
    assert 0.92 <= _coverage(clustered, truth) <= 0.97, _coverage(clustered, truth)
    assert _coverage(binomial, truth) < 0.6


def test_wikitext_articles_are_counted_from_title_lines():
    rows = [" \n", " = Alice = \n", " \n", " some text . \n", " = = Words = = \n", " more . \n", " = B = \n", " x y \n"]
    assert article_numbers(["intro line\n"] + rows) == [0, 0, 1, 1, 1, 1, 1, 2, 2]


def test_lm_score_rows_carry_the_intervals(tmp_path):
    """Wikitext's accuracy row through lm_score_file: the interval clustered by the prepared stimuli's article."""
    from brainalign.behaviour.lm_benchmarks import wikitext_row
    from brainalign.datasets.base import PreparedDataset

    stimuli = pd.DataFrame({"stimulus_id": ["row1", "row3", "row5", "row7"], "text": ["a b c"] * 4,
                            "group": ["1", "3", "5", "7"], "position": 0, "row": [1, 3, 5, 7], "article": [1, 1, 2, 3]})
    dataset = PreparedDataset(stimuli, np.zeros((0, 4, 0), dtype=np.float32), [], [], meta={"name": "wikitext"})
    readout = pd.DataFrame({"stimulus_id": ["row1", "row1", "row3", "row5", "row5", "row7", "row7"],
                            "target": list("abcdefg"), "prediction": list("abXdYfZ")})
    row = wikitext_row(readout, dataset, "m", "wikitext")
    hits = np.array([1, 1, 0, 1, 0, 1, 0], dtype=float)
    assert row["raw_r"] == pytest.approx(hits.mean()) and row["n"] == 7
    np.testing.assert_allclose((row["ci_low"], row["ci_high"]), clustered_accuracy_interval(hits, [1, 1, 1, 2, 2, 3, 3]))
