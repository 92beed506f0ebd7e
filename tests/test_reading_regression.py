"""The reading-regression protocol (brainalign.behaviour.reading_regression): a planted surprisal effect with spillover is
recovered, a surprisal that only re-encodes word length gets ~0 delta log-likelihood although its Pearson r is
large, the lag check fires on reading times shifted by one word, the log-likelihoods are statsmodels' own, and the
protocol runs on the real Natural Stories and Frank 2013 data through the behaviour step. On the shipped corpora,
with SmolLM2-135M's stored surprisal (tests/data/surprisal), the symmetric lag check is silent on the aligned reading
times and fires on Natural Stories' shifted by one word; a surprisal that re-encodes word form does not fire. The
intervals' coverage on planted crossed data: tests/test_coverage_reading.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainalign.behaviour.reading_regression import group_folds, reading_regression
from brainalign.behaviour.regression_estimator import fit_regression
from brainalign.behaviour.regression_predictors import model_columns, observations, shift_within_groups, word_predictors
from brainalign.errors import BrainalignError


@pytest.fixture(scope="module")
def vocabulary():
    """Real English words (varied length and frequency) so that wordfreq's frequencies are real ones."""
    from wordfreq import top_n_list

    return [w for w in top_n_list("en", 3000) if w.isalpha()]


def synthetic(vocabulary, n_groups=60, words_per_group=25, n_subjects=6, slope=20.0, spill=12.0, shift=0,
              confound=False, noise=40.0, seed=0):
    """Stimuli, surprisal and per-reader reading times (readers, words) with a known generating model:
    rt = 250 + 12 length - 8 zipf + slope surprisal + spill surprisal(previous word) + reader intercept + noise.
    ``confound``: surprisal = 3 sqrt(length), a noise-free function of length, and no surprisal effect at all.
    ``shift``: -1 gives every word the reading time generated for the next word (misaligned data)."""
    from wordfreq import zipf_frequency

    rng = np.random.default_rng(seed)
    n = n_groups * words_per_group
    words = rng.choice(vocabulary, n)
    groups = np.repeat([f"g{g:03d}" for g in range(n_groups)], words_per_group)
    stimuli = pd.DataFrame({"stimulus_id": [f"w{i}" for i in range(n)], "text": words, "group": groups,
                            "sentence_id": groups, "word_in_sentence": np.tile(np.arange(1, words_per_group + 1), n_groups)})
    length = np.array([len(w) for w in words], dtype=float)
    zipf = np.array([zipf_frequency(w, "en") for w in words])
    if confound:
        surprisal, slope, spill = 3.0 * np.sqrt(length), 0.0, 0.0
    else:
        surprisal = rng.gamma(2.0, 2.0, n) + 0.3 * length  # correlated with length, as a real model's is
    previous = np.nan_to_num(shift_within_groups(surprisal, groups, 1))
    signal = 250 + 12 * length - 8 * zipf + slope * surprisal + spill * previous
    if shift:
        signal = shift_within_groups(signal, groups, shift)
    rts = signal[None] + 30 * rng.standard_normal(n_subjects)[:, None] + noise * rng.standard_normal((n_subjects, n))
    return stimuli, surprisal, rts


OPTIONS = {"regression_folds": 5, "regression_spillover": 2, "regression_language": "en", "seed": 0}


def test_planted_surprisal_slope_and_lag1_spillover_are_recovered(vocabulary):
    stimuli, surprisal, rts = synthetic(vocabulary)
    result = reading_regression(stimuli, surprisal, rts, subjects=[f"p{i}" for i in range(len(rts))], options=OPTIONS)
    assert result["applicable"] and result["estimator"].startswith("MixedLM")
    assert result["ci_resamples"] == "readers x sentences (crossed)"  # every reader reads the same sentences
    assert result["coef_ci_method"] == "Wald, t(5), two-way cluster-robust SE (readers, sentences)"
    assert result["surprisal_coef"] == pytest.approx(20.0, abs=1.5)
    profile = result["spillover_profile"]
    assert profile["1"]["coef"] == pytest.approx(12.0, abs=1.5) and profile["1"]["ci_low"] > 5
    assert abs(profile["2"]["coef"]) < 1.5 and profile["2"]["z"] < profile["1"]["z"] / 5  # nothing planted at lag 2
    assert result["peak_lag"] == 0
    assert result["delta_loglik"] > 0.1 and result["delta_loglik_ci"][0] > 0.1
    assert not result["lag_check_fires"] and result["lag_check"] < 0
    assert result["n_subjects"] == 6 and result["n_folds"] == 5


def test_surprisal_that_only_re_encodes_length_gets_no_delta_loglik(vocabulary):
    from scipy.stats import pearsonr

    stimuli, surprisal, rts = synthetic(vocabulary, confound=True)
    assert pearsonr(surprisal, rts.mean(axis=0)).statistic > 0.4  # the paper's r rewards it
    result = reading_regression(stimuli, surprisal, rts, options=OPTIONS)
    assert abs(result["delta_loglik"]) < 0.003, result["delta_loglik"]
    assert result["delta_loglik_ci"][0] < 0.003
    assert not result["lag_check_fires"]  # a surprisal that predicts nothing tests no alignment
    planted = reading_regression(*synthetic(vocabulary), options=OPTIONS)
    assert planted["delta_loglik"] > 30 * abs(result["delta_loglik"])


def test_lag_check_fires_on_reading_times_shifted_by_one_word(vocabulary):
    stimuli, surprisal, rts = synthetic(vocabulary, shift=-1)
    result = reading_regression(stimuli, surprisal, rts, options=OPTIONS)
    assert result["lag_check_fires"] and result["lag_check_ci"][0] > 0
    assert "shifted" in result["lag_check_note"]
    means = reading_regression(stimuli, surprisal, rts.mean(axis=0)[None], options=OPTIONS)  # OLS on means, CI over folds
    assert means["estimator"].startswith("OLS") and means["lag_check_fires"]
    assert means["ci_resamples"].startswith("sentences; one pseudo-reader")  # no readers to resample


def test_log_likelihoods_are_statsmodels_own(vocabulary):
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    stimuli, surprisal, rts = synthetic(vocabulary, n_groups=30)
    predictors = word_predictors(stimuli, surprisal, spillover=1)
    frame = observations(predictors, rts, np.ones(len(stimuli), bool), stimuli["group"].to_numpy())
    columns = model_columns(1)["full"]

    ols = fit_regression(frame, columns, mixed=False)
    direct = sm.OLS(frame["rt"], sm.add_constant(frame[columns])).fit()
    assert ols.loglik == pytest.approx(direct.llf, rel=1e-10)
    assert ols.loglik_per_observation(frame).sum() == pytest.approx(direct.llf, rel=1e-10)  # ML variance: sums to llf
    np.testing.assert_allclose(ols.params, direct.params.to_numpy(), rtol=1e-8)

    mixed = fit_regression(frame, columns, mixed=True)
    formula = "rt ~ " + " + ".join(columns)
    direct = smf.mixedlm(formula, frame, groups=frame["subject"]).fit(reml=False)
    assert mixed.loglik == pytest.approx(direct.llf, rel=1e-6)
    np.testing.assert_allclose(mixed.params, direct.fe_params.to_numpy(), rtol=1e-4, atol=1e-3)
    blups = frame["subject"].map({g: float(v.iloc[0]) for g, v in direct.random_effects.items()}).to_numpy()
    np.testing.assert_allclose(mixed.predict(frame), direct.predict(frame) + blups, rtol=1e-5)
    from scipy.stats import norm

    expected = norm.logpdf(frame["rt"], direct.predict(frame) + blups, np.sqrt(direct.scale))
    np.testing.assert_allclose(mixed.loglik_per_observation(frame), expected, rtol=1e-5)


def test_a_rank_deficient_design_is_fitted_without_the_redundant_columns():
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"subject": np.repeat(["a", "b", "c", "d"], 100), "x": rng.standard_normal(400), "constant": 1.0})
    frame["twice_x"] = 2 * frame["x"]
    frame["rt"] = 300 + 10 * frame["x"] + np.repeat(rng.standard_normal(4) * 20, 100) + 5 * rng.standard_normal(400)
    for mixed in (False, True):
        fit = fit_regression(frame, ["x", "constant", "twice_x"], mixed)
        reduced = fit_regression(frame, ["x"], mixed)
        assert fit.loglik == pytest.approx(reduced.loglik, rel=1e-8)
        assert fit.params[1] == pytest.approx(10.0, abs=3.0) and fit.params[2:].tolist() == [0.0, 0.0]
        assert np.isnan(fit.bse[2:]).all()


def test_folds_keep_groups_whole_and_are_seeded():
    groups = np.repeat([f"g{i}" for i in range(12)], 5)
    folds = group_folds(groups, 5, seed=3)
    assert set(folds) == set(range(5))
    assert all(len(set(folds[groups == g])) == 1 for g in set(groups))
    np.testing.assert_array_equal(folds, group_folds(groups, 5, seed=3))
    assert len(set(group_folds(groups[:10], 5))) == 2  # never more folds than groups


def test_predictors_lag_within_groups_only():
    stimuli = pd.DataFrame({"text": ["The", "cat", "sat.", "A", "dog"], "group": ["a", "a", "a", "b", "b"],
                            "word_in_sentence": [1, 2, 3, 1, 2]})
    table = word_predictors(stimuli, np.array([1.0, 2, 3, 4, 5]), spillover=1)
    np.testing.assert_array_equal(table["length"], [3, 3, 4, 1, 3])
    np.testing.assert_array_equal(table["surprisal_lag1"], [np.nan, 1, 2, np.nan, 4])
    np.testing.assert_array_equal(table["surprisal_next"], [2, 3, np.nan, 5, np.nan])
    assert table.loc[0, "log_frequency"] > table.loc[1, "log_frequency"] > 4  # "The" is commoner than "cat", both common
    with pytest.raises(BrainalignError, match="surprisal: 4 values for 5 words"):
        word_predictors(stimuli, np.ones(4))
    with pytest.raises(BrainalignError, match="regression_language: wordfreq has no word list for 'xx-nope'"):
        word_predictors(stimuli, np.ones(5), language="xx-nope")


def test_too_little_data_is_reported_not_fitted():
    stimuli = pd.DataFrame({"text": ["a", "b", "c", "d"], "group": ["g"] * 4, "word_in_sentence": [1, 2, 3, 4]})
    result = reading_regression(stimuli, np.ones(4), np.full((1, 4), 300.0), options=OPTIONS)
    assert not result["applicable"] and "needs 2 groups" in result["reason"]


# ----------------------------------------------------------------------------------------------- real data
@pytest.mark.parametrize("adapter, n_groups", [("naturalstories", 2), ("frank2013", 40)])
def test_behaviour_step_writes_the_regression_rows_on_real_data(adapter, n_groups, resources_data, tiny_gpt2_dir, tmp_path):
    """Real reading times (a subset), surprisal from a small random GPT-2: the step writes delta_loglik,
    surprisal_coef (and the spillover lags), lag_check and perplexity_per_word rows with finite numbers, and the
    paper's rows beside them."""
    from brainalign.behaviour.scoring import behaviour_score_file
    from brainalign.behaviour.surprisal import surprisal_file
    from brainalign.datasets import fetch_dataset, prepare_dataset
    from brainalign.options import stage_options

    spec = {"name": adapter, "adapter": adapter, "local_dir": str(resources_data / adapter), "options": {"subset": n_groups}}
    fetch_dataset(spec, tmp_path / "raw")
    prepare_dataset(spec, tmp_path / "raw", tmp_path / "data")
    options = stage_options({}, "behaviour", max_context_tokens=128, min_context_tokens=32, n_bootstrap=20,
                            regression_folds=4)
    model = {"name": "tiny", "source": "local", "path": str(tiny_gpt2_dir), "kind": "decoder"}
    surprisal_file(model, tiny_gpt2_dir, tmp_path / "data", tmp_path / "s.tsv", options, progress=False)
    frame = behaviour_score_file(tmp_path / "s.tsv", tmp_path / "data", tmp_path / "b.csv", "tiny", adapter, options)
    rows = frame.set_index(["metric", "protocol"])
    for key in [("delta_loglik", "reading-regression"), ("surprisal_coef", "reading-regression"),
                ("surprisal_coef_lag1", "reading-regression"), ("surprisal_coef_lag2", "reading-regression"),
                ("lag_check", "reading-regression"), ("perplexity_per_word", "default"), ("surprisal_r", "default")]:
        assert np.isfinite(rows.loc[key, "raw_r"]), key
    assert np.isfinite(rows.loc[("delta_loglik", "reading-regression"), ["ci_low", "ci_high"]].astype(float)).all()
    details = json.loads((tmp_path / "b.json").read_text())["reading_regression"]
    assert details["estimator"].startswith("MixedLM" if adapter == "frank2013" else "OLS")
    assert details["n_observations"] == rows.loc[("delta_loglik", "reading-regression"), "n"]


def test_report_table_shows_both_protocols_and_warns_when_the_lag_check_fires():
    from brainalign.study.sections import reading_behaviour_table
    from brainalign.study.tables import tidy_frame, tidy_row

    rows = []
    for model, check in (("lm", (-0.2, -0.25, -0.15)), ("lm-untrained", (0.3, 0.2, 0.4))):
        rows += [tidy_row(model, "ns", "behaviour", "surprisal_r", "default", 0.4, ci=(0.35, 0.45), n=100),
                 tidy_row(model, "ns", "behaviour", "delta_loglik", "reading-regression", 0.0123, ci=(0.01, 0.015), n=100),
                 tidy_row(model, "ns", "behaviour", "surprisal_coef", "reading-regression", 5.0, ci=(4.0, 6.0), n=100),
                 tidy_row(model, "ns", "behaviour", "surprisal_coef_lag1", "reading-regression", 2.0, ci=(1.0, 3.0), n=100),
                 tidy_row(model, "ns", "behaviour", "lag_check", "reading-regression", check[0], ci=check[1:], n=100)]
    table, warnings = reading_behaviour_table(tidy_frame(rows), untrained={"lm-untrained"})
    assert table["model"].tolist() == ["lm", "lm-untrained (untrained)"]
    assert table["delta log-lik (nats/obs)"].iloc[0] == "0.0123 [0.0100, 0.0150]"
    assert table["spillover coefs (ms/bit)"].iloc[0] == "lag 1: 2.00"
    assert table["lag check"].tolist() == ["ok", "WARNING: fires"]
    assert len(warnings) == 1 and warnings[0].startswith("lm-untrained on ns: the next word's surprisal")
    no_effect = tidy_frame(rows).assign(ci_low=lambda t: np.where(t["metric"] == "delta_loglik", -0.001, t["ci_low"]))
    assert reading_behaviour_table(no_effect)[1] == []  # the check needs a surprisal that predicts at all


def test_the_report_gates_the_warning_on_the_next_word_models_gain():
    """A score file with the ``lag_check_gain`` row: the warning needs its CI above 0 (the delta log-likelihood's
    alone no longer decides)."""
    from brainalign.study.sections import reading_behaviour_table
    from brainalign.study.tables import tidy_frame, tidy_row

    def rows(gain_ci):
        return tidy_frame([tidy_row("lm", "ns", "behaviour", "delta_loglik", "reading-regression", 0.01, ci=(0.005, 0.015), n=100),
                           tidy_row("lm", "ns", "behaviour", "lag_check", "reading-regression", 0.01, ci=(0.004, 0.02), n=100),
                           tidy_row("lm", "ns", "behaviour", "lag_check_gain", "reading-regression", 0.004, ci=gain_ci, n=100)])

    assert reading_behaviour_table(rows((-0.001, 0.009)))[1] == []
    assert len(reading_behaviour_table(rows((0.001, 0.009)))[1]) == 1


# ----------------------------------------------------------------------------------------------- the shipped corpora
STORED_SURPRISAL = Path(__file__).parent / "data" / "surprisal"
HEADLINE = {"naturalstories": "rt_mean", "frank2013": "first_pass"}


@pytest.fixture(scope="module")
def shipped(resources_data, tmp_path_factory):
    """The shipped reading corpora prepared whole, each with SmolLM2-135M-Instruct's stored surprisal (the default
    run's), the headline measure's reading times (readers, words) and the words the default exclusions keep."""
    from brainalign.behaviour.scoring import DEFAULT_EXCLUSIONS, exclusion_masks
    from brainalign.datasets import fetch_dataset, load_prepared, prepare_dataset

    out = {}
    for adapter, measure in HEADLINE.items():
        folder = tmp_path_factory.mktemp(adapter)
        spec = {"name": adapter, "adapter": adapter, "local_dir": str(resources_data / adapter)}
        fetch_dataset(spec, folder / "raw")
        prepare_dataset(spec, folder / "raw", folder / "data")
        data = load_prepared(folder / "data")
        stimuli = data.stimuli.reset_index(drop=True)
        table = pd.read_csv(STORED_SURPRISAL / f"smollm2-135m-instruct_{adapter}.tsv.gz", sep="\t", dtype={"stimulus_id": str})
        assert table["stimulus_id"].tolist() == stimuli["stimulus_id"].astype(str).tolist()
        surprisal = table["surprisal_bits"].to_numpy(dtype=float)
        rts = data.responses[:, :, data.neuroids.index(measure)].astype(float)
        with np.errstate(all="ignore"):
            target = np.nanmean(np.where((rts >= 50) & (rts <= 3000), rts, np.nan), axis=0)
        keep = np.ones(len(stimuli), dtype=bool)
        for mask in exclusion_masks(stimuli, surprisal, target, DEFAULT_EXCLUSIONS).values():
            keep &= ~mask
        out[adapter] = {"stimuli": stimuli, "surprisal": surprisal, "rts": rts, "keep": keep, "subjects": data.subjects}
    return out


def earlier_by_one_word(rts, stimuli):
    """Each word given the next word's reading time (within its group): the misalignment the lag check looks for."""
    groups = stimuli["group"].astype(str).to_numpy()
    return np.stack([shift_within_groups(row, groups, -1) for row in rts])


REAL_OPTIONS = {"regression_folds": 5, "regression_spillover": 2, "regression_language": "en", "seed": 0, "n_bootstrap": 400}


def test_lag_check_on_natural_stories_is_silent_aligned_and_fires_shifted_by_one_word(shipped):
    """Natural Stories' mean reading times (the 2025-realigned repository's processed_wordinfo.tsv): with the next
    word's length and frequency in both models the check no longer credits the next word's surprisal with them
    (the previous check fired here for every trained model, +0.031 nats); moved one word earlier, it fires."""
    ns = shipped["naturalstories"]
    aligned = reading_regression(ns["stimuli"], ns["surprisal"], ns["rts"], ns["keep"], ns["subjects"], REAL_OPTIONS)
    assert aligned["delta_loglik_ci"][0] > 0 and aligned["lag_check_gain_ci"][0] > 0  # the surprisal predicts
    assert not aligned["lag_check_fires"] and aligned["lag_check"] < 0, aligned["lag_check_ci"]
    assert aligned["ci_resamples"] == "groups, then sentences within each (two-level); one pseudo-reader (mean reading times)"
    shifted = reading_regression(ns["stimuli"], ns["surprisal"], earlier_by_one_word(ns["rts"], ns["stimuli"]), ns["keep"],
                                 ns["subjects"], REAL_OPTIONS)
    assert shifted["lag_check_fires"] and shifted["lag_check_ci"][0] > 0 and shifted["lag_check_gain_ci"][0] > 0
    assert shifted["delta_loglik_ci"][0] < 0  # why the gate is the next model's gain: the delta alone would keep it silent


def test_lag_check_on_frank_2013_readers_is_silent_aligned(shipped):
    """Frank 2013's per-reader first-pass times (MixedLM, readers x sentences crossed): silent when aligned. (Moved one
    word earlier the check's value stays near 0, either sign with the folds: 43 readers' eye-tracking times do not
    show a one-word shift of SmolLM2's surprisal with an interval that also resamples the 205 sentences;
    docs/statistics.md, "Reading times". Firing on per-reader data: test_lag_check_fires_on_reading_times_shifted_by_one_word.)"""
    frank = shipped["frank2013"]
    aligned = reading_regression(frank["stimuli"], frank["surprisal"], frank["rts"], frank["keep"], frank["subjects"],
                                 dict(REAL_OPTIONS, regression_folds=4))
    assert aligned["ci_resamples"] == "readers x sentences (crossed)" and aligned["n_subjects"] == 43
    assert aligned["delta_loglik_ci"][0] > 0 and aligned["lag_check_gain_ci"][0] > 0  # the surprisal predicts
    assert not aligned["lag_check_fires"] and aligned["lag_check"] < 0, aligned["lag_check_ci"]


def test_a_surprisal_that_re_encodes_word_form_does_not_fire_on_the_shipped_corpora(shipped):
    """An untrained model's surprisal is about its token count: a function of the word's form. Here: 15 bits per
    five letters and per attached punctuation mark. On Frank 2013's mean reading times its next-word term stands for
    the next word's sentence-final punctuation: without the punctuation terms in the check's shared terms it fires
    (+0.074 nats, CI [0.056, 0.096]; the default run's untrained SmolLM2 on the per-reader times: +0.012); with them
    it is silent. (On Natural Stories this proxy is silent either way; the real untrained models' next-word term
    there stood for nonlinear length, the squared-length terms: docs/statistics.md, "Reading times".)"""
    for adapter, data in shipped.items():
        text = data["stimuli"]["text"].astype(str)
        form = 15.0 * (1 + text.str.len().to_numpy() // 5 + text.str.count(r"[^\w'’-]").to_numpy())
        with np.errstate(all="ignore"):
            means = np.nanmean(np.where((data["rts"] >= 50) & (data["rts"] <= 3000), data["rts"], np.nan), axis=0)[None]
        result = reading_regression(data["stimuli"], form, means, data["keep"], ["average"], REAL_OPTIONS)
        assert not result["lag_check_fires"], (adapter, result["lag_check_ci"], result["lag_check_gain_ci"])

