"""The tidy scores table: the row constructor, reading and checking score files, the headline table, the model x
dataset pivot and the (base, derived) pairs, on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign.errors import BrainalignError
from brainalign.study.comparisons import model_by_dataset, pairs_of
from brainalign.study.headline import headline_scores
from brainalign.study.table_checks import check_headline, check_models
from brainalign.study.tables import SORT_ORDER, TIDY_COLUMNS, read_tidy, tidy_frame, tidy_row


@pytest.mark.parametrize("ceiling, ceiling_out, normalised", [
    (0.5, 0.5, 0.8),                  # a positive ceiling divides
    (2, 2.0, 0.2),                    # ints are ceilings too
    (np.nan, np.nan, np.nan),         # no ceiling
    (None, np.nan, np.nan),           # no ceiling (a dataset without one)
    (0.0, 0.0, np.nan),               # zero is not a ceiling
    (-0.25, -0.25, np.nan),           # nor is a negative one (kept as reported, not used)
])
def test_tidy_row_normalises_only_by_a_positive_finite_ceiling(ceiling, ceiling_out, normalised):
    row = tidy_row("m", "d", "brain", "linear", "ridge-grouped", 0.4, ceiling=ceiling)
    np.testing.assert_equal(row["ceiling"], ceiling_out)
    if np.isnan(normalised):
        assert np.isnan(row["normalised"])
    else:
        assert row["normalised"] == pytest.approx(normalised, abs=1e-15)


def test_tidy_row_defaults_and_frame_column_order():
    row = tidy_row("m", "ns", "behaviour", "perplexity", "default", 25.0, n=100)
    assert list(row) == TIDY_COLUMNS
    assert row["selection"] == "" and row["layer"] == "" and np.isnan(row["layer_index"]) and np.isnan(row["layer_depth"])
    assert np.isnan(row["ci_low"]) and np.isnan(row["ci_high"]) and row["n"] == 100
    frame = tidy_frame([row, tidy_row("m", "d", "brain", "linear", "x", 0.1, ci=(0.0, 0.2), layer="h.1", layer_index=1)])
    assert list(frame.columns) == TIDY_COLUMNS and len(frame) == 2
    assert frame.at[1, "ci_low"] == 0.0 and frame.at[1, "ci_high"] == 0.2 and frame.at[1, "layer_index"] == 1
    assert list(tidy_frame([]).columns) == TIDY_COLUMNS


def _tidy_file(path, rows):
    tidy_frame(rows).to_csv(path, index=False)
    return path


def test_read_tidy_concatenates_sorts_and_keeps_only_the_tidy_columns(tmp_path):
    a = _tidy_file(tmp_path / "a.csv", [tidy_row("z", "d2", "brain", "linear", "p", 0.1, selection="layer", layer_index=2),
                                        tidy_row("z", "d2", "brain", "linear", "p", 0.2, selection="layer", layer_index=1)])
    b = tmp_path / "b.csv"
    tidy_frame([tidy_row("a", "d1", "behaviour", "surprisal_r", "default", 0.3)]).assign(extra=1).to_csv(b, index=False)
    tidy = read_tidy([a, b])
    assert list(tidy.columns) == TIDY_COLUMNS
    assert list(tidy["model"]) == ["a", "z", "z"] and list(tidy["layer_index"].iloc[1:]) == [1, 2]
    assert tidy.equals(tidy.sort_values(SORT_ORDER, kind="mergesort", na_position="first").reset_index(drop=True))
    assert list(read_tidy([]).columns) == TIDY_COLUMNS and read_tidy([]).empty


def test_read_tidy_rejects_a_file_missing_a_column_in_one_line(tmp_path):
    good = _tidy_file(tmp_path / "good.csv", [tidy_row("m", "d", "brain", "linear", "p", 0.1)])
    bad = tmp_path / "bad.csv"
    tidy_frame([tidy_row("m", "d", "brain", "linear", "p", 0.1)]).drop(columns=["ceiling", "n"]).to_csv(bad, index=False)
    with pytest.raises(BrainalignError) as error:
        read_tidy([good, bad])
    assert str(error.value) == f"{bad}: missing tidy-table columns ['ceiling', 'n']"
    assert "\n" not in str(error.value)


def test_headline_and_models_checks_name_the_table_and_the_problem():
    ok = pd.DataFrame({"model": ["a", "a"], "dataset": ["d1", "d2"], "score": [0.1, 0.2]})
    assert check_headline(ok, "s.csv") is ok
    with pytest.raises(BrainalignError, match=r"^s\.csv: missing required columns \['score'\] \(need model,dataset,score\)$"):
        check_headline(ok.drop(columns="score"), "s.csv")
    with pytest.raises(BrainalignError, match=r"^s\.csv: missing required columns \['model', 'dataset'\]"):
        check_headline(ok[["score"]], "s.csv")
    with pytest.raises(BrainalignError, match=r"^s\.csv: more than one row per model x dataset$"):
        check_headline(pd.concat([ok, ok.iloc[:1]]), "s.csv")
    models = pd.DataFrame({"model": ["a"], "instruction_tuned": [0], "vanilla_base_model": ["a"]})
    assert check_models(models, "m.csv") is models
    with pytest.raises(BrainalignError, match=r"^m\.csv: missing required columns \['vanilla_base_model'\]$"):
        check_models(models.drop(columns="vanilla_base_model"), "m.csv")


def test_headline_scores_pick_one_row_per_model_and_dataset():
    tidy = pd.DataFrame([
        {"model": "m", "dataset": "d", "kind": "brain", "metric": "linear", "protocol": "ridge-grouped", "selection": "best", "layer": "l1",
         "raw_r": 0.3, "normalised": np.nan, "ci_low": 0.2, "ci_high": 0.4},
        {"model": "m", "dataset": "d", "kind": "brain", "metric": "linear", "protocol": "ridge-grouped", "selection": "nested",
         "layer": "l1", "raw_r": 0.25, "normalised": np.nan, "ci_low": np.nan, "ci_high": np.nan},
        {"model": "m", "dataset": "d", "kind": "brain", "metric": "linear", "protocol": "brainscore-2023", "selection": "best",
         "layer": "l2", "raw_r": 0.5, "normalised": np.nan, "ci_low": np.nan, "ci_high": np.nan},
        {"model": "m", "dataset": "r", "kind": "behaviour", "metric": "surprisal_r", "protocol": "default", "selection": "", "layer": "",
         "raw_r": 0.2, "normalised": np.nan, "ci_low": 0.1, "ci_high": 0.3},
        {"model": "m", "dataset": "r", "kind": "behaviour", "metric": "perplexity", "protocol": "default", "selection": "",
         "layer": "", "raw_r": 25.0, "normalised": np.nan, "ci_low": np.nan, "ci_high": np.nan},
    ])
    headline = headline_scores(tidy)
    assert list(headline.columns) == ["model", "dataset", "score", "kind", "metric", "protocol", "selection", "layer", "normalised",
                                      "ci_low", "ci_high"]
    headline = headline.set_index("dataset")
    # the default: the nested layer choice (chosen on training folds only), not the best layer
    assert headline.at["d", "score"] == 0.25 and headline.at["d", "selection"] == "nested"
    assert headline.at["r", "score"] == 0.2 and headline.at["r", "selection"] == "" and len(headline) == 2
    best = headline_scores(tidy, {"brain_selection": "best"}).set_index("dataset")
    assert best.at["d", "score"] == 0.3 and best.at["d", "selection"] == "best"
    paper = headline_scores(tidy, {"brain_protocol": "brainscore-2023", "brain_selection": "best"}).set_index("dataset")
    assert paper.at["d", "score"] == 0.5
    # a model x dataset with only the other choice's row is a one-line error, never a silently missing headline
    with pytest.raises(BrainalignError, match=r"^the scores have no nested row of linear / brainscore-2023 for m on d "
                                              r"\(1 model x dataset\(s\) have only best rows\): .*brain_selection: best$"):
        headline_scores(tidy, {"brain_protocol": "brainscore-2023"})


def test_model_by_dataset_pivots_and_averages_without_skipping_gaps():
    scores = pd.DataFrame({"model": ["b", "a", "a", "b", "c"], "dataset": ["d2", "d2", "d1", "d1", "d1"],
                           "score": [0.4, 0.2, 0.1, 0.3, 0.5]})
    wide = model_by_dataset(scores)
    assert list(wide.index) == ["a", "b", "c"] and list(wide.columns) == ["d1", "d2", "average"]
    assert wide.at["a", "d1"] == 0.1 and wide.at["a", "d2"] == 0.2 and wide.at["b", "d1"] == 0.3 and wide.at["b", "d2"] == 0.4
    assert wide.at["a", "average"] == pytest.approx(0.15) and wide.at["b", "average"] == pytest.approx(0.35)
    assert np.isnan(wide.at["c", "d2"]) and np.isnan(wide.at["c", "average"])  # a missing dataset leaves no average
    plain = model_by_dataset(scores, average=False)
    assert list(plain.columns) == ["d1", "d2"]
    pd.testing.assert_frame_equal(plain, wide[["d1", "d2"]])


def test_pairs_of_links_each_derived_model_to_a_base_in_the_table():
    models = pd.DataFrame({"model": ["a", "a-it", "b-it", "c", "a-untrained"],
                           "vanilla_base_model": ["a", "a", "b", np.nan, "a"]})
    assert pairs_of(models) == [("a", "a-it"), ("a", "a-untrained")]  # b is not in the table; a and c are bases


def test_headline_takes_the_configured_protocol_per_dataset():
    """The paper's headline: Brain-Score's protocol everywhere but Wehbe 2014, scored with its own pipeline."""
    rows = []
    for dataset in ("pereira2018_243", "wehbe2014"):
        for protocol, value in (("brainscore-2023", 0.3), ("ridge-grouped", 0.2), ("wehbe-2014", 0.1)):
            if dataset == "pereira2018_243" and protocol == "wehbe-2014":
                continue
            rows.append(tidy_row("m", dataset, "brain", "linear", protocol, value, selection="best"))
            rows.append(tidy_row("m", dataset, "brain", "linear", protocol, value - 0.01, selection="nested"))
    tidy = tidy_frame(rows)
    paper = {"brain_protocol": "brainscore-2023", "dataset_protocols": {"wehbe2014": "wehbe-2014"}, "brain_selection": "best"}
    headline = headline_scores(tidy, paper)  # config/paper.yaml's choice
    assert dict(zip(headline["dataset"], headline["protocol"])) == {"pereira2018_243": "brainscore-2023", "wehbe2014": "wehbe-2014"}
    assert set(headline["selection"]) == {"best"} and list(headline["score"]) == [0.3, 0.1]
    assert list(headline_scores(tidy)["protocol"]) == ["ridge-grouped", "ridge-grouped"]  # the default
    assert set(headline_scores(tidy)["selection"]) == {"nested"}


def _gain_tidy():
    from brainalign.study.tables import tidy_frame, tidy_row

    rows = []
    for model, gain in (("m", 0.05), ("m-untrained", 0.004)):
        rows.append(tidy_row(model, "story", "brain", "linear", "ridge-grouped", 0.14, selection="best", layer="L2"))
        rows.append(tidy_row(model, "story", "brain", "linear", "ridge-grouped", 0.13, selection="layer", layer="L1"))
        rows.append(tidy_row(model, "story", "brain", "linear", "ridge-grouped", 0.12, selection="layer", layer="L0"))
        rows.append(tidy_row(model, "sent", "brain", "linear", "ridge-grouped", 0.3, selection="best", layer="L1"))
        rows.append(tidy_row(model, "sent", "brain", "linear", "ridge-grouped", 0.28, selection="nested", layer="L1"))
        for selection, layer, shift in (("best", "L1", 0.0), ("nested", "L0", -0.002)):  # the nested gain a little lower
            for metric, value in (("baseline_r", 0.07), ("joint_r", 0.07 + gain + shift), ("gain_r", gain + shift),
                                  ("variance_added", 0.001)):
                rows.append(tidy_row(model, "story", "brain", metric, "ridge-grouped", value, selection=selection, layer=layer,
                                     ci=(value - 0.01, value + 0.01)))
    return tidy_frame(rows)


def test_a_time_series_headline_is_its_gain_over_the_baseline():
    """Issue 19: where a dataset has gain rows under the headline protocol, its headline is the gain; elsewhere (and
    with timeseries_metric: "") the raw score."""
    from brainalign.study.headline import headline_scores

    tidy = _gain_tidy()
    headline = headline_scores(tidy).set_index(["model", "dataset"])  # the nested gain (the default selection)
    assert headline.loc[("m", "story"), "metric"] == "gain_r" and headline.loc[("m", "story"), "score"] == 0.048
    assert headline.loc[("m", "story"), "selection"] == "nested" and headline.loc[("m", "story"), "layer"] == "L0"
    assert headline.loc[("m", "sent"), "metric"] == "linear" and headline.loc[("m", "sent"), "score"] == 0.28
    best = headline_scores(tidy, {"brain_selection": "best"}).set_index(["model", "dataset"])
    assert best.loc[("m", "story"), "metric"] == "gain_r" and best.loc[("m", "story"), "score"] == 0.05
    raw = headline_scores(tidy, {"timeseries_metric": "", "brain_selection": "best"}).set_index(["model", "dataset"])
    assert raw.loc[("m", "story"), "metric"] == "linear" and raw.loc[("m", "story"), "score"] == 0.14
    paper = headline_scores(tidy, {"brain_protocol": "brainscore-2023"})
    assert "gain_r" not in set(paper["metric"])


def test_the_summary_shows_baseline_model_and_gain_with_the_untrained_control_beside():
    import pandas as pd

    from brainalign.study.sections import timeseries_gain_table

    models = pd.DataFrame({"model": ["m", "m-untrained"], "vanilla_base_model": ["m-untrained", ""], "trained": [1, 0]})
    table = timeseries_gain_table(_gain_tidy(), models, "best")
    assert table["model"].tolist() == ["m", "m-untrained (untrained)"]
    assert table["gain (joint - baseline)"].tolist() == ["0.050 [0.040, 0.060]", "0.004 [-0.006, 0.014]"]
    assert table["raw r"].tolist() == ["0.130", "0.130"]  # the features alone at the same layer (L1)
    assert table["baseline r"].iloc[0] == table["baseline r"].iloc[1]
    nested = timeseries_gain_table(_gain_tidy(), models)  # the default: the nested choice, its most chosen layer's raw r
    assert nested["layer"].tolist() == ["L0", "L0"] and nested["raw r"].tolist() == ["0.120", "0.120"]
    assert nested["gain (joint - baseline)"].tolist() == ["0.048 [0.038, 0.058]", "0.002 [-0.008, 0.012]"]


def test_the_headline_choice_takes_its_defaults_and_rejects_unknown_keys():
    from brainalign.errors import BrainalignError
    from brainalign.study.headline import Headline

    choice = Headline.from_options({"brain_protocol": "brainscore-2023", "dataset_protocols": {"wehbe2014": "wehbe-2014"}})
    assert (choice.brain_metric, choice.brain_selection, choice.timeseries_metric) == ("linear", "nested", "gain_r")
    assert choice.protocol_of("wehbe2014") == "wehbe-2014" and choice.protocol_of("blank2014") == "brainscore-2023"
    with pytest.raises(BrainalignError, match="unknown keys \\['brain_protocl'\\]"):
        Headline.from_options({"brain_protocl": "brainscore-2023"})


def test_the_headline_says_which_layer_choice_it_is_and_the_bias_table_compares_them():
    """The headline table's brain rows say their layer choice (selection), in words for the page and figures; the
    layer-selection table puts each headline's best beside its nested choice, with best - nested, on the headline's
    own metric (the gain on a time series)."""
    from brainalign.study.headline import headline_selection, selection_words
    from brainalign.study.sections import selection_bias_table

    tidy = _gain_tidy()
    nested, best = headline_scores(tidy), headline_scores(tidy, {"brain_selection": "best"})
    assert headline_selection(nested) == "nested" and headline_selection(best) == "best"
    assert "training folds only" in selection_words("nested") and "biased upward" in selection_words("best")
    assert headline_selection(nested.drop(columns="selection")) == "" and selection_words("") == ""  # a published table
    assert headline_selection(pd.concat([nested[nested["dataset"] == "sent"], best[best["dataset"] == "story"]])) == "mixed"
    for headline in (nested, best):  # the same table whichever the headline is
        table = selection_bias_table(tidy, headline).set_index(["model", "dataset"])
        assert list(table.index) == [("m", "sent"), ("m-untrained", "sent"), ("m", "story"), ("m-untrained", "story")]
        assert table.loc[("m", "story"), "metric"] == "gain_r" and table.loc[("m", "story"), "nested layer"] == "L0"
        assert table.loc[("m", "story"), "best - nested"] == pytest.approx(0.002)
        assert table.loc[("m", "sent"), "best - nested"] == pytest.approx(0.02)
        assert table.loc[("m", "story"), "best"] == "0.050 [0.040, 0.060]"
    assert selection_bias_table(tidy[tidy["selection"] != "nested"], best).empty  # nothing to compare
