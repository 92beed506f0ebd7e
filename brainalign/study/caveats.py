"""What the run itself says to read with care, for the summary page: scores indistinguishable from chance, scores
above their ceiling, a headline at the best layer (biased upward by the choice), the leaky brainscore-2023
protocol on time series, reading times shifted against the words, too few pairs for a small p-value, and the
distinct warnings in the run's logs."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd

from brainalign.study.headline import headline_selection
from brainalign.study.sections import reading_behaviour_table, selection_bias_table

NEAR_ZERO_R = 0.05  # |r| below this on a layer: indistinguishable from chance at the sizes these datasets have


def warnings_in_logs(logs_dir) -> dict[str, list[str]]:
    """Distinct WARNING messages of the run's logs -> the logs that hold them (timestamps stripped)."""
    found: dict[str, list[str]] = {}
    if logs_dir is None or not Path(logs_dir).is_dir():
        return found
    for path in sorted(Path(logs_dir).rglob("*.log")):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            match = re.match(r"^\S+ \S+ WARNING (.*)$", line)
            if match:
                found.setdefault(match.group(1).strip(), []).append(str(path.relative_to(logs_dir)))
    return found


def _diagnostics(tidy: pd.DataFrame, results_dir: Path) -> list[str]:
    """Caveats from the run's own files: time-series datasets scored with the leaky brainscore-2023 protocol
    (``datasets/*/meta.json``) and reading measures whose best surprisal lag is not 0 (``behaviour/*/*.json``)."""
    items = []
    for meta_path in sorted(Path(results_dir).glob("datasets/*/meta.json")):
        meta = json.loads(meta_path.read_text())
        name = meta.get("name", meta_path.parent.name)
        if meta.get("kind") == "timeseries" and ((tidy["dataset"] == name) & (tidy["protocol"] == "brainscore-2023")).any():
            items.append(f"{html.escape(name)} is a time series: its brainscore-2023 scores use random splits over "
                         "scans, so autocorrelated neighbours of each held-out scan are in the training set (leaky; "
                         "untrained models score high too). Use ridge-grouped (contiguous blocks with a gap).")
    for path in sorted(Path(results_dir).glob("behaviour/*/*.json")):
        details = json.loads(path.read_text())
        for measure, entry in (details.get("measures") or {}).items():
            if isinstance(entry, dict) and str(entry.get("best_lag", "0")) != "0":
                items.append(f"{html.escape(path.parent.name)} on {html.escape(path.stem)} ({html.escape(measure)}): "
                             f"surprisal predicts reading times best at lag {html.escape(str(entry['best_lag']))}, "
                             "not 0: check the word alignment of the reading times.")
    return items


def _best_layer_headline(tidy: pd.DataFrame, headline: pd.DataFrame) -> list[str]:
    """A headline at the best layer (``analysis.headline.brain_selection: best``, the paper's): chosen on the folds that
    score it, so biased upward, with a CI that leaves the choice out; by how much here (best - nested)."""
    if headline_selection(headline) != "best":
        return []
    bias = selection_bias_table(tidy, headline)
    measured = (f" (here best exceeds the nested choice by {bias['best - nested'].median():+.3f} r on median, at most "
                f"{bias['best - nested'].max():+.3f}: the layer-selection table)") if len(bias) else ""
    return ["Headline brain scores are each model's best layer, chosen on the same folds that score it: biased upward"
            f"{measured}, and their CIs leave the choice out. analysis.headline.brain_selection: nested chooses each "
            "fold's layer on training folds only."]


def caveats(tidy: pd.DataFrame, headline: pd.DataFrame, effect: pd.DataFrame, results_dir=None, logs_dir=None) -> list[str]:
    """What the run itself says to read with care (HTML-escaped list items): headline CIs that include zero,
    near-zero layers, normalised scores above 1, a best-layer headline, the leaky brainscore-2023 protocol on
    time-series datasets, a reading-time lag other than 0, too few pairs for a small p-value, and the distinct
    warnings of the logs."""
    items = []
    if len(headline) and {"ci_low", "ci_high"} <= set(headline.columns):
        spans = headline[(headline["ci_low"] <= 0) & (headline["ci_high"] >= 0)]
        for row in spans.itertuples():
            items.append(f"{row.model} on {row.dataset}: headline score {row.score:.3f} has a 95% CI that includes 0 "
                         f"({row.ci_low:.3f} to {row.ci_high:.3f}): not distinguishable from chance.")
    layers = tidy[(tidy["kind"] == "brain") & (tidy["metric"] == "linear") & (tidy["selection"] == "layer")
                  & (tidy["raw_r"].abs() < NEAR_ZERO_R)]
    if len(layers):
        described = "; ".join(f"{model} {layer} on {dataset} ({protocol})" for model, layer, dataset, protocol
                              in layers[["model", "layer", "dataset", "protocol"]].itertuples(index=False))
        items.append(f"{len(layers)} layer encoding scores are near chance (|r| &lt; {NEAR_ZERO_R}): {html.escape(described)}.")
    over = tidy[pd.to_numeric(tidy["normalised"], errors="coerce") > 1]
    if len(over):
        items.append(f"{len(over)} scores exceed their noise ceiling (normalised &gt; 1, up to {over['normalised'].max():.2f}): "
                     "the ceiling underestimates the explainable variance or the protocol leaks.")
    items += _best_layer_headline(tidy, headline)
    if results_dir is not None:
        items += _diagnostics(tidy, Path(results_dir))
    items += [html.escape(warning) for warning in reading_behaviour_table(tidy)[1]]  # the reading-regression lag check
    small = effect[(effect["n_pairs"] > 0) & (effect["n_pairs"] < 6)]
    if len(small):
        n = int(small["n_pairs"].min())
        items.append(f"Only {n} pair{'s' if n != 1 else ''} on some measures: the sign-flip p-value cannot go below "
                     f"{2 / 2 ** n:.2g} and bootstrap CIs over pairs are {'not estimable' if n < 2 else 'coarse'}.")
    for message, logs in warnings_in_logs(logs_dir).items():
        where = ", ".join(sorted(set(logs))[:3]) + (f" and {len(set(logs)) - 3} more" if len(set(logs)) > 3 else "")
        items.append(f"Warning (in {html.escape(where)}): {html.escape(message)}")
    return items
