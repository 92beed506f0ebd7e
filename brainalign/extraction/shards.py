"""The activation shard format: one HDF5 file per model x dataset, written once by extraction and read by every
encoding job and by the workflow (to plan one job per layer).

Layout (docs/DESIGN.md): ``/layers/<module name>`` float arrays of shape (n_stimuli, hidden), one chunk per layer
so a layer reads in one pass, in model order; ``/stimulus_ids`` (str, the rows of the dataset's stimuli.tsv);
file attributes ``layer_names`` (JSON list, model order), ``storage_dtype``, ``code_version`` and whatever the
writer passes (model id, revision, dtype, context mode, readout, ...). This module is the only one that knows it.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from brainalign import __version__
from brainalign.errors import BrainalignError
from brainalign.io import atomic_path, open_hdf5, rebuild_command

REBUILD_RULE = "run_model"  # the rule that writes shards


def write_shard(out_path, names: list[str], arrays: dict, stimulus_ids: list[str], attrs: dict,
                storage_dtype: str = "float32") -> None:
    """Write ``/layers/<module>`` (one chunk per layer, so a layer reads in one pass) + ``/stimulus_ids``, atomically.

    ``names`` gives the layer order; ``arrays`` maps each name to its (n_stimuli, hidden) array, stored as
    ``storage_dtype``. ``attrs`` (model id, revision, dtype, context mode, ...) become file attributes, with the
    storage dtype, the layer order and the code version added. The file is written under a temporary name
    (``.<name>.*.h5`` beside it) and renamed, so a killed run never leaves a finished-looking shard; no
    timestamps are stored, so the same inputs give the same bytes.
    """
    storage = np.dtype(storage_dtype)
    with atomic_path(Path(out_path), suffix=".h5") as tmp:
        with h5py.File(tmp, "w", track_order=True) as handle:
            group = handle.create_group("layers", track_order=True)
            for name in names:
                values = arrays[name].astype(storage)
                group.create_dataset(name, data=values, chunks=values.shape, track_times=False)
            handle.create_dataset("stimulus_ids", data=np.array(stimulus_ids, dtype=h5py.string_dtype()), track_times=False)
            handle.attrs.update({**attrs, "storage_dtype": storage.name, "code_version": __version__,
                                 "layer_names": json.dumps(names)})


def read_layer_names(shard_path) -> list[str]:
    """The shard's layers in model order (the relative depth of layer i is i / (n - 1))."""
    with open_hdf5(shard_path, REBUILD_RULE) as handle:
        return json.loads(handle.attrs["layer_names"])


def read_stimulus_ids(shard_path) -> list[str]:
    """The stimulus id of each row (``/stimulus_ids``), as str."""
    with open_hdf5(shard_path, REBUILD_RULE) as handle:
        return [s.decode() if isinstance(s, bytes) else str(s) for s in handle["stimulus_ids"][:]]


def read_attributes(shard_path) -> dict:
    """Every file attribute (``layer_names`` stays the JSON string it is stored as; see :func:`read_layer_names`)."""
    with open_hdf5(shard_path, REBUILD_RULE) as handle:
        return dict(handle.attrs)


def read_layer(shard_path, layer: str) -> np.ndarray:
    """One layer's (n_stimuli, hidden) array, in its storage dtype; a missing layer is a BrainalignError."""
    with open_hdf5(shard_path, REBUILD_RULE) as handle:
        if layer not in handle["layers"]:
            raise BrainalignError(f"{shard_path}: no layer {layer!r} (layers: {', '.join(list(handle['layers'])[:5])}, ...)")
        values = handle["layers"][layer][:]
    if not np.isfinite(values).all():
        bad = int(np.size(values) - np.isfinite(values).sum())
        raise BrainalignError(f"{shard_path}: layer {layer!r} holds {bad} non-finite values (NaN or Inf); the shard is "
                              f"damaged or was extracted wrongly: rebuild it with `{rebuild_command(shard_path, REBUILD_RULE)}`")
    return values


def check_stimulus_ids(shard_path, expected_ids: list[str], dataset_dir) -> None:
    """Refuse a shard whose rows are not the prepared dataset's stimuli (it was extracted from another version)."""
    if read_stimulus_ids(shard_path) != list(expected_ids):
        raise BrainalignError(f"{shard_path}: stimulus ids differ from {dataset_dir}/stimuli.tsv (re-extract the shard)")
