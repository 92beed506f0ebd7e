"""What each forward pass of an extraction sees and where each stimulus is read: context modes, text windows and
the checkpoint units built from them, and the read-out.

Context modes, chosen from the dataset (``meta.json``, :func:`context_mode_for`) unless the caller overrides them:

* ``sentence``: each text alone (Tuckute 2024);
* ``group``: each text after the preceding texts of its group (Pereira passages). For causal models one pass over
  the whole group reads every sentence at its final token, which equals re-running each prefix (tested);
  bidirectional encoders would see the future, so they run one pass per prefix (:func:`text_windows`);
* ``window`` (time series, per word): for causal decoders the story's tokens in overlapping windows of
  ``max_context_tokens``, each word read from a window where it has at least ``min_context_tokens`` of preceding
  context (the first window's words have what precedes them; :func:`story_window_units`); a later token never
  changes an earlier one's state, so this equals a pass per word. Encoders and encoder-decoders would see the words
  that follow inside such a window, so each word gets its own input that ends with it (:func:`left_context_units`):
  the story up to the word, left-truncated to the token budget, then the tokenizer's trailing specials (T5's
  ``</s>``, which paper mode reads). Brain-Score likewise fed every stimulus the text up to it, and nothing after.

Work is cut into *units*, each ``[(token ids, [(row, token positions), ...]), ...]``: one padded batch of windows
and the stimulus rows read from each (one batch of windows in sentence/group mode and for the per-word windows of
non-causal models, one story window for decoders in window mode). Units depend only on the tokenised text and the
options, in a fixed order, so a resumed run rebuilds the same units (:mod:`brainalign.extraction.checkpoint`).

Nothing here imports torch: tokenizers are passed in and only called.
"""

from __future__ import annotations

import logging

import numpy as np

from brainalign.errors import BrainalignError
from brainalign.extraction.alignment import plan_windows, prepend_ids, special_tokens_around, tokens_overlapping, words_to_text
from brainalign.options import ExtractionOptions

log = logging.getLogger("brainalign.extraction.context")


def encoder_decoder_mode(spec: dict) -> str | None:
    """How an encoder-decoder model (T5) is read; None for other kinds.

    ``paper`` (Aw et al. via Brain-Score PR194, methods §3.3): the same tokens go to the encoder and, unshifted
    and without a start token, to the decoder; every ``encoder.block.N`` and ``decoder.block.N`` is a layer, read
    at the last position (T5's appended ``</s>``). The decoder then reads a sequence whose every token the
    encoder has already shown it, which no T5 training objective ever produced.
    ``principled`` (default): only the encoder runs, the bidirectional representation T5 builds of its input;
    layers are the embedding and ``encoder.block.N``, read at the stimulus's own last token like every other
    model. Decoder layers are refused in this mode rather than read from an input T5 never saw in training.
    """
    if spec["kind"] != "encoder-decoder":
        return None
    return spec.get("t5_mode", "principled")


def context_mode_for(meta: dict) -> str:
    """A prepared dataset's context mode: ``window`` for a time series, ``group`` where its meta says so, else
    ``sentence``."""
    if meta["kind"] == "timeseries":
        return "window"
    return "group" if meta.get("context") == "group" else "sentence"


def readout_for(context_mode: str, options: ExtractionOptions, spec: dict) -> str:
    """How a stimulus's tokens become its vector: ``story_readout`` for the words of a time series (context mode
    ``window``), ``readout`` elsewhere and for T5 in ``t5_mode: paper`` (which reads the ``</s>`` after each word,
    as the paper did).

    Why ``sum`` for story words: every token that falls in a scan should drive that scan's features (LITcoder
    2025). A word's tokens share the word's time (the TextGrid times words, not tokens), and the Lanczos step
    treats each event as an impulse at its time, so the sum of a word's token vectors is exactly every token an
    impulse at the word's time; ``last`` (what the paper's Wehbe 2014 and Blank 2014 pipelines read:
    config/paper.yaml keeps it) drops all but the word's final token, ``mean`` divides by the token count (a long
    word weighs as much as a short one)."""
    if context_mode == "window" and encoder_decoder_mode(spec) != "paper":
        return options.story_readout
    return options.readout


def reads_paper_eos(spec: dict, readout: str) -> bool:
    """Whether each stimulus is read at the ``</s>`` after it too (T5 in ``t5_mode: paper`` with a last-token
    read-out, as the paper read every stimulus)."""
    return encoder_decoder_mode(spec) == "paper" and readout == "last"


# ----------------------------------------------------------------------------------------------- sentence and group
def text_windows(stimuli, context: str, causal: bool, prepend: str):
    """(text, [(row, char_start, char_end), ...]) windows for sentence and group modes.

    ``sentence``: each text alone after ``prepend``. ``group``: the group's texts joined with spaces after
    ``prepend``; a causal model reads every text from one window (the whole group), any other model from the
    window that ends with that text (one per prefix, since it would otherwise see the texts that follow)."""
    windows = []
    for _, group in stimuli.groupby("group", sort=False):
        texts = group["text"].astype(str).tolist()
        rows = group.index.tolist()
        if context == "sentence":
            for row, text in zip(rows, texts):
                joined, [(start, end)] = words_to_text([text], prefix=prepend)
                windows.append((joined, [(row, start, end)]))
            continue
        joined, char_spans = words_to_text(texts, prefix=prepend)
        spans = [(row, start, end) for row, (start, end) in zip(rows, char_spans)]
        if causal:
            windows.append((joined, spans))
        else:
            windows.extend((joined[:end], [(row, start, end)]) for row, start, end in spans)
    return windows


def window_units(tokenizer, windows, batch_size: int, max_tokens: int, context_mode: str, paper_eos: bool) -> list:
    """Units of text windows (:func:`text_windows`): batches of ``batch_size`` windows in order of tokenised length.

    The batches are fixed by the tokenised lengths and ``batch_size`` alone (stable sort), so a resumed run rebuilds
    exactly the same batches and skips the finished ones. ``paper_eos`` (:func:`reads_paper_eos`) adds the final
    position (T5's ``</s>``) to every stimulus's read positions."""
    encoded = [tokenizer(text, return_offsets_mapping=True, truncation=False) for text, _ in windows]
    order = np.argsort([len(e["input_ids"]) for e in encoded], kind="stable")
    units = []
    for first in range(0, len(order), batch_size):
        batch = [int(i) for i in order[first:first + batch_size]]
        if max(len(encoded[i]["input_ids"]) for i in batch) > max_tokens and len(batch) == 1 and context_mode != "sentence":
            log.warning("window of %d tokens exceeds max_context_tokens=%d; it is kept whole",
                        len(encoded[batch[0]]["input_ids"]), max_tokens)
        unit = []
        for i in batch:
            reads = []
            for row, s, e in windows[i][1]:
                positions = tokens_overlapping(encoded[i]["offset_mapping"], s, e)
                if not positions:
                    raise BrainalignError(f"stimulus row {row}: no tokens found for its text (empty after tokenisation?)")
                if paper_eos and positions[-1] < len(encoded[i]["input_ids"]) - 1:
                    positions = positions + [len(encoded[i]["input_ids"]) - 1]  # T5's </s>, which the paper read
                reads.append((row, positions))
            unit.append((list(encoded[i]["input_ids"]), reads))
        units.append(unit)
    return units


# ----------------------------------------------------------------------------------------------- story words
def story_units(tokenizer, stimuli, spec: dict, options: ExtractionOptions, paper_eos: bool) -> tuple[list, str]:
    """Units for the words of time-series stories, and what they are (for the log): a causal decoder's story
    windows (:func:`story_window_units`), any other model's one window per word (:func:`left_context_units`).

    The token budget of a window is ``max_context_tokens`` less the prepended text and the tokenizer's leading and
    trailing specials; a decoder's windows overlap by ``min(min_context_tokens, max_context_tokens // 2)``."""
    max_tokens = options.max_context_tokens
    prefix = prepend_ids(tokenizer, spec.get("prepend_text"))
    lead_ids, trail_ids = special_tokens_around(tokenizer)
    budget = max_tokens - len(prefix) - len(lead_ids) - len(trail_ids)
    if spec["kind"] != "decoder":
        return left_context_units(tokenizer, stimuli, lead_ids + prefix, trail_ids, budget, options.batch_size,
                                  paper_eos), "word windows"
    min_context = min(options.min_context_tokens, max_tokens // 2)
    return story_window_units(tokenizer, stimuli, lead_ids + prefix, trail_ids, budget, min_context), "story windows"


def story_window_units(tokenizer, stimuli, head_ids, trail_ids, budget: int, min_context: int) -> list:
    """Units for a causal decoder: each story's tokens in overlapping windows (:func:`plan_windows`), between
    ``head_ids`` (leading specials + prepended text) and ``trail_ids``. Every window (one forward pass, batch of
    one) is a unit, planned from the tokenised stories before any pass, in story order, and each word is read from
    exactly one window (the one where its last token is read), so a resumed run skips the finished windows and
    gives the same bytes."""
    units = []
    for _, group in stimuli.groupby("group", sort=False):
        text, char_spans = words_to_text(group["text"].astype(str))
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
        word_tokens = [(row, tokens_overlapping(offsets, s, e)) for row, (s, e) in zip(group.index, char_spans)]
        missing = [row for row, pos in word_tokens if not pos]
        if missing:
            raise BrainalignError(f"words at rows {missing[:5]} produced no tokens")
        for begin, end, read_from in plan_windows(len(ids), budget, min_context):
            window = head_ids + ids[begin:end] + trail_ids
            offset = len(head_ids) - begin
            rows = [(int(row), [p + offset for p in pos]) for row, pos in word_tokens if pos and read_from <= pos[-1] < end]
            if rows:
                units.append([(list(window), rows)])
    return units


def left_context_units(tokenizer, stimuli, head_ids, trail_ids, budget: int, batch_size: int, paper_eos: bool) -> list:
    """Units for a non-causal model (batches of ``batch_size`` windows, in story order): one window per word, the
    story's tokens up to and including that word's last token, left-truncated to ``budget`` tokens, between
    ``head_ids`` (leading specials + prepended text) and ``trail_ids`` (trailing specials, e.g. [SEP] or T5's
    ``</s>``, which thus come right after the word). The word is read at its own tokens, or, in T5 paper mode
    (``paper_eos``), at the ``</s>`` that follows it too, as the paper read every stimulus.

    Brain-Score fed each stimulus the text up to it; slicing the story's tokens is the same as tokenising that
    text wherever no token spans two words; a word whose last token runs into the next word is tokenised from the
    text up to it alone."""
    if budget < 1:
        raise BrainalignError(f"a context window of {budget} tokens leaves no room for the text (raise max_context_tokens)")
    units, unit, missing = [], [], []
    for _, group in stimuli.groupby("group", sort=False):
        text, char_spans = words_to_text(group["text"].astype(str))
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        for row, (start, end) in zip(group.index, char_spans):
            ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
            positions = tokens_overlapping(offsets, start, end)
            if positions and offsets[positions[-1]][1] > end:
                alone = tokenizer(text[:end], add_special_tokens=False, return_offsets_mapping=True)
                ids, positions = alone["input_ids"], tokens_overlapping(alone["offset_mapping"], start, end)
            if not positions:
                missing.append(int(row))
                continue
            stop = positions[-1] + 1
            begin = max(0, stop - budget)
            window = list(head_ids) + list(ids[begin:stop]) + list(trail_ids)
            shift = len(head_ids) - begin
            read = [p + shift for p in positions if p >= begin]
            if paper_eos and read[-1] < len(window) - 1:
                read.append(len(window) - 1)  # T5's </s>, right after the word
            unit.append((window, [(int(row), read)]))
            if len(unit) == batch_size:
                units.append(unit)
                unit = []
    if missing:
        raise BrainalignError(f"words at rows {missing[:5]} produced no tokens")
    if unit:
        units.append(unit)
    return units
