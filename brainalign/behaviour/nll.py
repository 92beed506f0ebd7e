"""Next-token negative log-likelihoods (nats) read from a model's forward passes: at chosen positions of one batch
(:func:`position_nlls`), or from many token windows, batched by length (:func:`window_nlls`).

A plain causal LM (:data:`PLAIN_HEAD_MODEL_TYPES`) runs its backbone only and takes the read positions' hidden states
through its LM head in cache-sized vocabulary slices with a running log-sum-exp (:func:`head_nlls`): float32
products, float64 sums, never the full logits (a large vocabulary's head is most of a small model's work, and its
logits for a whole story would not fit in memory). Any other model runs whole, computing logits only from the first
read position where it accepts ``logits_to_keep``, and gives the log-softmax of its logits.

torch is imported inside the functions: the workflow imports :mod:`brainalign.behaviour.surprisal`, and so this
module, when it plans jobs, where torch is not needed (and would slow every Snakemake start).
"""

from __future__ import annotations

import inspect

import numpy as np

from brainalign.progress import progress_bar

#: vocabulary rows per product in :func:`head_nlls`: a 1,024 x 640 slice of Gemma 3's head (2.6 MB) stays in cache
HEAD_SLICE_ROWS = 1024
#: positions per block in :func:`head_nlls` (a block's logits slice: 16 MB of float32)
HEAD_BLOCK_POSITIONS = 4096
#: causal LMs whose ``logits`` are exactly ``lm_head(last_hidden_state)`` (then ``final_logit_softcapping``, if
#: set): their next-token NLLs come from the backbone's hidden states and a sliced LM head (:func:`position_nlls`)
PLAIN_HEAD_MODEL_TYPES = ("gpt2", "llama", "mistral", "qwen2", "gemma2", "gemma3_text")


def plain_head(model):
    """(LM head, softcap) where a model's logits are its LM head applied to its backbone's last hidden state, else None."""
    import torch  # lazy (module docstring)

    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False) or getattr(config, "model_type", None) not in PLAIN_HEAD_MODEL_TYPES:
        return None
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(head, torch.nn.Linear) or getattr(model, "base_model", model) is model:
        return None
    return head, getattr(config, "final_logit_softcapping", None)


def head_nlls(hidden, head, softcap, targets):
    """-log softmax(head(hidden))[target] per row, float32 products and float64 sums, without holding all logits:
    the vocabulary goes in cache-sized slices (:data:`HEAD_SLICE_ROWS`) with a running maximum and sum of
    exponentials, the rows in blocks of :data:`HEAD_BLOCK_POSITIONS`. The float64 sums make it more exact than a
    float32 log-softmax over the whole vocabulary."""
    import torch  # lazy (module docstring)

    if len(hidden) > HEAD_BLOCK_POSITIONS:
        return np.concatenate([head_nlls(hidden[a:a + HEAD_BLOCK_POSITIONS], head, softcap, targets[a:a + HEAD_BLOCK_POSITIONS])
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
    through its LM head in vocabulary slices (:func:`head_nlls`); any other model runs whole, with
    ``logits_to_keep`` where it accepts it, and gives log-softmax of its logits. Same values up to float rounding
    (tests/test_behaviour.py)."""
    import torch  # lazy (module docstring)

    if not len(targets):
        return np.zeros(0)
    plain = None if encoder_decoder else plain_head(model)
    with torch.inference_mode():
        if plain is not None:
            hidden = model.base_model(**inputs).last_hidden_state
            device = hidden.device
            return head_nlls(hidden[torch.tensor(rows, device=device), torch.tensor(positions, device=device)], *plain, targets)
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


def length_batches(lengths: list[int], batch_size: int, max_batch_tokens: int | None = None) -> list[list[int]]:
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


def window_nlls(model, windows, reads, batch_size: int, device: str = "cpu", encoder_decoder: bool = False,
                pad_id: int = 0, progress: bool = False, max_batch_tokens: int | None = None) -> list[np.ndarray]:
    """Negative log-probabilities (nats) read from token windows, batched.

    ``windows[i]`` is a list of token ids; ``reads[i]`` a list of (position, target id): the logits at ``position``
    of that window scored against ``target``. Windows go ``batch_size`` at a time (and at most ``max_batch_tokens``
    padded positions, :func:`length_batches`) in order of length, right-padded with an attention mask (a causal or
    encoder-decoder model reads the real positions as it would unpadded). An encoder-decoder gets the window as
    ``decoder_input_ids`` too, unshifted (the paper's T5 reading). A decoder computes logits only for the positions
    read when it accepts ``logits_to_keep``."""
    import torch  # lazy (module docstring)

    out = [np.full(len(r), np.nan) for r in reads]
    scored = [i for i in range(len(windows)) if reads[i]]
    batches = [[scored[j] for j in batch]
               for batch in length_batches([len(windows[i]) for i in scored], batch_size, max_batch_tokens)]
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
