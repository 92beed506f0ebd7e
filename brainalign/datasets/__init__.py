"""Datasets: one adapter module per dataset, one fetch path, one prepared format.

Adding a dataset = one adapter module (``NAME``, ``KIND``, ``REMOTE_FILES``, ``prepare(raw_dir, out_dir, options)``)
listed in ``brainalign/datasets/registry.py``, plus one config entry. The workflow calls :func:`fetch_dataset` and
:func:`prepare_dataset`; every later stage reads with :func:`load_prepared`.
"""

from __future__ import annotations

from brainalign.datasets.base import PreparedDataset, load_prepared, write_prepared
from brainalign.datasets.fetch import fetch_dataset
from brainalign.datasets.prepare import prepare_dataset
from brainalign.datasets.registry import ADAPTERS, get_adapter

__all__ = [
    "ADAPTERS",
    "PreparedDataset",
    "fetch_dataset",
    "get_adapter",
    "load_prepared",
    "prepare_dataset",
    "write_prepared",
]
