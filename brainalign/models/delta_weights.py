"""Delta weights: a model published as differences to another model's weights, summed into a prepared folder.

A model entry with ``delta_of: <another model of the config>`` (a source that fetches a whole folder,
:class:`~brainalign.models.sources.FolderSource`) holds deltas to that model's weights: stable-vicuna-13b is
published as ``CarperAI/stable-vicuna-13b-delta`` over LLaMA-13B. :func:`apply_delta` writes their sum, tensor by
tensor (FastChat's ``apply_delta`` without loading either model whole), with the delta's config and tokenizer.

This module imports neither torch nor safetensors at import time.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from brainalign.errors import BrainalignError
from brainalign.io import write_json
from brainalign.models.registry import TOKENIZER_FILES

log = logging.getLogger(__name__)

DELTA_COPIED_FILES = ("config.json", "generation_config.json", *TOKENIZER_FILES)
DELTA_SHARD_BYTES = 2 * 1024**3  # the summed weights are written in safetensors files of about this size


class _TensorFiles:
    """The tensors of a transformers folder, read one at a time: safetensors (preferred) or PyTorch ``.bin``
    files, sharded (with their index) or not. ``.bin`` files are memory-mapped where their format allows."""

    def __init__(self, folder: Path, what: str):
        self.folder = Path(folder)
        self.files: dict[str, Path] = {}
        self._open: dict[Path, object] = {}
        for index, single in (("model.safetensors.index.json", "model.safetensors"), ("pytorch_model.bin.index.json", "pytorch_model.bin")):
            if (self.folder / index).exists():
                weight_map = json.loads((self.folder / index).read_text())["weight_map"]
                self.files = {name: self.folder / file for name, file in weight_map.items()}
                return
            if (self.folder / single).exists():
                self.files = {name: self.folder / single for name in self._handle(self.folder / single).keys()}
                return
        raise BrainalignError(f"{what}: no weights (model.safetensors or pytorch_model.bin, sharded or not) in {self.folder}")

    def _handle(self, path: Path):
        if path not in self._open:
            if path.suffix == ".safetensors":
                from safetensors import safe_open

                self._open[path] = safe_open(str(path), framework="pt")
            else:
                import torch

                try:
                    self._open[path] = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                except RuntimeError:  # a legacy (non-zip) file cannot be memory-mapped: read it whole
                    self._open[path] = torch.load(path, map_location="cpu", weights_only=True)
        return self._open[path]

    def get(self, name: str):
        handle = self._handle(self.files[name])
        return handle.get_tensor(name) if self.files[name].suffix == ".safetensors" else handle[name]

    def close(self) -> None:
        self._open.clear()


def _vocab_size(folder: Path) -> int | None:
    config = json.loads((Path(folder) / "config.json").read_text()) if (Path(folder) / "config.json").exists() else {}
    return config.get("vocab_size") or (config.get("text_config") or {}).get("vocab_size")


def _delta_sum(spec: dict, name: str, base, delta, base_vocab: int | None, delta_vocab: int | None):
    """base + delta for one parameter, computed in float32 and stored in the wider of the two dtypes. A delta
    vocabulary larger than the base's (stable-vicuna adds [PAD] to LLaMA) is allowed for vocabulary-sized
    matrices (embeddings, lm_head): the base contributes zero to the extra rows, as CarperAI's apply_delta (which
    resizes the base and zeroes the new rows) does. Any other shape difference is refused."""
    import torch

    dtype = torch.promote_types(base.dtype, delta.dtype)
    if base.shape == delta.shape:
        return (base.float() + delta.float()).to(dtype)
    extra_rows = (base.ndim == delta.ndim >= 1 and base.shape[1:] == delta.shape[1:] and delta.shape[0] > base.shape[0]
                  and base.shape[0] == base_vocab and delta.shape[0] == delta_vocab)
    if not extra_rows:
        raise BrainalignError(
            f"model {spec['name']}: delta parameter {name} has shape {tuple(delta.shape)}, the base {spec['delta_of']}'s "
            f"{tuple(base.shape)}; only a larger vocabulary (extra rows of embeddings/lm_head) can differ"
        )
    out = delta.float().clone()
    out[: base.shape[0]] += base.float()
    return out.to(dtype)


def apply_delta(spec: dict, base_dir: Path, delta_dir: Path, out_dir: Path, shard_bytes: int = DELTA_SHARD_BYTES) -> dict:
    """Write into ``out_dir`` the weights ``base + delta`` (each parameter of the delta folder added to the base
    folder's parameter of the same name), as safetensors files of about ``shard_bytes`` with their index, plus
    the delta folder's config and tokenizer. One tensor at a time: memory stays near one output file.

    Both folders must hold the same parameters (rotary ``inv_freq`` buffers, which transformers recomputes, are
    dropped); a parameter in only one of them, or of another shape than a larger vocabulary explains, is an error
    naming it. Returns what provenance.json records about the sum."""
    from safetensors.torch import save_file

    base_dir, delta_dir, out_dir = Path(base_dir), Path(delta_dir), Path(out_dir)
    base = _TensorFiles(base_dir, f"model {spec['name']}: base {spec['delta_of']}")
    delta = _TensorFiles(delta_dir, f"model {spec['name']}: delta")
    skipped = sorted(n for n in set(base.files) | set(delta.files) if n.endswith(".inv_freq"))
    names = [n for n in delta.files if n not in skipped]
    only = sorted(set(names) ^ {n for n in base.files if n not in skipped})
    if only:
        where = "the delta" if only[0] in delta.files else f"the base {spec['delta_of']}"
        raise BrainalignError(f"model {spec['name']}: parameter {only[0]} is only in {where} ({len(only)} parameter(s) differ)")
    base_vocab, delta_vocab = _vocab_size(base_dir), _vocab_size(delta_dir)
    names.sort(key=lambda n: (str(delta.files[n]), n))  # read each delta file once, in order
    shards: list[dict] = [{}]
    sizes = [0]
    extra_rows = {}
    try:
        for name in names:
            b, d = base.get(name), delta.get(name)
            if b.shape != d.shape:
                extra_rows[name] = int(d.shape[0] - b.shape[0])
            value = _delta_sum(spec, name, b, d, base_vocab, delta_vocab).contiguous()
            size = value.numel() * value.element_size()
            if shards[-1] and sizes[-1] + size > shard_bytes:
                _flush_shard(shards, out_dir, save_file)
                shards.append({})
                sizes.append(0)
            shards[-1][name] = value
            sizes[-1] += size
        _flush_shard(shards, out_dir, save_file)
    finally:
        base.close()
        delta.close()
    n_files = len(shards)
    weight_map = {}
    for i in range(n_files):
        file = "model.safetensors" if n_files == 1 else f"model-{i + 1:05d}-of-{n_files:05d}.safetensors"
        os.replace(out_dir / f".shard-{i}.safetensors", out_dir / file)
        weight_map.update({name: file for name in shards[i]})
    if n_files > 1:
        write_json({"metadata": {"total_size": int(sum(sizes))}, "weight_map": dict(sorted(weight_map.items()))},
                   out_dir / "model.safetensors.index.json")
    for file in DELTA_COPIED_FILES:
        if (delta_dir / file).exists():
            shutil.copyfile(delta_dir / file, out_dir / file)
    log.info("model %s: added %d delta parameters to %s (%d files)", spec["name"], len(names), spec["delta_of"], n_files)
    return {"delta_parameters": len(names), "delta_extra_vocabulary_rows": extra_rows, "delta_dropped_buffers": skipped}


def _flush_shard(shards: list[dict], out_dir: Path, save_file) -> None:
    """Write the newest shard under a temporary name and keep only its names (the tensors are released)."""
    index = len(shards) - 1
    save_file(shards[index], str(out_dir / f".shard-{index}.safetensors"), metadata={"format": "pt"})
    shards[index] = dict.fromkeys(shards[index])

