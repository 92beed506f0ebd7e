"""A dataset's options are checked against its adapter's (brainalign.datasets.options): a misspelt key or a value
the adapter does not know stops the config at load, naming the field and the keys allowed, instead of being
ignored; fetch and prepare get the schema's defaults filled in."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import yaml

from brainalign.config import ConfigError, load_and_check
from brainalign.datasets.options import adapter_option_schema, dataset_options
from brainalign.datasets.registry import _ADAPTER_MODULES, ADAPTERS
from brainalign.errors import BrainalignError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "brainalign" / "schemas" / "config.schema.yaml").read_text())["$defs"]


def _config(dataset: dict) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["datasets"] = [dataset]
    config["analysis"] = {}  # the default's headline names datasets this config no longer has
    return config


@pytest.mark.parametrize("dataset, says", [
    ({"name": "w", "adapter": "wehbe2014", "options": {"voxel": "all"}},
     "config.datasets[0].options: unknown key 'voxel' for adapter wehbe2014 (allowed keys: checksums, fetch_backoff_s, "
     "fetch_retries, fetch_timeout_s, subset, voxels)"),
    ({"name": "w", "adapter": "wehbe2014", "options": {"voxels": "al"}}, "config.datasets[0].options.voxels: 'al' is not one of"),
    ({"name": "p", "adapter": "pereira2018"}, "config.datasets[0].options: 'experiment' is a required property"),
    ({"name": "p", "adapter": "pereira2018", "options": {"experiment": 242}}, "options.experiment: 242 is not one of"),
    ({"name": "s", "adapter": "syntaxgym", "options": {"suites": "cleft"}}, "options.suites: 'cleft' is not of type 'array'"),
    ({"name": "t", "adapter": "tuckute2024", "options": {"subset": 0}}, "options.subset: 0 is less than the minimum of 1"),
    ({"name": "t", "adapter": "tuckute2024", "options": {"experiment": 243}}, "unknown key 'experiment' for adapter tuckute2024"),
    ({"name": "t", "adapter": "tuckute2024", "options": {"checksums": {"a.csv": "sha256:xyz"}}},
     "options.checksums.a.csv: 'sha256:xyz' is not 'sha1:<40 hex>'"),
    ({"name": "b", "adapter": "brennan2016", "options": {"roi_radius": "8mm"}}, "options.roi_radius: '8mm' is not one of"),
])
def test_a_bad_option_stops_the_config_naming_the_field(dataset, says):
    with pytest.raises(ConfigError) as error:
        load_and_check(_config(dataset), ADAPTERS)
    assert says in str(error.value) and "\n" not in str(error.value), str(error.value)


def test_good_options_pass_and_are_left_as_written():
    dataset = {"name": "w", "adapter": "wehbe2014", "options": {"voxels": "all", "subset": 2}}
    config = load_and_check(_config(dict(dataset)), ADAPTERS)
    assert config["datasets"][0]["options"] == {"voxels": "all", "subset": 2}  # defaults are filled at use, not here


def test_fetch_and_prepare_get_the_schemas_defaults():
    common = SCHEMA["dataset_options"]["properties"]
    own = SCHEMA["adapter_options"]["adapters"]["wikitext"]["properties"]
    options = dataset_options({"name": "wt", "adapter": "wikitext", "options": {"n_rows": 10}})
    assert options["n_rows"] == 10 and options["member"] == own["member"]["default"]
    assert {k: options[k] for k in ("fetch_retries", "fetch_backoff_s", "fetch_timeout_s")} == {
        k: common[k]["default"] for k in ("fetch_retries", "fetch_backoff_s", "fetch_timeout_s")}
    assert dataset_options({"name": "w", "adapter": "wehbe2014"})["voxels"] == "language"
    with pytest.raises(BrainalignError, match="dataset 'w' options: unknown key 'voxel'"):
        dataset_options({"name": "w", "adapter": "wehbe2014", "options": {"voxel": "all"}})


def test_a_plugin_adapter_declares_its_options():
    plugin = types.SimpleNamespace(OPTIONS={"properties": {"level": {"enum": ["a", "b"], "default": "a"}}})
    assert dataset_options({"name": "x", "adapter": "my_plugin", "options": {}}, plugin)["level"] == "a"
    with pytest.raises(BrainalignError, match="'c' is not one of"):
        dataset_options({"name": "x", "adapter": "my_plugin", "options": {"level": "c"}}, plugin)
    with pytest.raises(BrainalignError, match="unknown key 'level' for adapter my_plugin"):
        dataset_options({"name": "x", "adapter": "my_plugin", "options": {"level": "a"}}, types.SimpleNamespace())


def test_the_schema_lists_options_of_registered_adapters_only_and_shipped_configs_pass():
    assert set(SCHEMA["adapter_options"]["adapters"]) <= set(_ADAPTER_MODULES)
    for name in _ADAPTER_MODULES:
        assert adapter_option_schema(name)["additionalProperties"] is False
    for path in sorted((REPO / "config").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        if "models" in config and "datasets" in config:
            load_and_check(config, ADAPTERS)
