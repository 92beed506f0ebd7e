"""Resuming a killed extraction: the on-disk checkpoint of finished work units and the clean-up of what a killed
run leaves behind.

:func:`brainalign.extraction.activations.extract_to_shard` keeps a checkpoint beside its output, ``<out>.partial/<dtype>/``
(:func:`checkpoint_dir_for`; one folder per dtype, so a run killed during the float32 retry keeps both passes'
work). Work is cut into *units* (one batch of windows in sentence/group mode and for non-causal models' per-word
windows, one story window for decoders in window mode) in a fixed, deterministic order; finished units are
flushed every ``checkpoint_every`` units and/or ``checkpoint_seconds`` seconds. A re-run with the same fingerprint
(model, its provenance and its prepared folder's files (size and time: :mod:`brainalign.fingerprint`), dtype, matmul
dtype, T5 mode, dataset content, tokenisation, batching, context mode, readout, layers, device, code and library
versions: :func:`open_checkpoint`) skips the finished units and computes the rest with exactly the same batch
composition, so its shard is byte-identical to an uninterrupted run; a checkpoint from other settings is discarded
with a warning. The shard itself is still written atomically and the checkpoint is removed once it is in place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import transformers

from brainalign import __version__
from brainalign.extraction.context import encoder_decoder_mode
from brainalign.io import atomic_path, write_json
from brainalign.options import ExtractionOptions

log = logging.getLogger("brainalign.extraction.checkpoint")

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


def digest(items) -> str:
    """sha256 of a JSON-serialisable sequence (token ids, spans): the exact work a checkpoint stands for."""
    hasher = hashlib.sha256()
    for item in items:
        hasher.update(json.dumps(item, separators=(",", ":"), default=int).encode())
        hasher.update(b"\n")
    return hasher.hexdigest()


def open_checkpoint(directory, loaded, spec, names, units, options: ExtractionOptions, *, context_mode: str, readout: str,
                    fingerprint: dict | None = None) -> ExtractionCheckpoint | None:
    """The checkpoint in ``directory`` (None: no checkpoint) for these work ``units``, fingerprinted with
    ``fingerprint`` (what identifies the data) and every setting that can change a number or the unit layout (the
    units' own token ids and read positions included, as their :func:`digest`)."""
    if not directory:
        return None
    info = loaded.info
    fingerprint = dict(fingerprint or {})
    fingerprint.update({
        "model": spec["name"], "kind": spec["kind"], "model_id": info.get("model_id", ""), "revision": info.get("revision", ""),
        "source": info.get("source", ""), "quantization": info.get("quantization", ""), "dtype": info.get("dtype", ""),
        "matmul_dtype": info.get("matmul_dtype", info.get("dtype", "")),
        "provenance": digest([info.get("provenance", {})]), "seed": spec.get("seed"), "prepend_text": spec.get("prepend_text", ""),
        "context_mode": context_mode, "readout": readout, "t5_mode": encoder_decoder_mode(spec) or "",
        "batch_size": options.batch_size, "max_context_tokens": options.max_context_tokens,
        "min_context_tokens": options.min_context_tokens, "device": str(torch.device(loaded.device).type),
        "code_version": __version__, "torch": torch.__version__, "transformers": transformers.__version__, "work": digest(units),
    })
    return ExtractionCheckpoint(directory, fingerprint, names, len(units), every=options.checkpoint_every,
                                seconds=options.checkpoint_seconds)


def compute_label(info: dict) -> str:
    """A loaded model's arithmetic as a folder name: its dtype, and its matrix products' where they differ
    (``float32-bfloat16-matmuls``), so checkpoints of different arithmetic never mix."""
    dtype, matmul = str(info["dtype"]), str(info.get("matmul_dtype", info["dtype"]))
    return dtype if matmul == dtype else f"{dtype}-{matmul}-matmuls"


def checkpoint_dir_for(out_path) -> Path:
    """Where :func:`brainalign.extraction.activations.extract_to_shard` keeps the checkpoint of ``out_path`` (``<out>.partial/``)."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".partial")


def remove_stale_temporaries(out_path: Path) -> None:
    """Delete temporary shards a killed run left beside ``out_path`` (atomic_path's ``.<name>.*.h5``)."""
    if not out_path.parent.is_dir():
        return
    for stale in out_path.parent.glob(f".{out_path.name}.*.h5"):
        if stale.is_file():
            log.info("removing %s, left by a killed run", stale)
            stale.unlink(missing_ok=True)
