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
checks both against Brain-Score's ``HuggingfaceSubject`` on a tiny GPT-2.

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


def fed_tokens(tokenizer, parts: Sequence[str]) -> list[list[int]]:
    """The token ids each part adds to the stream: the tokens of the context up to it (special tokens included, as
    the tokenizer adds them) past those of the context before it; the first part's are its whole context's."""
    fed, previous = [], 0
    for i in range(len(parts)):
        ids = list(tokenizer(prepare_context(parts[: i + 1]))["input_ids"])
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
    with torch.inference_mode():
        from brainalign.progress import progress_bar  # lazy: the syntaxgym adapter imports this module in the data env
        for i in progress_bar(range(len(parts)), desc="next word", unit="part", disable=not progress):
            ids = list(tokenizer(prepare_context(parts[: i + 1]))["input_ids"])
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
