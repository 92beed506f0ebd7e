"""A dataset's ``options``: the keys every dataset accepts (the schema's ``$defs/dataset_options``: checksums,
subset, the download's retries) and its adapter's own (``$defs/adapter_options``, or a plugin adapter's ``OPTIONS``
attribute: ``{"properties": {...}, "required": [...]}``), with their defaults, all in the schema.

Why per adapter: ``options`` is free-form in the config, so without this a misspelt key (``voxel: all`` for
Wehbe 2014's ``voxels``) or a value the adapter does not know was silently ignored and the default used. The config
check (``brainalign.config``, through :func:`option_problem`) stops at it before any job runs, naming the field and the keys allowed; fetch
and prepare read the options through :func:`dataset_options`, which checks them again (a spec may come from
elsewhere than a config: tests, the CLI) and fills in the defaults, so the adapters hold no defaults of their own.
"""

from __future__ import annotations

import copy
import functools

from brainalign.datasets.checksums import parse_checksum
from brainalign.errors import BrainalignError
from brainalign.schema import schema_definition


@functools.lru_cache(maxsize=1)
def _definitions() -> tuple[dict, dict]:
    return schema_definition("dataset_options")["properties"], schema_definition("adapter_options")["adapters"]


def common_option_default(key: str):
    """The schema's default of an option every dataset has (``fetch_retries``, ...)."""
    return copy.deepcopy(_definitions()[0][key]["default"])


def adapter_option_default(adapter: str, key: str):
    """The schema's default of a built-in adapter's own option."""
    return copy.deepcopy(_definitions()[1][adapter]["properties"][key]["default"])


def adapter_option_schema(adapter: str, module=None) -> dict:
    """The JSON schema of ``adapter``'s options: the common keys, the adapter's own, no others. ``module``: the
    adapter's module, read for ``OPTIONS`` when the schema file does not list the adapter (a plugin)."""
    common, adapters = _definitions()
    own = adapters.get(adapter)
    if own is None:
        own = getattr(module, "OPTIONS", None) or {}
    return {"type": "object", "additionalProperties": False, "required": list(own.get("required", [])),
            "properties": {**copy.deepcopy(common), **copy.deepcopy(own.get("properties", {}))}}


def option_problem(options, adapter: str, module=None) -> str | None:
    """The first thing wrong with ``options`` for ``adapter`` as ``"<key path>: <what>"`` (key path relative to
    ``options``), or None."""
    return _problem({} if options is None else options, adapter, adapter_option_schema(adapter, module))


def _problem(options, adapter: str, schema: dict) -> str | None:
    import jsonschema

    if not isinstance(options, dict):
        return f": expected a mapping of option keys, got {type(options).__name__}"
    unknown = sorted(set(options) - set(schema["properties"]))
    if unknown:
        return (f": unknown key {unknown[0]!r} for adapter {adapter} "
                f"(allowed keys: {', '.join(sorted(schema['properties']))})")
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(options))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        return f"{path}: {error.message}"
    for name, checksum in (options.get("checksums") or {}).items():
        try:
            parse_checksum(checksum, where="")
        except BrainalignError:
            return f".checksums.{name}: {checksum!r} is not 'sha1:<40 hex>', 'sha256:<64 hex>' or 'md5:<32 hex>'"
    return None


def dataset_options(spec: dict, module=None) -> dict:
    """``spec``'s options, checked for its adapter and with the schema's defaults filled in (a copy)."""
    options = spec.get("options") or {}
    schema = adapter_option_schema(spec["adapter"], module)
    problem = _problem(options, spec["adapter"], schema)
    if problem:
        raise BrainalignError(f"dataset {spec.get('name', spec['adapter'])!r} options{problem}")
    defaults = {key: copy.deepcopy(fragment["default"]) for key, fragment in schema["properties"].items()
                if "default" in fragment}
    return {**defaults, **copy.deepcopy(options)}
