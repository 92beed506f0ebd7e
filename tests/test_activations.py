"""Activation extraction: layer naming, batch and context-caching invariance, word windows, HDF5 shards."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.extraction.activations import extract_arrays, extract_to_shard, run_units
from brainalign.extraction.alignment import tokens_overlapping
from brainalign.extraction.context import text_windows, window_units
from brainalign.extraction.layers import block_layer_names
from brainalign.models.session import load_model

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
                                   {"kind": "sentence", "context": "sentence"}, progress=False)
    assert names == ["transformer.h.0.mlp", "transformer.ln_f"] and arrays["transformer.ln_f"].shape == (6, 32)


def test_batching_does_not_change_activations(tiny):
    spec, loaded = tiny
    stimuli = sentence_table([f"g{i}" for i in range(6)])
    meta = {"kind": "sentence", "context": "sentence"}
    _, one = extract_arrays(loaded, spec, stimuli, meta, {"batch_size": 1}, progress=False)
    _, many = extract_arrays(loaded, spec, stimuli, meta, {"batch_size": 4}, progress=False)
    for name in one:
        np.testing.assert_allclose(one[name], many[name], atol=1e-5)


def test_one_pass_per_group_equals_rerunning_each_prefix(tiny):
    """Context caching: a causal model read at each sentence end in one pass over the passage equals re-running
    every prefix (what Brain-Score does), so the fast path is exact."""
    spec, loaded = tiny
    stimuli = sentence_table(["p1", "p1", "p1", "p2", "p2", "p2"])
    names = block_layer_names(loaded.model)

    def read(context, causal):
        windows = text_windows(stimuli, context, causal, "<|endoftext|>")
        units = window_units(loaded.tokenizer, windows, batch_size=16, max_tokens=512, context_mode=context, paper_eos=False)
        return run_units(loaded, spec, names, units, 6, "last", "windows", progress=False)

    cached, naive = read("group", True), read("group", False)
    for name in names:
        np.testing.assert_allclose(cached[name], naive[name], atol=1e-5)
    alone = read("sentence", True)
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
                                   {"max_context_tokens": 40, "min_context_tokens": 12}, progress=False)
    assert arrays[names[-1]].shape == (len(words), 32) and np.isfinite(arrays[names[-1]]).all()
    # the first word read from the first window equals running the first window alone
    _, single = extract_arrays(loaded, spec, stimuli, {"kind": "timeseries"},
                               {"max_context_tokens": 200, "min_context_tokens": 12}, progress=False)
    np.testing.assert_allclose(arrays[names[-1]][:5], single[names[-1]][:5], atol=1e-5)
    assert not np.allclose(arrays[names[-1]][-1], single[names[-1]][-1])  # late words saw a shorter context


def test_shard_layout_and_attributes(tiny, tiny_gpt2_dir, tmp_path):
    spec, _ = tiny
    stimuli = sentence_table(["p1", "p1", "p2", "p2", "p3", "p3"])
    dataset = PreparedDataset(stimuli, np.random.default_rng(0).standard_normal((1, 6, 1)).astype(np.float32), ["average"], ["lang"],
                              meta={"name": "toy", "kind": "sentence", "description": "", "source": "", "licence": "", "provenance": "",
                                    "context": "group", "group_averaged": True})
    write_prepared(dataset, tmp_path / "ds")
    extract_to_shard(spec, tiny_gpt2_dir, tmp_path / "ds", tmp_path / "shard.h5", progress=False)
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
    from brainalign.models.session import prepare_model

    spec = model_specs["all-minilm-l6-v2"]
    prepare_model(spec, tmp_path / "minilm")
    loaded = load_model(spec, tmp_path / "minilm", device="cpu")
    names, arrays = extract_arrays(loaded, spec, sentence_table([f"g{i}" for i in range(6)]), {"kind": "sentence", "context": "sentence"},
                                   progress=False)
    assert names[0] == "embeddings.word_embeddings" and len(names) == 7
    last = arrays[names[-1]]
    assert last.shape == (6, 384) and np.isfinite(last).all()
    assert np.corrcoef(last)[0, 1] < 0.999  # different sentences, different vectors


# ----------------------------------------------------------------------------------------------- layer_module
@pytest.fixture(scope="module")
def tiny_llama_dir(tmp_path_factory):
    """A 2-layer random LlamaForCausalLM saved as a transformers folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.support.tokenizers import byte_level_tokenizer

    tokenizer = byte_level_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, max_position_embeddings=256)
    folder = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_layer_module_reads_that_submodule_of_every_block(tiny_llama_dir):
    """`layer_module: post_attention_layernorm` (the paper's LLaMA read-out, PR194): every block's submodule
    instead of the block, the embedding kept; the vectors are that module's own output."""
    import torch

    spec = {"name": "tiny-llama", "source": "local", "path": str(tiny_llama_dir), "kind": "decoder",
            "layer_module": "post_attention_layernorm"}
    loaded = load_model(spec, tiny_llama_dir, device="cpu")
    stimuli = sentence_table([f"g{i}" for i in range(6)])
    names, arrays = extract_arrays(loaded, spec, stimuli, {"kind": "sentence", "context": "sentence"}, {"batch_size": 4}, progress=False)
    assert names == ["model.embed_tokens", "model.layers.0.post_attention_layernorm", "model.layers.1.post_attention_layernorm"]
    seen = {}
    modules = dict(loaded.model.named_modules())
    handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o)) for n in names[1:]]
    try:
        for row, text in enumerate(SENTENCES):
            ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"]
            with torch.inference_mode():
                loaded.model(input_ids=ids)
            for name in names[1:]:
                np.testing.assert_allclose(arrays[name][row], seen[name][0, -1].numpy(), atol=1e-5)
    finally:
        for handle in handles:
            handle.remove()
    # the whole block's output is something else
    _, blocks = extract_arrays(loaded, {k: v for k, v in spec.items() if k != "layer_module"}, stimuli,
                               {"kind": "sentence", "context": "sentence"}, progress=False)
    assert not np.allclose(blocks["model.layers.1"], arrays["model.layers.1.post_attention_layernorm"])


def test_a_missing_layer_module_is_one_line_naming_model_and_module(tiny_llama_dir):
    from brainalign.errors import BrainalignError

    spec = {"name": "tiny-llama", "source": "local", "path": str(tiny_llama_dir), "kind": "decoder", "layer_module": "ln_2"}
    loaded = load_model(spec, tiny_llama_dir, device="cpu")
    with pytest.raises(BrainalignError, match=r"^model tiny-llama: layer_module 'ln_2' is not a submodule of block model\.layers\.0"):
        extract_arrays(loaded, spec, sentence_table(["g"] * 6), {"kind": "sentence", "context": "sentence"}, progress=False)


# ----------------------------------------------------------------------------------------------- story words, non-causal models
STORY = ("Alice was beginning to get very tired of sitting by her sister on the bank and of having nothing to do . "
         "once or twice she had peeped into the book her sister was reading").split()
FUTURE = ("the lazy dog jumps over 1999 quick brown foxes while naive cafe-goers say 'quoted' words").split()


def story_table(words):
    return pd.DataFrame({"stimulus_id": [f"w{i}" for i in range(len(words))], "text": words, "group": "story",
                         "position": range(len(words)), "onset": np.arange(len(words)) * 0.3, "offset": np.arange(len(words)) * 0.3 + 0.25})


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    """A 2-layer random BERT whose tokenizer wraps a text in a leading and a trailing special token ([CLS]/[SEP])."""
    import torch
    from tokenizers import processors
    from transformers import BertConfig, BertModel

    from tests.support.tokenizers import byte_level_tokenizer

    tokenizer = byte_level_tokenizer()
    special = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    tokenizer.backend_tokenizer.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=True),
        processors.TemplateProcessing(single="<|endoftext|> $A <|endoftext|>", special_tokens=[("<|endoftext|>", special)]),
    ])
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_bert")
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=256)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    spec = {"name": "tiny-bert", "source": "local", "path": str(folder), "kind": "encoder"}
    return spec, load_model(spec, folder, device="cpu")


WINDOW_OPTIONS = {"max_context_tokens": 24, "min_context_tokens": 8, "batch_size": 5}


def test_encoder_story_words_never_see_the_future(tiny_encoder):
    """Window mode: a bidirectional encoder reads word i from an input that ends with word i (the text up to it,
    left-truncated to the token budget), as Brain-Score fed the text up to the current stimulus: changing the
    words after i changes nothing about word i."""
    spec, loaded = tiny_encoder
    names, arrays = extract_arrays(loaded, spec, story_table(STORY), {"kind": "timeseries"}, WINDOW_OPTIONS, progress=False)
    cut = 20
    _, changed = extract_arrays(loaded, spec, story_table(STORY[:cut + 1] + FUTURE), {"kind": "timeseries"}, WINDOW_OPTIONS, progress=False)
    for name in names:
        np.testing.assert_array_equal(changed[name][:cut + 1], arrays[name][:cut + 1])


def test_encoder_story_word_equals_a_pass_over_the_text_up_to_it(tiny_encoder):
    import torch

    spec, loaded = tiny_encoder
    tokenizer = loaded.tokenizer
    names, arrays = extract_arrays(loaded, spec, story_table(STORY), {"kind": "timeseries"}, {**WINDOW_OPTIONS, "story_readout": "last"},
                                   progress=False)
    _, summed = extract_arrays(loaded, spec, story_table(STORY), {"kind": "timeseries"}, WINDOW_OPTIONS, progress=False)  # default: sum
    n_multi = 0
    budget = WINDOW_OPTIONS["max_context_tokens"] - 2  # [CLS] ... [SEP]
    cls, sep = tokenizer("a")["input_ids"][0], tokenizer("a")["input_ids"][-1]
    for i in (0, 3, 9, len(STORY) - 1):
        ids = tokenizer(" ".join(STORY[: i + 1]), add_special_tokens=False)["input_ids"][-budget:]
        if i < 5:
            assert [cls] + ids + [sep] == tokenizer(" ".join(STORY[: i + 1]))["input_ids"]  # the whole text up to word i
        with torch.inference_mode():
            out = loaded.model(input_ids=torch.tensor([[cls] + ids + [sep]]), output_hidden_states=True)
        assert names[0] == "embeddings.word_embeddings"
        np.testing.assert_allclose(arrays[names[0]][i], loaded.model.embeddings.word_embeddings.weight[ids[-1]].detach().numpy(), atol=1e-6)
        text = " ".join(STORY[: i + 1])
        n_word = len(tokens_overlapping(tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"],
                                        len(text) - len(STORY[i]), len(text)))  # the word's tokens (not a bare space)
        n_multi += n_word > 1
        for layer, name in enumerate(names[1:], start=1):
            # the word's last token sits right before the trailing [SEP]
            np.testing.assert_allclose(arrays[name][i], out.hidden_states[layer][0, -2].numpy(), atol=1e-5)
            # story_readout: sum (the default): every token of the word, each an impulse at the word's time
            np.testing.assert_allclose(summed[name][i], out.hidden_states[layer][0, -1 - n_word:-1].numpy().sum(0), atol=1e-4)
    assert n_multi  # some word spans several tokens, so sum and last differ there


def test_non_causal_group_mode_reads_each_text_from_a_window_ending_with_it(tiny_encoder):
    """Sentence/group modes: a non-causal model reads every text of a passage from the passage up to that text."""
    spec, loaded = tiny_encoder
    stimuli = sentence_table(["p1", "p1", "p1", "p2", "p2", "p2"])
    windows = text_windows(stimuli, "group", False, "")
    assert len(windows) == 6 and all(len(reads) == 1 for _, reads in windows)
    for text, [(row, _, end)] in windows:
        assert text.endswith(SENTENCES[row]) and end == len(text)
        group = stimuli["group"][row]
        assert text == " ".join(stimuli.loc[(stimuli["group"] == group) & (stimuli.index <= row), "text"])
    meta = {"kind": "sentence", "context": "group"}
    _, arrays = extract_arrays(loaded, spec, stimuli, meta, progress=False)
    changed = stimuli.copy()
    changed.loc[2, "text"] = "Something else entirely."
    _, after = extract_arrays(loaded, spec, changed, meta, progress=False)
    for name in arrays:
        np.testing.assert_array_equal(after[name][[0, 1, 3, 4, 5]], arrays[name][[0, 1, 3, 4, 5]])


def test_decoder_story_windows_are_unchanged_by_the_non_causal_fix(tiny):
    """Causal decoders keep the overlapping windows: a word late in the story is read with context that starts
    before the current window's min_context (not from a window that ends at it)."""
    spec, loaded = tiny
    names, arrays = extract_arrays(loaded, spec, story_table(STORY), {"kind": "timeseries"}, WINDOW_OPTIONS, progress=False)
    _, changed = extract_arrays(loaded, spec, story_table(STORY[:21] + FUTURE), {"kind": "timeseries"}, WINDOW_OPTIONS, progress=False)
    # causal: the future never matters either, and windows are shared (fewer passes than words)
    for name in names:
        np.testing.assert_allclose(changed[name][:21], arrays[name][:21], atol=1e-5)
