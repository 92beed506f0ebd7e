"""Faults a user's disk, cluster and hands produce, injected into intermediate files: each ends in a one-line
error that names the file and the command that fixes it, never in a traceback or a silently different score."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from brainalign.datasets.base import PreparedDataset, load_prepared, write_prepared
from brainalign.errors import BrainalignError
from brainalign.extraction.shards import read_attributes, read_layer, read_layer_names, write_shard


def _shard(path, values=None):
    values = np.arange(12, dtype=np.float32).reshape(4, 3) if values is None else values
    write_shard(path, ["layer.0", "layer.1"], {"layer.0": values, "layer.1": values + 1}, ["a", "b", "c", "d"],
                {"model": "m"})
    return path


def _truncate(path, keep: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_a_truncated_shard_is_one_line_naming_it_and_the_rebuild_command(tmp_path):
    shard = _shard(tmp_path / "results" / "activations" / "m" / "d.h5")
    _truncate(shard)
    for read in (read_layer_names, read_attributes, lambda path: read_layer(path, "layer.0")):
        with pytest.raises(BrainalignError) as error:
            read(shard)
        message = str(error.value)
        assert "\n" not in message and str(shard) in message and "truncated or corrupt" in message
        assert f"snakemake --cores 2 {shard} --forcerun run_model" in message


def test_a_non_finite_layer_is_refused_naming_shard_layer_and_command(tmp_path):
    values = np.ones((4, 3), dtype=np.float32)
    shard = _shard(tmp_path / "d.h5", values)
    assert np.array_equal(read_layer(shard, "layer.0"), values)  # clean data passes
    with h5py.File(shard, "r+") as handle:
        handle["layers"]["layer.1"][1, 2] = np.nan
    with pytest.raises(BrainalignError, match=r"layer 'layer.1' holds 1 non-finite values.*--forcerun run_model"):
        read_layer(shard, "layer.1")
    assert np.array_equal(read_layer(shard, "layer.0"), values)


def _prepared(out_dir):
    stimuli = pd.DataFrame({"stimulus_id": ["s0", "s1", "s2"], "text": ["a b", "c d", "e f"], "group": ["g", "g", "h"],
                            "position": [0, 1, 0]})
    responses = np.arange(6, dtype=np.float32).reshape(1, 3, 2)
    meta = {"name": "toy", "kind": "sentence", "description": "", "source": "", "licence": "", "provenance": "",
            "context": "sentence", "group_averaged": True}
    write_prepared(PreparedDataset(stimuli, responses, ["average"], ["n0", "n1"], meta=meta), out_dir)
    return out_dir


def test_a_truncated_prepared_dataset_names_the_prepare_rule(tmp_path):
    folder = _prepared(tmp_path / "results" / "datasets" / "toy")
    assert load_prepared(folder).responses.shape == (1, 3, 2)
    _truncate(folder / "data.h5", 0.3)
    with pytest.raises(BrainalignError, match=r"data.h5: unreadable .*--forcerun prepare_dataset"):
        load_prepared(folder)


def test_a_missing_prepared_file_names_the_command(tmp_path):
    folder = _prepared(tmp_path / "toy")
    (folder / "meta.json").unlink()
    with pytest.raises(BrainalignError, match=r"meta.json: missing.*snakemake --cores 2 .*toy --forcerun prepare_dataset"):
        load_prepared(folder)
