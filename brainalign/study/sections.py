"""The summary page's dataset-kind tables, built from rows of the tidy table alone (the page needs no other file):

* ``reading_behaviour_table``: per model x reading dataset, the paper's r beside the reading-regression protocol,
  and the lag-check warnings;
* ``timeseries_gain_table``: per time-series dataset x model, the baseline, the joint model and the gain over the
  baseline, each trained model followed by its untrained control;
* ``selection_bias_table``: per model x brain dataset, the headline's best layer beside its nested layer choice,
  and how far the best exceeds the nested (the layer-selection bias);
* ``language_benchmark_table``: per model x Brain-Score Language benchmark (SyntaxGym, Wikitext), the accuracy with
  its CI and what it counts; ``syntaxgym_suite_table``: per SyntaxGym suite, each model's accuracy with its CI.

The language benchmarks' rows are behaviour rows too (``brainalign.behaviour.lm_benchmarks``), told apart by their
metric (``accuracy`` and ``accuracy_<suite>``): the reading table leaves them out, since they have no reading times.
"""

from __future__ import annotations

import pandas as pd

from brainalign.behaviour.regression_intervals import lag_check_fires
from brainalign.study.comparisons import untrained_models
from brainalign.study.headline import Headline
from brainalign.study.tables import GAIN_METRICS, GAIN_PROTOCOL

READING_PROTOCOL = "reading-regression"
ACCURACY = "accuracy"  # a language benchmark's score; ``accuracy_<suite>`` per SyntaxGym suite
SUITE_PREFIX = ACCURACY + "_"


def language_rows(tidy: pd.DataFrame) -> pd.Series:
    """Which rows are a language benchmark's (behaviour rows scored as accuracy, not against reading times)."""
    metric = tidy["metric"].astype(str)
    return (tidy["kind"] == "behaviour") & ((metric == ACCURACY) | metric.str.startswith(SUITE_PREFIX))


def _counted(n, word: str) -> str:
    """``1,234 contexts``: a count with what it counts; empty without a count."""
    if pd.isna(n):
        return ""
    n = int(n)
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def with_ci(value, low, high, digits: int = 3) -> str:
    """``value [low, high]``; the value alone without a CI; empty without a value."""
    if pd.isna(value):
        return ""
    text = f"{value:.{digits}f}"
    return text + (f" [{low:.{digits}f}, {high:.{digits}f}]" if pd.notna(low) and pd.notna(high) else "")


def reading_behaviour_table(tidy: pd.DataFrame, untrained=()) -> tuple[pd.DataFrame, list[str]]:
    """Per model x reading dataset, the paper's r beside the reading-regression protocol (delta log-likelihood with
    its CI, surprisal coefficient, spillover profile, lag check) and perplexity per word, untrained controls
    marked; and one warning per model x dataset whose lag check fired (``regression_intervals.lag_check_fires``: the
    next word's surprisal predicts reading times better than the previous word's, so the reading times look shifted
    against the words)."""
    behaviour = tidy[(tidy["kind"] == "behaviour") & ~language_rows(tidy)]
    if behaviour.empty:
        return pd.DataFrame(), []
    rows, warnings = [], []
    for (model, dataset), part in behaviour.groupby(["model", "dataset"], sort=True):
        cell = {(r.metric, r.protocol): r for r in part.itertuples(index=False)}

        def shown(metric, protocol, digits=3, cell=cell):
            r = cell.get((metric, protocol))
            return "" if r is None else with_ci(r.raw_r, r.ci_low, r.ci_high, digits)

        lags = sorted(m for m, p in cell if p == READING_PROTOCOL and m.startswith("surprisal_coef_lag"))
        check, delta = cell.get(("lag_check", READING_PROTOCOL)), cell.get(("delta_loglik", READING_PROTOCOL))
        gate = cell.get(("lag_check_gain", READING_PROTOCOL), delta)  # score files from before the gain row: the delta
        fired = check is not None and gate is not None and lag_check_fires(check.ci_low, gate.ci_low)
        if fired:
            warnings.append(f"{model} on {dataset}: the next word's surprisal predicts reading times better than the "
                            f"previous word's (lag check {check.raw_r:.4f} nats, CI [{check.ci_low:.4f}, {check.ci_high:.4f}]): "
                            "the reading times look shifted by one word against the text (both models hold both "
                            "neighbours' length and frequency)")
        rows.append({"model": model + (" (untrained)" if model in set(untrained) else ""), "dataset": dataset,
                     "r (default)": shown("surprisal_r", "default"), "|r| (brainscore-2023)": shown("surprisal_r", "brainscore-2023"),
                     "delta log-lik (nats/obs)": shown("delta_loglik", READING_PROTOCOL, 4),
                     "surprisal coef (ms/bit)": shown("surprisal_coef", READING_PROTOCOL, 2),
                     "spillover coefs (ms/bit)": ", ".join(
                         f"lag {m.removeprefix('surprisal_coef_lag')}: {cell[(m, READING_PROTOCOL)].raw_r:.2f}" for m in lags),
                     "perplexity/word": shown("perplexity_per_word", "default", 1),
                     "lag check": "" if check is None else ("WARNING: fires" if fired else "ok")})
    return pd.DataFrame(rows), warnings


def language_benchmark_table(tidy: pd.DataFrame, untrained=()) -> pd.DataFrame:
    """Per model x language benchmark with an ``accuracy`` row: the accuracy with its 95% CI and what it averages
    (SyntaxGym, whose dataset has per-suite rows: the suites, since its accuracy is their mean; Wikitext: the
    contexts whose next word was predicted), untrained controls marked. Empty without such rows."""
    language = tidy[language_rows(tidy)]
    main = language[language["metric"] == ACCURACY]
    if main.empty:
        return pd.DataFrame()
    suited = language["metric"].astype(str).str.startswith(SUITE_PREFIX)
    with_suites = set(language.loc[suited, "dataset"])
    untrained = set(untrained)
    rows = []
    for r in main.sort_values(["model", "dataset"], kind="mergesort").itertuples(index=False):
        rows.append({"model": r.model + (" (untrained)" if r.model in untrained else ""), "dataset": r.dataset,
                     "accuracy [95% CI]": with_ci(r.raw_r, r.ci_low, r.ci_high),
                     "n": _counted(r.n, "suite" if r.dataset in with_suites else "context")})
    return pd.DataFrame(rows)


def syntaxgym_suite_table(tidy: pd.DataFrame, untrained=()) -> pd.DataFrame:
    """Per SyntaxGym dataset x suite (its ``accuracy_<suite>`` rows): the suite's items and each model's accuracy
    with its 95% CI, one column per model (untrained controls marked, after the trained ones), so the suites a model
    fails sit beside the others' scores. Empty without suite rows."""
    language = tidy[language_rows(tidy)]
    suites = language[language["metric"].astype(str).str.startswith(SUITE_PREFIX)]
    if suites.empty:
        return pd.DataFrame()
    untrained = set(untrained)
    models = sorted(set(suites["model"]), key=lambda m: (m in untrained, m))
    names = {m: m + (" (untrained)" if m in untrained else "") for m in models}
    rows = []
    for (dataset, metric), part in suites.groupby(["dataset", "metric"], sort=True):
        cell = {r.model: r for r in part.itertuples(index=False)}
        items = sorted({int(n) for n in part["n"] if pd.notna(n)})  # one count unless the models saw different items
        row = {"dataset": dataset, "suite": metric.removeprefix(SUITE_PREFIX),
               "items": " / ".join(f"{n:,}" for n in items)}
        for model in models:
            r = cell.get(model)
            row[names[model]] = "" if r is None else with_ci(r.raw_r, r.ci_low, r.ci_high)
        rows.append(row)
    return pd.DataFrame(rows)


def timeseries_gain_table(tidy: pd.DataFrame, models: pd.DataFrame | None = None, selection: str | None = None) -> pd.DataFrame:
    """Per time-series dataset x model: the raw score (linear, ridge-grouped), the baseline (word rate + nuisance),
    the joint model (baseline + the layer's features), the gain (joint - baseline, the time series' headline) and
    the variance added, each with its block-bootstrap 95% CI, at the ``selection`` layer (best or nested; None: the
    headline's default, ``Headline().brain_selection``; the nested row names the layer chosen in most folds, and its
    raw r is that layer's); each trained model is followed by its untrained control (its ``vanilla_base_model`` when
    that is untrained), so the two gains sit side by side."""
    selection = selection or Headline().brain_selection
    rows = tidy[(tidy["kind"] == "brain") & (tidy["protocol"] == GAIN_PROTOCOL) & (tidy["selection"] == selection)]
    gain = rows[rows["metric"].isin(list(GAIN_METRICS.values()))]
    if gain.empty:
        return pd.DataFrame()
    untrained = untrained_models(models) if models is not None else set()
    base_of = ({r.model: r.vanilla_base_model for r in models.itertuples()}
               if models is not None and "vanilla_base_model" in models else {})
    order = []
    for model in sorted(set(gain["model"]), key=lambda m: (m in untrained, m)):
        if model in order:
            continue
        order.append(model)
        control = base_of.get(model)
        if isinstance(control, str) and control in untrained and control in set(gain["model"]) and control not in order:
            order.append(control)
    out = []
    for dataset in sorted(set(gain["dataset"])):
        here = rows[rows["dataset"] == dataset]
        for model in order:
            cell = {r.metric: r for r in here[here["model"] == model].itertuples(index=False)}
            if "gain_r" not in cell:
                continue
            at_layer = tidy[(tidy["dataset"] == dataset) & (tidy["model"] == model) & (tidy["metric"] == "linear")
                            & (tidy["protocol"] == GAIN_PROTOCOL) & (tidy["selection"] == "layer")
                            & (tidy["layer"] == cell["gain_r"].layer)]
            raw = next(at_layer.itertuples(index=False), None)  # the features alone, at the same layer
            out.append({"dataset": dataset, "model": model + (" (untrained)" if model in untrained else ""),
                        "layer": cell["gain_r"].layer,
                        "raw r": "" if raw is None else with_ci(raw.raw_r, raw.ci_low, raw.ci_high),
                        "baseline r": with_ci(cell["baseline_r"].raw_r, cell["baseline_r"].ci_low, cell["baseline_r"].ci_high),
                        "joint r": with_ci(cell["joint_r"].raw_r, cell["joint_r"].ci_low, cell["joint_r"].ci_high),
                        "gain (joint - baseline)": with_ci(cell["gain_r"].raw_r, cell["gain_r"].ci_low, cell["gain_r"].ci_high),
                        "variance added": with_ci(cell["variance_added"].raw_r, cell["variance_added"].ci_low,
                                                  cell["variance_added"].ci_high, 4),
                        "ceiling": "" if pd.isna(cell["joint_r"].ceiling) else f"{cell['joint_r'].ceiling:.3f}"})
    return pd.DataFrame(out)


def selection_bias_table(tidy: pd.DataFrame, headline: pd.DataFrame) -> pd.DataFrame:
    """Per model x brain dataset of the headline table: its metric and protocol's best layer (chosen on the folds that
    score it) and nested layer choice (each fold's layer chosen on training folds only; the layer chosen most often
    named), each score with its 95% CI, and best - nested: how far choosing on the test folds lifts the score (the
    selection bias; negative only by chance). Empty when the tidy table has no such pairs of rows."""
    if headline.empty or "metric" not in headline.columns or "protocol" not in headline.columns:
        return pd.DataFrame()
    brain = headline[headline["kind"] == "brain"] if "kind" in headline.columns else headline
    chosen = tidy[(tidy["kind"] == "brain") & tidy["selection"].isin(["best", "nested"])]
    out = []
    for row in brain.sort_values(["dataset", "model"], kind="mergesort").itertuples(index=False):
        here = chosen[(chosen["model"] == row.model) & (chosen["dataset"] == row.dataset) & (chosen["metric"] == row.metric)
                      & (chosen["protocol"] == row.protocol)]
        cell = {r.selection: r for r in here.itertuples(index=False)}
        if "best" not in cell or "nested" not in cell:
            continue
        best, nested = cell["best"], cell["nested"]
        out.append({"dataset": row.dataset, "model": row.model, "metric": row.metric, "protocol": row.protocol,
                    "best layer": best.layer, "best": with_ci(best.raw_r, best.ci_low, best.ci_high),
                    "nested layer": nested.layer, "nested": with_ci(nested.raw_r, nested.ci_low, nested.ci_high),
                    "best - nested": float(best.raw_r - nested.raw_r)})
    return pd.DataFrame(out)
