"""Behaviour scores: how well a model's per-word surprisal (:mod:`brainalign.behaviour.surprisal`) tracks how long
people take to read each word, as tidy rows (step of rule ``behaviour``).

Scores (``behaviour_score_file``), one tidy row each, on the dataset's headline measure (:func:`headline_measure`:
its adapter's ``HEADLINE_MEASURE``, or its only measure):

* ``surprisal_r`` / ``default``: the project's protocol: Pearson r between surprisal and the mean reading measure
  (per-value RT outliers outside 50-3000 ms dropped before averaging), after the ``exclusions`` steps; 95% CI from
  resampling whole text units, never single words (words of one sentence share context): sentences, drawn inside
  drawn stories where a story holds several (``regression_intervals.text_units``, :func:`unit_pearson_ci`;
  ``ci_resamples`` in the details says which); ceiling = the project's split-half ceiling over the kept words (a
  group-averaged dataset: its published one).
* ``surprisal_r`` / ``brainscore-2023``: Brain-Score Language 2023's Futrell2018-pearsonr, as in the paper:
  |Pearson r| between surprisal and the mean RT over subjects (no RT filter), over every word not first in its
  sentence (``word_in_sentence == 1`` dropped, nothing else); ceiling = the dataset's ``published_ceiling`` (0.858
  for futrell2018) when it declares one, else Brain-Score's split-half ceiling (10 random subject halves from
  RandomState(seed), |r| between the half means over all words, Spearman-Brown, median). ``normalised`` = |r| /
  ceiling is the number the paper's Tab. 9 reports (not clipped to 1 here).
* ``perplexity`` / ``default``: per-token perplexity of the scored tokens (causal readings only).
* ``perplexity_per_word`` / ``default``: 2 ** (mean surprisal in bits over the scored words): per word, so it
  compares across tokenizers (causal readings only).
* ``reading-regression`` (``regression: true``, on the headline measure, over the ``default`` protocol's kept
  words): ``delta_loglik``, ``surprisal_coef``, ``surprisal_coef_lag{k}``, ``lag_check``, ``lag_check_gain`` from
  :mod:`brainalign.behaviour.reading_regression` (delta log-likelihood over a length/frequency/position baseline,
  held out).

The details JSON beside the rows keeps every statistic of every measure: exclusion counts, lags -1/0/+1, both
ceilings, per-subject correlations, the regression's fits. Nothing here imports torch (the stats environment runs it).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.behaviour.reading_regression import reading_regression
from brainalign.behaviour.regression_intervals import text_units
from brainalign.behaviour.regression_predictors import RT_RANGE, shift_within_groups
from brainalign.bootstrap import percentile_ci, unit_weights
from brainalign.correlation import pearson, split_half_r
from brainalign.datasets.base import load_prepared
from brainalign.datasets.registry import ADAPTERS
from brainalign.errors import BrainalignError
from brainalign.io import write_json, write_table
from brainalign.options import BehaviourOptions
from brainalign.study.tables import tidy_frame, tidy_row

log = logging.getLogger("brainalign.behaviour.scoring")

DEFAULT_EXCLUSIONS = ("missing_surprisal", "first_in_sentence", "last_in_sentence", "attached_punctuation", "rt_outliers")
REGRESSION_PROTOCOL = "reading-regression"


def headline_measure(meta: dict, measures) -> str:
    """The reading measure a dataset's headline rows report: the ``HEADLINE_MEASURE`` of its adapter (``meta``'s
    ``adapter``, else its ``name``), or its only measure. A dataset with several measures whose adapter declares
    none is an error: which one the headline reports must be chosen, not fall to the first."""
    measures = list(measures)
    adapter = meta.get("adapter") or meta.get("name")
    declared = getattr(ADAPTERS[adapter], "HEADLINE_MEASURE", None) if adapter in ADAPTERS else None
    if declared is not None:
        return declared
    if len(measures) == 1:
        return measures[0]
    raise BrainalignError(f"dataset {meta.get('name')!r}: adapter {adapter!r} declares no HEADLINE_MEASURE and the dataset has "
                          f"{len(measures)} reading measures ({', '.join(map(str, measures))}); set HEADLINE_MEASURE in "
                          f"brainalign/datasets/{adapter}.py to the one its headline rows report")


def exclusion_masks(stimuli: pd.DataFrame, surprisal: np.ndarray, rt: np.ndarray, steps, rt_range=RT_RANGE) -> dict:
    """Named exclusion steps, each a boolean mask of words to drop (applied in order; counts reported)."""
    text = stimuli["text"].astype(str)
    within = stimuli["word_in_sentence"].to_numpy() if "word_in_sentence" in stimuli else np.zeros(len(stimuli))
    sentence = stimuli["sentence_id"].astype(str).to_numpy() if "sentence_id" in stimuli else stimuli["group"].astype(str).to_numpy()
    last = np.r_[sentence[1:] != sentence[:-1], True]
    available = {
        "missing_surprisal": ~np.isfinite(surprisal),
        "first_in_sentence": within == 1,
        "last_in_sentence": last,
        "attached_punctuation": text.str.contains(r"[^\w]", regex=True).to_numpy() & ~text.str.fullmatch(r"[\w'’-]+").to_numpy(),
        "rt_outliers": ~np.isfinite(rt) | (rt < rt_range[0]) | (rt > rt_range[1]),
    }
    unknown = [s for s in steps if s not in available]
    if unknown:
        raise BrainalignError(f"config.behaviour.exclusions: unknown steps {unknown} (known: {', '.join(available)})")
    return {step: available[step] for step in steps}


def unit_pearson_ci(x: np.ndarray, y: np.ndarray, units: np.ndarray, n_bootstrap: int, seed: int = 0,
                    groups: np.ndarray | None = None) -> tuple[float, float]:
    """95% percentile CI of Pearson r(x, y) from resampling whole text units with replacement (seeded,
    :func:`brainalign.bootstrap.unit_weights`; with ``groups``, a group label per word, the groups first and their
    units inside them): a resample holds every word of each drawn unit, as often as it was drawn. Each unit's sums
    of 1, x, y, x^2, y^2 and xy are taken once, so a resample's r costs one product."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    x, y = x - x.mean(), y - y.mean()  # r does not change; the moments lose less to cancellation
    labels, inverse = np.unique(np.asarray(units).astype(str), return_inverse=True)
    if n_bootstrap <= 0 or len(labels) < 2:
        return float("nan"), float("nan")
    moments = np.zeros((len(labels), 6))
    np.add.at(moments, inverse, np.column_stack([np.ones_like(x), x, y, x * x, y * y, x * y]))
    col_groups = None
    if groups is not None:
        group_of = dict(zip(np.asarray(units).astype(str), np.asarray(groups).astype(str)))
        col_groups = np.array([group_of[u] for u in labels])
    n, sx, sy, sxx, syy, sxy = (unit_weights(len(labels), n_bootstrap, seed, col_groups) @ moments).T
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (n * sxy - sx * sy) / np.sqrt((n * sxx - sx ** 2) * (n * syy - sy ** 2))
    return percentile_ci(r)


def split_half_rt_ceiling(rts: np.ndarray, n_splits: int = 10, seed: int = 0) -> float:
    """rts: (subjects, words). Median over random subject halves (an odd subject out joins the second) of the
    Spearman-Brown corrected r between the halves' mean RTs, over the words both halves have."""

    def finite_pearson(a: np.ndarray, b: np.ndarray) -> float:
        ok = np.isfinite(a) & np.isfinite(b)
        return pearson(a[ok], b[ok])[0]

    return float(np.nanmedian(split_half_r(rts, finite_pearson, n_splits, seed)))


def brainscore_rt_ceiling(rts: np.ndarray, n_splits: int = 10, seed: int = 0) -> float:
    """Brain-Score 2023's Futrell 2018 ceiling (``SplitHalvesConsistency``): rts (subjects, words), every word. Per
    split a random half of the subjects (RandomState(seed), the spare subject in the second half), |Pearson r|
    between the halves' mean RTs (NaN cells ignored; words both halves have), Spearman-Brown; the median."""

    def abs_pearson(a: np.ndarray, b: np.ndarray) -> float:
        ok = np.isfinite(a) & np.isfinite(b)
        return abs(pearson(a[ok], b[ok])[0])

    with warnings.catch_warnings():  # a word no subject of a half read: NaN, left out of that split's r
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmedian(split_half_r(rts, abs_pearson, n_splits, seed)))


def brainscore_entry(surprisal: np.ndarray, stimuli: pd.DataFrame, rts: np.ndarray, meta: dict, seed: int = 0) -> dict:
    """Brain-Score Language 2023's Futrell2018-pearsonr (methods §2.5) for one reading measure.

    rts: (subjects, words), unfiltered. Target = the mean over subjects (NaN cells ignored: no RT filter); words
    with ``word_in_sentence == 1`` are dropped (and words without a surprisal or target); score = |Pearson r|.
    Ceiling = ``meta['published_ceiling']`` when the dataset declares one (futrell2018: 0.858, the paper's
    normaliser), else Brain-Score's split-half ceiling over all words (several subjects only); both are recorded."""
    with np.errstate(all="ignore"):
        target = np.nanmean(rts, axis=0)
    within = stimuli["word_in_sentence"].to_numpy() if "word_in_sentence" in stimuli else np.zeros(len(stimuli))
    keep = np.isfinite(surprisal) & np.isfinite(target) & (within != 1)
    r, p = pearson(surprisal[keep], target[keep])
    split = brainscore_rt_ceiling(rts, seed=seed) if len(rts) > 1 else None
    published = meta.get("published_ceiling")
    ceiling, source = (float(published), "published") if published is not None else (split, "split-half" if split is not None else None)
    return {"brainscore_r": r, "brainscore_abs_r": abs(r), "brainscore_p": p, "brainscore_n": int(keep.sum()),
            "brainscore_ceiling": ceiling, "brainscore_ceiling_source": source,
            "brainscore_split_half_ceiling": split, "published_ceiling": published}


def behaviour_scores(surprisal: np.ndarray, dataset, options: BehaviourOptions | dict | None = None, *,
                     measure: str | None = None) -> dict:
    """Every behaviour statistic for one model on one reading dataset (module docstring), for every reading
    measure; the reading regression on the headline one (``measure``, default :func:`headline_measure`)."""
    options = BehaviourOptions.from_dict(options)
    seed = options.seed
    stimuli = dataset.stimuli.reset_index(drop=True)
    measure = measure or headline_measure(dataset.meta, dataset.neuroids)
    if measure not in dataset.neuroids:
        raise BrainalignError(f"dataset {dataset.meta.get('name')}: no reading measure {measure!r} (has {dataset.neuroids})")
    details = {"measures": {}, "headline_measure": measure}
    steps = list(options.exclusions or DEFAULT_EXCLUSIONS)
    groups = stimuli["group"].astype(str).to_numpy()
    units = text_units(stimuli)
    per_subject = len(dataset.subjects) > 1
    for j, m in enumerate(dataset.neuroids):
        rts = dataset.responses[:, :, j].astype(float)
        rts = np.where((rts >= RT_RANGE[0]) & (rts <= RT_RANGE[1]), rts, np.nan)  # per-value outliers before averaging
        with np.errstate(all="ignore"):
            target = np.nanmean(rts, axis=0)
        masks = exclusion_masks(stimuli, surprisal, target, steps)
        keep = np.ones(len(stimuli), dtype=bool)
        counts = {}
        for step, mask in masks.items():
            counts[step] = int((keep & mask).sum())
            keep &= ~mask
        r, p = pearson(surprisal[keep], target[keep])
        ci = unit_pearson_ci(surprisal[keep], target[keep], units.unit[keep], options.n_bootstrap, seed,
                             groups[keep] if units.nested else None)
        lags = {}
        for lag in (-1, 0, 1):  # each word's reading time against the surprisal of the word `lag` on (-1: the previous)
            shifted = shift_within_groups(surprisal, groups, -lag)
            ok = keep & np.isfinite(shifted)
            lags[str(lag)] = pearson(shifted[ok], target[ok])[0]
        entry = {"r": r, "p": p, "ci_low": ci[0], "ci_high": ci[1], "ci_resamples": units.name, "n": int(keep.sum()), "exclusions": counts,
                 "lag_r": lags, "best_lag": max(lags, key=lambda k: lags[k] if np.isfinite(lags[k]) else -np.inf)}
        entry.update(brainscore_entry(surprisal, stimuli, dataset.responses[:, :, j].astype(float), dataset.meta, seed))
        if per_subject:
            entry["ceiling"] = split_half_rt_ceiling(rts[:, keep], seed=seed)
            subject_r = []
            for s in range(len(rts)):
                ok = keep & np.isfinite(rts[s])
                subject_r.append(pearson(surprisal[ok], rts[s, ok])[0] if ok.sum() > 10 else float("nan"))
            entry["per_subject_r"] = dict(zip(dataset.subjects, subject_r))
            entry["per_subject_median_r"] = float(np.nanmedian(subject_r))
        else:
            entry["ceiling"] = dataset.meta.get("published_ceiling")
        details["measures"][m] = entry
        if m == measure and options.regression:
            details["reading_regression"] = dict(
                reading_regression(stimuli, surprisal, dataset.responses[:, :, j].astype(float), keep, dataset.subjects, options),
                measure=m)
    return details


def regression_rows(model: str, dataset: str, result: dict) -> list[dict]:
    """Tidy rows of the reading-regression protocol (none when it was off or not applicable): ``delta_loglik``
    (held-out nats per observation, CI from crossed resamples of readers x text units: ``result['ci_resamples']``),
    ``surprisal_coef`` and ``surprisal_coef_lag{k}`` (ms per bit, Wald CI with cluster-robust errors:
    ``result['coef_ci_method']``; the spillover profile) and ``lag_check`` (next minus previous word's surprisal,
    held-out nats per observation, CI as delta_loglik's) with ``lag_check_gain`` (the next-word model's gain over
    both neighbours' length and frequency: the check's gate; ``regression_intervals.lag_check_fires`` says when it
    warns). The tidy table has no column for what a CI resamples; the details JSON records it."""
    if not result.get("applicable"):
        return []
    n, protocol = result["n_observations"], REGRESSION_PROTOCOL
    rows = [tidy_row(model, dataset, "behaviour", "delta_loglik", protocol, result["delta_loglik"], ci=result["delta_loglik_ci"], n=n)]
    for lag, entry in result["spillover_profile"].items():
        metric = "surprisal_coef" if lag == "0" else f"surprisal_coef_lag{lag}"
        rows.append(tidy_row(model, dataset, "behaviour", metric, protocol, entry["coef"], ci=(entry["ci_low"], entry["ci_high"]), n=n))
    rows.append(tidy_row(model, dataset, "behaviour", "lag_check", protocol, result["lag_check"], ci=result["lag_check_ci"], n=n))
    if "lag_check_gain" in result:
        rows.append(tidy_row(model, dataset, "behaviour", "lag_check_gain", protocol, result["lag_check_gain"],
                             ci=result["lag_check_gain_ci"], n=n))
    return rows


def behaviour_score_file(surprisal_path, dataset_dir, out_csv, model: str, dataset: str,
                         options: BehaviourOptions | dict | None = None):
    """Step of rule behaviour: tidy rows (surprisal_r default + brainscore-2023, the reading-regression rows,
    perplexity per token and per word for causal readings) + details JSON (every statistic, both ceilings, the
    regression's folds and fits, the surprisal reading)."""
    options = BehaviourOptions.from_dict(options)
    data = load_prepared(dataset_dir)
    table = pd.read_csv(surprisal_path, sep="\t", dtype={"stimulus_id": str})
    if table["stimulus_id"].tolist() != data.stimuli["stimulus_id"].astype(str).tolist():
        raise BrainalignError(f"{surprisal_path}: words differ from {dataset_dir}/stimuli.tsv (recompute surprisal)")
    summary = json.loads(Path(surprisal_path).with_suffix(".json").read_text())
    rows = []
    if not summary.get("applicable", False):
        details = {"applicable": False, "reason": summary.get("reason")}
    else:
        details = behaviour_scores(table["surprisal_bits"].to_numpy(dtype=float), data, options)
        details["applicable"] = True
        details["reading"] = reading = summary.get("reading") or "causal"
        entry = details["measures"][details["headline_measure"]]
        regression = details.get("reading_regression") or {}
        if regression.get("lag_check_fires"):
            log.warning("%s on %s: lag check fires: %s (%s)", model, dataset, regression["lag_check_note"], regression["measure"])
        # tidy_row: a non-positive or missing ceiling gives normalised NaN
        rows.append(tidy_row(model, dataset, "behaviour", "surprisal_r", "default", entry["r"], ceiling=entry.get("ceiling"),
                             ci=(entry["ci_low"], entry["ci_high"]), n=entry["n"]))
        rows.append(tidy_row(model, dataset, "behaviour", "surprisal_r", "brainscore-2023", entry["brainscore_abs_r"],
                             ceiling=entry["brainscore_ceiling"], n=entry["brainscore_n"]))
        rows += regression_rows(model, dataset, details.get("reading_regression") or {})
        if reading == "causal":  # the t5-paper reading's token losses are no perplexity (brainalign.behaviour.surprisal)
            rows.append(tidy_row(model, dataset, "behaviour", "perplexity", "default", summary["perplexity"], n=summary["n_tokens"]))
            bits = table["surprisal_bits"].to_numpy(dtype=float)
            scored = np.isfinite(bits)
            rows.append(tidy_row(model, dataset, "behaviour", "perplexity_per_word", "default", float(2 ** bits[scored].mean()),
                                 n=int(scored.sum())))
    frame = tidy_frame(rows)
    write_table(frame, out_csv)
    write_json(details, Path(out_csv).with_suffix(".json"))
    return frame
