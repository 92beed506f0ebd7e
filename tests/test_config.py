"""Config checks: every bad config fails at load with one line naming the field (issue: reliability)."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from brainalign.config import ConfigError, encoding_options, load_and_check, models_table

REPO = Path(__file__).resolve().parents[1]
ADAPTERS = {"tuckute2024": None, "pereira2018_averaged": None, "brennan2016": None, "naturalstories": None, "frank2013": None}


@pytest.fixture()
def default_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_default_config_is_valid_and_gets_defaults(default_config):
    config = load_and_check(default_config, ADAPTERS)
    assert config["encoding"]["n_folds"] == 5
    assert config["extraction"]["readout"] == "last"
    assert config["seed"] == 0


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c.update(modles=[]), "config: Additional properties are not allowed ('modles' was unexpected)"),
        (lambda c: c["models"][0].pop("source"), "config.models[0]: 'source' is a required property"),
        (lambda c: c["models"][0].update(n_params="big"), "config.models[0].n_params: 'big' is not of type 'integer'"),
        (lambda c: c["models"][0].update(kind="rnn"), "config.models[0].kind: 'rnn' is not one of"),
        (lambda c: c["encoding"].update(n_folds=1) if "encoding" in c else c.update(encoding={"n_folds": 1}),
         "config.encoding.n_folds: 1 is less than the minimum of 2"),
        (lambda c: c["models"].append(copy.deepcopy(c["models"][0])), "duplicate model name 'smollm2-135m-instruct'"),
        (lambda c: c["models"][0].update(base_model="missing-model"),
         "config.models[0].base_model: model 'missing-model' is not in config.models"),
        (lambda c: c["datasets"][0].update(adapter="nosuch"), "config.datasets[0].adapter: unknown adapter 'nosuch'"),
        (lambda c: c["models"].append({"name": "x", "source": "hub", "kind": "decoder"}), "source 'hub' needs the key 'hf_id'"),
        (lambda c: c["models"][0].update(source="s3"),
         "config.models[0].source: 's3' is not one of ['hub', 'local', 'gguf_package', 'package_folder', 'untrained']"),
        (lambda c: c["models"][0].pop("gguf"), "config.models[0] (smollm2-135m-instruct): source 'gguf_package' needs 'gguf'"),
        (lambda c: c["models"][2].pop("folder"),
         "config.models[2] (all-minilm-l6-v2): source 'package_folder' needs the key 'folder'"),
        (lambda c: c.update(result_dir="out"), "config: Additional properties are not allowed ('result_dir' was unexpected)"),
        (lambda c: c.update(results_dir="out put"), "config.results_dir: 'out put' does not match"),
        (lambda c: c["datasets"][0].update(encoding={"inner_cv": "jackknife"}),
         "config.datasets[0].encoding.inner_cv: 'jackknife' is not one of"),
        (lambda c: c.setdefault("encoding", {}).update(alphas=[]), "config.encoding.alphas: [] should be non-empty"),
        (lambda c: c.setdefault("encoding", {}).update(alphas=[1.0, 0.0]),
         "config.encoding.alphas[1]: 0.0 is less than or equal to the minimum of 0"),
        (lambda c: c.setdefault("encoding", {}).update(protocols=[]), "config.encoding.protocols: [] should be non-empty"),
        (lambda c: c["datasets"][0].update(encoding={"alphas": []}), "config.datasets[0].encoding.alphas: [] should be non-empty"),
        (lambda c: c["datasets"][0].update(encoding={"n_fold": 3}),
         "config.datasets[0].encoding: unknown key 'n_fold' (allowed keys:"),
    ],
)
def test_bad_config_names_the_field(default_config, mutate, expected):
    mutate(default_config)
    with pytest.raises(ConfigError) as info:
        load_and_check(default_config, ADAPTERS)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_models_table_pairs_and_properties(default_config, tmp_path):
    config = load_and_check(default_config, ADAPTERS)
    properties = tmp_path / "props.csv"
    properties.write_text("model,mmlu_overall,note\nsmollm2-135m-instruct,0.25,x\n")
    table = models_table(config, properties)
    row = table.set_index("model").loc["smollm2-135m-instruct"]
    assert row["vanilla_base_model"] == "smollm2-135m-untrained"
    assert row["instruction_tuned"] == 1 and row["mmlu_overall"] == 0.25
    assert "note" not in table.columns  # only numeric properties are joined
    untrained = table.set_index("model").loc["gemma-3-270m-untrained"]
    assert untrained["trained"] == 0 and untrained["vanilla_base_model"] == "gemma-3-270m-untrained"


def test_models_table_says_how_each_model_multiplies(default_config):
    """The report's models table names each model's arithmetic: its dtype, and bfloat16 products where
    ``extraction.matmul_dtype`` asks for them (float32 models only; a half-precision model multiplies in its own)."""
    default_config["models"][1]["dtype"] = "float16"
    table = models_table(load_and_check(default_config, ADAPTERS)).set_index("model")["arithmetic"]
    assert table["smollm2-135m-instruct"] == "float32, bfloat16 products"  # config/config.yaml's choice
    assert table["gemma-3-270m"] == "float16"
    default_config["extraction"]["matmul_dtype"] = "float32"
    assert models_table(load_and_check(default_config, ADAPTERS)).set_index("model")["arithmetic"]["smollm2-135m-instruct"] == "float32"


def test_snakemake_stops_before_any_job_on_bad_config(tmp_path, default_config):
    default_config["models"][1]["kind"] = "rnn"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(default_config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(bad), "--directory", str(tmp_path),
         "--snakefile", str(REPO / "Snakefile")],
        capture_output=True, text=True, cwd=REPO,
    )
    assert result.returncode != 0
    assert "config.models[1].kind: 'rnn' is not one of" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_dataset_encoding_overrides_apply_to_that_dataset_only(default_config):
    default_config["encoding"] = {"n_folds": 4}
    default_config["datasets"][0]["encoding"] = {"inner_cv": "loo", "n_bootstrap": 0}
    config = load_and_check(default_config, ADAPTERS)
    first, second = (d["name"] for d in config["datasets"][:2])
    assert encoding_options(config, first)["inner_cv"] == "loo" and encoding_options(config, first)["n_folds"] == 4
    assert encoding_options(config, first)["n_bootstrap"] == 0
    assert encoding_options(config, second)["inner_cv"] == "grouped" and encoding_options(config, second)["n_bootstrap"] == 1000
