"""bfloat16 matrix products (``extraction.matmul_dtype: bfloat16``): each product equals a float64 product of the
bfloat16-rounded inputs to the output's rounding; the LM head and everything outside the linear layers stay
float32; shards and checkpoints record and separate the arithmetic."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.errors import BrainalignError
from brainalign.extraction.activations import extract_to_shard
from brainalign.extraction.checkpoint import checkpoint_dir_for
from brainalign.models.precision import BFloat16Linear, use_bfloat16_matmuls
from brainalign.models.session import load_model, prepare_model

BF16_STEP = 2.0**-8  # bfloat16 keeps 8 significant bits: a rounded value is within 2^-9 of it, relatively


def test_a_bfloat16_product_is_the_exact_product_of_the_rounded_inputs():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(7, 33, generator=generator)
    linear = torch.nn.Linear(33, 5)
    module = BFloat16Linear(linear.weight, linear.bias)
    exact = x.to(torch.bfloat16).double() @ linear.weight.detach().to(torch.bfloat16).double().T
    product = module(x).double() - linear.bias.detach().double()
    assert module(x).dtype == torch.float32 and module.weight.dtype == torch.bfloat16
    # the float32 accumulator's result, rounded once to bfloat16 (and the bias added in float32)
    assert torch.all((product - exact).abs() <= BF16_STEP * exact.abs() + 1e-6)
    plain = (x.double() @ linear.weight.detach().double().T)
    assert (product - plain).abs().max() > 1e-4  # the inputs were rounded: not the float32 product


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, tie_word_embeddings=True, max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


def test_every_linear_layer_but_the_lm_head_multiplies_in_bfloat16():
    model = _tiny_llama()
    ids = torch.randint(0, 97, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        reference = model(input_ids=ids, output_hidden_states=True)
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert use_bfloat16_matmuls(model) == n_linear - 1  # 7 per block (q, k, v, o, gate, up, down) x 2 blocks
    linears = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert linears == ["lm_head"] and model.lm_head.weight.dtype == torch.float32
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied
    with torch.inference_mode():
        mixed = model(input_ids=ids, output_hidden_states=True)
    for a, b in zip(reference.hidden_states[1:], mixed.hidden_states[1:]):
        assert b.dtype == torch.float32  # the residual stream stays float32
        error = float((a - b).norm() / a.norm())
        assert 1e-5 < error < 2e-2
    assert float((reference.logits - mixed.logits).abs().max()) < 0.05


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    texts = ["The quick brown fox jumps.", "She didn't say a word.", "Alice was very tired of sitting.", "Numbers 1999 and 42."]
    stimuli = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(len(texts))], "text": texts,
                            "group": [f"s{i}" for i in range(len(texts))], "position": range(len(texts))})
    meta = {"name": "toy", "kind": "sentence", "description": "", "source": "", "licence": "", "provenance": "",
            "context": "sentence", "group_averaged": True}
    folder = tmp_path_factory.mktemp("precision") / "ds"
    responses = np.zeros((1, len(texts), 1), dtype=np.float32)
    write_prepared(PreparedDataset(stimuli, responses, ["average"], ["lang"], meta=meta), folder)
    return folder


def _layers(path) -> dict:
    with h5py.File(path) as handle:
        return {name: handle["layers"][name][:] for name in json.loads(handle.attrs["layer_names"])}, dict(handle.attrs)


def test_gpt2_shards_record_their_arithmetic_and_keep_separate_checkpoints(tiny_gpt2_dir, tiny_dataset, tmp_path):
    spec = {"name": "tiny", "source": "local", "path": str(tiny_gpt2_dir), "kind": "decoder"}
    options = {"progress": False, "device": "cpu", "batch_size": 2}
    shards = {}
    for matmul in ("float32", "bfloat16"):
        out = tmp_path / f"{matmul}.h5"
        extract_to_shard(spec, tiny_gpt2_dir, tiny_dataset, out, dict(options, matmul_dtype=matmul), keep_checkpoint=True)
        shards[matmul] = _layers(out)
        folders = [p.name for p in checkpoint_dir_for(out).iterdir()]
        assert folders == ["float32" if matmul == "float32" else "float32-bfloat16-matmuls"]
    (exact, exact_attrs), (mixed, mixed_attrs) = shards["float32"], shards["bfloat16"]
    assert exact_attrs["matmul_dtype"] == "float32" and mixed_attrs["matmul_dtype"] == "bfloat16"
    blocks = [name for name in exact if name != "transformer.wte"]
    for name in blocks:  # GPT-2's Conv1D layers were swapped too: every block moved, a little
        error = np.linalg.norm(exact[name] - mixed[name]) / np.linalg.norm(exact[name])
        assert 1e-5 < error < 2e-2, name


def test_a_model_in_half_precision_keeps_its_own_products_and_a_wrong_value_is_named(tiny_gpt2_dir, tmp_path):
    spec = {"name": "tiny", "source": "local", "path": str(tiny_gpt2_dir), "kind": "decoder"}
    prepare_model(spec, tmp_path / "tiny")
    half = load_model(spec, tmp_path / "tiny", device="cpu", dtype="bfloat16", matmul_dtype="bfloat16")
    assert half.info["matmul_dtype"] == "bfloat16" and not any(isinstance(m, BFloat16Linear) for m in half.model.modules())
    with pytest.raises(BrainalignError, match="extraction.matmul_dtype: unknown value 'float8'"):
        load_model(spec, tmp_path / "tiny", device="cpu", matmul_dtype="float8")
