"""Activation extraction: every layer of a model for every stimulus, in one pass, into one HDF5 shard.

A forward pass runs one *unit* (a padded batch of token windows, :mod:`brainalign.extraction.context`) with hooks on
the layers read (:mod:`brainalign.extraction.layers`); a stimulus's vector is its last token (default), the mean or
(story words, ``story_readout``, by default) the sum of its tokens, found by character offsets, so special tokens
and prepended text never count as the stimulus. Decoders run their backbone only (the LM head is unused here);
T5 runs its encoder alone, or in ``t5_mode: paper`` encoder and unshifted decoder on the same tokens.

Resuming a killed run: units come in a fixed, deterministic order and finished units are checkpointed beside the
output, so a re-run writes a byte-identical shard (:mod:`brainalign.extraction.checkpoint`). Word/token
alignment, special-token detection and window planning live in :mod:`brainalign.extraction.alignment`; the shard
format in :mod:`brainalign.extraction.shards`.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from brainalign.datasets.base import load_prepared
from brainalign.errors import BrainalignError
from brainalign.extraction.checkpoint import (
    ExtractionCheckpoint,
    checkpoint_dir_for,
    compute_label,
    digest,
    open_checkpoint,
    remove_stale_temporaries,
)
from brainalign.extraction.context import (
    context_mode_for,
    encoder_decoder_mode,
    readout_for,
    reads_paper_eos,
    story_units,
    text_windows,
    window_units,
)
from brainalign.extraction.layers import LayerRecorder, resolve_layers
from brainalign.extraction.shards import write_shard
from brainalign.fingerprint import folder_identity
from brainalign.models.session import model_session
from brainalign.options import ExtractionOptions
from brainalign.progress import progress_bar

log = logging.getLogger("brainalign.extraction.activations")


def _forward(loaded, recorder, input_ids, attention_mask, spec):
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
    module = loaded.model
    mode = encoder_decoder_mode(spec)
    if mode == "paper":
        kwargs.update(decoder_input_ids=input_ids, decoder_attention_mask=attention_mask)  # unshifted (methods §3.3)
    elif mode == "principled":
        module = loaded.model.get_encoder()
    elif spec["kind"] == "decoder":
        # run the backbone only: the LM head (262k x 640 for Gemma) is the costliest part and unused here
        module = loaded.model.base_model
    with torch.inference_mode():
        module(**kwargs)
    return recorder.outputs


def _read(outputs, names, token_index_lists, readout):
    """One vector per stimulus and layer: last token, sum or mean over its tokens.

    The selected rows of every layer are gathered on the model's device and copied to the host in one transfer
    per batch (a copy per stimulus and layer would synchronise a GPU hundreds of times per batch)."""
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


def run_units(loaded, spec, names, units, n_rows, readout: str, what: str, *, checkpoint: ExtractionCheckpoint | None = None,
              progress: bool = True):
    """Run ``units`` (each ``[(token ids, [(row, token positions), ...]), ...]``: one padded batch) in order,
    skipping those ``checkpoint`` already holds and recording the others in it; {layer: (n_rows, hidden) float32}.
    ``what`` names the units' windows in the log and the progress bar."""
    tokenizer = loaded.tokenizer
    result = {name: None for name in names}
    done = checkpoint.restore(result, n_rows) if checkpoint else set()
    n_windows = sum(len(unit) for unit in units)
    if done:
        log.info("resuming: %d of %d %s done (%d of %d batches) from %s", sum(len(units[u]) for u in done), n_windows, what,
                 len(done), len(units), checkpoint.directory)
    recorder = LayerRecorder(loaded.model, names)
    n_tokens, start = 0, time.perf_counter()
    try:
        bar = progress_bar(total=n_windows, desc=f"{spec['name']}", unit=what.rstrip("s"), disable=not progress)
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


def extract_arrays(loaded, spec: dict, stimuli, meta: dict, options: ExtractionOptions | dict | None = None, *,
                   context_mode: str | None = None, progress: bool = True, checkpoint_dir=None,
                   checkpoint_fingerprint: dict | None = None) -> tuple[list[str], dict]:
    """Layer name list and {layer: (n_stimuli, hidden) float32} for a prepared dataset's stimuli.

    ``context_mode`` overrides the dataset's (:func:`~brainalign.extraction.context.context_mode_for`);
    ``checkpoint_dir`` (None: no checkpoint) keeps finished units there, fingerprinted with the extraction's
    settings and ``checkpoint_fingerprint`` (what identifies the data)."""
    options = ExtractionOptions.from_dict(options)
    names = resolve_layers(loaded.model, spec)
    stimuli = stimuli.reset_index(drop=True)
    mode = context_mode or context_mode_for(meta)
    readout = readout_for(mode, options, spec)
    paper_eos = reads_paper_eos(spec, readout)
    if mode == "window":
        units, what = story_units(loaded.tokenizer, stimuli, spec, options, paper_eos)
    else:
        windows = text_windows(stimuli, mode, spec["kind"] == "decoder", spec.get("prepend_text", ""))
        units, what = window_units(loaded.tokenizer, windows, options.batch_size, options.max_context_tokens, mode, paper_eos), "windows"
    checkpoint = open_checkpoint(checkpoint_dir, loaded, spec, names, units, options, context_mode=mode, readout=readout,
                                 fingerprint=checkpoint_fingerprint)
    return names, run_units(loaded, spec, names, units, len(stimuli), readout, what, checkpoint=checkpoint, progress=progress)


def _nonfinite_layers(arrays: dict) -> list[str]:
    return [name for name, values in arrays.items() if not np.isfinite(values).all()]


def extract_to_shard(spec: dict, model, dataset_dir, out_path, options: ExtractionOptions | dict | None = None, *,
                     keep_checkpoint: bool = False, context_mode: str | None = None, progress: bool = True) -> None:
    """Write ``/layers/<module>`` for every layer of ``model`` (a prepared folder, or the job's
    :class:`~brainalign.models.session.ModelSession`) over one dataset's stimuli, atomically.

    Resumable: finished batches are checkpointed in ``<out_path>.partial/<dtype>/`` (one folder per dtype, so a
    run killed during the float32 retry keeps both passes' work); a re-run with the same settings continues from
    there and writes a byte-identical shard. Options: ``checkpoint`` (on or off), ``checkpoint_every`` (flush
    every this many batches; 0 = by time only) and ``checkpoint_seconds`` (flush at least this often).
    The checkpoint folder is removed once the shard is in place, unless ``keep_checkpoint``: a job that writes
    several shards keeps them all until its last one is written (:func:`brainalign.extraction.model_job.run_model_job`),
    because Snakemake deletes a failed job's outputs and the checkpoints are what a re-run resumes from.
    """
    options = ExtractionOptions.from_dict(options)
    out_path = Path(out_path)
    partial = checkpoint_dir_for(out_path)
    remove_stale_temporaries(out_path)
    dataset = load_prepared(dataset_dir)
    session = model_session(spec, model, options.device, options.matmul_dtype)
    mode = context_mode or context_mode_for(dataset.meta)

    def run(loaded):
        checkpoint_dir, fingerprint = None, None
        if options.checkpoint:
            checkpoint_dir = partial / compute_label(loaded.info)
            fingerprint = {"dataset": dataset.meta.get("name", ""), "n_stimuli": len(dataset.stimuli),
                           "stimulus_ids": digest(dataset.stimuli["stimulus_id"].astype(str).tolist()),
                           "model_folder": folder_identity(session.model_dir)}  # its files rewritten: other weights
        return extract_arrays(loaded, spec, dataset.stimuli, dataset.meta, options, context_mode=mode, progress=progress,
                              checkpoint_dir=checkpoint_dir, checkpoint_fingerprint=fingerprint)

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
        "context_mode": mode, "readout": readout_for(mode, options, spec), "dataset": dataset.meta.get("name", ""),
    }
    write_shard(out_path, names, arrays, dataset.stimuli["stimulus_id"].astype(str).tolist(), attrs, options.storage_dtype)
    if partial.exists() and not keep_checkpoint:
        shutil.rmtree(partial, ignore_errors=True)
    log.info("wrote %d layers x %d stimuli to %s", len(names), len(dataset.stimuli), out_path)
