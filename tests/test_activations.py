"""Activation extraction: layer naming, batch and context-caching invariance, word windows, HDF5 shards."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest

from brainalign.activations import _extract_windows, _windows_for, block_layer_names, extract_arrays, extract_to_shard
from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.models import load_model

SENTENCES = ["The quick brown fox jumps.", "She didn't say \"3.5 million\".", "Alice was tired.", "Naive cafe-goers, 'quoted' words.",
             "And numbers 1999, 42.", "The lazy dog"]


@pytest.fixture(scope="module")
def tiny(tiny_gpt2_dir):
    spec = {"name": "tiny", "source": "local", "path": str(tiny_gpt2_dir), "kind": "decoder", "prepend_text": "<|endoftext|>"}
    return spec, load_model(spec, tiny_gpt2_dir, device="cpu")


def sentence_table(groups):
    return pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(len(SENTENCES))], "text": SENTENCES, "group": groups,
                         "position": range(len(SENTENCES))})


def test_layer_names_are_module_paths(tiny):
    spec, loaded = tiny
    assert block_layer_names(loaded.model) == ["transformer.wte", "transformer.h.0", "transformer.h.1"]


def test_any_named_module_can_be_read(tiny):
    spec, loaded = tiny
    names, arrays = extract_arrays(loaded, dict(spec, layers=["transformer.h.0.mlp", "transformer.ln_f"]), sentence_table(["g"] * 6),
                                   {"kind": "sentence", "context": "sentence"}, {"progress": False})
    assert names == ["transformer.h.0.mlp", "transformer.ln_f"] and arrays["transformer.ln_f"].shape == (6, 32)


def test_batching_does_not_change_activations(tiny):
    spec, loaded = tiny
    stimuli = sentence_table([f"g{i}" for i in range(6)])
    meta = {"kind": "sentence", "context": "sentence"}
    _, one = extract_arrays(loaded, spec, stimuli, meta, {"batch_size": 1, "progress": False})
    _, many = extract_arrays(loaded, spec, stimuli, meta, {"batch_size": 4, "progress": False})
    for name in one:
        np.testing.assert_allclose(one[name], many[name], atol=1e-5)


def test_one_pass_per_group_equals_rerunning_each_prefix(tiny):
    """Context caching: a causal model read at each sentence end in one pass over the passage equals re-running
    every prefix (what Brain-Score does), so the fast path is exact."""
    spec, loaded = tiny
    stimuli = sentence_table(["p1", "p1", "p1", "p2", "p2", "p2"])
    names = block_layer_names(loaded.model)
    cached = _extract_windows(loaded, spec, names, _windows_for(stimuli, "group", True, "<|endoftext|>"), 6, {"progress": False})
    naive = _extract_windows(loaded, spec, names, _windows_for(stimuli, "group", False, "<|endoftext|>"), 6, {"progress": False})
    for name in names:
        np.testing.assert_allclose(cached[name], naive[name], atol=1e-5)
    alone = _extract_windows(loaded, spec, names, _windows_for(stimuli, "sentence", True, "<|endoftext|>"), 6, {"progress": False})
    assert not np.allclose(alone[names[-1]][1], cached[names[-1]][1])  # context matters after the first sentence
    np.testing.assert_allclose(alone[names[-1]][0], cached[names[-1]][0], atol=1e-5)  # the first has none


def test_word_windows_keep_minimum_context(tiny):
    """Per-word vectors from overlapping windows equal a direct run over the same window of tokens."""

    spec, loaded = tiny
    words = ("Alice was beginning to get very tired of sitting by her sister on the bank . " * 6).split()
    stimuli = pd.DataFrame({"stimulus_id": [f"w{i}" for i in range(len(words))], "text": words, "group": "story",
                            "position": range(len(words)), "onset": np.arange(len(words)) * 0.3,
                            "offset": np.arange(len(words)) * 0.3 + 0.25})
    names, arrays = extract_arrays(loaded, spec, stimuli, {"kind": "timeseries"},
                                   {"max_context_tokens": 40, "min_context_tokens": 12, "progress": False})
    assert arrays[names[-1]].shape == (len(words), 32) and np.isfinite(arrays[names[-1]]).all()
    # the first word read from the first window equals running the first window alone
    _, single = extract_arrays(loaded, spec, stimuli, {"kind": "timeseries"},
                               {"max_context_tokens": 200, "min_context_tokens": 12, "progress": False})
    np.testing.assert_allclose(arrays[names[-1]][:5], single[names[-1]][:5], atol=1e-5)
    assert not np.allclose(arrays[names[-1]][-1], single[names[-1]][-1])  # late words saw a shorter context


def test_shard_layout_and_attributes(tiny, tiny_gpt2_dir, tmp_path):
    spec, _ = tiny
    stimuli = sentence_table(["p1", "p1", "p2", "p2", "p3", "p3"])
    dataset = PreparedDataset(stimuli, np.random.default_rng(0).standard_normal((1, 6, 1)).astype(np.float32), ["average"], ["lang"],
                              meta={"name": "toy", "kind": "sentence", "description": "", "source": "", "licence": "", "provenance": "",
                                    "context": "group", "group_averaged": True})
    write_prepared(dataset, tmp_path / "ds")
    extract_to_shard(spec, tiny_gpt2_dir, tmp_path / "ds", tmp_path / "shard.h5", {"progress": False})
    with h5py.File(tmp_path / "shard.h5") as handle:
        names = json.loads(handle.attrs["layer_names"])
        assert list(handle["layers"]) == sorted(names) or list(handle["layers"]) == names
        assert handle["layers"]["transformer.h.1"].shape == (6, 32)
        assert handle["layers"]["transformer.h.1"].chunks == (6, 32)  # one chunk: a layer reads in one pass
        assert handle.attrs["context_mode"] == "group" and handle.attrs["source"] == "local"
        assert [s.decode() for s in handle["stimulus_ids"][:]] == [f"s{i}" for i in range(6)]
    assert not list(tmp_path.glob(".shard.h5*"))  # no temporary file left behind


@pytest.mark.slow
def test_real_minilm_on_a_few_sentences(model_specs, tmp_path):
    from brainalign.models import prepare_model

    spec = model_specs["all-minilm-l6-v2"]
    prepare_model(spec, tmp_path / "minilm")
    loaded = load_model(spec, tmp_path / "minilm", device="cpu")
    names, arrays = extract_arrays(loaded, spec, sentence_table([f"g{i}" for i in range(6)]), {"kind": "sentence", "context": "sentence"},
                                   {"progress": False})
    assert names[0] == "embeddings.word_embeddings" and len(names) == 7
    last = arrays[names[-1]]
    assert last.shape == (6, 384) and np.isfinite(last).all()
    assert np.corrcoef(last)[0, 1] < 0.999  # different sentences, different vectors
