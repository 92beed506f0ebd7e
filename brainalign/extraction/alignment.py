"""Words, characters and tokens: how a list of words becomes a text, how its tokens map back to the words, which
special tokens a tokenizer wraps a text in, and how a long token sequence is cut into overlapping context windows.

Used by activation extraction (:mod:`brainalign.extraction.activations`) and by surprisal (:mod:`brainalign.behaviour.surprisal`).
The two map tokens to words by different rules, on purpose (both are kept here, named):

* :func:`tokens_overlapping` (extraction): the tokens whose characters overlap a stimulus's span. A stimulus is
  read at its last such token (or the mean over them); the whitespace a token may carry never makes it
  belong to the previous word, and special tokens (empty offsets) never match.
* :func:`token_word_index` (surprisal): every token is owned by exactly one word, the word containing its last
  character, and a whitespace-only token by the word that follows it, so word surprisals add up to the
  text's total.

Nothing here imports torch or transformers: tokenizers are passed in and only called.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np

from brainalign.errors import BrainalignError


# ----------------------------------------------------------------------------------------------- words -> text
def words_to_text(words: Iterable[str], prefix: str = "") -> tuple[str, list[tuple[int, int]]]:
    """Join words with single spaces after ``prefix``; return the text and each word's [start, end) character span.

    No space separates ``prefix`` from the first word (a prepended text such as ``<|endoftext|>`` is glued to
    it), and a space is added before a word only once some word text follows the prefix (an empty first word
    adds no space)."""
    text, spans = prefix, []
    for word in words:
        if len(text) > len(prefix):
            text += " "
        spans.append((len(text), len(text) + len(word)))
        text += word
    return text, spans


# ----------------------------------------------------------------------------------------------- tokens -> words
def tokens_overlapping(offsets, start: int, end: int) -> list[int]:
    """Indices of the tokens whose characters overlap [start, end) (the extraction rule).

    ``offsets`` is a tokenizer's ``offset_mapping``: (char_start, char_end) per token. Special tokens have empty
    offsets and never match, so a stimulus is never read at a BOS/CLS/SEP/EOS or at prepended text."""
    return [i for i, (a, b) in enumerate(offsets) if b > a and a < end and b > start]


def token_word_index(offsets, spans) -> np.ndarray:
    """For each token (of a text tokenised without special tokens), the index of the word it belongs to (the
    surprisal rule).

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


def word_token_ranges(owner, n_words: int) -> np.ndarray:
    """Each word's tokens as a [start, end) range, from :func:`token_word_index`'s owners (which never decrease);
    ``(a, a)`` for a word without tokens. Shape ``(n_words, 2)``."""
    owner = np.asarray(owner, dtype=int)
    if len(owner) > 1 and (np.diff(owner) < 0).any():
        raise BrainalignError("token owners must not decrease (tokens in text order)")
    words = np.arange(n_words)
    return np.stack([np.searchsorted(owner, words, side="left"), np.searchsorted(owner, words, side="right")], axis=1)


# ----------------------------------------------------------------------------------------------- special tokens
def special_tokens_around(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts before and after a text (BOS; CLS/SEP; EOS), found empirically.

    Tokenises ``"a"`` with and without special tokens and returns what surrounds the plain ids, e.g.
    ``([bos], [])`` for Gemma, ``([cls], [sep])`` for BERT, ``([], [eos])`` for T5, ``([], [])`` for GPT-2.
    ``([], [])`` too when the plain ids do not occur inside the full ones."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start], full[start + len(plain):]
    return [], []


def prepend_ids(tokenizer, prepend_text: str | None) -> list[int]:
    """The tokens of a model's configured ``prepend_text`` (no special tokens added); [] when there is none."""
    return tokenizer(prepend_text, add_special_tokens=False)["input_ids"] if prepend_text else []


def prefix_ids(tokenizer, prepend_text: str | None) -> list[int]:
    """Tokens that start every surprisal window: the tokenizer's own leading specials (BOS) + ``prepend_text``."""
    lead, _ = special_tokens_around(tokenizer)
    return list(lead) + list(prepend_ids(tokenizer, prepend_text))


# ----------------------------------------------------------------------------------------------- context windows
class ContextWindow(NamedTuple):
    """Tokens [begin, end) of a long sequence go through the model together; positions [first_read, end) are read
    (scored) from this window. ``first_read`` is ``begin`` in the first window, ``begin + min_context`` after."""

    begin: int
    end: int
    first_read: int


def plan_windows(n_tokens: int, budget: int, min_context: int) -> Iterator[ContextWindow]:
    """Overlapping windows of at most ``budget`` tokens covering ``n_tokens`` tokens, in order.

    Each window starts ``step = max(1, budget - min_context)`` tokens after the previous one, so consecutive
    windows overlap by ``min_context`` tokens, and reads from ``begin + min_context`` on (the first window reads
    from 0): with ``min_context <= budget // 2`` (or any ``min_context < budget``) every position is read in
    exactly one window, and every position read after the first window has at least ``min_context`` tokens of
    context inside its window. The last window ends at ``n_tokens``. Nothing is yielded for ``n_tokens <= 0``.

    The two callers:

    * activation extraction (story windows): ``budget = max_context_tokens - len(prepend) - len(lead specials)
      - len(trail specials)``, ``min_context = min(min_context_tokens, max_context_tokens // 2)``; a word is read
      from the window where its last token lies in [first_read, end);
    * surprisal: ``budget = max_context_tokens - len(prefix)``, ``min_context = min(min_context_tokens,
      budget // 2)``; every token in [first_read, end) is scored. There the next window begins at
      ``end - min_context``, which is the same as ``begin + step`` since a window that is not the last is full
      and ``budget - min_context >= 1``.
    """
    if budget < 1:
        raise BrainalignError(f"a context window of {budget} tokens leaves no room for the text (raise max_context_tokens)")
    if n_tokens <= 0:
        return
    step = max(1, budget - min_context)
    begin = 0
    while True:
        end = min(begin + budget, n_tokens)
        yield ContextWindow(begin, end, begin if begin == 0 else begin + min_context)
        if end >= n_tokens:
            return
        begin += step
