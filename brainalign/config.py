"""Loading and checking the workflow configuration before any job starts.

Two layers of checks: the JSON schema (types, allowed keys, defaults injected) and semantic checks the schema
cannot express (unique names, a source's required keys, pairs whose base model exists, known dataset adapters).
Every failure is one line naming the field and what was expected, so a typo stops the run at load time instead
of failing a job hours later.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml

from brainalign.errors import BrainalignError
from brainalign.schema import SCHEMA_PATH, model_entry, schema_default


class ConfigError(BrainalignError):
    """The configuration is invalid; the message names the field."""


def _field_path(path) -> str:
    out = "config"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _source_registry():
    """The model-source registry (:mod:`brainalign.models.registry`) with the built-in sources registered; imported
    when first needed, not at import (the Snakefile imports this module)."""
    import brainalign.models.sources  # noqa: F401  (registers the built-in sources)
    from brainalign.models import registry

    return registry


def _with_registered_sources(schema: dict) -> dict:
    """The schema with the model entry completed from the registered sources (the one place a source is defined):
    ``source`` restricted to their names, and each source's own keys (``ModelSource.schema_properties``) added to
    the entry's properties. A key the schema file also defines must have the same schema there."""
    registry = _source_registry()
    properties = schema.get("$defs", {}).get("model", {}).get("properties")
    if properties is None:
        return schema
    source = properties.get("source")
    if source is not None and "enum" not in source:
        source["enum"] = list(registry.SOURCES)
    for key, fragment in registry.source_properties().items():
        if key in properties and properties[key] != fragment:
            raise TypeError(f"model source key {key!r}: the schema file and the registered source give it different schemas")
        properties.setdefault(key, copy.deepcopy(fragment))
    return schema


def _validate_with_defaults(schema: dict, config: dict) -> None:
    """Fill in every default the schema gives, wherever its ``properties`` apply (the recipe of the jsonschema
    FAQ, as ``snakemake.utils.validate(..., set_default=True)`` does it, here with the completed schema)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        for key, property_schema in properties.items():
            if "default" in property_schema:
                instance.setdefault(key, property_schema["default"])
        yield from validate_properties(validator, properties, instance, subschema)

    jsonschema.validators.extend(base, {"properties": set_defaults})(schema).validate(config)


def validate_schema(config: dict, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Validate ``config`` against the schema, inject defaults, and raise one clear line on the first error."""
    import jsonschema

    schema = _with_registered_protocols(_with_registered_sources(yaml.safe_load(Path(schema_path).read_text())))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        where = _field_path(error.absolute_path)
        if error.validator == "additionalProperties":
            raise ConfigError(f"{where}: {error.message} (allowed keys: {', '.join(sorted(error.schema.get('properties', {})))})")
        if error.validator == "required":
            raise ConfigError(f"{where}: {error.message}")
        raise ConfigError(f"{where}: {error.message}")
    _validate_with_defaults(schema, config)
    return config


def check_semantics(config: dict, known_adapters: dict | None = None, base_dir: str | Path | None = None) -> None:
    """Checks the schema cannot express; raise ConfigError naming the field. With ``base_dir`` (the workflow passes
    the Snakefile's folder), every dataset's ``local_dir`` must exist, found as the fetch step finds it
    (:func:`check_local_dirs`)."""
    get_source = _source_registry().get_source

    names: dict[str, int] = {}
    for i, model in enumerate(config["models"]):
        name = model["name"]
        if name in names:
            raise ConfigError(f"config.models[{i}].name: duplicate model name {name!r} (also models[{names[name]}])")
        names[name] = i
        problems = get_source(model["source"]).config_problems(model)  # the source's required keys, ...
        if problems:
            raise ConfigError(f"config.models[{i}] ({name}): {problems[0]}")
    for i, model in enumerate(config["models"]):
        for key in ("base_model", "architecture_of", "delta_of"):
            other = model.get(key)
            if other is not None and other not in names:
                raise ConfigError(
                    f"config.models[{i}].{key}: model {other!r} is not in config.models (known: {', '.join(names)})"
                )
            if other == model["name"] and key == "architecture_of":
                raise ConfigError(f"config.models[{i}].architecture_of: a model cannot be its own architecture source")
            if other == model["name"] and key == "delta_of":
                raise ConfigError(f"config.models[{i}].delta_of: a model cannot be the base of its own delta weights")
        arch = model.get("architecture_of")
        if arch is not None and config["models"][names[arch]]["source"] == "untrained":
            raise ConfigError(f"config.models[{i}].architecture_of: {arch!r} is itself untrained; name a model with weights")
        delta_base = model.get("delta_of")
        if delta_base is not None and config["models"][names[delta_base]]["source"] == "untrained":
            raise ConfigError(f"config.models[{i}].delta_of: {delta_base!r} is untrained (no stored weights); name a model with weights")
    _check_extras_layers(config)
    seen: dict[str, int] = {}
    for i, dataset in enumerate(config["datasets"]):
        name = dataset["name"]
        if name in seen:
            raise ConfigError(f"config.datasets[{i}].name: duplicate dataset name {name!r}")
        seen[name] = i
        if dataset.get("encoding"):
            _check_encoding_override(config, i, dataset["encoding"])
        if known_adapters is not None and dataset["adapter"] not in known_adapters:
            raise ConfigError(
                f"config.datasets[{i}].adapter: unknown adapter {dataset['adapter']!r} "
                f"(known: {', '.join(sorted(known_adapters))})"
            )
        if known_adapters is not None:
            _check_dataset_options(i, dataset, known_adapters)
    if base_dir is not None:
        check_local_dirs(config, base_dir)


def _check_dataset_options(index: int, dataset: dict, known_adapters: dict) -> None:
    """A dataset's ``options`` against its adapter's (:mod:`brainalign.datasets.options`). A plugin adapter's module
    is read for its ``OPTIONS``; a built-in one is not imported (the schema file lists its options)."""
    from brainalign.datasets.options import option_problem

    module = dict.get(known_adapters, dataset["adapter"])  # the registered module, or None for a built-in not yet imported
    problem = option_problem(dataset.get("options"), dataset["adapter"], module)
    if problem:
        raise ConfigError(f"config.datasets[{index}].options{problem}")


def check_local_dirs(config: dict, base_dir: str | Path | None = None) -> None:
    """Every dataset's ``local_dir`` is a folder, found as the fetch step finds it
    (:func:`brainalign.datasets.fetch.resolve_local_dir`: as given, or relative to the working directory, else
    relative to ``base_dir``), so a wrong path stops the run at config load, not in its fetch job."""
    from brainalign.datasets.fetch import resolve_local_dir

    for i, dataset in enumerate(config["datasets"]):
        local_dir = dataset.get("local_dir")
        if not local_dir:
            continue
        found = resolve_local_dir(local_dir, base_dir)
        if not found.is_dir():
            looked = [Path(local_dir).absolute()] + ([] if Path(local_dir).is_absolute() or base_dir is None
                                                     else [(Path(base_dir) / local_dir).absolute()])
            raise ConfigError(f"config.datasets[{i}].local_dir: folder {local_dir!r} of dataset {dataset['name']!r} does not exist "
                              f"(looked for {' and '.join(map(str, dict.fromkeys(looked)))})")


def _check_extras_layers(config: dict) -> None:
    """``encoding.extras_layers: selected`` keeps the full layer profile of the first protocol only, so that protocol
    must be the one the headline reads (``analysis.headline.brain_protocol``, or the dataset's entry in
    ``dataset_protocols``)."""
    from brainalign.study.headline import Headline  # the headline's defaults (study imports nothing of this module)

    headline = (config.get("analysis") or {}).get("headline") or {}
    for i, dataset in enumerate(config["datasets"]):
        options = encoding_options(config, dataset["name"])
        if options.get("extras_layers", schema_default("encoding", "extras_layers")) != "selected":
            continue
        protocols = options.get("protocols") or schema_default("encoding", "protocols")
        wanted = (headline.get("dataset_protocols") or {}).get(dataset["name"], headline.get("brain_protocol", Headline().brain_protocol))
        if protocols[0] != wanted:
            raise ConfigError(f"config.encoding.extras_layers: selected needs the headline protocol {wanted!r} first in "
                              f"encoding.protocols for dataset {dataset['name']!r} (datasets[{i}]), got {protocols[0]!r}")


def _with_registered_protocols(schema: dict) -> dict:
    """The schema with the items of ``encoding.protocols`` (the top-level block, against which a dataset's
    ``encoding`` override is checked too) restricted to the registered encoding protocols
    (brainalign.encoding.protocols.registry.PROTOCOLS, the one place a protocol is defined; the schema file leaves
    the list to it)."""
    from brainalign.encoding.protocols.registry import PROTOCOLS  # importing the package registers every protocol

    items = schema.get("properties", {}).get("encoding", {}).get("properties", {}).get("protocols", {}).get("items")
    if items is not None and "enum" not in items:
        items["enum"] = list(PROTOCOLS)
    return schema


def _check_encoding_override(config: dict, index: int, override: dict) -> None:
    """A dataset's ``encoding`` block: the top-level encoding keys only, with the values they allow."""
    import jsonschema

    schema = _with_registered_protocols(yaml.safe_load(SCHEMA_PATH.read_text()))["properties"]["encoding"]
    where = f"config.datasets[{index}].encoding"
    unknown = sorted(set(override) - set(schema["properties"]))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed keys: {', '.join(sorted(schema['properties']))})")
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors({**config.get("encoding", {}), **override}))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        raise ConfigError(f"{_field_path(error.absolute_path).replace('config', where, 1)}: {error.message}")


def encoding_options(config: dict, dataset: str) -> dict:
    """The encoding options for one dataset: the top-level ``encoding`` block, then the dataset's overrides."""
    spec = dataset_specs(config)[dataset]
    return {**config.get("encoding", {}), **(spec.get("encoding") or {})}


def load_and_check(config: dict, known_adapters: dict | None = None, base_dir: str | Path | None = None) -> dict:
    """Schema + semantic checks (with ``base_dir``, the datasets' ``local_dir`` too: :func:`check_semantics`);
    returns the config with defaults filled in."""
    validate_schema(config)
    check_semantics(config, known_adapters, base_dir)
    return config


def load_config_file(path) -> dict:
    """A YAML config file as a dict; a missing file, a YAML syntax error (naming the file, line and column) or a
    file that is not a mapping of keys is one ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: {yaml_error_line(error)}") from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (models:, datasets:, ...), got a {type(config).__name__}")
    return config


def yaml_error_line(error) -> str:
    """A YAML error in one line: where (line and column, 1-based) and what (PyYAML's problem and its context)."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error).strip().splitlines()[0]
    context = getattr(error, "context", None)
    return f"{where}YAML syntax error: {problem}" + (f" ({context})" if context else "")


def merge_configs(base: dict, update: dict) -> dict:
    """``update`` over ``base`` as Snakemake merges ``--configfile`` over the Snakefile's config: mappings merge key by
    key, anything else (a list included: ``models:`` replaces the default's) is replaced."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_configs(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def model_specs(config: dict) -> dict[str, dict]:
    """Model entries by name, each with the global seed filled in where the entry has none."""
    specs = {}
    for model in config["models"]:
        spec = dict(model)
        spec.setdefault("seed", config.get("seed", schema_default("seed")))
        specs[spec["name"]] = spec
    return specs


def dataset_specs(config: dict) -> dict[str, dict]:
    return {dataset["name"]: dict(dataset) for dataset in config["datasets"]}


def models_table(config: dict, properties_csv: str | Path | None = None):
    """The models table the analysis reads: model, family, instruction_tuned, vanilla_base_model, n_params, ...

    ``vanilla_base_model`` is the pair's base (the model itself when it has none, as in the paper's table).
    Numeric properties come from each entry's ``properties`` and, if given, a CSV keyed by ``model``.
    """
    import pandas as pd

    from brainalign.resources import products_dtype

    registry = _source_registry()
    rows = []
    matmul = (config.get("extraction") or {}).get("matmul_dtype", schema_default("extraction", "matmul_dtype"))
    for model in map(model_entry, config["models"]):
        dtype = model["dtype"]
        products = products_dtype(dtype, matmul)
        row: dict[str, Any] = {
            "model": model["name"],
            "family": model.get("family", ""),
            "instruction_tuned": int(bool(model["instruction_tuned"])),
            "vanilla_base_model": model.get("base_model") or model["name"],
            "n_params": model.get("n_params", math.nan),
            "trained": int(bool(model["trained"])),
            "kind": model["kind"],
            "source": model["source"],
            "model_id": registry.model_id(model),
            "revision": model.get("revision", ""),
            "quantization": model.get("quantization", ""),
            "arithmetic": dtype if products == dtype else f"{dtype}, {products} products",
        }
        row.update(model.get("properties", {}) or {})
        rows.append(row)
    table = pd.DataFrame(rows)
    if properties_csv:
        extra = pd.read_csv(properties_csv)
        if "model" not in extra.columns:
            raise ConfigError(f"{properties_csv}: expected a 'model' column")
        keep = [c for c in extra.columns if c == "model" or (c not in table.columns and pd.api.types.is_numeric_dtype(extra[c]))]
        table = table.merge(extra[keep], on="model", how="left")
    return table
