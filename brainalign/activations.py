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

Resuming a killed run: :func:`extract_to_shard` keeps a checkpoint beside its output, ``<out>.partial/<dtype>/``
(see :class:`ExtractionCheckpoint`). Work is cut into *units* (one batch of windows in sentence/group mode,
one story window in window mode) in a fixed, deterministic order; finished units are flushed every
``checkpoint_every`` units and/or ``checkpoint_seconds`` seconds. A re-run with the same fingerprint (model, dtype,
dataset content, tokenisation, batching, context mode, readout, layers, device, code and library versions) skips
the finished units and computes the rest with exactly the same batch composition, so its shard is byte-identical
to an uninterrupted run; a checkpoint from other settings is discarded with a warning. The shard itself is still
written atomically and the checkpoint is removed once it is in place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import h5py
import numpy as np

from brainalign import __version__
from brainalign.errors import BrainalignError
from brainalign.io import atomic_path, write_json

log = logging.getLogger("brainalign.activations")

BLOCK_LIST_NAMES = ("layers", "h", "layer", "block", "blocks")


def block_layer_names(model) -> list[str]:
    """Embedding output + every transformer block, in model order, named by module path."""
    import torch

    names = []
    embedding = model.get_input_embeddings()
    if getattr(model.config, "is_encoder_decoder", False):
        embedding = model.get_encoder().embed_tokens  # T5: the encoder's own (weight-tied) copy is the one called
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


def resolve_layers(model, spec: dict) -> list[str]:
    layers = spec.get("layers", "blocks")
    names = block_layer_names(model) if layers == "blocks" else list(layers)
    if encoder_decoder_mode(spec) == "principled":
        decoder_layers = [n for n in names if n.startswith("decoder.")]
        if layers == "blocks":
            names = [n for n in names if not n.startswith("decoder.")]
        elif decoder_layers:
            raise BrainalignError(f"model {spec['name']}: layers {decoder_layers[:3]} are decoder layers, read only with t5_mode: paper")
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


CHECKPOINT_FORMAT = 1


class ExtractionCheckpoint:
    """Finished units of one extraction, kept on disk so a killed run resumes where it stopped.

    Layout of ``directory``: ``fingerprint.json`` (the settings the units were computed with, plus the number of
    units) and ``part-NNNNNN.npz`` files, each holding ``units`` (unit indices), ``rows`` (stimulus rows) and
    ``layer<i>`` (float32 ``(len(rows), hidden)`` in layer order). Every file is written under a temporary name
    and renamed, so a kill (SIGKILL included) leaves whole parts or none: never a half-written part that a
    re-run would trust. A part that cannot be read anyway (disk full, foreign file) is dropped with a warning and
    its units are recomputed. Rows are copied, not recomputed, so a resumed run gives the same bytes.
    """

    def __init__(self, directory, fingerprint: dict, names: list[str], n_units: int, every: int = 0, seconds: float = 60.0):
        self.directory = Path(directory)
        self.names = list(names)
        self.fingerprint = json.loads(json.dumps(dict(fingerprint, layer_names=self.names, n_units=int(n_units), format=CHECKPOINT_FORMAT),
                                                 sort_keys=True))
        self.n_units = int(n_units)
        self.every = int(every or 0)
        self.seconds = float(seconds) if seconds is not None else 0.0
        self.pending: list[tuple[int, list[int], dict]] = []
        self.next_part = 0
        self.last_flush = time.monotonic()

    def restore(self, result: dict, n_rows: int) -> set[int]:
        """Fill ``result`` with the rows of finished units; return their indices (discarding a foreign checkpoint)."""
        done: set[int] = set()
        names = self.names
        if self.directory.exists():
            stored = self._stored_fingerprint()
            if stored != self.fingerprint:
                differ = sorted(k for k in set(stored or {}) | set(self.fingerprint) if (stored or {}).get(k) != self.fingerprint.get(k))
                log.warning("checkpoint %s was made with other settings (%s differ); discarding it and starting afresh",
                            self.directory, ", ".join(differ) or "unreadable fingerprint")
                shutil.rmtree(self.directory)
        if not self.directory.exists():
            self.directory.mkdir(parents=True)
            write_json(self.fingerprint, self.directory / "fingerprint.json")
            log.info("checkpointing finished batches to %s", self.directory)
            return done
        for stale in self.directory.glob(".part-*"):  # a part being written when the run was killed
            stale.unlink(missing_ok=True)
        for part in sorted(self.directory.glob("part-*.npz")):
            number = part.stem.split("-", 1)[1]
            if number.isdigit():
                self.next_part = max(self.next_part, int(number) + 1)
            try:
                with np.load(part, allow_pickle=False) as data:
                    units, rows = data["units"].astype(int), data["rows"].astype(int)
                    layers = [data[f"layer{i}"] for i in range(len(names))]
                if ((units < 0).any() or (units >= self.n_units).any() or (rows < 0).any() or (rows >= n_rows).any()
                        or any(v.ndim != 2 or v.shape[0] != len(rows) or v.dtype != np.float32 for v in layers)):
                    raise ValueError("contents do not fit this extraction")
                for name, values in zip(names, layers):
                    if result[name] is not None and result[name].shape[1] != values.shape[1]:
                        raise ValueError(f"layer {name} width {values.shape[1]} != {result[name].shape[1]}")
            except Exception as error:  # unreadable or foreign part: recompute its units
                log.warning("checkpoint part %s is unusable (%s: %s); its units will be recomputed", part, type(error).__name__, error)
                part.unlink(missing_ok=True)
                continue
            for name, values in zip(names, layers):
                if result[name] is None:
                    result[name] = np.zeros((n_rows, values.shape[1]), dtype=np.float32)
                result[name][rows] = values
            done.update(int(u) for u in units)
        return done

    def _stored_fingerprint(self) -> dict | None:
        try:
            return json.loads((self.directory / "fingerprint.json").read_text())
        except (OSError, ValueError):
            return None

    def add(self, unit: int, rows: list[int], vectors: dict) -> None:
        """Record one finished unit: its stimulus rows (at least one) and {layer: (len(rows), hidden)}; flush when due."""
        self.pending.append((unit, list(rows), vectors))
        if (self.every and len(self.pending) >= self.every) or (self.seconds and time.monotonic() - self.last_flush >= self.seconds):
            self.flush()

    def flush(self) -> None:
        """Write the pending units as one part (atomically)."""
        if not self.pending:
            return
        arrays = {"units": np.array([u for u, _, _ in self.pending], dtype=np.int64),
                  "rows": np.array([r for _, rows, _ in self.pending for r in rows], dtype=np.int64)}
        for i, name in enumerate(self.names):
            arrays[f"layer{i}"] = np.concatenate([v[name] for _, _, v in self.pending]).astype(np.float32, copy=False)
        with atomic_path(self.directory / f"part-{self.next_part:06d}.npz", suffix=".npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
                handle.flush()
                os.fsync(handle.fileno())
        self.next_part += 1
        self.pending.clear()
        self.last_flush = time.monotonic()


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
    module = loaded.model
    mode = encoder_decoder_mode(spec)
    if mode == "paper":
        kwargs.update(decoder_input_ids=input_ids, decoder_attention_mask=attention_mask)  # unshifted (methods §3.3)
    elif mode == "principled":
        module = loaded.model.get_encoder()
    elif spec["kind"] == "decoder":
        # run the backbone only; the LM head (262k x 640 for Gemma) is the costliest part and unused here
        module = loaded.model.base_model
    with torch.inference_mode():
        module(**kwargs)
    return recorder.outputs


def _read(outputs, names, token_index_lists, readout):
    """One vector per stimulus and layer: last token or mean over its tokens.

    The selected rows of every layer are gathered on the model's device and copied to the host in one transfer
    per batch (a copy per stimulus and layer would synchronise a GPU hundreds of times per batch)."""
    import torch

    if not token_index_lists:
        return {name: np.zeros((0, outputs[name].shape[-1]), dtype=np.float32) for name in names}
    picked = []
    for name in names:
        hidden = outputs[name]
        if readout == "last":
            batch_index = torch.tensor([b for b, _ in token_index_lists], device=hidden.device)
            last = torch.tensor([positions[-1] for _, positions in token_index_lists], device=hidden.device)
            picked.append(hidden[batch_index, last].float())
        else:
            picked.append(torch.stack([hidden[b, positions].float().mean(0) for b, positions in token_index_lists]))
    host = torch.cat(picked, dim=1).cpu().numpy()
    vectors, start = {}, 0
    for name, values in zip(names, picked):
        vectors[name] = np.ascontiguousarray(host[:, start:start + values.shape[1]])
        start += values.shape[1]
    return vectors


def _digest(items) -> str:
    """sha256 of a JSON-serialisable sequence (token ids, spans): the exact work a checkpoint stands for."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps(item, separators=(",", ":"), default=int).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _open_checkpoint(loaded, spec, names, options, n_units: int, work_digest: str):
    """The checkpoint named by ``options['checkpoint_dir']`` (None: no checkpoint), fingerprinted with every
    setting that can change a number or the unit layout."""
    directory = options.get("checkpoint_dir")
    if not directory:
        return None
    import torch
    import transformers

    info = loaded.info
    fingerprint = dict(options.get("checkpoint_fingerprint") or {})
    fingerprint.update({
        "model": spec["name"], "kind": spec["kind"], "model_id": info.get("model_id", ""), "revision": info.get("revision", ""),
        "source": info.get("source", ""), "quantization": info.get("quantization", ""), "dtype": info.get("dtype", ""),
        "provenance": _digest([info.get("provenance", {})]), "seed": spec.get("seed"), "prepend_text": spec.get("prepend_text", ""),
        "context_mode": options.get("context_mode", ""), "readout": options.get("readout", "last"),
        "batch_size": int(options.get("batch_size", 16)), "max_context_tokens": int(options.get("max_context_tokens", 512)),
        "min_context_tokens": int(options.get("min_context_tokens", 256)), "device": str(torch.device(loaded.device).type),
        "code_version": __version__, "torch": torch.__version__, "transformers": transformers.__version__, "work": work_digest,
    })
    return ExtractionCheckpoint(directory, fingerprint, names, n_units, every=int(options.get("checkpoint_every", 0) or 0),
                                seconds=float(options.get("checkpoint_seconds", 60.0)))


def _run_units(loaded, spec, names, units, n_rows, options, what: str, work_digest: str):
    """Run ``units`` (each ``[(token ids, [(row, token positions), ...]), ...]``: one padded batch) in order,
    skipping those a matching checkpoint already holds; {layer: (n_rows, hidden) float32}."""
    import torch
    from tqdm import tqdm

    tokenizer = loaded.tokenizer
    readout = options.get("readout", "last")
    result = {name: None for name in names}
    checkpoint = _open_checkpoint(loaded, spec, names, options, len(units), work_digest)
    done = checkpoint.restore(result, n_rows) if checkpoint else set()
    n_windows = sum(len(unit) for unit in units)
    if done:
        log.info("resuming: %d of %d %s done (%d of %d batches) from %s", sum(len(units[u]) for u in done), n_windows, what,
                 len(done), len(units), checkpoint.directory)
    recorder = LayerRecorder(loaded.model, names)
    n_tokens, start = 0, time.perf_counter()
    try:
        bar = tqdm(total=n_windows, desc=f"{spec['name']}", unit=what.rstrip("s"), disable=not options.get("progress", True))
        bar.update(sum(len(units[u]) for u in done))
        for index, unit in enumerate(units):
            if index in done:
                continue
            lengths = [len(ids) for ids, _ in unit]
            width = max(lengths)
            ids = torch.full((len(unit), width), tokenizer.pad_token_id or 0, dtype=torch.long)
            mask = torch.zeros((len(unit), width), dtype=torch.long)
            picks = []
            for b, (window_ids, reads) in enumerate(unit):
                ids[b, : lengths[b]] = torch.tensor(window_ids)
                mask[b, : lengths[b]] = 1
                picks.extend((row, b, positions) for row, positions in reads)
            outputs = _forward(loaded, recorder, ids.to(loaded.device), mask.to(loaded.device), spec)
            vectors = _read(outputs, names, [(b, p) for _, b, p in picks], readout)
            rows = [row for row, _, _ in picks]
            for name in names:
                if result[name] is None:
                    result[name] = np.zeros((n_rows, vectors[name].shape[1]), dtype=np.float32)
                result[name][rows] = vectors[name]
            if checkpoint:
                checkpoint.add(index, rows, vectors)
            n_tokens += int(mask.sum())
            bar.update(len(unit))
            bar.set_postfix(tokens_per_s=f"{n_tokens / max(time.perf_counter() - start, 1e-9):.0f}")
        bar.close()
    finally:
        recorder.close()
        if checkpoint:
            try:  # keep finished work on any exit (an exception, Ctrl-C); a SIGKILL loses at most the pending units
                checkpoint.flush()
            except Exception as error:
                log.warning("could not flush checkpoint %s: %s", checkpoint.directory, error)
    log.info("%d %s, %d computed, %d tokens, %.0f tokens/s", n_windows, what, n_windows - sum(len(units[u]) for u in done), n_tokens,
             n_tokens / max(time.perf_counter() - start, 1e-9))
    return result


def _extract_windows(loaded, spec, names, windows, n_rows, options):
    """Run text windows (batched, sorted by length) and collect each stimulus's vector per layer.

    The batches (units of the checkpoint) are fixed by the tokenised lengths and ``batch_size`` alone (stable
    sort), so a resumed run rebuilds exactly the same batches and skips the finished ones."""
    tokenizer = loaded.tokenizer
    batch_size = int(options.get("batch_size", 16))
    max_tokens = int(options.get("max_context_tokens", 512))
    encoded = [tokenizer(text, return_offsets_mapping=True, truncation=False) for text, _ in windows]
    order = np.argsort([len(e["input_ids"]) for e in encoded], kind="stable")
    paper_eos = encoder_decoder_mode(spec) == "paper" and options.get("readout", "last") == "last"
    units = []
    for first in range(0, len(order), batch_size):
        batch = [int(i) for i in order[first:first + batch_size]]
        if max(len(encoded[i]["input_ids"]) for i in batch) > max_tokens and len(batch) == 1 and options.get("context_mode") != "sentence":
            log.warning("window of %d tokens exceeds max_context_tokens=%d; it is kept whole", len(encoded[batch[0]]["input_ids"]), max_tokens)
        unit = []
        for i in batch:
            reads = []
            for row, s, e in windows[i][1]:
                positions = _token_positions(encoded[i]["offset_mapping"], s, e)
                if not positions:
                    raise BrainalignError(f"stimulus row {row}: no tokens found for its text (empty after tokenisation?)")
                if paper_eos and positions[-1] < len(encoded[i]["input_ids"]) - 1:
                    positions = positions + [len(encoded[i]["input_ids"]) - 1]  # T5's </s>, which the paper read
                reads.append((row, positions))
            unit.append((list(encoded[i]["input_ids"]), reads))
        units.append(unit)
    work = _digest(units) if options.get("checkpoint_dir") else ""
    return _run_units(loaded, spec, names, units, n_rows, options, "windows", work)


def _special_tokens_around(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts before and after a text (BOS; CLS/SEP; EOS), found empirically."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start], full[start + len(plain):]
    return [], []


def _extract_story_words(loaded, spec, names, stimuli, options):
    """Per-word vectors for time-series datasets: each story's tokens in overlapping windows.

    Every window (one forward pass, batch of one) is a checkpoint unit: the windows are planned from the
    tokenised stories before any pass, in story order, and each word is read from exactly one window, so a
    resumed run skips the finished windows and gives the same bytes."""
    tokenizer = loaded.tokenizer
    max_tokens = int(options.get("max_context_tokens", 512))
    min_context = min(int(options.get("min_context_tokens", 256)), max_tokens // 2)
    prefix = tokenizer(spec.get("prepend_text", ""), add_special_tokens=False)["input_ids"] if spec.get("prepend_text") else []
    lead_ids, trail_ids = _special_tokens_around(tokenizer)
    lead, trail = len(lead_ids), len(trail_ids)
    budget = max_tokens - len(prefix) - lead - trail
    step = max(1, budget - min_context)
    units = []
    for _, group in stimuli.groupby("group", sort=False):
        text, spans = "", []
        for row, word in zip(group.index, group["text"].astype(str)):
            text += " " if text else ""
            spans.append((row, len(text), len(text) + len(word)))
            text += word
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
        word_tokens = [(row, _token_positions(offsets, s, e)) for row, s, e in spans]
        missing = [row for row, pos in word_tokens if not pos]
        if missing:
            raise BrainalignError(f"words at rows {missing[:5]} produced no tokens")
        begin = 0
        while True:
            end = min(begin + budget, len(ids))
            read_from = begin if begin == 0 else begin + min_context
            window = lead_ids + prefix + ids[begin:end] + trail_ids
            offset = lead + len(prefix) - begin
            rows = [(int(row), [p + offset for p in pos]) for row, pos in word_tokens if pos and read_from <= pos[-1] < end]
            if rows:
                units.append([(list(window), rows)])
            if end >= len(ids):
                break
            begin += step
    work = _digest(units) if options.get("checkpoint_dir") else ""
    return _run_units(loaded, spec, names, units, len(stimuli), options, "story windows", work)


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


def checkpoint_dir_for(out_path) -> Path:
    """Where :func:`extract_to_shard` keeps the checkpoint of ``out_path`` (``<out>.partial/``)."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".partial")


def _remove_stale_temporaries(out_path: Path) -> None:
    """Delete temporary shards a killed run left beside ``out_path`` (atomic_path's ``.<name>.*.h5``)."""
    if not out_path.parent.is_dir():
        return
    for stale in out_path.parent.glob(f".{out_path.name}.*.h5"):
        if stale.is_file():
            log.info("removing %s, left by a killed run", stale)
            stale.unlink(missing_ok=True)


def write_shard(out_path, names: list[str], arrays: dict, stimulus_ids: list[str], attrs: dict,
                storage_dtype: str = "float32") -> None:
    """Write ``/layers/<module>`` (one chunk per layer, so a layer reads in one pass) + ``/stimulus_ids``, atomically.

    ``attrs`` (model id, revision, dtype, context mode, ...) become file attributes, with the storage dtype, the
    layer order and the code version added.
    """
    storage = np.dtype(storage_dtype)
    with atomic_path(Path(out_path), suffix=".h5") as tmp:
        with h5py.File(tmp, "w", track_order=True) as handle:
            group = handle.create_group("layers", track_order=True)
            for name in names:
                values = arrays[name].astype(storage)
                group.create_dataset(name, data=values, chunks=values.shape, track_times=False)
            handle.create_dataset("stimulus_ids", data=np.array(stimulus_ids, dtype=h5py.string_dtype()), track_times=False)
            handle.attrs.update({**attrs, "storage_dtype": storage.name, "code_version": __version__,
                                 "layer_names": json.dumps(names)})


def extract_to_shard(spec: dict, model_dir, dataset_dir, out_path, options: dict | None = None) -> None:
    """Step of rule extract_activations: write ``/layers/<module>`` for every layer, atomically.

    Resumable: finished batches are checkpointed in ``<out_path>.partial/<dtype>/`` (one folder per dtype, so a
    run killed during the float32 retry keeps both passes' work); a re-run with the same settings continues from
    there and writes a byte-identical shard. Options: ``checkpoint`` (default true), ``checkpoint_every`` (flush
    every this many batches; 0 = by time only) and ``checkpoint_seconds`` (flush at least this often; default 60).
    The checkpoint folder is removed once the shard is in place.
    """
    from brainalign.datasets.base import load_prepared
    from brainalign.models import load_model

    options = dict(options or {})
    out_path = Path(out_path)
    partial = checkpoint_dir_for(out_path)
    _remove_stale_temporaries(out_path)
    dataset = load_prepared(dataset_dir)

    def run(loaded):
        run_options = dict(options)
        if options.get("checkpoint", True):
            run_options["checkpoint_dir"] = partial / str(loaded.info["dtype"])
            run_options["checkpoint_fingerprint"] = {"dataset": dataset.meta.get("name", ""), "n_stimuli": len(dataset.stimuli),
                                                     "stimulus_ids": _digest(dataset.stimuli["stimulus_id"].astype(str).tolist())}
        return extract_arrays(loaded, spec, dataset.stimuli, dataset.meta, run_options)

    loaded = load_model(spec, model_dir, device=options.get("device"), dtype=spec.get("dtype"))
    names, arrays = run(loaded)
    bad = _nonfinite_layers(arrays)
    if bad and loaded.info["dtype"] != "float32":
        if not spec.get("retry_float32_on_nonfinite", True):
            raise BrainalignError(f"model {spec['name']}: non-finite activations in layers {bad[:3]} ({loaded.info['dtype']}); set retry_float32_on_nonfinite: true or dtype: float32")
        log.warning("non-finite activations in %s with %s; retrying in float32", bad[:3], loaded.info["dtype"])
        loaded = load_model(spec, model_dir, device=options.get("device"), dtype="float32")
        names, arrays = run(loaded)
        bad = _nonfinite_layers(arrays)
    if bad:
        raise BrainalignError(f"model {spec['name']}: non-finite activations (NaN/inf) in layers {bad[:3]}")
    info = loaded.info
    attrs = {
        "model": spec["name"], "model_id": info["model_id"], "revision": info["revision"], "source": info["source"],
        "quantization": info["quantization"], "dtype": info["dtype"],
        "context_mode": options.get("context_mode") or context_mode_for(dataset.meta, options),
        "readout": options.get("readout", "last"), "dataset": dataset.meta.get("name", ""),
    }
    write_shard(out_path, names, arrays, dataset.stimuli["stimulus_id"].astype(str).tolist(), attrs,
                options.get("storage_dtype", "float32"))
    if partial.exists():
        shutil.rmtree(partial, ignore_errors=True)
    log.info("wrote %d layers x %d stimuli to %s", len(names), len(dataset.stimuli), out_path)
