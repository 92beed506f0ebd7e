"""Activation extraction: every layer of a model for every stimulus, in one pass, into one HDF5 shard.

Layers are read with forward hooks on named modules (``transformer.h.11``, ``model.layers.29``,
``encoder.block.7``, or any module a config names), so anything inside the model can be read, not only the
hidden states it returns. Each forward pass is a *window* of text plus the character spans of the stimuli to
read from it; a stimulus's vector is its last token (default), the mean or (story words, ``story_readout``, by
default) the sum of its tokens, found by character offsets, so special tokens and prepended text never count as
the stimulus.

Context modes, chosen from the dataset (``meta.json``) unless overridden:
  * ``sentence``: each text alone (Tuckute 2024);
  * ``group``: each text after the preceding texts of its group (Pereira passages). For causal models one pass
    over the whole group reads every sentence at its final token, which equals re-running each prefix (tested);
    bidirectional encoders would see the future, so they run one pass per prefix;
  * ``window`` (time series, per word): for causal decoders the story's tokens in overlapping windows of
    ``max_context_tokens``, each word read from a window where it has at least ``min_context_tokens`` of
    preceding context (the first window's words have what precedes them); a later token never changes an earlier
    one's state, so this equals a pass per word. Encoders and encoder-decoders would see the words that follow
    inside such a window, so each word gets its own input that ends with it: the story up to the word,
    left-truncated to the token budget, then the tokenizer's trailing specials (T5's ``</s>``, which paper mode
    reads). Brain-Score likewise fed every stimulus the text up to it, and nothing after.

Resuming a killed run: work is cut into *units* (one batch of windows in sentence/group mode and for the per-word
windows of non-causal models, one story window for decoders in window mode) in a fixed, deterministic order and
finished units are checkpointed beside the output, so a re-run writes a byte-identical shard
(:mod:`brainalign.checkpoint`). Word/token alignment, special-token detection and
window planning live in :mod:`brainalign.alignment`; the shard format in :mod:`brainalign.shards`.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np

from brainalign.alignment import plan_windows, prepend_ids, special_tokens_around, tokens_overlapping, words_to_text
from brainalign.checkpoint import checkpoint_dir_for, compute_label, digest, open_checkpoint, remove_stale_temporaries
from brainalign.errors import BrainalignError
from brainalign.shards import write_shard

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


def with_layer_module(model, names: list[str], spec: dict) -> list[str]:
    """``layers: blocks`` with the model's ``layer_module`` (e.g. ``post_attention_layernorm``, what the paper read
    for LLaMA): that submodule of every block instead of the block; the embedding layer (not a block) stays."""
    module = spec.get("layer_module")
    if not module:
        return names
    modules = dict(model.named_modules())
    embedding, blocks = names[0], names[1:]
    for block in blocks:
        if f"{block}.{module}" not in modules:
            raise BrainalignError(f"model {spec['name']}: layer_module {module!r} is not a submodule of block {block} "
                                  f"({type(model).__name__}); its submodules: {', '.join(n for n, _ in modules[block].named_children())}")
    return [embedding] + [f"{block}.{module}" for block in blocks]


def resolve_layers(model, spec: dict) -> list[str]:
    layers = spec.get("layers", "blocks")
    names = with_layer_module(model, block_layer_names(model), spec) if layers == "blocks" else list(layers)
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


def _windows_for(stimuli, context: str, causal: bool, prepend: str):
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
        elif readout == "sum":
            picked.append(torch.stack([hidden[b, positions].float().sum(0) for b, positions in token_index_lists]))
        else:
            picked.append(torch.stack([hidden[b, positions].float().mean(0) for b, positions in token_index_lists]))
    host = torch.cat(picked, dim=1).cpu().numpy()
    vectors, start = {}, 0
    for name, values in zip(names, picked):
        vectors[name] = np.ascontiguousarray(host[:, start:start + values.shape[1]])
        start += values.shape[1]
    return vectors


def _run_units(loaded, spec, names, units, n_rows, options, what: str):
    """Run ``units`` (each ``[(token ids, [(row, token positions), ...]), ...]``: one padded batch) in order,
    skipping those a matching checkpoint already holds; {layer: (n_rows, hidden) float32}."""
    import torch

    from brainalign.progress import progress_bar

    tokenizer = loaded.tokenizer
    readout = options.get("readout", "last")
    result = {name: None for name in names}
    checkpoint = open_checkpoint(loaded, spec, names, options, units)
    done = checkpoint.restore(result, n_rows) if checkpoint else set()
    n_windows = sum(len(unit) for unit in units)
    if done:
        log.info("resuming: %d of %d %s done (%d of %d batches) from %s", sum(len(units[u]) for u in done), n_windows, what,
                 len(done), len(units), checkpoint.directory)
    recorder = LayerRecorder(loaded.model, names)
    n_tokens, start = 0, time.perf_counter()
    try:
        bar = progress_bar(total=n_windows, desc=f"{spec['name']}", unit=what.rstrip("s"), disable=not options.get("progress", True))
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
    return _run_units(loaded, spec, names, units, n_rows, options, "windows")


def _extract_story_words(loaded, spec, names, stimuli, options):
    """Per-word vectors for time-series datasets.

    Causal decoders: each story's tokens in overlapping windows. Every window (one forward pass, batch of one) is
    a checkpoint unit: the windows are planned from the tokenised stories before any pass, in story order, and
    each word is read from exactly one window, so a resumed run skips the finished windows and gives the same
    bytes. Any other model (encoder, encoder-decoder) would see the words after the one it is read at inside
    such a window: it reads every word from its own input that ends with that word (:func:`_left_context_units`)."""
    tokenizer = loaded.tokenizer
    max_tokens = int(options.get("max_context_tokens", 512))
    min_context = min(int(options.get("min_context_tokens", 256)), max_tokens // 2)
    prefix = prepend_ids(tokenizer, spec.get("prepend_text"))
    lead_ids, trail_ids = special_tokens_around(tokenizer)
    lead, trail = len(lead_ids), len(trail_ids)
    budget = max_tokens - len(prefix) - lead - trail
    if spec["kind"] != "decoder":
        units = _left_context_units(tokenizer, stimuli, lead_ids + prefix, trail_ids, budget, int(options.get("batch_size", 16)),
                                    encoder_decoder_mode(spec) == "paper" and options.get("readout", "last") == "last")
        return _run_units(loaded, spec, names, units, len(stimuli), options, "word windows")
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
            window = lead_ids + prefix + ids[begin:end] + trail_ids
            offset = lead + len(prefix) - begin
            rows = [(int(row), [p + offset for p in pos]) for row, pos in word_tokens if pos and read_from <= pos[-1] < end]
            if rows:
                units.append([(list(window), rows)])
    return _run_units(loaded, spec, names, units, len(stimuli), options, "story windows")


def _left_context_units(tokenizer, stimuli, head_ids, trail_ids, budget, batch_size, paper_eos):
    """Checkpoint units (batches of ``batch_size`` windows, in story order) for a non-causal model: one window per
    word, the story's tokens up to and including that word's last token, left-truncated to ``budget`` tokens,
    between ``head_ids`` (leading specials + prepended text) and ``trail_ids`` (trailing specials, e.g. [SEP] or
    T5's ``</s>``, which thus come right after the word). The word is read at its own tokens, or, in T5 paper
    mode (``paper_eos``), at the ``</s>`` that follows it, as the paper read every stimulus.

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


def context_mode_for(meta: dict, options: dict) -> str:
    mode = options.get("context_mode")
    if mode:
        return mode
    if meta["kind"] == "timeseries":
        return "window"
    return "group" if meta.get("context") == "group" else "sentence"


def readout_for(meta: dict, options: dict, spec: dict | None = None) -> str:
    """How a stimulus's tokens become its vector: ``story_readout`` for the words of a time series (context mode
    ``window``), ``readout`` elsewhere and for T5 in ``t5_mode: paper`` (which reads the ``</s>`` after each word,
    as the paper did).

    Why ``sum`` for story words: every token that falls in a scan should drive that scan's features (LITcoder
    2025). A word's tokens share the word's time (the TextGrid times words, not tokens), and the Lanczos step
    treats each event as an impulse at its time, so the sum of a word's token vectors is exactly every token an
    impulse at the word's time; ``last`` (the earlier behaviour, and what the paper's Wehbe 2014 and Blank 2014
    pipelines read: config/paper.yaml keeps it) drops all but the word's final token, ``mean`` divides by the
    token count (a long word weighs as much as a short one)."""
    if context_mode_for(meta, options) == "window" and not (spec and encoder_decoder_mode(spec) == "paper"):
        return options.get("story_readout", "sum")
    return options.get("readout", "last")


def extract_arrays(loaded, spec: dict, stimuli, meta: dict, options: dict | None = None) -> tuple[list[str], dict]:
    """Layer name list and {layer: (n_stimuli, hidden) float32} for a prepared dataset's stimuli."""
    options = dict(options or {})
    names = resolve_layers(loaded.model, spec)
    stimuli = stimuli.reset_index(drop=True)
    mode = context_mode_for(meta, options)
    options["readout"] = readout_for(meta, options, spec)
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


def extract_to_shard(spec: dict, model, dataset_dir, out_path, options: dict | None = None, keep_checkpoint: bool = False) -> None:
    """Write ``/layers/<module>`` for every layer of ``model`` (a prepared folder, or the job's
    :class:`~brainalign.models.ModelSession`) over one dataset's stimuli, atomically.

    Resumable: finished batches are checkpointed in ``<out_path>.partial/<dtype>/`` (one folder per dtype, so a
    run killed during the float32 retry keeps both passes' work); a re-run with the same settings continues from
    there and writes a byte-identical shard. Options: ``checkpoint`` (default true), ``checkpoint_every`` (flush
    every this many batches; 0 = by time only) and ``checkpoint_seconds`` (flush at least this often; default 60).
    The checkpoint folder is removed once the shard is in place, unless ``keep_checkpoint``: a job that writes
    several shards keeps them all until its last one is written (:func:`brainalign.model_job.run_model_job`),
    because Snakemake deletes a failed job's outputs and the checkpoints are what a re-run resumes from.
    """
    from brainalign.datasets.base import load_prepared
    from brainalign.models import model_session

    options = dict(options or {})
    out_path = Path(out_path)
    partial = checkpoint_dir_for(out_path)
    remove_stale_temporaries(out_path)
    dataset = load_prepared(dataset_dir)
    session = model_session(spec, model, options.get("device"), options.get("matmul_dtype", "float32"))

    def run(loaded):
        run_options = dict(options)
        if options.get("checkpoint", True):
            run_options["checkpoint_dir"] = partial / compute_label(loaded.info)
            run_options["checkpoint_fingerprint"] = {"dataset": dataset.meta.get("name", ""), "n_stimuli": len(dataset.stimuli),
                                                     "stimulus_ids": digest(dataset.stimuli["stimulus_id"].astype(str).tolist())}
        return extract_arrays(loaded, spec, dataset.stimuli, dataset.meta, run_options)

    loaded = session.get()
    names, arrays = run(loaded)
    bad = _nonfinite_layers(arrays)
    if bad and loaded.info["dtype"] != "float32":
        if not spec.get("retry_float32_on_nonfinite", True):
            raise BrainalignError(f"model {spec['name']}: non-finite activations in layers {bad[:3]} ({loaded.info['dtype']}); "
                                  "set retry_float32_on_nonfinite: true or dtype: float32")
        log.warning("non-finite activations in %s with %s; retrying in float32", bad[:3], loaded.info["dtype"])
        del loaded, arrays  # the half-precision copy must be gone before the float32 one loads (memory: one model at a time)
        loaded = session.get("float32")
        names, arrays = run(loaded)
        bad = _nonfinite_layers(arrays)
    if bad:
        raise BrainalignError(f"model {spec['name']}: non-finite activations (NaN/inf) in layers {bad[:3]}")
    info = loaded.info
    attrs = {
        "model": spec["name"], "model_id": info["model_id"], "revision": info["revision"], "source": info["source"],
        "quantization": info["quantization"], "dtype": info["dtype"], "matmul_dtype": info.get("matmul_dtype", info["dtype"]),
        "context_mode": options.get("context_mode") or context_mode_for(dataset.meta, options),
        "readout": readout_for(dataset.meta, options, spec), "dataset": dataset.meta.get("name", ""),
    }
    write_shard(out_path, names, arrays, dataset.stimuli["stimulus_id"].astype(str).tolist(), attrs,
                options.get("storage_dtype", "float32"))
    if partial.exists() and not keep_checkpoint:
        shutil.rmtree(partial, ignore_errors=True)
    log.info("wrote %d layers x %d stimuli to %s", len(names), len(dataset.stimuli), out_path)
