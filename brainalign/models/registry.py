"""The model-source registry: what a source (config key ``source``) is, and how one is looked up.

A source says where a model's weights come from and how they become a prepared folder: a transformers folder
plus ``provenance.json``. Each source is one :class:`ModelSource` subclass registered with
:func:`register_source`; :data:`SOURCES` maps names to them and :func:`get_source` looks one up. The built-in
sources live in :mod:`brainalign.models.sources`, which registers them when imported; code that looks a source
up by name imports that module first.

A source carries everything the rest of the package asks of it, so adding one is one class and no other edit:

* ``required_keys``: keys a model entry with this source must set (the config's semantic check);
* ``schema_properties``: the JSON schema of the model-entry keys it reads, merged into the config schema's
  model entry (``brainalign.config``), whose other keys the schema file holds;
* ``model_id_key``: the key whose value names the weights in reports (``model_id``: the Hub id, the folder, the
  package, ...), read through :meth:`ModelSource.model_id`;
* ``prepare`` (fill the prepared folder), and where useful ``check_available``, ``base_model``, ``load_weights``.

This module imports neither torch nor transformers at import time (the Snakefile's config check reads it).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from brainalign.errors import BrainalignError

PROVENANCE_FILE = "provenance.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
                   "merges.txt", "tokenizer.model", "added_tokens.json", "chat_template.jinja")


def model_class(kind: str):
    """The transformers auto class a model entry's ``kind`` loads with."""
    import transformers

    return {
        "decoder": transformers.AutoModelForCausalLM,
        "encoder": transformers.AutoModel,
        "encoder-decoder": transformers.AutoModelForSeq2SeqLM,
    }[kind]


class ModelSource:
    """Where one kind of model entry gets its weights. Subclass it, set :attr:`name`, :attr:`required_keys`,
    :attr:`schema_properties` and :attr:`model_id_key`, implement :meth:`prepare` (and, where useful,
    :meth:`check_available`, :meth:`load_weights`), and decorate the class with :func:`register_source`."""

    #: the config value of ``source``
    name: ClassVar[str] = ""
    #: keys a model entry with this source must set (non-empty); checked when the config is loaded
    required_keys: ClassVar[tuple[str, ...]] = ()
    #: JSON schema of the model-entry keys this class reads, ``{key: schema}``; a subclass adds to its bases'
    #: (:meth:`properties`). The config schema accepts these keys on a model entry.
    schema_properties: ClassVar[dict[str, dict]] = {}
    #: the key whose value is the model's id in reports and activation shards (empty: the model has none)
    model_id_key: ClassVar[str] = ""
    #: whether an entry may set ``delta_of`` (its weights are deltas to another model's); FolderSource does
    supports_delta: ClassVar[bool] = False

    @classmethod
    def properties(cls) -> dict[str, dict]:
        """This source's model-entry keys: the ``schema_properties`` of its class and of every base class."""
        merged: dict[str, dict] = {}
        for klass in reversed(cls.__mro__):
            merged.update(vars(klass).get("schema_properties", {}))
        return merged

    def model_id(self, spec: dict) -> str:
        """The id that names this model's weights (``model_id`` in the models table and the shards)."""
        return (spec.get(self.model_id_key) or "") if self.model_id_key else ""

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
    """Class decorator: register one instance of ``cls`` under ``cls.name``. Every required key must be one of
    the source's own keys (:meth:`ModelSource.properties`), or no config could set it."""
    if not cls.name:
        raise TypeError(f"{cls.__name__}: a model source needs a name")
    if cls.name in SOURCES:
        raise TypeError(f"{cls.__name__}: model source {cls.name!r} is already registered ({type(SOURCES[cls.name]).__name__})")
    undeclared = [key for key in cls.required_keys if key not in cls.properties()]
    if undeclared:
        raise TypeError(f"{cls.__name__}: required key {undeclared[0]!r} has no schema in schema_properties")
    SOURCES[cls.name] = cls()
    return cls


def get_source(name: str) -> ModelSource:
    """The source registered under ``name``; unknown names list the known ones."""
    try:
        return SOURCES[name]
    except KeyError:
        raise BrainalignError(f"unknown model source {name!r}; known sources: {', '.join(sorted(SOURCES))}") from None


def source_properties() -> dict[str, dict]:
    """Every registered source's model-entry keys, merged (``{key: schema}``). Sources may share a key (the
    package sources' ``package``) only with the same schema."""
    merged: dict[str, dict] = {}
    owners: dict[str, str] = {}
    for name, source in SOURCES.items():
        for key, schema in source.properties().items():
            if key in merged and merged[key] != schema:
                raise TypeError(f"model sources {owners[key]!r} and {name!r} give the config key {key!r} different schemas")
            merged.setdefault(key, schema)
            owners.setdefault(key, name)
    return merged


def model_id(spec: dict) -> str:
    """The id naming a model entry's weights, as its source derives it (:meth:`ModelSource.model_id`)."""
    return get_source(spec["source"]).model_id(spec)
