"""Brain-Score Language's behavioural read-out of a causal LM (``HuggingfaceSubject.digest_text``), reproduced.

Brain-Score's subject reads a list of text *parts* as one continuous text: before part i it builds the context
``prepare_context(parts[:i + 1])`` (parts whose ``strip()`` is empty dropped, the rest joined with one space, then
whitespace before ``. , ! ? ; :`` removed), tokenises that whole context, and feeds the model only the tokens past
the previous context's token count, with the earlier tokens in the key/value cache (once the cache would pass the
model's ``max_position_embeddings`` its oldest entries are dropped). So the tokens a part contributes are those of
the re-tokenised context, not of the part alone. Two tasks read the outputs:

* ``reading_times`` (SyntaxGym's region totals): the sum over the part's new tokens of their surprisal in bits,
  each token given every token fed before it; the first part's first token has no context and adds nothing, and a
  part that produced at most one logit (a one-token first part, or a part adding no tokens) is NaN.
* ``next_word`` (Wikitext accuracy): the argmax token of the logits after the part's last token, decoded and
  stripped of surrounding whitespace (a part adding no tokens repeats the previous prediction).

:func:`part_surprisals` computes the first from one forward pass per text over the same token stream (the
arithmetic of the cached passes: causal attention makes them one pass) through :func:`brainalign.behaviour.nll.position_nlls`,
batched; :func:`next_word_predictions` runs Brain-Score's cached loop itself, since once a text outgrows the
model's positions the dropped cache entries are not a window one pass can reproduce. tests/test_lm_benchmarks.py
checks both against Brain-Score's ``HuggingfaceSubject`` on a tiny GPT-2. Both build the growing context with
:class:`GrowingContext`, which gives the same strings and ids without re-tokenising the whole text at every part.

torch is imported inside the functions: the workflow imports this module's package when it plans jobs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,!?;:])")


def prepare_context(parts: Sequence[str]) -> str:
    """Brain-Score's context string of ``parts`` (``model_helpers/preprocessing.prepare_context``)."""
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", " ".join(part for part in parts if part.strip() != ""))


class GrowingContext:
    """``prepare_context(parts[:i + 1])`` and its token ids for i = 0, 1, ..., built as the parts arrive instead of
    re-joined and re-tokenised whole at every part, which is quadratic in the text (Brain-Score's Wikitext reads
    every context of the split as one text of millions of words).

    The string: a new part only changes the text after the last non-space character (the punctuation rule removes
    whitespace before punctuation, so it cannot reach further back), so that tail is re-joined alone. The tokens:
    the text is re-tokenised from a cut a few words back, at a token that starts a word, and the ids before the cut
    are kept. That is exact where the tokenizer splits text into words before merging (byte-level BPE,
    SentencePiece); each step checks that the cut behaves so (the old text from the cut, tokenised alone, gives the
    old ids after the cut) and otherwise tokenises the whole text, as Brain-Score does. Only the text from the last
    cut on is kept as a string (``window``, starting at character ``offset``), so a step costs the length of the
    new part, not of the text."""

    WORDS_BACK = 4  # the cut: this many tokens that start a word before the end of the text
    MARGIN = 16  # characters of the window kept before the cut, so the next cut can look at what precedes a token

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.fast = bool(getattr(tokenizer, "is_fast", False))
        self.committed: list[str] = []  # the text before ``offset``, in pieces
        self.window, self.offset = "", 0
        self.ids: list[int] = []
        self.starts: list[int] = []  # each token's first character in the whole text
        self.full_tokenisations = 0

    @property
    def text(self) -> str:
        return "".join(self.committed) + self.window

    def _encode(self, text: str, special: bool) -> tuple[list[int], list[int]]:
        encoded = self.tokenizer(text, add_special_tokens=special, return_offsets_mapping=True)
        return list(encoded["input_ids"]), [int(start) for start, _ in encoded["offset_mapping"]]

    def _char(self, position: int) -> str:
        return self.window[position - self.offset] if self.offset <= position < self.offset + len(self.window) else ""

    def _cut(self) -> int | None:
        """The index of the ``WORDS_BACK``-th token from the end that starts a word (at or just after a space)."""
        found = 0
        for index in range(len(self.ids) - 1, 0, -1):
            start = self.starts[index]
            if start - 1 < self.offset:
                return None
            if self._char(start).isspace() or self._char(start - 1).isspace():
                found += 1
                if found == self.WORDS_BACK:
                    return index
        return None

    def add(self, part: str) -> list[int]:
        """Append ``part`` (dropped when blank, as ``prepare_context`` drops it); the ids of the whole text (the live
        list: read it, do not change it)."""
        if not self.committed and not self.window:
            return self._full(prepare_context([part]))
        if part.strip() == "":
            return self.ids
        keep = len(self.window.rstrip())
        window = self.window[:keep] + _SPACE_BEFORE_PUNCTUATION.sub(r"\1", self.window[keep:] + " " + part)
        cut = self._cut() if self.fast else None
        if cut is not None:
            start = self.starts[cut]
            for begin in dict.fromkeys((start - 1, start) if self._char(start - 1).isspace() else (start,)):
                old = self.window[begin - self.offset:]
                if self._encode(old, special=False)[0] == self.ids[cut:]:  # the cut behaves as a boundary
                    tail, tail_starts = self._encode(window[begin - self.offset:], special=False)
                    del self.ids[cut:], self.starts[cut:]
                    self.ids.extend(tail)
                    self.starts.extend(begin + offset for offset in tail_starts)
                    split = max(self.offset, begin - self.MARGIN)  # the window keeps a few characters before the cut
                    self.committed.append(window[: split - self.offset])
                    self.window, self.offset = window[split - self.offset:], split
                    return self.ids
        return self._full(self.text[: self.offset] + window)

    def _full(self, text: str) -> list[int]:
        self.full_tokenisations += 1
        self.committed, self.window, self.offset = [], text, 0
        if self.fast:
            self.ids, self.starts = self._encode(text, special=True)
        else:
            self.ids = list(self.tokenizer(text)["input_ids"])
        return self.ids


def fed_tokens(tokenizer, parts: Sequence[str]) -> list[list[int]]:
    """The token ids each part adds to the stream: the tokens of the context up to it (special tokens included, as
    the tokenizer adds them) past those of the context before it; the first part's are its whole context's."""
    fed, previous, context = [], 0, GrowingContext(tokenizer)
    for part in parts:
        ids = context.add(part)
        fed.append(ids[previous:])
        previous = len(ids)
    return fed


def _max_positions(model) -> int | None:
    value = getattr(model.config, "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def part_surprisals(model, tokenizer, texts: Sequence[Sequence[str]], device: str = "cpu", batch_size: int = 32,
                    progress: bool = False) -> list[np.ndarray]:
    """Per text (a list of parts), each part's surprisal in bits as Brain-Score's ``reading_times`` task reads it.
    A text longer than the model's positions is an error (Brain-Score's cache would drop tokens; SyntaxGym's
    sentences are far shorter)."""
    import torch  # lazy (module docstring)

    from brainalign.behaviour.nll import position_nlls
    from brainalign.errors import BrainalignError

    streams = [fed_tokens(tokenizer, parts) for parts in texts]
    limit = _max_positions(model)
    out: list[np.ndarray] = [np.full(len(parts), np.nan) for parts in texts]
    order = sorted(range(len(streams)), key=lambda k: sum(map(len, streams[k])))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    from brainalign.progress import progress_bar  # lazy: the syntaxgym adapter imports this module in the data env
    for batch in progress_bar(batches, desc="region surprisal", unit="batch", disable=not progress):
        flat = [[t for part in streams[k] for t in part] for k in batch]
        width = max(map(len, flat))
        if limit is not None and width > limit:
            raise BrainalignError(f"a text of {width} tokens is longer than the model's {limit} positions")
        if width == 0:
            continue
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        rows, positions, targets, owners = [], [], [], []
        for row, (k, tokens) in enumerate(zip(batch, flat)):
            ids[row, :len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            mask[row, :len(tokens)] = 1
            start = 0
            for part, new in enumerate(streams[k]):
                for offset in range(len(new)):
                    position = start + offset
                    if position > 0:  # the stream's first token has no context to predict it from
                        rows.append(row), positions.append(position - 1), targets.append(new[offset]), owners.append((k, part))
                start += len(new)
        nats = position_nlls(model, {"input_ids": ids.to(device), "attention_mask": mask.to(device)}, rows, positions, targets)
        totals: dict[tuple[int, int], float] = {}
        for owner, value in zip(owners, nats):
            totals[owner] = totals.get(owner, 0.0) + float(value)
        for k in batch:
            for part, new in enumerate(streams[k]):
                if part == 0 and len(new) <= 1 or part > 0 and not new:  # at most one logit: Brain-Score's NaN
                    continue
                out[k][part] = totals.get((k, part), 0.0) / math.log(2)
    return out


def _keep_last(past, keep: int):
    """The cache with only its last ``keep`` positions in every layer (Brain-Score's slide of the cache)."""
    layers = getattr(past, "layers", None)
    if layers is not None:  # transformers >= 4.56: the cache's layers hold keys and values
        for layer in layers:
            layer.keys, layer.values = layer.keys[..., -keep:, :], layer.values[..., -keep:, :]
        return past
    from transformers import DynamicCache

    return DynamicCache.from_legacy_cache(tuple((k[:, :, -keep:, :], v[:, :, -keep:, :]) for k, v in past.to_legacy_cache()))


def next_word_predictions(model, tokenizer, parts: Sequence[str], device: str = "cpu", progress: bool = False) -> list[str]:
    """Brain-Score's ``next_word`` task over ``parts`` read as one text: after each part, the decoded, stripped
    argmax token, from the cached loop of ``digest_text`` (the first part read whole, left-truncated to the
    tokenizer's ``model_max_length``; each later part's new tokens fed against the cache, its oldest entries dropped
    so the cache plus the new tokens fit ``max_position_embeddings``)."""
    import torch  # lazy (module docstring)

    limit = _max_positions(model)
    max_length = getattr(tokenizer, "model_max_length", None)
    predictions, previous, past, last = [], 0, None, None
    context = GrowingContext(tokenizer)
    with torch.inference_mode():
        from brainalign.progress import progress_bar  # lazy: the syntaxgym adapter imports this module in the data env
        for i in progress_bar(range(len(parts)), desc="next word", unit="part", disable=not progress):
            ids = context.add(parts[i])
            new, previous = ids[previous:], len(ids)
            if past is None:
                first = ids[-max_length:] if isinstance(max_length, int) and 0 < max_length < len(ids) else ids
                output = model(input_ids=torch.tensor([first], device=device), use_cache=True)
                logits = output.logits[0]
            else:
                cached = past.get_seq_length()
                if limit is not None and cached + len(new) > limit:
                    past = _keep_last(past, limit - len(new))
                    cached = past.get_seq_length()
                if new:
                    output = model(input_ids=torch.tensor([new], device=device),
                                   attention_mask=torch.ones((1, cached + len(new)), dtype=torch.long, device=device),
                                   past_key_values=past, use_cache=True)
                    logits = torch.cat([last, output.logits[0]], dim=0)
                else:  # nothing new: the model is not run; the last logit stands
                    logits = last
            past = output.past_key_values if new or i == 0 else past
            last = logits[-1:].detach()
            predictions.append(tokenizer.decode(int(torch.argmax(logits[-1]))).strip())
    return predictions
