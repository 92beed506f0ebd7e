"""Stage options: a stage's config block with every schema default filled in, and typed views of it.

The schema (``brainalign/schemas/config.schema.yaml``) is the one place an option's default is written: the
functions here read it, the workflow passes every job its stage's complete options, and ``tests/test_options.py``
fails when a step function's ``options.get(key, default)`` disagrees with the schema.

    stage_options(config, "ceiling")            # {"method": "auto", ..., "seed": 0}: plain dict, as jobs get it
    dataset_encoding_options(config, "pereira2018")   # encoding block + the dataset's overrides + seed
    EncodingOptions.from_dict(options)          # frozen, typed; .as_dict() gives the dict back for JSON records

The typed objects are read-only mappings too (``options["n_folds"]``, ``options.get("progress", True)``,
``dict(options)``), so a step function that takes an options dict takes them unchanged. Keys the schema does not
know (run-time keys such as ``progress`` or ``checkpoint_dir``) are kept in ``extra``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import yaml

from brainalign.config import SCHEMA_PATH, dataset_specs, encoding_options, model_specs
from brainalign.errors import BrainalignError

STAGES = ("extraction", "encoding", "ceiling", "behaviour", "analysis")
# per-model entries that override a stage option for that model's jobs
MODEL_OVERRIDES = {"extraction": ("batch_size", "max_context_tokens"), "behaviour": ("max_context_tokens",)}


# ----------------------------------------------------------------------------------------------- the schema
@functools.lru_cache(maxsize=4)
def _load_schema(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text())


def schema(path: str | Path = SCHEMA_PATH) -> dict:
    """The parsed config schema (a fresh copy: callers may change it)."""
    return copy.deepcopy(_load_schema(str(path)))


def stage_properties(stage: str, path: str | Path = SCHEMA_PATH) -> dict:
    """The schema's ``properties`` of one stage block; unknown stages list the known ones."""
    properties = _load_schema(str(path))["properties"]
    if stage not in STAGES or stage not in properties:
        raise BrainalignError(f"unknown option stage {stage!r}; known stages: {', '.join(STAGES)}")
    return copy.deepcopy(properties[stage].get("properties", {}))


def schema_defaults(stage: str, path: str | Path = SCHEMA_PATH) -> dict:
    """``{key: default}`` of every option of ``stage`` that has a default in the schema, in schema order."""
    return {key: spec["default"] for key, spec in stage_properties(stage, path).items() if "default" in spec}


def top_level_default(key: str, path: str | Path = SCHEMA_PATH):
    """The schema default of a top-level key (e.g. ``seed``)."""
    return copy.deepcopy(_load_schema(str(path))["properties"][key]["default"])


def with_defaults(stage: str, options: Mapping | None = None) -> dict:
    """``options`` (first, in their order) plus every schema default of ``stage`` they lack (in schema order),
    which is what the config check's default injection gives a stage block."""
    filled = dict(options or {})
    for key, value in schema_defaults(stage).items():
        filled.setdefault(key, value)
    return filled


# ----------------------------------------------------------------------------------------------- per job
def _seed(config: Mapping) -> int:
    return config["seed"] if "seed" in config else top_level_default("seed")


def stage_options(config: Mapping, stage: str, **extra) -> dict:
    """A stage's options as a job gets them: the config block with every schema default, the global seed, then
    ``extra`` (which replaces keys)."""
    options = with_defaults(stage, config.get(stage))
    options.setdefault("seed", _seed(config))
    options.update(extra)
    return options


def dataset_encoding_options(config: Mapping, dataset: str) -> dict:
    """Encoding options for one dataset's jobs: the top-level block, the dataset's overrides, every schema default
    and the global seed."""
    options = with_defaults("encoding", encoding_options(config, dataset))
    options.setdefault("seed", _seed(config))
    return options


def ceiling_options(config: Mapping, dataset: str) -> dict:
    """Ceiling options: the top-level block, then the dataset's ``ceiling`` overrides (e.g. Brain-Score's
    ``{method: brainscore-extrapolation, metric: brainscore-ridge}``), with the dataset's encoding options (no seed:
    the ceiling's own seed applies) under ``encoding``."""
    overrides = dict(dataset_specs(config)[dataset].get("ceiling") or {})
    return stage_options(config, "ceiling", **overrides,
                         encoding=with_defaults("encoding", encoding_options(config, dataset)))


def _model_options(config: Mapping, stage: str, model: str) -> dict:
    options = stage_options(config, stage)
    spec = model_specs(config)[model]
    for key in MODEL_OVERRIDES[stage]:
        if key in spec:
            options[key] = spec[key]
    return options


def extraction_options(config: Mapping, model: str) -> dict:
    """Extraction options for one model: the stage's, then the model entry's ``batch_size``/``max_context_tokens``."""
    return _model_options(config, "extraction", model)


def behaviour_options(config: Mapping, model: str) -> dict:
    """Behaviour (surprisal) options for one model: the stage's, then the model entry's ``max_context_tokens``."""
    return _model_options(config, "behaviour", model)


# ----------------------------------------------------------------------------------------------- typed views
def _frozen(value):
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def _thawed(value):
    return [_thawed(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True, kw_only=True)
class StageOptions(Mapping):
    """One stage's complete options, read-only. Build with :meth:`from_dict`; :meth:`as_dict` gives the plain
    dict back (equal to the schema-filled dict it was built from)."""

    stage: ClassVar[str] = ""

    seed: int
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)  # keys the schema's stage block does not have

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The schema's keys of this stage plus ``seed`` (the typed fields)."""
        return tuple(f.name for f in fields(cls) if f.name != "extra")

    @classmethod
    def from_dict(cls, options: Mapping | None = None, **overrides):
        """From an options dict (missing keys take the schema's defaults, then the schema's top-level seed)."""
        filled = with_defaults(cls.stage, {**dict(options or {}), **overrides})
        filled.setdefault("seed", top_level_default("seed"))
        names = set(cls.option_names())
        typed = {key: _frozen(value) for key, value in filled.items() if key in names}
        extra = {key: value for key, value in filled.items() if key not in names}
        return cls(**typed, extra=MappingProxyType(extra))

    def as_dict(self) -> dict:
        """The options as a plain dict (lists, not tuples), for JSON records and step functions: typed keys in
        schema order, then ``seed``, then the extra keys; optional keys without a schema default that were not
        given are left out, as they were in the dict this was built from."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("seed", "extra") or (value is None and f.default is None):
                continue
            out[f.name] = _thawed(value)
        out["seed"] = self.seed
        out.update(self.extra)
        return out

    def replace(self, **changes):
        """A copy with some options changed (schema keys or extra keys)."""
        return type(self).from_dict({**self.as_dict(), **changes})

    # read-only mapping over as_dict(): step functions that take a dict take these unchanged
    def __getitem__(self, key: str):
        return self.as_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())


# Fields: the schema's keys of each stage (tests/test_options.py checks they match). A field with a schema
# default has no default here (from_dict fills it from the schema); one without has None ("not set").
@dataclass(frozen=True, kw_only=True)
class ExtractionOptions(StageOptions):
    stage: ClassVar[str] = "extraction"

    batch_size: int
    readout: str
    story_readout: str
    storage_dtype: str
    matmul_dtype: str
    min_context_tokens: int
    max_context_tokens: int
    device: str
    threads: int
    checkpoint: bool
    checkpoint_every: int
    checkpoint_seconds: float


@dataclass(frozen=True, kw_only=True)
class EncodingOptions(StageOptions):
    stage: ClassVar[str] = "encoding"

    protocols: tuple[str, ...]
    n_folds: int
    inner_folds: int
    inner_cv: str
    feature_scaling: str
    feature_scaling_choice: str
    alphas: tuple[float, ...] | None = None
    n_bootstrap: int
    backend: str
    device: str
    dtype: str
    similarity: bool
    delays: tuple[int, ...]
    downsample: str
    gap: int
    bootstrap_block: int
    baseline: bool
    baseline_band_ratios: tuple[float, ...]
    pca_components: int
    skip_first_words: int
    trim_run_edges: tuple[int, ...]
    layer_parts: int
    extras_layers: str


@dataclass(frozen=True, kw_only=True)
class CeilingOptions(StageOptions):
    stage: ClassVar[str] = "ceiling"

    method: str
    curve: str
    n_bootstrap: int
    n_splits: int
    metric: str | None = None


@dataclass(frozen=True, kw_only=True)
class BehaviourOptions(StageOptions):
    stage: ClassVar[str] = "behaviour"

    min_context_tokens: int
    max_context_tokens: int
    context_scope: str
    context_window: str
    window_batch_size: int
    n_bootstrap: int
    exclusions: tuple[str, ...] | None = None
    regression: bool
    regression_folds: int
    regression_spillover: int
    regression_language: str


@dataclass(frozen=True, kw_only=True)
class AnalysisOptions(StageOptions):
    stage: ClassVar[str] = "analysis"

    subset: str
    n_permutations: int
    headline: Mapping | None = None
    brain_datasets: Mapping | None = None
    families: Mapping | None = None


OPTION_TYPES: dict[str, type[StageOptions]] = {
    cls.stage: cls for cls in (ExtractionOptions, EncodingOptions, CeilingOptions, BehaviourOptions, AnalysisOptions)
}


def typed_options(stage: str, options: Mapping | None = None) -> StageOptions:
    """The typed options object of ``stage`` built from an options dict."""
    if stage not in OPTION_TYPES:
        raise BrainalignError(f"unknown option stage {stage!r}; known stages: {', '.join(OPTION_TYPES)}")
    return OPTION_TYPES[stage].from_dict(options)
