"""Behavioural alignment: does a causal LM's per-word surprisal track how long people take to read each word?

Surprisal of a word = -log2 p(word | preceding text of its story) = the sum of its sub-tokens' surprisals.
Words are joined with single spaces (the displayed words keep their punctuation) and mapped to tokens by
character offsets: a token belongs to the word containing its last character, and a whitespace-only token to
the word that follows it, so leading-space tokens and attached punctuation count toward the right word. Long
stories are scored in overlapping windows of ``max_context_tokens``; every token after the first window keeps at
least ``min_context_tokens`` of context. The tokenizer's own begin-of-sequence token (Gemma's <bos>) or the
configured ``prepend_text`` (SmolLM2's <|endoftext|>) starts every window, so the first word is scored too;
without either, the first word of a story has no surprisal (NaN, as in Brain-Score).

Encoder-only and encoder-decoder models have no left-to-right next-word probability: their surprisal file is
written with NaN and ``applicable: false`` (the paper's T5 "surprisal" read a decoder that could see the word;
see ``encoder_decoder_mode`` in brainalign/activations.py for how T5 is read instead).

Joining words, the token -> word rule, BOS detection and window planning live in :mod:`brainalign.alignment`.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.alignment import plan_windows, prefix_ids, token_word_index, words_to_text
from brainalign.correlation import pearson, split_half_r
from brainalign.errors import BrainalignError
from brainalign.io import write_json, write_table

log = logging.getLogger("brainalign.behaviour")

LN2 = math.log(2.0)
DEFAULT_EXCLUSIONS = ("missing_surprisal", "first_in_sentence", "last_in_sentence", "attached_punctuation", "rt_outliers")
HEADLINE_MEASURE = {"naturalstories": "rt_mean", "futrell2018": "rt_mean", "frank2013": "first_pass"}


# ----------------------------------------------------------------------------------------------- surprisal
def token_surprisals(model, tokenizer, text: str, prepend_text: str | None = None, max_context_tokens: int = 512,
                     min_context_tokens: int = 256, device: str = "cpu"):
    """Surprisal (nats) of every text token given all preceding tokens within the window budget.

    Returns (token ids, offsets, nats) with NaN where a token cannot be scored (no left context)."""
    import torch

    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    prefix = prefix_ids(tokenizer, prepend_text)
    budget = max_context_tokens - len(prefix)
    if budget < 2:
        raise BrainalignError(f"max_context_tokens={max_context_tokens} leaves no room after the prefix")
    min_context = min(min_context_tokens, budget // 2)
    nats = np.full(len(ids), np.nan)
    for begin, end, first in plan_windows(len(ids), budget, min_context):  # next begin = end - min_context
        window = torch.tensor([prefix + ids[begin:end]], device=device)
        with torch.inference_mode():
            logits = model(input_ids=window).logits[0].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        for k in range(first, end):
            position = len(prefix) + (k - begin) - 1  # logits at the previous position predict token k
            if position >= 0:
                nats[k] = -float(logprobs[position, ids[k]])
    return ids, offsets, nats


def word_surprisals(model, tokenizer, words, prepend_text=None, max_context_tokens=512, min_context_tokens=256, device="cpu"):
    """Per-word surprisal in bits (sum over sub-tokens), the token count per word, and token NLLs (nats)."""
    text, spans = words_to_text([str(w) for w in words])
    ids, offsets, nats = token_surprisals(model, tokenizer, text, prepend_text, max_context_tokens, min_context_tokens, device)
    owner = token_word_index(offsets, spans)
    bits = np.zeros(len(spans))
    counts = np.zeros(len(spans), dtype=int)
    undefined = np.zeros(len(spans), dtype=bool)
    for t, w in enumerate(owner):
        counts[w] += 1
        if np.isnan(nats[t]):
            undefined[w] = True
        else:
            bits[w] += nats[t] / LN2
    bits[undefined | (counts == 0)] = np.nan
    return bits, counts, nats


def surprisal_file(spec: dict, model_dir, dataset_dir, out_path, options: dict | None = None) -> None:
    """Step of rule surprisal: per-word surprisal TSV + perplexity JSON beside it."""
    from brainalign.datasets.base import load_prepared

    options = dict(options or {})
    dataset = load_prepared(dataset_dir)
    stimuli = dataset.stimuli.reset_index(drop=True)
    summary = {"model": spec["name"], "dataset": dataset.meta.get("name"), "kind": spec["kind"],
               "context_scope": options.get("context_scope", "story"),
               "max_context_tokens": int(options.get("max_context_tokens", 512)),
               "min_context_tokens": int(options.get("min_context_tokens", 256))}
    table = stimuli[["stimulus_id", "group", "text"]].copy()
    if spec["kind"] != "decoder":
        table["surprisal_bits"], table["n_tokens"] = np.nan, 0
        summary.update(applicable=False, reason=f"{spec['kind']} models have no left-to-right next-word distribution")
    else:
        from brainalign.models import load_model

        loaded = load_model(spec, model_dir, device=options.get("device"))
        bits = np.full(len(stimuli), np.nan)
        counts = np.zeros(len(stimuli), dtype=int)
        per_group, all_nats = {}, []
        scopes = [("corpus", stimuli.index.to_numpy())] if options.get("context_scope") == "corpus" else \
            [(g, rows.index.to_numpy()) for g, rows in stimuli.groupby("group", sort=False)]
        from tqdm import tqdm

        for group, rows in tqdm(scopes, desc=spec["name"], unit="story", disable=not options.get("progress", True)):
            b, c, nats = word_surprisals(loaded.model, loaded.tokenizer, stimuli.loc[rows, "text"].tolist(),
                                         spec.get("prepend_text"), summary["max_context_tokens"],
                                         summary["min_context_tokens"], loaded.device)
            bits[rows], counts[rows] = b, c
            scored = nats[np.isfinite(nats)]
            all_nats.append(scored)
            per_group[str(group)] = {"perplexity": float(np.exp(scored.mean())), "n_tokens": int(len(scored)),
                                     "n_words": int(len(rows))}
        table["surprisal_bits"], table["n_tokens"] = bits, counts
        nats = np.concatenate(all_nats)
        n_words = int(np.isfinite(bits).sum())
        summary.update(applicable=True, perplexity=float(np.exp(nats.mean())),
                       perplexity_per_word=float(2 ** (np.nansum(bits) / n_words)),
                       mean_nll_nats=float(nats.mean()), n_tokens=int(len(nats)), per_group=per_group,
                       model_info={k: v for k, v in loaded.info.items() if k != "provenance"})
        log.info("%s: perplexity %.2f over %d tokens", spec["name"], summary["perplexity"], len(nats))
    write_table(table, out_path, sep="\t")
    write_json(summary, Path(out_path).with_suffix(".json"))


# ----------------------------------------------------------------------------------------------- scoring
def exclusion_masks(stimuli: pd.DataFrame, surprisal: np.ndarray, rt: np.ndarray, steps, rt_range=(50.0, 3000.0)) -> dict:
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


def split_half_rt_ceiling(rts: np.ndarray, n_splits: int = 10, seed: int = 0) -> float:
    """rts: (subjects, words). Median over random subject halves (an odd subject out joins the second) of the
    Spearman-Brown corrected r between the halves' mean RTs, over the words both halves have."""

    def finite_pearson(a: np.ndarray, b: np.ndarray) -> float:
        ok = np.isfinite(a) & np.isfinite(b)
        return pearson(a[ok], b[ok])[0]

    return float(np.nanmedian(split_half_r(rts, finite_pearson, n_splits, seed)))


def _shift_within_groups(values: np.ndarray, groups: np.ndarray, lag: int) -> np.ndarray:
    """values[i + lag] within the same group (NaN across group boundaries)."""
    out = np.full(len(values), np.nan)
    index = np.arange(len(values)) + lag
    ok = (index >= 0) & (index < len(values))
    ok[ok] &= groups[index[ok]] == groups[np.arange(len(values))[ok]]
    out[ok] = values[index[ok]]
    return out


def behaviour_scores(surprisal: np.ndarray, dataset, options: dict | None = None) -> dict:
    """Every behaviour statistic for one model on one reading dataset (see module docstring)."""
    options = dict(options or {})
    seed = int(options.get("seed", 0))
    stimuli = dataset.stimuli.reset_index(drop=True)
    name = dataset.meta.get("adapter") or dataset.meta.get("name")
    measure = options.get("measure") or HEADLINE_MEASURE.get(name) or dataset.neuroids[0]
    if measure not in dataset.neuroids:
        raise BrainalignError(f"dataset {dataset.meta.get('name')}: no reading measure {measure!r} (has {dataset.neuroids})")
    details = {"measures": {}, "headline_measure": measure}
    steps = list(options.get("exclusions") or DEFAULT_EXCLUSIONS)
    groups = stimuli["group"].astype(str).to_numpy()
    per_subject = len(dataset.subjects) > 1
    for j, m in enumerate(dataset.neuroids):
        rts = dataset.responses[:, :, j].astype(float)
        rts = np.where((rts >= 50) & (rts <= 3000), rts, np.nan)  # per-value outliers before averaging
        with np.errstate(all="ignore"):
            target = np.nanmean(rts, axis=0)
        masks = exclusion_masks(stimuli, surprisal, target, steps)
        keep = np.ones(len(stimuli), dtype=bool)
        counts = {}
        for step, mask in masks.items():
            counts[step] = int((keep & mask).sum())
            keep &= ~mask
        r, p = pearson(surprisal[keep], target[keep])
        rng = np.random.default_rng(seed)
        idx = np.flatnonzero(keep)
        boot = [pearson(surprisal[s], target[s])[0]
                for s in (rng.choice(idx, len(idx)) for _ in range(int(options.get("n_bootstrap", 1000))))]
        ci = np.nanpercentile(boot, [2.5, 97.5]).tolist() if boot else [float("nan")] * 2
        lags = {}
        for lag in (-1, 0, 1):
            shifted = _shift_within_groups(surprisal, groups, lag)
            ok = keep & np.isfinite(shifted)
            lags[str(lag)] = pearson(shifted[ok], target[ok])[0]
        entry = {"r": r, "p": p, "ci_low": ci[0], "ci_high": ci[1], "n": int(keep.sum()), "exclusions": counts,
                 "lag_r": lags, "best_lag": max(lags, key=lambda k: lags[k] if np.isfinite(lags[k]) else -np.inf)}
        # Brain-Score 2023: |r| over words not first in their sentence, against the mean RT, no other exclusion
        bs_keep = np.isfinite(surprisal) & np.isfinite(target) & (
            stimuli.get("word_in_sentence", pd.Series(0, index=stimuli.index)).to_numpy() != 1)
        bs_r, _ = pearson(surprisal[bs_keep], target[bs_keep])
        entry["brainscore_abs_r"], entry["brainscore_n"] = abs(bs_r), int(bs_keep.sum())
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
    return details


def behaviour_score_file(surprisal_path, dataset_dir, out_csv, model: str, dataset: str, options: dict | None = None):
    """Step of rule behaviour: tidy rows (surprisal_r default + brainscore-2023, perplexity) + details JSON."""
    from brainalign.datasets.base import load_prepared
    from brainalign.tables import tidy_frame, tidy_row

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
        entry = details["measures"][details["headline_measure"]]
        ceiling = entry.get("ceiling")  # tidy_row: a non-positive or missing ceiling gives normalised NaN
        rows.append(tidy_row(model, dataset, "behaviour", "surprisal_r", "default", entry["r"], ceiling=ceiling,
                             ci=(entry["ci_low"], entry["ci_high"]), n=entry["n"]))
        rows.append(tidy_row(model, dataset, "behaviour", "surprisal_r", "brainscore-2023", entry["brainscore_abs_r"],
                             ceiling=ceiling, n=entry["brainscore_n"]))
        rows.append(tidy_row(model, dataset, "behaviour", "perplexity", "default", summary["perplexity"], n=summary["n_tokens"]))
    frame = tidy_frame(rows)
    write_table(frame, out_csv)
    write_json(details, Path(out_csv).with_suffix(".json"))
    return frame
