"""Behavioural alignment: does a language model's per-word surprisal track how long people take to read each word?

Surprisal of a word = -log2 p(word | preceding text) = the sum of its sub-tokens' surprisals. The preceding text is
the word's story (``context_scope: story``) or everything before it in the dataset as one stream, with no reset at
story boundaries (``context_scope: corpus``: Brain-Score's Futrell 2018 reading, methods §2.5).
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

Scores (``behaviour_score_file``), one tidy row each:

* ``surprisal_r`` / ``default``: the project's protocol: Pearson r between surprisal and the mean reading measure
  (per-value RT outliers outside 50-3000 ms dropped before averaging), after the ``exclusions`` steps; bootstrap CI;
  ceiling = the project's split-half ceiling over the kept words (a group-averaged dataset: its published one).
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
  words): ``delta_loglik``, ``surprisal_coef``, ``surprisal_coef_lag{k}``, ``lag_check`` from
  :mod:`brainalign.reading_regression` (delta log-likelihood over a length/frequency/position baseline, held out).

Joining words, the token -> word rule, BOS detection and window planning live in :mod:`brainalign.alignment`.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.alignment import plan_windows, prefix_ids, token_word_index, words_to_text
from brainalign.correlation import pearson, split_half_r
from brainalign.errors import BrainalignError
from brainalign.io import write_json, write_table
from brainalign.reading_regression import reading_regression

log = logging.getLogger("brainalign.behaviour")

LN2 = math.log(2.0)
DEFAULT_EXCLUSIONS = ("missing_surprisal", "first_in_sentence", "last_in_sentence", "attached_punctuation", "rt_outliers")
REGRESSION_PROTOCOL = "reading-regression"
HEADLINE_MEASURE = {"naturalstories": "rt_mean", "futrell2018": "rt", "frank2013": "first_pass"}  # futrell2018: per-reader RTs, one measure


# ----------------------------------------------------------------------------------------------- surprisal
def token_surprisals(model, tokenizer, text: str, prepend_text: str | None = None, max_context_tokens: int = 2048,
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
        # logits at the previous position predict token k: only the positions read (from ``first`` on) go through
        # the LM head (Gemma's is 262k x 640, most of the model's work), so the overlap costs the backbone only
        scored = [k for k in range(first, end) if len(prefix) + (k - begin) - 1 >= 0]
        positions = [len(prefix) + (k - begin) - 1 for k in scored]
        nats[scored] = position_nlls(model, {"input_ids": window}, [0] * len(scored), positions, [ids[k] for k in scored])
    return ids, offsets, nats


#: vocabulary rows per product in :func:`_head_nlls`: a 1,024 x 640 slice of Gemma 3's head (2.6 MB) stays in cache;
#: one core, 1,000 positions: 97 GFLOPS in slices vs 66 for the whole 262k x 640 head in one product
HEAD_SLICE_ROWS = 1024
#: positions per block in :func:`_head_nlls` (a block's logits slice: 16 MB of float32)
HEAD_BLOCK_POSITIONS = 4096
#: causal LMs whose ``logits`` are exactly ``lm_head(last_hidden_state)`` (then ``final_logit_softcapping``, if
#: set): their next-token NLLs come from the backbone's hidden states and a sliced LM head (:func:`position_nlls`)
PLAIN_HEAD_MODEL_TYPES = ("gpt2", "llama", "mistral", "qwen2", "gemma2", "gemma3_text")


def _plain_head(model):
    """(LM head, softcap) where a model's logits are its LM head applied to its backbone's last hidden state, else None."""
    import torch

    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False) or getattr(config, "model_type", None) not in PLAIN_HEAD_MODEL_TYPES:
        return None
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(head, torch.nn.Linear) or getattr(model, "base_model", model) is model:
        return None
    return head, getattr(config, "final_logit_softcapping", None)


def _head_nlls(hidden, head, softcap, targets):
    """-log softmax(head(hidden))[target] per row, float32 products and float64 sums, without holding all logits:
    the vocabulary goes in cache-sized slices (:data:`HEAD_SLICE_ROWS`) with a running maximum and sum of
    exponentials. More exact than a float32 log-softmax over the whole vocabulary (Gemma 3: within 2e-7 nats of a
    float64 reference, where the float32 log-softmax is off by up to 8e-5) and faster (no 1 GB of logits per story)."""
    import torch

    if len(hidden) > HEAD_BLOCK_POSITIONS:
        return np.concatenate([_head_nlls(hidden[a:a + HEAD_BLOCK_POSITIONS], head, softcap, targets[a:a + HEAD_BLOCK_POSITIONS])
                               for a in range(0, len(hidden), HEAD_BLOCK_POSITIONS)])
    hidden = hidden.float()
    targets = torch.as_tensor(targets, device=hidden.device)
    n, vocab = len(hidden), head.weight.shape[0]
    top = torch.full((n,), -torch.inf, device=hidden.device)
    total = torch.zeros(n, dtype=torch.float64, device=hidden.device)
    picked = torch.zeros(n, device=hidden.device)
    for start in range(0, vocab, HEAD_SLICE_ROWS):
        stop = min(start + HEAD_SLICE_ROWS, vocab)
        bias = None if head.bias is None else head.bias[start:stop].float()
        logits = torch.nn.functional.linear(hidden, head.weight[start:stop].float(), bias)
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        inside = (targets >= start) & (targets < stop)
        picked[inside] = logits[inside, targets[inside] - start]
        new_top = torch.maximum(top, logits.max(1).values)
        total = total * torch.exp((top - new_top).double()) + torch.exp(logits - new_top[:, None]).sum(1, dtype=torch.float64)
        top = new_top
    return (top.double() + torch.log(total) - picked.double()).cpu().numpy()


def position_nlls(model, inputs: dict, rows, positions, targets, encoder_decoder: bool = False) -> np.ndarray:
    """Negative log-probabilities (nats) of ``targets`` from the logits at (``rows``, ``positions``) of one forward
    pass over ``inputs`` (a batch), computed at those positions only.

    A plain causal LM (:data:`PLAIN_HEAD_MODEL_TYPES`) runs its backbone and takes the read positions' hidden states
    through its LM head in vocabulary slices (:func:`_head_nlls`); any other model runs whole, with
    ``logits_to_keep`` where it accepts it, and gives log-softmax of its logits. Same values up to float rounding
    (tests/test_behaviour.py)."""
    import torch

    if not len(targets):
        return np.zeros(0)
    plain = None if encoder_decoder else _plain_head(model)
    with torch.inference_mode():
        if plain is not None:
            hidden = model.base_model(**inputs).last_hidden_state
            device = hidden.device
            return _head_nlls(hidden[torch.tensor(rows, device=device), torch.tensor(positions, device=device)], *plain, targets)
        kwargs = dict(inputs)
        if encoder_decoder:
            kwargs.update(decoder_input_ids=inputs["input_ids"], decoder_attention_mask=inputs.get("attention_mask"))
        elif getattr(model, "forward", None) is not None and "logits_to_keep" in inspect.signature(model.forward).parameters:
            kwargs["logits_to_keep"] = int(inputs["input_ids"].shape[1] - min(positions))
        logits = model(**kwargs).logits
        offset = inputs["input_ids"].shape[1] - logits.shape[1]  # logits[:, q] belongs to position q + offset
        device = logits.device
        index_rows = torch.tensor(rows, device=device)
        index_cols = torch.tensor([p - offset for p in positions], device=device)
        logprobs = torch.log_softmax(logits[index_rows, index_cols].float(), dim=-1)
        return (-logprobs.gather(1, torch.tensor(targets, device=device)[:, None])[:, 0]).cpu().numpy().astype(float)


def _length_batches(lengths: list[int], batch_size: int, max_batch_tokens: int | None = None) -> list[list[int]]:
    """Indices of the windows in order of length (stable), cut into batches of at most ``batch_size`` windows and,
    with ``max_batch_tokens``, at most that many padded positions (windows x the batch's longest), so that a large
    vocabulary's logits stay bounded; a window longer than the budget goes alone."""
    batches, batch = [], []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        too_wide = max_batch_tokens is not None and (len(batch) + 1) * lengths[i] > max_batch_tokens
        if batch and (len(batch) == batch_size or too_wide):
            batches.append(batch)
            batch = []
        batch.append(i)
    return batches + ([batch] if batch else [])


def _window_nlls(model, windows, reads, batch_size: int = 16, device: str = "cpu", encoder_decoder: bool = False,
                 pad_id: int = 0, progress: bool = False, max_batch_tokens: int | None = None) -> list[np.ndarray]:
    """Negative log-probabilities (nats) read from token windows, batched.

    ``windows[i]`` is a list of token ids; ``reads[i]`` a list of (position, target id): the logits at ``position``
    of that window scored against ``target``. Windows go ``batch_size`` at a time (and at most ``max_batch_tokens``
    padded positions, :func:`_length_batches`) in order of length, right-padded with an attention mask (a causal or
    encoder-decoder model reads the real positions as it would unpadded). An encoder-decoder gets the window as
    ``decoder_input_ids`` too, unshifted (the paper's T5 reading). A decoder computes logits only for the positions
    read when it accepts ``logits_to_keep``."""
    import torch

    out = [np.full(len(r), np.nan) for r in reads]
    scored = [i for i in range(len(windows)) if reads[i]]
    batches = [[scored[j] for j in batch]
               for batch in _length_batches([len(windows[i]) for i in scored], batch_size, max_batch_tokens)]
    from brainalign.progress import progress_bar

    for batch in progress_bar(batches, desc="windows", unit="batch", disable=not progress):
        width = max(len(windows[i]) for i in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            ids[row, :len(windows[i])] = torch.tensor(windows[i], dtype=torch.long)
            mask[row, :len(windows[i])] = 1
        rows = [row for row, i in enumerate(batch) for _ in reads[i]]
        positions = [position for i in batch for position, _ in reads[i]]
        targets = [target for i in batch for _, target in reads[i]]
        nll = position_nlls(model, {"input_ids": ids.to(device), "attention_mask": mask.to(device)}, rows, positions, targets,
                            encoder_decoder)
        at = 0
        for i in batch:
            out[i] = nll[at:at + len(reads[i])].astype(float)
            at += len(reads[i])
    return out


def sliding_token_surprisals(model, ids, prefix, max_context_tokens: int, owner, batch_size: int = 16,
                             device: str = "cpu", progress: bool = False) -> np.ndarray:
    """Surprisal (nats) of every token, each word scored in Brain-Score's left-truncated window: the window ends at
    the word's last token and holds ``prefix`` + as many preceding tokens as ``max_context_tokens`` allows.

    Words ending within the first ``max_context_tokens - len(prefix)`` tokens are read from one pass over those
    tokens (their windows are prefixes of it: the same logits for a causal model); every later word from its own
    full-length window. NaN where a token has no left context, or lies outside its word's window (a word longer
    than the window)."""
    from brainalign.alignment import word_token_ranges

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
    values = _window_nlls(model, windows[:1], reads[:1], 1, device)
    values += _window_nlls(model, windows[1:], reads[1:], batch_size, device, progress=progress)
    for token_list, nll in zip(tokens, values):
        nats[token_list] = nll
    return nats


def t5_paper_word_surprisals(model, tokenizer, words, max_context_tokens: int = 2048, batch_size: int = 16,
                             device: str = "cpu", progress: bool = False):
    """The paper's T5 "surprisal" (Brain-Score PR194, methods §3.2-3.3): per word, bits, token counts and the scored
    negative log-probabilities (nats).

    For word w with tokens [a, b) of the stream, the input is the tokenizer's leading specials + the stream's tokens
    up to b, left-truncated to ``max_context_tokens`` with the specials, + its trailing specials (T5: ``</s>``); it
    goes to the encoder and, unshifted, to the decoder. The value is the cross-entropy of the last n input tokens,
    each at the position before it, with n = b - a (the first word of the stream: every token but the first), i.e.
    Brain-Score's ``logits[-n-1:-1]`` against the part's tokens, which for T5 are the word's trailing sub-tokens and
    ``</s>``."""
    from brainalign.alignment import special_tokens_around, word_token_ranges

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
    values = _window_nlls(model, windows, reads, batch_size, device, encoder_decoder=True, pad_id=pad, progress=progress)
    bits = np.full(len(spans), np.nan)
    for w, nll in zip(owners, values):
        bits[w] = float(nll.sum()) / LN2
    counts = (ranges[:, 1] - ranges[:, 0]).astype(int)
    nats = np.concatenate(values) if values else np.zeros(0)
    return bits, counts, nats


def word_surprisals(model, tokenizer, words, prepend_text=None, max_context_tokens=2048, min_context_tokens=256, device="cpu",
                    context_window="overlapping", batch_size=16, reading="causal", progress=False):
    """Per-word surprisal in bits (sum over sub-tokens), the token count per word, and token NLLs (nats).

    ``context_window``: ``overlapping`` or ``sliding`` windows (module docstring); ``reading``: ``causal`` (a decoder)
    or ``t5-paper`` (an encoder-decoder read as the paper did; always one window per word, ``prepend_text`` unused)."""
    if reading == "t5-paper":
        return t5_paper_word_surprisals(model, tokenizer, words, max_context_tokens, batch_size, device, progress)
    if reading != "causal":
        raise BrainalignError(f"unknown surprisal reading {reading!r} (causal, t5-paper)")
    text, spans = words_to_text([str(w) for w in words])
    if context_window == "sliding":
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = list(encoded["input_ids"]), encoded["offset_mapping"]
        owner = token_word_index(offsets, spans)
        nats = sliding_token_surprisals(model, ids, prefix_ids(tokenizer, prepend_text), max_context_tokens, owner,
                                        batch_size, device, progress)
    elif context_window == "overlapping":
        ids, offsets, nats = token_surprisals(model, tokenizer, text, prepend_text, max_context_tokens, min_context_tokens, device)
        owner = token_word_index(offsets, spans)
    else:
        raise BrainalignError(f"config.behaviour.context_window: unknown {context_window!r} (overlapping, sliding)")
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


#: a stream (a sentence, a short story) whose whole window, prefix included, has at most this many tokens is read in a
#: padded batch with other short streams (:func:`short_stream_surprisals`) rather than in a forward pass of its own
SHORT_STREAM_TOKENS = 256
#: padded positions per batch of short streams: Gemma 3's logits are 262k floats (1 MB) per position
SHORT_STREAM_BATCH_TOKENS = 1024


def short_stream_surprisals(model, tokenizer, streams, prepend_text=None, max_context_tokens: int = 2048,
                            device: str = "cpu", progress: bool = False) -> dict[int, tuple]:
    """:func:`word_surprisals` (causal, overlapping) of every stream that fits in one window of at most
    :data:`SHORT_STREAM_TOKENS` tokens, many streams per forward pass: {stream index: (bits, counts, nats)}.

    Such a stream is read in one window (the prefix, then all its tokens) by :func:`token_surprisals` too; here the
    windows go right-padded, with an attention mask, up to :data:`SHORT_STREAM_BATCH_TOKENS` positions per batch.
    One pass per sentence read Gemma 3's 671 MB LM head once per sentence: Frank 2013's 205 sentences (2,221 tokens)
    took 47.5 s that way and 25.2 s batched (one process, side by side). Same values up to float rounding (tests/test_behaviour.py)."""
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
    values = _window_nlls(model, windows, reads, len(windows) or 1, device, progress=progress,
                          max_batch_tokens=SHORT_STREAM_BATCH_TOKENS)
    out = {}
    for (index, (ids, owner, n_words)), nll in zip(short.items(), values):
        nats = np.full(len(ids), np.nan)
        nats[len(ids) - len(nll):] = nll  # without a prefix the first token has no context (NaN)
        out[index] = _word_bits(owner, nats, n_words)
    return out


def surprisal_reading(spec: dict) -> str | None:
    """How a model's surprisal is read: ``causal`` (decoders), ``t5-paper`` (encoder-decoders with ``t5_mode:
    paper``), or None (no surprisal: encoders, and T5 read the principled way). The workflow runs surprisal jobs
    for the models with a reading (``SURPRISAL_MODELS``)."""
    from brainalign.activations import encoder_decoder_mode

    if spec["kind"] == "decoder":
        return "causal"
    if encoder_decoder_mode(spec) == "paper":
        return "t5-paper"
    return None


def surprisal_file(spec: dict, model, dataset_dir, out_path, options: dict | None = None) -> None:
    """Per-word surprisal TSV + perplexity JSON beside it, from ``model`` (a prepared folder, or the job's
    :class:`~brainalign.models.ModelSession`). A model with no surprisal reading (encoders; T5 outside paper
    mode) gets a table of NaN and a JSON that says why, without loading it."""
    from brainalign.datasets.base import load_prepared

    options = dict(options or {})
    dataset = load_prepared(dataset_dir)
    stimuli = dataset.stimuli.reset_index(drop=True)
    reading = surprisal_reading(spec)
    summary = {"model": spec["name"], "dataset": dataset.meta.get("name"), "kind": spec["kind"], "reading": reading,
               "context_scope": options.get("context_scope", "story"),
               "context_window": options.get("context_window", "overlapping"),
               "max_context_tokens": int(options.get("max_context_tokens", 2048)),
               "min_context_tokens": int(options.get("min_context_tokens", 256)),
               "window_batch_size": int(options.get("window_batch_size", 16))}
    table = stimuli[["stimulus_id", "group", "text"]].copy()
    if reading is None:
        table["surprisal_bits"], table["n_tokens"] = np.nan, 0
        reason = f"{spec['kind']} models have no left-to-right next-word distribution"
        if spec["kind"] == "encoder-decoder":
            reason += " (t5_mode: principled; t5_mode: paper reads T5 as the paper did)"
        summary.update(applicable=False, reason=reason)
    else:
        from brainalign.models import context_limit, model_session

        loaded = model_session(spec, model, options.get("device"), options.get("matmul_dtype", "float32")).get()
        limit = context_limit(loaded.model)
        if limit is not None and summary["max_context_tokens"] > limit:  # the window the model can read, not more
            log.info("%s reads at most %d positions: max_context_tokens %d -> %d", spec["name"], limit,
                     summary["max_context_tokens"], limit)
            summary.update(max_context_tokens=limit, context_limited_by_model=True)
        bits = np.full(len(stimuli), np.nan)
        counts = np.zeros(len(stimuli), dtype=int)
        per_group, all_nats = {}, []
        scopes = [("corpus", stimuli.index.to_numpy())] if summary["context_scope"] == "corpus" else \
            [(g, rows.index.to_numpy()) for g, rows in stimuli.groupby("group", sort=False)]
        from brainalign.progress import progress_bar

        progress = bool(options.get("progress", True))
        batched = {}
        if reading == "causal" and summary["context_window"] == "overlapping":
            batched = short_stream_surprisals(loaded.model, loaded.tokenizer, [stimuli.loc[rows, "text"].tolist() for _, rows in scopes],
                                              spec.get("prepend_text"), summary["max_context_tokens"], loaded.device,
                                              progress=progress)
            summary["short_streams_batched"] = len(batched)
        for index, (group, rows) in enumerate(progress_bar(scopes, desc=spec["name"], unit="stream", disable=not progress)):
            b, c, nats = batched.get(index) or word_surprisals(
                loaded.model, loaded.tokenizer, stimuli.loc[rows, "text"].tolist(), spec.get("prepend_text"),
                summary["max_context_tokens"], summary["min_context_tokens"], loaded.device,
                context_window=summary["context_window"], batch_size=summary["window_batch_size"], reading=reading,
                progress=progress and len(scopes) == 1)
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
        if m == measure and options.get("regression", True):
            details["reading_regression"] = dict(
                reading_regression(stimuli, surprisal, dataset.responses[:, :, j].astype(float), keep, dataset.subjects, options),
                measure=m)
    return details


def regression_rows(model: str, dataset: str, result: dict) -> list[dict]:
    """Tidy rows of the reading-regression protocol (none when it was off or not applicable): ``delta_loglik``
    (held-out nats per observation, CI from resampling whole readers or folds), ``surprisal_coef`` and
    ``surprisal_coef_lag{k}`` (ms per bit, Wald CI: the spillover profile) and ``lag_check`` (next minus previous
    word's surprisal, held-out nats per observation; ``reading_regression.lag_check_fires`` says when it warns)."""
    from brainalign.tables import tidy_row

    if not result.get("applicable"):
        return []
    n, protocol = result["n_observations"], REGRESSION_PROTOCOL
    rows = [tidy_row(model, dataset, "behaviour", "delta_loglik", protocol, result["delta_loglik"], ci=result["delta_loglik_ci"], n=n)]
    for lag, entry in result["spillover_profile"].items():
        metric = "surprisal_coef" if lag == "0" else f"surprisal_coef_lag{lag}"
        rows.append(tidy_row(model, dataset, "behaviour", metric, protocol, entry["coef"], ci=(entry["ci_low"], entry["ci_high"]), n=n))
    rows.append(tidy_row(model, dataset, "behaviour", "lag_check", protocol, result["lag_check"], ci=result["lag_check_ci"], n=n))
    return rows


def behaviour_score_file(surprisal_path, dataset_dir, out_csv, model: str, dataset: str, options: dict | None = None):
    """Step of rule behaviour: tidy rows (surprisal_r default + brainscore-2023, the reading-regression rows,
    perplexity per token and per word for causal readings) + details JSON (every statistic, both ceilings, the
    regression's folds and fits, the surprisal reading)."""
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
        if reading == "causal":  # the t5-paper reading's token losses are no perplexity (module docstring)
            rows.append(tidy_row(model, dataset, "behaviour", "perplexity", "default", summary["perplexity"], n=summary["n_tokens"]))
            bits = table["surprisal_bits"].to_numpy(dtype=float)
            scored = np.isfinite(bits)
            rows.append(tidy_row(model, dataset, "behaviour", "perplexity_per_word", "default", float(2 ** bits[scored].mean()),
                                 n=int(scored.sum())))
    frame = tidy_frame(rows)
    write_table(frame, out_csv)
    write_json(details, Path(out_csv).with_suffix(".json"))
    return frame
