"""The config schema (package data): where it is, and the defaults it gives. The schema is the one place an option's
default is written; code that needs one reads it here. Imports nothing of the package, so every module may use it
(the Snakefile, the resources of the model jobs, the config check).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"


@functools.lru_cache(maxsize=1)
def _schema_file() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def schema_default(*path: str):
    """The schema's default of the option at ``path`` (``schema_default("extraction", "matmul_dtype")``): code reads
    defaults from here, never from a literal of its own."""
    node = _schema_file()
    for key in path:
        node = node["properties"][key]
    return copy.deepcopy(node["default"])


def schema_definition(name: str) -> dict:
    """A copy of the schema's ``$defs`` entry ``name`` (the dataset options' definitions, ...)."""
    return copy.deepcopy(_schema_file()["$defs"][name])


def model_entry(spec: dict) -> dict:
    """A model entry with every schema default of the model entry filled in (``dtype``, ``trained``, ...), as the
    config check leaves it; for code that may get an entry from elsewhere (tests, the models table of a bare
    config)."""
    defaults = {key: copy.deepcopy(value["default"]) for key, value in _schema_file()["$defs"]["model"]["properties"].items()
                if "default" in value}
    return {**defaults, **spec}
