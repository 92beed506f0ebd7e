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
see docs/behaviour.md).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.errors import BrainalignError
from brainalign.io import write_json, write_table

log = logging.getLogger("brainalign.behaviour")

LN2 = math.log(2.0)
DEFAULT_EXCLUSIONS = ("missing_surprisal", "first_in_sentence", "last_in_sentence", "attached_punctuation", "rt_outliers")
HEADLINE_MEASURE = {"naturalstories": "rt_mean", "futrell2018": "rt_mean", "frank2013": "first_pass"}


# ----------------------------------------------------------------------------------------------- alignment
def words_to_text(words) -> tuple[str, list[tuple[int, int]]]:
    """Join words with single spaces; return the text and each word's [start, end) character span."""
    text, spans = "", []
    for word in words:
        if text:
            text += " "
        spans.append((len(text), len(text) + len(word)))
        text += word
    return text, spans


def token_word_index(offsets, spans) -> np.ndarray:
    """For each token (of a text tokenised without special tokens), the index of the word it belongs to.

    A token belongs to the word containing its last character; a whitespace-only token (empty offsets once
    trimmed, or a span of spaces) to the word that follows it, since producing the space is part of producing
    that word. Every token is assigned, so word surprisals add up to the text's total."""
    starts = np.array([start for start, _ in spans])
    ends = np.array([end for _, end in spans])
    out = np.empty(len(offsets), dtype=int)
    for t, (a, b) in enumerate(offsets):
        if b > a:
            w = int(np.searchsorted(ends, b - 1, side="right"))  # first word ending after the token's last char
        else:
            w = int(np.searchsorted(starts, a, side="left"))
        out[t] = min(w, len(spans) - 1)
    return out


def _prefix_ids(tokenizer, prepend_text: str | None) -> list[int]:
    """Tokens that start every window: the tokenizer's own leading specials (BOS) + prepend_text."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    lead: list[int] = []
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            lead = full[:start]
            break
    extra = tokenizer(prepend_text, add_special_tokens=False)["input_ids"] if prepend_text else []
    return list(lead) + list(extra)


def token_surprisals(model, tokenizer, text: str, prepend_text: str | None = None, max_context_tokens: int = 512,
                     min_context_tokens: int = 256, device: str = "cpu"):
    """Surprisal (nats) of every text token given all preceding tokens within the window budget.

    Returns (token ids, offsets, nats) with NaN where a token cannot be scored (no left context)."""
    import torch

    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    prefix = _prefix_ids(tokenizer, prepend_text)
    budget = max_context_tokens - len(prefix)
    if budget < 2:
        raise BrainalignError(f"max_context_tokens={max_context_tokens} leaves no room after the prefix")
    min_context = min(min_context_tokens, budget // 2)
    nats = np.full(len(ids), np.nan)
    begin = 0
    while begin < len(ids):
        end = min(begin + budget, len(ids))
        window = torch.tensor([prefix + ids[begin:end]], device=device)
        with torch.inference_mode():
            logits = model(input_ids=window).logits[0].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        first = begin if begin == 0 else begin + min_context
        for k in range(first, end):
            position = len(prefix) + (k - begin) - 1  # logits at the previous position predict token k
            if position >= 0:
                nats[k] = -float(logprobs[position, ids[k]])
        if end >= len(ids):
            break
        begin = end - min_context
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
def pearson(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from scipy.stats import pearsonr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    result = pearsonr(x, y)
    return float(result.statistic), float(result.pvalue)


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
    """rts: (subjects, words). Median over random subject halves of the Spearman-Brown corrected r."""
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(n_splits):
        order = rng.permutation(len(rts))
        half = len(rts) // 2
        with np.errstate(all="ignore"):
            a, b = np.nanmean(rts[order[:half]], 0), np.nanmean(rts[order[half:]], 0)
        ok = np.isfinite(a) & np.isfinite(b)
        r, _ = pearson(a[ok], b[ok])
        values.append(2 * r / (1 + r))
    return float(np.nanmedian(values))


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
        boot = [pearson(surprisal[s], target[s])[0] for s in (rng.choice(idx, len(idx)) for _ in range(int(options.get("n_bootstrap", 1000))))]
        ci = np.nanpercentile(boot, [2.5, 97.5]).tolist() if boot else [float("nan")] * 2
        lags = {}
        for lag in (-1, 0, 1):
            shifted = _shift_within_groups(surprisal, groups, lag)
            ok = keep & np.isfinite(shifted)
            lags[str(lag)] = pearson(shifted[ok], target[ok])[0]
        entry = {"r": r, "p": p, "ci_low": ci[0], "ci_high": ci[1], "n": int(keep.sum()), "exclusions": counts,
                 "lag_r": lags, "best_lag": max(lags, key=lambda k: lags[k] if np.isfinite(lags[k]) else -np.inf)}
        # Brain-Score 2023: |r| over words not first in their sentence, against the mean RT, no other exclusion
        bs_keep = np.isfinite(surprisal) & np.isfinite(target) & (stimuli.get("word_in_sentence", pd.Series(0, index=stimuli.index)).to_numpy() != 1)
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

    data = load_prepared(dataset_dir)
    table = pd.read_csv(surprisal_path, sep="\t", dtype={"stimulus_id": str})
    if table["stimulus_id"].tolist() != data.stimuli["stimulus_id"].astype(str).tolist():
        raise BrainalignError(f"{surprisal_path}: words differ from {dataset_dir}/stimuli.tsv (recompute surprisal)")
    summary = json.loads(Path(surprisal_path).with_suffix(".json").read_text())
    rows = []
    base = {"model": model, "dataset": dataset, "kind": "behaviour", "selection": "", "layer": "", "layer_index": np.nan, "layer_depth": np.nan}
    if not summary.get("applicable", False):
        details = {"applicable": False, "reason": summary.get("reason")}
    else:
        details = behaviour_scores(table["surprisal_bits"].to_numpy(dtype=float), data, options)
        details["applicable"] = True
        entry = details["measures"][details["headline_measure"]]
        ceiling = entry.get("ceiling")
        ceiling = float(ceiling) if ceiling is not None and np.isfinite(ceiling) else np.nan
        rows.append({**base, "metric": "surprisal_r", "protocol": "default", "raw_r": entry["r"], "ceiling": ceiling,
                     "normalised": entry["r"] / ceiling if np.isfinite(ceiling) else np.nan,
                     "ci_low": entry["ci_low"], "ci_high": entry["ci_high"], "n": entry["n"]})
        rows.append({**base, "metric": "surprisal_r", "protocol": "brainscore-2023", "raw_r": entry["brainscore_abs_r"],
                     "ceiling": ceiling, "normalised": entry["brainscore_abs_r"] / ceiling if np.isfinite(ceiling) else np.nan,
                     "ci_low": np.nan, "ci_high": np.nan, "n": entry["brainscore_n"]})
        rows.append({**base, "metric": "perplexity", "protocol": "default", "raw_r": summary["perplexity"], "ceiling": np.nan,
                     "normalised": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": summary["n_tokens"]})
    columns = ["model", "dataset", "kind", "metric", "protocol", "selection", "layer", "layer_index", "layer_depth",
               "raw_r", "ceiling", "normalised", "ci_low", "ci_high", "n"]
    frame = pd.DataFrame(rows, columns=columns)
    write_table(frame, out_csv)
    write_json(details, Path(out_csv).with_suffix(".json"))
    return frame
