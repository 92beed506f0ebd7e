"""The dataset adapter registry: adapter name -> module, imported on first use.

Adding a dataset = one adapter module in this package (``NAME``, ``KIND``, ``REMOTE_FILES``,
``prepare(raw_dir, out_dir, options)``; a reading dataset with several measures also ``HEADLINE_MEASURE``, the one
:mod:`brainalign.behaviour.scoring` reports), its own options in the schema's ``$defs/adapter_options``, its name
added to ``_ADAPTER_MODULES`` below, plus one config entry.
Kept apart from ``brainalign.datasets`` (which re-exports it) so that fetch and prepare can look adapters up
without importing the package that imports them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from brainalign.errors import BrainalignError

_ADAPTER_MODULES = (
    # offline real data (default config)
    "tuckute2024",
    "pereira2018_averaged",
    "brennan2016",
    "naturalstories",
    "frank2013",
    # paper datasets (downloaded from their public sources)
    "pereira2018",
    "blank2014",
    "wehbe2014",
    "futrell2018",
    # Brain-Score Language 2.3.0's own assemblies (its S3 files, its coordinates)
    "futrell2018_assembly",
    "fedorenko2016",
    "tuckute2024_assembly",
    # Brain-Score Language's language-model benchmarks (KIND language: no human responses)
    "syntaxgym",
    "wikitext",
)

class _Adapters(dict):
    """Adapter name -> module, imported on first use: a rule that only reads prepared data (one job per model
    layer) should not pay for importing every adapter's parsers (about a second of scipy and friends)."""

    def __getitem__(self, name: str) -> ModuleType:
        module = super().__getitem__(name)
        if module is None:
            module = importlib.import_module(f"brainalign.datasets.{name}")
            self[name] = module
        return module


ADAPTERS: dict[str, ModuleType] = _Adapters.fromkeys(_ADAPTER_MODULES)  # each module's NAME is its module name (tested)


def get_adapter(name: str) -> ModuleType:
    """The adapter module registered under ``name``; unknown names list the known ones."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise BrainalignError(f"unknown dataset adapter {name!r}; known adapters: {', '.join(sorted(ADAPTERS))}") from None


def register_adapter(module: ModuleType) -> ModuleType:
    """Register an adapter module defined outside this package (a plugin: the config's ``plugins``) under its
    ``NAME``; it needs what every adapter has (``NAME``, ``KIND``, ``REMOTE_FILES``, ``prepare``)."""
    missing = [attr for attr in ("NAME", "KIND", "REMOTE_FILES", "prepare") if not hasattr(module, attr)]
    if missing:
        raise BrainalignError(f"dataset adapter {module.__name__}: lacks {', '.join(missing)}")
    if module.KIND not in ("sentence", "timeseries", "reading", "language"):
        raise BrainalignError(f"dataset adapter {module.__name__}: KIND {module.KIND!r}; "
                              "expected sentence, timeseries, reading or language")
    ADAPTERS[module.NAME] = module
    return module

