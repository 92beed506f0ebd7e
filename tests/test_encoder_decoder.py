"""Encoder-decoder models (T5 v1.1, Flan-T5): the paper's reading and the principled default, on a tiny T5
loaded through the real from_pretrained path, checked against direct forward passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign.errors import BrainalignError
from brainalign.extraction.activations import extract_arrays
from brainalign.models.session import load_model

SENTENCES = ["The quick brown fox jumps.", "Alice was tired.", "And numbers 1999, 42."]
META = {"kind": "sentence", "context": "sentence"}


def _stimuli():
    return pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(3)], "text": SENTENCES, "group": ["a", "b", "c"], "position": range(3)})


def _load(folder, mode):
    spec = {"name": "tiny-t5", "source": "local", "path": str(folder), "kind": "encoder-decoder", "t5_mode": mode}
    return spec, load_model(spec, folder, device="cpu")


def _direct(loaded, text):
    import torch

    ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"]
    assert ids[0, -1] == loaded.tokenizer.eos_token_id  # the tokenizer appends </s>, as T5's does
    with torch.inference_mode():
        out = loaded.model(input_ids=ids, decoder_input_ids=ids, output_hidden_states=True)
    return out


def test_principled_mode_reads_the_encoder_at_the_stimulus_last_token(tiny_t5_dir):
    spec, loaded = _load(tiny_t5_dir, "principled")
    names, arrays = extract_arrays(loaded, spec, _stimuli(), META, {"batch_size": 2}, progress=False)
    assert names == ["encoder.embed_tokens", "encoder.block.0", "encoder.block.1"]
    for row, text in enumerate(SENTENCES):
        out = _direct(loaded, text)
        # hidden_states[1] is the output of encoder block 0; position -2 is the last word token (before </s>)
        np.testing.assert_allclose(arrays["encoder.block.0"][row], out.encoder_hidden_states[1][0, -2].numpy(), atol=1e-5)


def test_paper_mode_reads_encoder_and_unshifted_decoder_at_eos(tiny_t5_dir):
    spec, loaded = _load(tiny_t5_dir, "paper")
    names, arrays = extract_arrays(loaded, spec, _stimuli(), META, {"batch_size": 2}, progress=False)
    assert names == ["encoder.embed_tokens", "encoder.block.0", "encoder.block.1", "decoder.block.0", "decoder.block.1"]
    principled_spec, principled_model = _load(tiny_t5_dir, "principled")
    _, principled = extract_arrays(principled_model, principled_spec, _stimuli(), META, progress=False)
    for row, text in enumerate(SENTENCES):
        out = _direct(loaded, text)  # the decoder fed the same tokens, unshifted (PR194)
        np.testing.assert_allclose(arrays["decoder.block.0"][row], out.decoder_hidden_states[1][0, -1].numpy(), atol=1e-5)
        np.testing.assert_allclose(arrays["encoder.block.0"][row], out.encoder_hidden_states[1][0, -1].numpy(), atol=1e-5)
    # the two modes read different positions (EOS vs the stimulus's last token)
    assert not np.allclose(arrays["encoder.block.1"], principled["encoder.block.1"])


def test_principled_mode_refuses_decoder_layers(tiny_t5_dir):
    spec, loaded = _load(tiny_t5_dir, "principled")
    with pytest.raises(BrainalignError, match="decoder layers, read only with t5_mode: paper"):
        extract_arrays(loaded, dict(spec, layers=["decoder.block.1"]), _stimuli(), META, progress=False)


# ----------------------------------------------------------------------------------------------- story words (window mode)
STORY = ("Alice was beginning to get very tired of sitting by her sister on the bank and of having nothing to do . "
         "once or twice she had peeped into the book").split()
WINDOW_OPTIONS = {"max_context_tokens": 24, "min_context_tokens": 8, "batch_size": 4}


def _story(words):
    return pd.DataFrame({"stimulus_id": [f"w{i}" for i in range(len(words))], "text": words, "group": "story",
                         "position": range(len(words)), "onset": np.arange(len(words)) * 0.3, "offset": np.arange(len(words)) * 0.3 + 0.25})


@pytest.mark.parametrize("mode", ["paper", "principled"])
def test_story_words_are_read_from_the_text_up_to_them(tiny_t5_dir, mode):
    """Window mode (Blank, Wehbe, Brennan): T5 reads word i from the story up to word i (left-truncated to the
    token budget) followed by </s>; paper mode reads that </s> (encoder and unshifted decoder), principled mode
    the word's last token. The words after i change nothing."""
    import torch

    spec, loaded = _load(tiny_t5_dir, mode)
    options = {**WINDOW_OPTIONS, "story_readout": "last"}  # principled: the word's last token (paper mode: </s> always)
    names, arrays = extract_arrays(loaded, spec, _story(STORY), {"kind": "timeseries"}, options, progress=False)
    _, changed = extract_arrays(loaded, spec, _story(STORY[:16] + ["the", "lazy", "dog", "jumps", "over", "42", "foxes"]),
                                {"kind": "timeseries"}, options, progress=False)
    for name in names:
        np.testing.assert_allclose(changed[name][:16], arrays[name][:16], atol=1e-6)
    tokenizer, budget = loaded.tokenizer, WINDOW_OPTIONS["max_context_tokens"] - 1  # room for </s>
    for i in (0, 4, 15, len(STORY) - 1):
        ids = tokenizer(" ".join(STORY[: i + 1]), add_special_tokens=False)["input_ids"][-budget:] + [tokenizer.eos_token_id]
        if i < 4:
            assert ids == tokenizer(" ".join(STORY[: i + 1]))["input_ids"]  # exactly the text up to word i, then </s>
        with torch.inference_mode():
            out = loaded.model(input_ids=torch.tensor([ids]), decoder_input_ids=torch.tensor([ids]), output_hidden_states=True)
        position = -1 if mode == "paper" else -2  # the </s> right after word i, or word i's last token
        # hidden_states[1]: block 0's output (the last entry is after the final layer norm, not a block's output)
        np.testing.assert_allclose(arrays["encoder.block.0"][i], out.encoder_hidden_states[1][0, position].numpy(), atol=1e-5)
        if mode == "paper":
            np.testing.assert_allclose(arrays["decoder.block.0"][i], out.decoder_hidden_states[1][0, -1].numpy(), atol=1e-5)
