"""Pair effects, permutation test, FDR and correlations on hand-computable tables."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr

from brainalign.stats import benjamini_hochberg, pair_effect, property_correlations, sign_flip_test

MODELS = pd.DataFrame({
    "model": ["a", "a-it", "b", "b-it", "c", "c-it"],
    "family": ["A", "A", "B", "B", "C", "C"],
    "instruction_tuned": [0, 1, 0, 1, 0, 1],
    "vanilla_base_model": ["a", "a", "b", "b", "c", "c"],
    "n_params": [1e8, 1e8, 1e9, 1e9, 1e10, 1e10],
    "mmlu_overall": [np.nan, 0.3, np.nan, 0.4, np.nan, 0.6],
})


def scores_table():
    rows = []
    values = {"a": (0.2, 0.1), "a-it": (0.3, 0.1), "b": (0.4, 0.2), "b-it": (0.3, 0.3), "c": (0.1, 0.2), "c-it": (0.2, 0.4)}
    for model, (d1, d2) in values.items():
        rows += [{"model": model, "dataset": "d1", "score": d1}, {"model": model, "dataset": "d2", "score": d2}]
    return pd.DataFrame(rows)


def test_pair_effect_by_hand():
    effect = pair_effect(scores_table(), MODELS).set_index("measure")
    d1 = np.array([(0.3 - 0.2) / 0.2, (0.3 - 0.4) / 0.4, (0.2 - 0.1) / 0.1])
    assert abs(effect.at["d1", "mean_relative_change"] - d1.mean()) < 1e-12
    assert effect.at["d1", "n_pairs"] == 3 and effect.at["d1", "n_improved"] == 2
    average = {"a": 0.15, "a-it": 0.2, "b": 0.3, "b-it": 0.3, "c": 0.15, "c-it": 0.3}
    expected = np.mean([(average["a-it"] - 0.15) / 0.15, 0.0, (0.3 - 0.15) / 0.15])
    assert abs(effect.at["average", "mean_relative_change"] - expected) < 1e-12
    assert effect.at["d1", "ci_low"] <= d1.mean() <= effect.at["d1", "ci_high"]


def test_sign_flip_p_matches_exact_enumeration():
    d = np.array([0.5, -0.25, 0.1, 0.3, 0.2])
    observed = abs(d.mean())
    flips = [abs(np.mean(np.array(s) * d)) >= observed - 1e-12 for s in itertools.product([1, -1], repeat=len(d))]
    assert sign_flip_test(d) == np.mean(flips)
    assert sign_flip_test([0.5, -0.25]) == 1.0


def test_benjamini_hochberg_by_hand():
    adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.2, np.nan])
    np.testing.assert_allclose(adjusted[:4], [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2])
    assert np.isnan(adjusted[4])


def test_property_correlations_against_scipy():
    table = property_correlations(scores_table(), MODELS)
    row = table[(table["measure"] == "d2") & (table["property"] == "mmlu_overall")].iloc[0]
    x, y = [0.3, 0.4, 0.6], [0.1, 0.3, 0.4]
    assert abs(row["r"] - pearsonr(y, x).statistic) < 1e-12 and row["n"] == 3
    assert abs(row["spearman_rho"] - spearmanr(y, x).statistic) < 1e-12
    assert set(table["property"]) == {"log10_n_params", "mmlu_overall"}
    assert list(table.columns) == ["measure", "property", "r", "p", "p_fdr", "spearman_rho", "n"]
    few = property_correlations(scores_table()[scores_table()["model"].isin(["a-it", "b-it"])], MODELS)
    assert few["r"].isna().all() and (few["n"] == 2).all()

