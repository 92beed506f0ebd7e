"""Datasets: one adapter module per dataset, one fetch path, one prepared format.

Adding a dataset = one adapter module (``NAME``, ``KIND``, ``REMOTE_FILES``, ``prepare(raw_dir, out_dir, options)``)
listed in ``_ADAPTER_MODULES`` below, plus one config entry. The workflow calls :func:`fetch_dataset` and
:func:`prepare_dataset`; every later stage reads with :func:`load_prepared`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from brainalign.datasets.base import PreparedDataset, load_prepared, write_prepared
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


from brainalign.datasets.fetch import fetch_dataset  # noqa: E402
from brainalign.datasets.prepare import prepare_dataset  # noqa: E402

__all__ = [
    "ADAPTERS",
    "PreparedDataset",
    "fetch_dataset",
    "get_adapter",
    "load_prepared",
    "prepare_dataset",
    "write_prepared",
]
