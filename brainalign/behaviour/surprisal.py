"""Surprisal: each word's -log2 p(word | preceding text) from a language model, per word and per token (computed in
the model job, rule ``run_model``; scored against reading times by :mod:`brainalign.behaviour.scoring`).

Surprisal of a word = the sum of its sub-tokens' surprisals. The preceding text is the word's story
(``context_scope: story``) or everything before it in the dataset as one stream, with no reset at story boundaries
(``context_scope: corpus``: Brain-Score's Futrell 2018 reading, methods §2.5).
Words are joined with single spaces (the displayed words keep their punctuation) and mapped to tokens by
character offsets: a token belongs to the word containing its last character, and a whitespace-only token to
the word that follows it, so leading-space tokens and attached punctuation count toward the right word. The
tokenizer's own begin-of-sequence token (Gemma's <bos>) or the configured ``prepend_text`` (SmolLM2's
<|endoftext|>) starts every window, so the first word is scored too; without either, the first word of a stream
has no surprisal (NaN, as in Brain-Score).

A stream longer than ``max_context_tokens`` is read in windows (``context_window``):

* ``overlapping`` (default): windows of ``max_context_tokens`` that overlap by ``min_context_tokens`` (at most half
  the window): every token after the first window is scored with between ``min_context_tokens`` and
  ``max_context_tokens - 1`` tokens of left context, in about n / (window - overlap) forward passes.
  A stream that fits in one short window (a sentence: at most ``SHORT_STREAM_TOKENS``, prefix included) is read
  in one padded batch with other short streams (:func:`short_stream_surprisals`): the same window, many per pass.
* ``sliding``: Brain-Score's left truncation, exactly. Brain-Score re-tokenises the whole prefix for every word and
  keeps its last ``model_max_length`` tokens, so each word is scored in a window that ends at the word's last token
  and holds as much left context as fits. Here the words that end within the first ``max_context_tokens`` tokens
  are scored from one pass over them (a causal model gives the same logits), and every later word from its own
  full window (batched ``window_batch_size`` at a time): one forward pass per word, as Brain-Score.

Encoder-decoder models (T5) have no left-to-right next-word distribution. With ``t5_mode: paper`` their surprisal
is the paper's reading (Brain-Score PR194, methods §3.3), reproduced as an explicit mode (``reading: t5-paper`` in
the surprisal JSON): for every word, the left-truncated prefix up to and including the word, followed by T5's
``</s>``, goes to the encoder and, unshifted and without a start token, to the decoder; the value is the decoder's
cross-entropy (bits) of the last n tokens of that input, each read at the position before it, where n is the
word's token count (Brain-Score's ``logits[-n-1:-1]`` slice; the first word of a stream scores every token but the
first). It therefore sums the word's trailing sub-tokens plus ``</s>``, predicted by a decoder whose encoder has
already seen them: not a surprisal, kept only to reproduce the paper's T5 rows (Tab. 9). Its perplexity is not a
perplexity and gets no tidy row. Encoders, and T5 with ``t5_mode: principled``, get NaN and ``applicable: false``.

Joining words, the token -> word rule, BOS detection and window planning live in :mod:`brainalign.extraction.alignment`;
the forward passes and the LM-head arithmetic in :mod:`brainalign.behaviour.nll`. torch is imported inside the
functions: the workflow imports this module (:func:`surprisal_reading`) when it plans jobs, where torch is not
needed (and would slow every Snakemake start).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from brainalign.behaviour.nll import position_nlls, window_nlls
from brainalign.datasets.base import load_prepared
from brainalign.errors import BrainalignError
from brainalign.extraction.alignment import (
    plan_windows,
    prefix_ids,
    special_tokens_around,
    token_word_index,
    word_token_ranges,
    words_to_text,
)
from brainalign.extraction.context import encoder_decoder_mode
from brainalign.io import write_json, write_table
from brainalign.models.session import context_limit, model_session
from brainalign.options import BehaviourOptions
from brainalign.progress import progress_bar

log = logging.getLogger("brainalign.behaviour.surprisal")

LN2 = math.log(2.0)
#: a stream (a sentence, a short story) whose whole window, prefix included, has at most this many tokens is read in a
#: padded batch with other short streams (:func:`short_stream_surprisals`) rather than in a forward pass of its own
SHORT_STREAM_TOKENS = 256
#: padded positions per batch of short streams: Gemma 3's logits are 262k floats (1 MB) per position
SHORT_STREAM_BATCH_TOKENS = 1024


# ----------------------------------------------------------------------------------------------- token surprisals
def token_surprisals(model, tokenizer, text: str, prepend_text: str | None, max_context_tokens: int, min_context_tokens: int,
                     device: str = "cpu"):
    """Surprisal (nats) of every text token given all preceding tokens within the window budget (``overlapping``).

    Returns (token ids, offsets, nats) with NaN where a token cannot be scored (no left context)."""
    import torch  # lazy (module docstring)

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
        # logits at the previous position predict token k: only the positions read (from ``first`` on) go through
        # the LM head, so the overlap costs the backbone only
        scored = [k for k in range(first, end) if len(prefix) + (k - begin) - 1 >= 0]
        positions = [len(prefix) + (k - begin) - 1 for k in scored]
        nats[scored] = position_nlls(model, {"input_ids": window}, [0] * len(scored), positions, [ids[k] for k in scored])
    return ids, offsets, nats


def sliding_token_surprisals(model, ids, prefix, max_context_tokens: int, owner, batch_size: int,
                             device: str = "cpu", progress: bool = False) -> np.ndarray:
    """Surprisal (nats) of every token, each word scored in Brain-Score's left-truncated window: the window ends at
    the word's last token and holds ``prefix`` + as many preceding tokens as ``max_context_tokens`` allows.

    Words ending within the first ``max_context_tokens - len(prefix)`` tokens are read from one pass over those
    tokens (their windows are prefixes of it: the same logits for a causal model); every later word from its own
    full-length window. NaN where a token has no left context, or lies outside its word's window (a word longer
    than the window)."""
    budget = max_context_tokens - len(prefix)
    if budget < 2:
        raise BrainalignError(f"max_context_tokens={max_context_tokens} leaves no room after the prefix")
    n = len(ids)
    nats = np.full(n, np.nan)
    if n == 0:
        return nats
    ranges = word_token_ranges(owner, int(np.max(owner)) + 1)
    first_end = min(budget, n)
    ends = ranges[np.asarray(owner, dtype=int), 1].tolist()
    windows, reads, tokens = [list(prefix) + list(ids[:first_end])], [[]], [[]]
    for k in range(first_end):
        position = len(prefix) + k - 1
        if ends[k] <= first_end and position >= 0:
            reads[0].append((position, ids[k]))
            tokens[0].append(k)
    for a, b in ranges.tolist():
        if b <= first_end or b <= a:
            continue
        begin = b - budget
        windows.append(list(prefix) + list(ids[begin:b]))
        scored = [k for k in range(max(a, begin), b) if len(prefix) + k - begin - 1 >= 0]
        reads.append([(len(prefix) + k - begin - 1, ids[k]) for k in scored])
        tokens.append(scored)
    # the first window alone: it reads every position, the others only their word's (logits_to_keep)
    values = window_nlls(model, windows[:1], reads[:1], 1, device)
    values += window_nlls(model, windows[1:], reads[1:], batch_size, device, progress=progress)
    for token_list, nll in zip(tokens, values):
        nats[token_list] = nll
    return nats


# ----------------------------------------------------------------------------------------------- word surprisals
def t5_paper_word_surprisals(model, tokenizer, words, max_context_tokens: int, batch_size: int, device: str = "cpu",
                             progress: bool = False):
    """The paper's T5 "surprisal" (Brain-Score PR194, methods §3.2-3.3): per word, bits, token counts and the scored
    negative log-probabilities (nats).

    For word w with tokens [a, b) of the stream, the input is the tokenizer's leading specials + the stream's tokens
    up to b, left-truncated to ``max_context_tokens`` with the specials, + its trailing specials (T5: ``</s>``); it
    goes to the encoder and, unshifted, to the decoder. The value is the cross-entropy of the last n input tokens,
    each at the position before it, with n = b - a (the first word of the stream: every token but the first), i.e.
    Brain-Score's ``logits[-n-1:-1]`` against the part's tokens, which for T5 are the word's trailing sub-tokens and
    ``</s>``."""
    text, spans = words_to_text([str(w) for w in words])
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    ranges = word_token_ranges(token_word_index(encoded["offset_mapping"], spans), len(spans))
    lead, trail = special_tokens_around(tokenizer)
    budget = max_context_tokens - len(lead) - len(trail)
    if budget < 1:
        raise BrainalignError(f"max_context_tokens={max_context_tokens} leaves no room after the special tokens")
    windows, reads, owners = [], [], []
    for w, (a, b) in enumerate(ranges.tolist()):
        if b <= a:
            continue
        window = list(lead) + ids[max(0, b - budget):b] + list(trail)
        n_read = len(window) - 1 if a == 0 else b - a
        if n_read >= len(window):  # a word longer than the window: Brain-Score's slice would run off its start
            continue
        windows.append(window)
        reads.append([(q - 1, window[q]) for q in range(len(window) - n_read, len(window))])
        owners.append(w)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    values = window_nlls(model, windows, reads, batch_size, device, encoder_decoder=True, pad_id=pad, progress=progress)
    bits = np.full(len(spans), np.nan)
    for w, nll in zip(owners, values):
        bits[w] = float(nll.sum()) / LN2
    counts = (ranges[:, 1] - ranges[:, 0]).astype(int)
    nats = np.concatenate(values) if values else np.zeros(0)
    return bits, counts, nats


def word_surprisals(model, tokenizer, words, prepend_text: str | None = None, options: BehaviourOptions | dict | None = None, *,
                    device: str = "cpu", reading: str = "causal", progress: bool = False):
    """Per-word surprisal in bits (sum over sub-tokens), the token count per word, and token NLLs (nats).

    ``options`` (the behaviour stage's) give the window: ``max_context_tokens``, ``min_context_tokens``,
    ``context_window`` (``overlapping`` or ``sliding``, module docstring) and ``window_batch_size``. ``reading``:
    ``causal`` (a decoder) or ``t5-paper`` (an encoder-decoder read as the paper did; always one window per word,
    ``prepend_text`` unused)."""
    options = BehaviourOptions.from_dict(options)
    if reading == "t5-paper":
        return t5_paper_word_surprisals(model, tokenizer, words, options.max_context_tokens, options.window_batch_size, device,
                                        progress)
    if reading != "causal":
        raise BrainalignError(f"unknown surprisal reading {reading!r} (causal, t5-paper)")
    text, spans = words_to_text([str(w) for w in words])
    if options.context_window == "sliding":
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = list(encoded["input_ids"]), encoded["offset_mapping"]
        owner = token_word_index(offsets, spans)
        nats = sliding_token_surprisals(model, ids, prefix_ids(tokenizer, prepend_text), options.max_context_tokens, owner,
                                        options.window_batch_size, device, progress)
    elif options.context_window == "overlapping":
        ids, offsets, nats = token_surprisals(model, tokenizer, text, prepend_text, options.max_context_tokens,
                                              options.min_context_tokens, device)
        owner = token_word_index(offsets, spans)
    else:
        raise BrainalignError(f"config.behaviour.context_window: unknown {options.context_window!r} (overlapping, sliding)")
    return _word_bits(owner, nats, len(spans))


def _word_bits(owner, nats: np.ndarray, n_words: int):
    """(bits per word: the sum of its tokens' surprisals, NaN if any is undefined or it has none; tokens per word;
    the token nats) from each token's word (``owner``) and surprisal."""
    bits = np.zeros(n_words)
    counts = np.zeros(n_words, dtype=int)
    undefined = np.zeros(n_words, dtype=bool)
    for t, w in enumerate(owner):
        counts[w] += 1
        if np.isnan(nats[t]):
            undefined[w] = True
        else:
            bits[w] += nats[t] / LN2
    bits[undefined | (counts == 0)] = np.nan
    return bits, counts, nats


def short_stream_surprisals(model, tokenizer, streams, prepend_text: str | None, max_context_tokens: int, device: str = "cpu",
                            progress: bool = False) -> dict[int, tuple]:
    """:func:`word_surprisals` (causal, overlapping) of every stream that fits in one window of at most
    :data:`SHORT_STREAM_TOKENS` tokens, many streams per forward pass: {stream index: (bits, counts, nats)}.

    Such a stream is read in one window (the prefix, then all its tokens) by :func:`token_surprisals` too; here the
    windows go right-padded, with an attention mask, up to :data:`SHORT_STREAM_BATCH_TOKENS` positions per batch,
    so a large LM head's weights are read once per batch rather than once per sentence. Same values up to float
    rounding (tests/test_behaviour.py)."""
    prefix = prefix_ids(tokenizer, prepend_text)
    limit = min(SHORT_STREAM_TOKENS, int(max_context_tokens))
    short = {}
    for index, words in enumerate(streams):
        text, spans = words_to_text([str(w) for w in words])
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(encoded["input_ids"])
        if len(prefix) + len(ids) <= limit:
            short[index] = (ids, token_word_index(encoded["offset_mapping"], spans), len(spans))
    windows = [list(prefix) + ids for ids, _, _ in short.values()]
    reads = [[(len(prefix) + k - 1, ids[k]) for k in range(len(ids)) if len(prefix) + k >= 1] for ids, _, _ in short.values()]
    values = window_nlls(model, windows, reads, len(windows) or 1, device, progress=progress, max_batch_tokens=SHORT_STREAM_BATCH_TOKENS)
    out = {}
    for (index, (ids, owner, n_words)), nll in zip(short.items(), values):
        nats = np.full(len(ids), np.nan)
        nats[len(ids) - len(nll):] = nll  # without a prefix the first token has no context (NaN)
        out[index] = _word_bits(owner, nats, n_words)
    return out


# ----------------------------------------------------------------------------------------------- the step
def surprisal_reading(spec: dict) -> str | None:
    """How a model's surprisal is read: ``causal`` (decoders), ``t5-paper`` (encoder-decoders with ``t5_mode:
    paper``), or None (no surprisal: encoders, and T5 read the principled way). The workflow runs surprisal jobs
    for the models with a reading (``SURPRISAL_MODELS``)."""
    if spec["kind"] == "decoder":
        return "causal"
    if encoder_decoder_mode(spec) == "paper":
        return "t5-paper"
    return None


def surprisal_file(spec: dict, model, dataset_dir, out_path, options: BehaviourOptions | dict | None = None, *,
                   device: str | None = None, progress: bool = True) -> None:
    """Per-word surprisal TSV + perplexity JSON beside it, from ``model`` (a prepared folder, loaded on ``device``
    (None: the default device), or the job's :class:`~brainalign.models.session.ModelSession`). A model with no
    surprisal reading (encoders; T5 outside paper mode) gets a table of NaN and a JSON that says why, without
    loading it. A window longer than the model's position table is cut to it (recorded in the JSON)."""
    options = BehaviourOptions.from_dict(options)
    dataset = load_prepared(dataset_dir)
    stimuli = dataset.stimuli.reset_index(drop=True)
    reading = surprisal_reading(spec)
    summary = {"model": spec["name"], "dataset": dataset.meta.get("name"), "kind": spec["kind"], "reading": reading,
               "context_scope": options.context_scope, "context_window": options.context_window,
               "max_context_tokens": int(options.max_context_tokens), "min_context_tokens": int(options.min_context_tokens),
               "window_batch_size": int(options.window_batch_size)}
    table = stimuli[["stimulus_id", "group", "text"]].copy()
    if reading is None:
        table["surprisal_bits"], table["n_tokens"] = np.nan, 0
        reason = f"{spec['kind']} models have no left-to-right next-word distribution"
        if spec["kind"] == "encoder-decoder":
            reason += " (t5_mode: principled; t5_mode: paper reads T5 as the paper did)"
        summary.update(applicable=False, reason=reason)
    else:
        loaded = model_session(spec, model, device).get()
        limit = context_limit(loaded.model)
        if limit is not None and summary["max_context_tokens"] > limit:  # the window the model can read, not more
            log.info("%s reads at most %d positions: max_context_tokens %d -> %d", spec["name"], limit,
                     summary["max_context_tokens"], limit)
            summary.update(max_context_tokens=limit, context_limited_by_model=True)
            options = options.replace(max_context_tokens=limit)
        bits = np.full(len(stimuli), np.nan)
        counts = np.zeros(len(stimuli), dtype=int)
        per_group, all_nats = {}, []
        scopes = [("corpus", stimuli.index.to_numpy())] if summary["context_scope"] == "corpus" else \
            [(g, rows.index.to_numpy()) for g, rows in stimuli.groupby("group", sort=False)]
        batched = {}
        if reading == "causal" and summary["context_window"] == "overlapping":
            batched = short_stream_surprisals(loaded.model, loaded.tokenizer, [stimuli.loc[rows, "text"].tolist() for _, rows in scopes],
                                              spec.get("prepend_text"), summary["max_context_tokens"], loaded.device,
                                              progress=progress)
            summary["short_streams_batched"] = len(batched)
        for index, (group, rows) in enumerate(progress_bar(scopes, desc=spec["name"], unit="stream", disable=not progress)):
            b, c, nats = batched.get(index) or word_surprisals(
                loaded.model, loaded.tokenizer, stimuli.loc[rows, "text"].tolist(), spec.get("prepend_text"), options,
                device=loaded.device, reading=reading, progress=progress and len(scopes) == 1)
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
        if reading == "t5-paper":
            summary["note"] = ("t5-paper: each word's value is the unshifted decoder's cross-entropy of the word's "
                               "trailing sub-tokens and </s>, with the encoder seeing them (methods §3.3); not a "
                               "surprisal, and the perplexity fields are not a perplexity")
        log.info("%s: perplexity %.2f over %d tokens (%s reading)", spec["name"], summary["perplexity"], len(nats), reading)
    write_table(table, out_path, sep="\t")
    write_json(summary, Path(out_path).with_suffix(".json"))
