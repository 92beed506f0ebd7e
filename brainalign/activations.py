"""Activation extraction: every layer of a model for every stimulus, in one pass, into one HDF5 shard.

Layers are read with forward hooks on named modules (``transformer.h.11``, ``model.layers.29``,
``encoder.block.7``, or any module a config names), so anything inside the model can be read, not only the
hidden states it returns. Each forward pass is a *window* of text plus the character spans of the stimuli to
read from it; a stimulus's vector is its last token (default) or the mean of its tokens, found by character
offsets, so special tokens and prepended text never count as the stimulus.

Context modes, chosen from the dataset (``meta.json``) unless overridden:
  * ``sentence``: each text alone (Tuckute 2024);
  * ``group``: each text after the preceding texts of its group (Pereira passages). For causal models one pass
    over the whole group reads every sentence at its final token, which equals re-running each prefix (tested);
    bidirectional encoders would see the future, so they run one pass per prefix;
  * ``window`` (time series, per word): the story's tokens in overlapping windows of ``max_context_tokens``, each
    word read from a window where it has at least ``min_context_tokens`` of preceding context (the first
    window's words have what precedes them). Encoders see the rest of their window, documented in docs.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import h5py
import numpy as np

from brainalign import __version__
from brainalign.errors import BrainalignError
from brainalign.io import atomic_path

log = logging.getLogger("brainalign.activations")

BLOCK_LIST_NAMES = ("layers", "h", "layer", "block", "blocks")


def block_layer_names(model) -> list[str]:
    """Embedding output + every transformer block, in model order, named by module path."""
    import torch

    names = []
    embedding = model.get_input_embeddings()
    for name, module in model.named_modules():
        if module is embedding:
            names.append(name)
            break
    for name, module in model.named_modules():
        parts = name.split(".")
        if isinstance(module, torch.nn.ModuleList) and parts[-1] in BLOCK_LIST_NAMES and not any(p.isdigit() for p in parts):
            names.extend(f"{name}.{i}" for i in range(len(module)))
    if len(names) < 2:
        raise BrainalignError(f"cannot find the transformer blocks of {type(model).__name__}; list layers in the config")
    return names


def resolve_layers(model, spec: dict) -> list[str]:
    layers = spec.get("layers", "blocks")
    names = block_layer_names(model) if layers == "blocks" else list(layers)
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise BrainalignError(f"model {spec['name']}: layers {missing[:3]} are not modules of {type(model).__name__}")
    return names


class LayerRecorder:
    """Forward hooks that keep each named module's output (element 0 of a tuple) for the current pass."""

    def __init__(self, model, names):
        modules = dict(model.named_modules())
        self.outputs: dict[str, object] = {}
        self.handles = [modules[name].register_forward_hook(self._hook(name)) for name in names]

    def _hook(self, name):
        def hook(module, inputs, output):
            self.outputs[name] = output[0] if isinstance(output, (tuple, list)) else output
        return hook

    def close(self):
        for handle in self.handles:
            handle.remove()


def _windows_for(stimuli, context: str, causal: bool, prepend: str):
    """(text, [(row, char_start, char_end), ...]) windows for sentence and group modes."""
    windows = []
    for _, group in stimuli.groupby("group", sort=False):
        texts = group["text"].astype(str).tolist()
        rows = group.index.tolist()
        if context == "sentence":
            for row, text in zip(rows, texts):
                windows.append((prepend + text, [(row, len(prepend), len(prepend) + len(text))]))
            continue
        spans, joined = [], prepend
        for row, text in zip(rows, texts):
            if len(joined) > len(prepend):
                joined += " "
            spans.append((row, len(joined), len(joined) + len(text)))
            joined += text
            if not causal:
                windows.append((joined, [spans[-1]]))
        if causal:
            windows.append((joined, spans))
    return windows


def _token_positions(offsets, start, end):
    """Indices of tokens overlapping [start, end) (special tokens have empty offsets and never match)."""
    return [i for i, (a, b) in enumerate(offsets) if b > a and a < end and b > start]


def _forward(loaded, recorder, input_ids, attention_mask, spec):
    import torch

    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if spec["kind"] == "encoder-decoder":
        kwargs["decoder_input_ids"] = input_ids  # the paper's mode: the same tokens, unshifted (methods §3.3)
    # decoders: run the backbone only; the LM head (262k x 640 for Gemma) is the costliest part and unused here
    module = loaded.model.base_model if spec["kind"] == "decoder" else loaded.model
    with torch.inference_mode():
        module(**kwargs)
    return recorder.outputs


def _read(outputs, names, token_index_lists, readout):
    """One vector per stimulus and layer: last token or mean over its tokens."""
    vectors = {}
    for name in names:
        hidden = outputs[name].float()
        rows = []
        for batch_index, positions in token_index_lists:
            states = hidden[batch_index, positions]
            rows.append(states[-1] if readout == "last" else states.mean(0))
        vectors[name] = np.stack([r.cpu().numpy() for r in rows])
    return vectors


def _extract_windows(loaded, spec, names, windows, n_rows, options):
    """Run text windows (batched, sorted by length) and collect each stimulus's vector per layer."""
    import torch
    from tqdm import tqdm

    tokenizer = loaded.tokenizer
    batch_size = int(options.get("batch_size", 16))
    max_tokens = int(options.get("max_context_tokens", 512))
    readout = options.get("readout", "last")
    encoded = [tokenizer(text, return_offsets_mapping=True, truncation=False) for text, _ in windows]
    order = np.argsort([len(e["input_ids"]) for e in encoded], kind="stable")
    result = {name: None for name in names}
    recorder = LayerRecorder(loaded.model, names)
    n_tokens, start = 0, time.perf_counter()
    try:
        bar = tqdm(total=len(windows), desc=f"{spec['name']}", unit="window", disable=not options.get("progress", True))
        for first in range(0, len(order), batch_size):
            batch = [int(i) for i in order[first:first + batch_size]]
            lengths = [len(encoded[i]["input_ids"]) for i in batch]
            if max(lengths) > max_tokens and len(batch) == 1 and options.get("context_mode") != "sentence":
                log.warning("window of %d tokens exceeds max_context_tokens=%d; it is kept whole", max(lengths), max_tokens)
            width = max(lengths)
            ids = torch.full((len(batch), width), tokenizer.pad_token_id or 0, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            picks = []
            for b, i in enumerate(batch):
                ids[b, : lengths[b]] = torch.tensor(encoded[i]["input_ids"])
                mask[b, : lengths[b]] = 1
                for row, s, e in windows[i][1]:
                    positions = _token_positions(encoded[i]["offset_mapping"], s, e)
                    if not positions:
                        raise BrainalignError(f"stimulus row {row}: no tokens found for its text (empty after tokenisation?)")
                    picks.append((row, b, positions))
            outputs = _forward(loaded, recorder, ids.to(loaded.device), mask.to(loaded.device), spec)
            vectors = _read(outputs, names, [(b, p) for _, b, p in picks], readout)
            for name in names:
                if result[name] is None:
                    result[name] = np.zeros((n_rows, vectors[name].shape[1]), dtype=np.float32)
                result[name][[row for row, _, _ in picks]] = vectors[name]
            n_tokens += int(mask.sum())
            bar.update(len(batch))
            bar.set_postfix(tokens_per_s=f"{n_tokens / max(time.perf_counter() - start, 1e-9):.0f}")
        bar.close()
    finally:
        recorder.close()
    log.info("%d windows, %d tokens, %.0f tokens/s", len(windows), n_tokens, n_tokens / max(time.perf_counter() - start, 1e-9))
    return result


def _special_tokens_around(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts before and after a text (BOS; CLS/SEP; EOS), found empirically."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start], full[start + len(plain):]
    return [], []


def _extract_story_words(loaded, spec, names, stimuli, options):
    """Per-word vectors for time-series datasets: each story's tokens in overlapping windows."""
    import torch

    tokenizer = loaded.tokenizer
    max_tokens = int(options.get("max_context_tokens", 512))
    min_context = min(int(options.get("min_context_tokens", 256)), max_tokens // 2)
    readout = options.get("readout", "last")
    prefix = tokenizer(spec.get("prepend_text", ""), add_special_tokens=False)["input_ids"] if spec.get("prepend_text") else []
    lead_ids, trail_ids = _special_tokens_around(tokenizer)
    lead, trail = len(lead_ids), len(trail_ids)
    budget = max_tokens - len(prefix) - lead - trail
    step = max(1, budget - min_context)
    result = {name: None for name in names}
    recorder = LayerRecorder(loaded.model, names)
    try:
        for _, group in stimuli.groupby("group", sort=False):
            text, spans = "", []
            for row, word in zip(group.index, group["text"].astype(str)):
                text += " " if text else ""
                spans.append((row, len(text), len(text) + len(word)))
                text += word
            encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
            word_tokens = [(row, _token_positions(offsets, s, e)) for row, s, e in spans]
            begin = 0
            while True:
                end = min(begin + budget, len(ids))
                read_from = begin if begin == 0 else begin + min_context
                window = lead_ids + prefix + ids[begin:end] + trail_ids
                offset = lead + len(prefix) - begin
                rows = [(row, [p + offset for p in pos]) for row, pos in word_tokens if pos and read_from <= pos[-1] < end]
                if rows:
                    tensor = torch.tensor([window], device=loaded.device)
                    outputs = _forward(loaded, recorder, tensor, torch.ones_like(tensor), spec)
                    vectors = _read(outputs, names, [(0, pos) for _, pos in rows], readout)
                    for name in names:
                        if result[name] is None:
                            result[name] = np.zeros((len(stimuli), vectors[name].shape[1]), dtype=np.float32)
                        result[name][[row for row, _ in rows]] = vectors[name]
                if end >= len(ids):
                    break
                begin += step
            missing = [row for row, pos in word_tokens if not pos]
            if missing:
                raise BrainalignError(f"words at rows {missing[:5]} produced no tokens")
    finally:
        recorder.close()
    return result


def context_mode_for(meta: dict, options: dict) -> str:
    mode = options.get("context_mode")
    if mode:
        return mode
    if meta["kind"] == "timeseries":
        return "window"
    return "group" if meta.get("context") == "group" else "sentence"


def extract_arrays(loaded, spec: dict, stimuli, meta: dict, options: dict | None = None) -> tuple[list[str], dict]:
    """Layer name list and {layer: (n_stimuli, hidden) float32} for a prepared dataset's stimuli."""
    options = dict(options or {})
    names = resolve_layers(loaded.model, spec)
    stimuli = stimuli.reset_index(drop=True)
    mode = context_mode_for(meta, options)
    options["context_mode"] = mode
    if mode == "window":
        arrays = _extract_story_words(loaded, spec, names, stimuli, options)
    else:
        causal = spec["kind"] == "decoder"
        windows = _windows_for(stimuli, mode, causal, spec.get("prepend_text", ""))
        arrays = _extract_windows(loaded, spec, names, windows, len(stimuli), options)
    return names, arrays


def _nonfinite_layers(arrays: dict) -> list[str]:
    return [name for name, values in arrays.items() if not np.isfinite(values).all()]


def extract_to_shard(spec: dict, model_dir, dataset_dir, out_path, options: dict | None = None) -> None:
    """Step of rule extract_activations: write ``/layers/<module>`` for every layer, atomically."""
    from brainalign.datasets.base import load_prepared
    from brainalign.models import load_model

    options = dict(options or {})
    dataset = load_prepared(dataset_dir)
    loaded = load_model(spec, model_dir, device=options.get("device"), dtype=spec.get("dtype"))
    names, arrays = extract_arrays(loaded, spec, dataset.stimuli, dataset.meta, options)
    bad = _nonfinite_layers(arrays)
    if bad and loaded.info["dtype"] != "float32":
        if not spec.get("retry_float32_on_nonfinite", True):
            raise BrainalignError(f"model {spec['name']}: non-finite activations in layers {bad[:3]} ({loaded.info['dtype']}); set retry_float32_on_nonfinite: true or dtype: float32")
        log.warning("non-finite activations in %s with %s; retrying in float32", bad[:3], loaded.info["dtype"])
        loaded = load_model(spec, model_dir, device=options.get("device"), dtype="float32")
        names, arrays = extract_arrays(loaded, spec, dataset.stimuli, dataset.meta, options)
        bad = _nonfinite_layers(arrays)
    if bad:
        raise BrainalignError(f"model {spec['name']}: non-finite activations (NaN/inf) in layers {bad[:3]}")
    storage = np.dtype(options.get("storage_dtype", "float32"))
    with atomic_path(out_path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w", track_order=True) as handle:
            group = handle.create_group("layers", track_order=True)
            for name in names:
                values = arrays[name].astype(storage)
                group.create_dataset(name, data=values, chunks=values.shape, track_times=False)
            handle.create_dataset("stimulus_ids", data=np.array(dataset.stimuli["stimulus_id"].astype(str).tolist(), dtype=h5py.string_dtype()), track_times=False)
            info = loaded.info
            handle.attrs.update({
                "model": spec["name"], "model_id": info["model_id"], "revision": info["revision"], "source": info["source"],
                "quantization": info["quantization"], "dtype": info["dtype"], "storage_dtype": storage.name,
                "context_mode": options.get("context_mode") or context_mode_for(dataset.meta, options),
                "readout": options.get("readout", "last"), "code_version": __version__, "layer_names": json.dumps(names),
                "dataset": dataset.meta.get("name", ""),
            })
    log.info("wrote %d layers x %d stimuli to %s", len(names), len(dataset.stimuli), out_path)
