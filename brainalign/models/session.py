"""Preparing and loading a model: the prepared folder made once, the model loaded from it, and the session that
keeps one loaded model for every dataset a job reads.

The source of a model entry (:mod:`brainalign.models.registry`; the built-in ones are registered by
:mod:`brainalign.models.sources`, imported here) decides how its folder is prepared and how its weights load;
everything else is the same for every source.

This module imports neither torch nor transformers at import time; they are imported inside the functions that
load weights.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import brainalign.models.sources  # noqa: F401  (registers the built-in sources)
from brainalign import __version__
from brainalign.errors import BrainalignError
from brainalign.io import atomic_path, write_json
from brainalign.models.registry import PROVENANCE_FILE, get_source, model_class, model_id
from brainalign.resources import MATMUL_DTYPES, products_dtype
from brainalign.schema import model_entry

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    device: str
    info: dict = field(default_factory=dict)


def check_model_available(spec: dict) -> None:
    """Fail before any job if a model's weights cannot be found: one line naming the model and the fix."""
    get_source(spec["source"]).check_available(spec)


def prepare_model(spec: dict, out_dir, base_dir=None) -> None:
    """Make ``out_dir`` a local transformers folder (+ provenance.json) for this model, atomically."""
    out_dir = Path(out_dir)
    source = get_source(spec["source"])
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        provenance = {"name": spec["name"], "source": spec["source"], "kind": spec["kind"], "dtype": model_entry(spec)["dtype"],
                      "code_version": __version__, "quantization": spec.get("quantization", "")}
        provenance.update(source.prepare(spec, tmp, base_dir))
        write_json(provenance, tmp / PROVENANCE_FILE)
    log.info("prepared model %s (%s) in %s", spec["name"], spec["source"], out_dir)


class ModelSession:
    """One model kept in memory for everything a job reads with it (rule ``run_model``: every brain dataset's
    activations and every reading dataset's surprisal), so the weights load once per job, not once per dataset.

    :meth:`get` returns the model in the requested dtype (the config's by default). A different dtype (the float32
    retry of a half-precision model with non-finite activations) replaces the loaded copy: the old one is released
    first, so a job never holds two copies (its memory request counts one, ``brainalign.resources``). The caller
    must drop its own reference to the old copy before asking for the new one.
    """

    def __init__(self, spec: dict, model_dir, device: str | None = None, matmul_dtype: str = "float32"):
        self.spec, self.model_dir, self.device, self.matmul_dtype = model_entry(spec), Path(model_dir), device, matmul_dtype
        self._loaded: LoadedModel | None = None
        self.n_loads = 0

    def get(self, dtype: str | None = None) -> LoadedModel:
        dtype = dtype or self.spec["dtype"]
        if self._loaded is not None and self._loaded.info["dtype"] == dtype:
            return self._loaded
        self.release()
        self._loaded = load_model(self.spec, self.model_dir, device=self.device, dtype=dtype, matmul_dtype=self.matmul_dtype)
        self.n_loads += 1
        return self._loaded

    def release(self) -> None:
        """Drop the loaded copy and return its memory (host and GPU) before anything else loads."""
        if self._loaded is not None:
            device, self._loaded = self._loaded.device, None
            release_memory(device)


def model_session(spec: dict, model, device: str | None = None, matmul_dtype: str = "float32") -> ModelSession:
    """``model`` as a session: a prepared model folder is opened here; a session (shared by a job) passes through."""
    return model if isinstance(model, ModelSession) else ModelSession(spec, model, device, matmul_dtype)


def context_limit(model) -> int | None:
    """How many positions a model reads in one pass: the size of its position table (learned or rotary:
    ``max_position_embeddings``, GPT-2's ``n_positions``), or None where there is none (T5's relative positions)."""
    config = getattr(model, "config", None)
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def release_memory(device: str) -> None:
    """Collect what was just dropped and return the GPU's cached blocks, so the next model has the memory."""
    import gc

    gc.collect()
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def default_device(requested: str | None = None) -> str:
    import torch

    if requested and requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(spec: dict, model_dir, device: str | None = None, dtype: str | None = None,
               matmul_dtype: str = "float32") -> LoadedModel:
    """Load a prepared model folder (weights re-drawn from ``seed`` for untrained controls), in eval mode.

    ``matmul_dtype: bfloat16`` makes a float32 model's matrix products bfloat16 (:mod:`brainalign.models.precision`); a
    model whose weights are already half precision (``dtype``) multiplies in that precision regardless."""
    import torch
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise BrainalignError(f"model {spec['name']}: no transformers folder at {model_dir} (run the prepare_model rule)")
    if matmul_dtype not in MATMUL_DTYPES:
        raise BrainalignError(f"extraction.matmul_dtype: unknown value {matmul_dtype!r} (expected one of {', '.join(MATMUL_DTYPES)})")
    device = default_device(device)
    dtype_name = dtype or model_entry(spec)["dtype"]
    torch_dtype = getattr(torch, dtype_name)
    model, placed = get_source(spec["source"]).load_weights(spec, model_class(spec["kind"]), model_dir, torch_dtype, device)
    if not placed:
        model = model.to(device)
    matmul_dtype = products_dtype(dtype_name, matmul_dtype)
    if matmul_dtype != dtype_name:
        from brainalign.models.precision import native_bfloat16, use_bfloat16_matmuls

        swapped = use_bfloat16_matmuls(model)
        log.info("model %s: %d linear layers multiply in bfloat16 (LM head, norms, attention and sums in float32)", spec["name"], swapped)
        if not native_bfloat16(device):
            log.warning("this %s has no native bfloat16 products: extraction.matmul_dtype: bfloat16 gives the same numbers "
                        "but runs slower than float32 here", device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    provenance_path = model_dir / PROVENANCE_FILE
    provenance = json.loads(provenance_path.read_text()) if provenance_path.exists() else {}
    info = {
        "name": spec["name"], "source": spec["source"], "model_id": model_id(spec),
        "revision": spec.get("revision", ""), "quantization": provenance.get("quantization", spec.get("quantization", "")),
        "dtype": dtype_name, "matmul_dtype": matmul_dtype, "n_params": sum(p.numel() for p in model.parameters()),
        "provenance": provenance,
    }
    return LoadedModel(model.eval(), tokenizer, device, info)
