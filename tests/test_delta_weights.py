"""Delta weights (``delta_of``): a repo that publishes deltas to another model's weights (stable-vicuna-13b =
llama-13b + CarperAI/stable-vicuna-13b-delta) is prepared as the sum, a plain transformers folder.

Tiny random LLaMA models: a base, a target, and the delta = target - base saved as a model (what a delta repo
holds), prepared through the real code: from a local folder, and from the Hugging Face source reading an offline
cache (HF_HUB_OFFLINE=1) laid out as the Hub client lays it out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from brainalign.config import ConfigError, check_semantics, validate_schema
from brainalign.errors import BrainalignError
from brainalign.models.registry import get_source
from brainalign.models.session import load_model, prepare_model
from tests.support.tokenizers import byte_level_tokenizer

REPO = Path(__file__).resolve().parents[1]


def _llama(seed: int, vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, max_position_embeddings=128)
    return LlamaForCausalLM(config)


def _save(model, folder: Path, tokenizer) -> Path:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _delta_of(target, base):
    """The delta a repo publishes: target - base, parameter by parameter; rows the base lacks (a larger
    vocabulary) are the target's own (the base contributes zero there, as in CarperAI's apply_delta)."""
    delta = type(target)(target.config)
    base_state = base.state_dict()
    with torch.no_grad():
        for name, value in delta.state_dict().items():
            full = target.state_dict()[name].clone()
            rows = base_state[name].shape[0]
            full[:rows] -= base_state[name]
            value.copy_(full)
    return delta


def _prepared_state(folder: Path) -> dict:
    from safetensors.torch import load_file

    state = {}
    for file in sorted(folder.glob("*.safetensors")):
        state.update(load_file(file))
    return state


def _assert_equals_target(folder: Path, target):
    state = _prepared_state(folder)
    expected = target.state_dict()
    assert set(state) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(state[name].float(), value.float(), atol=1e-6, rtol=0, msg=name)


@pytest.fixture(scope="module")
def tokenizer():
    return byte_level_tokenizer()


@pytest.fixture(scope="module")
def base(tmp_path_factory, tokenizer):
    """The base model's own folder and its prepared folder (as the workflow's prepare_model leaves it)."""
    root = tmp_path_factory.mktemp("delta_base")
    model = _llama(0, len(tokenizer))
    folder = _save(model, root / "llama", tokenizer)
    spec = {"name": "tiny-llama", "source": "local", "path": str(folder), "kind": "decoder"}
    prepare_model(spec, root / "prepared")
    return model, root / "prepared"


@pytest.fixture(scope="module")
def target_and_delta(tmp_path_factory, tokenizer, base):
    model, _ = base
    target = _llama(1, len(tokenizer))
    folder = _save(_delta_of(target, model), tmp_path_factory.mktemp("delta") / "delta", tokenizer)
    return target, folder


def test_local_delta_is_added_to_the_base(base, target_and_delta, tmp_path):
    base_model, base_dir = base
    target, delta_dir = target_and_delta
    spec = {"name": "tiny-vicuna", "source": "local", "path": str(delta_dir), "kind": "decoder", "delta_of": "tiny-llama"}
    assert get_source("local").base_model(spec) == "tiny-llama"
    prepare_model(spec, tmp_path / "vicuna", base_dir=base_dir)
    _assert_equals_target(tmp_path / "vicuna", target)
    provenance = json.loads((tmp_path / "vicuna" / "provenance.json").read_text())
    assert provenance["delta_of"] == "tiny-llama" and provenance["path"] == str(delta_dir.resolve())
    assert provenance["base"]["name"] == "tiny-llama" and provenance["base"]["source"] == "local"
    # a normal transformers folder: no links into the delta folder, the delta's tokenizer, loads and runs
    assert not any(p.is_symlink() for p in (tmp_path / "vicuna").iterdir())
    loaded = load_model(spec, tmp_path / "vicuna", device="cpu")
    ids = loaded.tokenizer("Alice was tired.", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        torch.testing.assert_close(loaded.model(input_ids=ids).logits, target(input_ids=ids).logits, atol=1e-5, rtol=0)


def _fake_hub_cache(cache: Path, repo_id: str, folder: Path, commit: str = "a" * 40) -> None:
    """``folder``'s files as the Hub client caches a snapshot: blobs, snapshots/<commit>/ links, refs/main."""
    storage = cache / ("models--" + repo_id.replace("/", "--"))
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(commit)
    snapshot = storage / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (storage / "blobs").mkdir()
    for i, file in enumerate(sorted(folder.iterdir())):
        blob = storage / "blobs" / f"{i:040d}"
        blob.write_bytes(file.read_bytes())
        (snapshot / file.name).symlink_to(Path("..", "..", "blobs", blob.name))


def test_hub_delta_from_an_offline_cache(base, target_and_delta, tmp_path, monkeypatch):
    """The `hub` source with HF_HUB_OFFLINE=1 and the delta repo in the local Hugging Face cache (what a compute
    node without internet sees after `hf download` on a login node)."""
    import huggingface_hub.constants as hub_constants

    _, base_dir = base
    target, delta_dir = target_and_delta
    cache = tmp_path / "hf_cache"
    _fake_hub_cache(cache, "carper/tiny-vicuna-delta", delta_dir)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    spec = {"name": "tiny-stable-vicuna", "source": "hub", "hf_id": "carper/tiny-vicuna-delta", "revision": "main", "kind": "decoder",
            "delta_of": "tiny-llama"}
    assert get_source("hub").base_model(spec) == "tiny-llama"
    prepare_model(spec, tmp_path / "models" / "stable", base_dir=base_dir)
    _assert_equals_target(tmp_path / "models" / "stable", target)
    provenance = json.loads((tmp_path / "models" / "stable" / "provenance.json").read_text())
    assert provenance["hf_id"] == "carper/tiny-vicuna-delta" and provenance["revision"] == "main" and provenance["delta_of"] == "tiny-llama"
    assert provenance["base"]["name"] == "tiny-llama" and provenance["base"]["source"] == "local"
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["stable"]  # the downloaded deltas are not left behind
    # the same repo without delta_of is the delta folder itself (a plain hub model, from the same cache)
    prepare_model(dict(spec, name="plain", delta_of=None), tmp_path / "plain")
    assert (tmp_path / "plain" / "config.json").exists()


def test_a_larger_delta_vocabulary_adds_over_the_base_rows(tokenizer, base, tmp_path):
    """stable-vicuna's delta has one more token ([PAD]) than LLaMA: embedding and lm_head rows beyond the base's
    vocabulary are the delta's own (the base is resized with zero rows, CarperAI's apply_delta)."""
    base_model, base_dir = base
    target = _llama(2, len(tokenizer) + 1)
    tokenizer.save_pretrained(tmp_path / "delta")
    _delta_of(target, base_model).save_pretrained(tmp_path / "delta")
    spec = {"name": "wide", "source": "local", "path": str(tmp_path / "delta"), "kind": "decoder", "delta_of": "tiny-llama"}
    prepare_model(spec, tmp_path / "wide", base_dir=base_dir)
    _assert_equals_target(tmp_path / "wide", target)
    assert json.loads((tmp_path / "wide" / "config.json").read_text())["vocab_size"] == len(tokenizer) + 1


def test_other_shape_differences_are_refused_naming_the_parameter(tokenizer, base, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    _, base_dir = base
    torch.manual_seed(3)
    other = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128))
    _save(other, tmp_path / "delta", tokenizer)
    spec = {"name": "odd", "source": "local", "path": str(tmp_path / "delta"), "kind": "decoder", "delta_of": "tiny-llama"}
    with pytest.raises(BrainalignError, match=r"^model odd: delta parameter model\.layers\.0\.mlp\.\w+_proj\.weight has shape "
                                              r"\(\d+, \d+\), the base tiny-llama's \(\d+, \d+\)[^\n]*$"):
        prepare_model(spec, tmp_path / "odd", base_dir=base_dir)
    assert not (tmp_path / "odd").exists()
    with pytest.raises(BrainalignError, match="model odd: delta_of tiny-llama needs the prepared folder of tiny-llama"):
        prepare_model(spec, tmp_path / "odd")


# ----------------------------------------------------------------------------------------------- config
def _config(**extra):
    models = [{"name": "llama", "source": "hub", "hf_id": "org/llama", "kind": "decoder"},
              dict({"name": "vicuna", "source": "hub", "hf_id": "org/vicuna-delta", "kind": "decoder"}, **extra)]
    return {"models": models, "datasets": [{"name": "d", "adapter": "a"}]}


def test_delta_of_must_name_a_model_of_the_config():
    config = _config(delta_of="llama")
    validate_schema(config)
    check_semantics(config)
    with pytest.raises(ConfigError,
                       match=r"^config\.models\[1\]\.delta_of: model 'llama-13b' is not in config\.models \(known: llama, vicuna\)$"):
        check_semantics(_config(delta_of="llama-13b"))
    with pytest.raises(ConfigError, match=r"^config\.models\[1\]\.delta_of: a model cannot be the base of its own delta"):
        check_semantics(_config(delta_of="vicuna"))
    untrained = _config(delta_of="ctl")
    untrained["models"].append({"name": "ctl", "source": "untrained", "architecture_of": "llama", "kind": "decoder"})
    with pytest.raises(ConfigError, match=r"^config\.models\[1\]\.delta_of: 'ctl' is untrained"):
        check_semantics(untrained)
    packaged = _config()
    packaged["models"][1] = {"name": "vicuna", "source": "package_folder", "package": "p==1", "folder": "p/m", "kind": "decoder",
                             "delta_of": "llama"}
    with pytest.raises(ConfigError, match=r"^config\.models\[1\] \(vicuna\): source 'package_folder' cannot take delta_of"):
        check_semantics(packaged)


def test_the_paper_config_prepares_stable_vicuna_from_llama_13b():
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    validate_schema(config)
    check_semantics(config)
    spec = next(m for m in config["models"] if m["name"] == "stable-vicuna-13b")
    assert spec["hf_id"] == "CarperAI/stable-vicuna-13b-delta" and spec["delta_of"] == "llama-13b"
    assert get_source(spec["source"]).base_model(spec) == "llama-13b"
    assert "by hand" not in (REPO / "config" / "paper.yaml").read_text()


def test_the_workflow_prepares_the_base_before_the_delta(tmp_path):
    """prepare_model of a delta model gets the base's prepared folder as its input (common.smk, via the registry)."""
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                             "--configfile", str(REPO / "config" / "paper.yaml"), "--cores", "1", "resources/models/stable-vicuna-13b"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs = [block for block in result.stdout.split("rule ") if block.startswith("prepare_model")]
    assert len(jobs) == 2
    delta_job = next(job for job in jobs if "output: resources/models/stable-vicuna-13b" in job)
    assert "input: resources/models/llama-13b" in delta_job
