"""Pair effects, permutation test, FDR and correlations on hand-computable tables."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, spearmanr

from brainalign.options import AnalysisOptions
from brainalign.study.comparisons import analysis_measures, pairs_of
from brainalign.study.statistics import benjamini_hochberg, pair_effect, property_correlations, sign_flip_test
from tests.support.tables import HAND_MODELS, hand_scores_table


def _effect(scores, brain_datasets=None):
    measures, kinds = analysis_measures(scores, brain_datasets)
    options = AnalysisOptions.from_dict()  # the schema's n_permutations and seed
    return pair_effect(measures, pairs_of(HAND_MODELS), kinds, n_permutations=options.n_permutations,
                       seed=options.seed).set_index("measure")


def test_pair_effect_by_hand():
    effect = _effect(hand_scores_table())
    d1 = np.array([(0.3 - 0.2) / 0.2, (0.3 - 0.4) / 0.4, (0.2 - 0.1) / 0.1])
    assert abs(effect.at["d1", "mean_relative_change"] - d1.mean()) < 1e-12
    assert abs(effect.at["d1", "mean_absolute_change"] - np.mean([0.1, -0.1, 0.1])) < 1e-12
    assert effect.at["d1", "n_pairs"] == 3 and effect.at["d1", "n_improved"] == 2
    average = {"a": 0.15, "a-it": 0.2, "b": 0.3, "b-it": 0.3, "c": 0.15, "c-it": 0.3}
    expected = np.mean([(average["a-it"] - 0.15) / 0.15, 0.0, (0.3 - 0.15) / 0.15])
    assert abs(effect.at["brain_average", "mean_relative_change"] - expected) < 1e-12
    assert effect.at["d1", "ci_low"] <= d1.mean() <= effect.at["d1", "ci_high"]
    assert effect.at["d1", "absolute_ci_low"] <= 0.1 / 3 <= effect.at["d1", "absolute_ci_high"]


def test_brain_average_excludes_behaviour_and_merges_experiments():
    """The paper's average: mean(Pereira, Blank, Wehbe), Pereira = mean of its two experiments; reading datasets are
    analysed on their own, and a model without a behaviour score still has a brain average."""
    rows = []
    values = {"a": (0.2, 0.4, 0.1, 0.5), "a-it": (0.3, 0.5, 0.1, np.nan), "b": (0.4, 0.2, 0.2, 0.3), "b-it": (0.4, 0.4, 0.3, 0.2)}
    for model, (e243, e384, blank, reading) in values.items():
        rows += [{"model": model, "dataset": "pereira2018_243", "score": e243, "kind": "brain"},
                 {"model": model, "dataset": "pereira2018_384", "score": e384, "kind": "brain"},
                 {"model": model, "dataset": "blank2014", "score": blank, "kind": "brain"},
                 {"model": model, "dataset": "futrell2018", "score": reading, "kind": "behaviour"}]
    scores = pd.DataFrame(rows)
    merge = {"pereira2018": ["pereira2018_243", "pereira2018_384"], "blank2014": ["blank2014"]}
    measures, kinds = analysis_measures(scores, merge)
    assert list(measures.columns) == ["pereira2018", "blank2014", "brain_average", "futrell2018"]
    assert kinds["futrell2018"] == "behaviour" and kinds["brain_average"] == "brain"
    assert measures.at["a", "pereira2018"] == pytest.approx(0.3)
    assert measures.at["a", "brain_average"] == pytest.approx((0.3 + 0.1) / 2)
    assert measures.at["a-it", "brain_average"] == pytest.approx((0.4 + 0.1) / 2)  # no behaviour score: still averaged
    effect = _effect(scores, merge)
    assert effect.at["brain_average", "n_pairs"] == 2 and effect.at["futrell2018", "n_pairs"] == 1
    assert effect.at["brain_average", "kind"] == "brain" and effect.at["futrell2018", "kind"] == "behaviour"


def test_sign_flip_p_matches_exact_enumeration():
    d = np.array([0.5, -0.25, 0.1, 0.3, 0.2])
    observed = abs(d.mean())
    flips = [abs(np.mean(np.array(s) * d)) >= observed - 1e-12 for s in itertools.product([1, -1], repeat=len(d))]
    assert sign_flip_test(d, n_permutations=100, seed=0) == np.mean(flips)  # n <= 16: exact, no random flips
    assert sign_flip_test([0.5, -0.25], n_permutations=100, seed=0) == 1.0


def test_benjamini_hochberg_by_hand():
    adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.2, np.nan])
    np.testing.assert_allclose(adjusted[:4], [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2])
    assert np.isnan(adjusted[4])


def test_property_correlations_against_scipy():
    table = property_correlations(analysis_measures(hand_scores_table())[0], HAND_MODELS, "instruction_tuned")
    row = table[(table["measure"] == "d2") & (table["property"] == "mmlu_overall")].iloc[0]
    x, y = [0.3, 0.4, 0.6], [0.1, 0.3, 0.4]
    assert abs(row["r"] - pearsonr(y, x).statistic) < 1e-12 and row["n"] == 3
    assert abs(row["spearman_rho"] - spearmanr(y, x).statistic) < 1e-12
    assert set(table["property"]) == {"log10_n_params", "mmlu_overall"}
    assert list(table.columns) == ["measure", "kind", "property", "r", "p", "p_fdr", "spearman_rho", "n"]
    for _, rows in table.groupby("measure"):  # BH within each measure, over its properties (the paper's Table 2 family)
        np.testing.assert_allclose(rows["p_fdr"].to_numpy(), benjamini_hochberg(rows["p"].to_numpy()), equal_nan=True)
    few = property_correlations(analysis_measures(hand_scores_table()[hand_scores_table()["model"].isin(["a-it", "b-it"])])[0], HAND_MODELS,
                                 "instruction_tuned")
    assert few["r"].isna().all() and (few["n"] == 2).all()

