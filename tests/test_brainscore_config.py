"""config/brainscore.yaml: Brain-Score Language 2.3.0's whole benchmark list as datasets + protocols, planned by
Snakemake offline (a dry run, as tests/test_workflow.py plans config/paper.yaml)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.support.workflow import snakemake

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "brainscore.yaml"

# Brain-Score Language 2.3.0's neural benchmarks -> (dataset in the config, protocol it must select)
NEURAL = {
    "Pereira2018.243sentences-linear-shuffle": ("pereira2018_243_linear", "brainscore-linear-shuffle"),
    "Pereira2018.384sentences-linear-shuffle": ("pereira2018_384_linear", "brainscore-linear-shuffle"),
    "Pereira2018.243sentences-ridge": ("pereira2018_243_ridge", "brainscore-ridge"),
    "Pereira2018.384sentences-ridge": ("pereira2018_384_ridge", "brainscore-ridge"),
    "Blank2014-linear-shuffle": ("blank2014_linear", "brainscore-linear-shuffle"),
    "Blank2014-ridge": ("blank2014_ridge", "brainscore-ridge"),
    "Fedorenko2016-linear-shuffle": ("fedorenko2016_linear", "brainscore-linear-shuffle"),
    "Fedorenko2016-ridge": ("fedorenko2016_ridge", "brainscore-ridge"),
    "Tuckute2024-linear": ("tuckute2024", "brainscore-linear-shuffle"),
    "Tuckute2024-ridge": ("tuckute2024", "brainscore-ridge-shuffle"),
    "Tuckute2024-rdm": ("tuckute2024", "brainscore-rdm"),
    "Tuckute2024-cka": ("tuckute2024", "brainscore-cka"),
}
OTHER_ADAPTERS = {"Futrell2018-pearsonr": "futrell2018_assembly", "Wikitext-accuracy": "wikitext", "syntaxgym-*": "syntaxgym"}


def _config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def test_every_brainscore_benchmark_has_its_dataset_and_protocol():
    from brainalign.datasets.registry import ADAPTERS
    from brainalign.encoding.protocols.registry import PROTOCOLS

    datasets = {d["name"]: d for d in _config()["datasets"]}
    for benchmark, (name, protocol) in NEURAL.items():
        assert name in datasets, f"{benchmark}: no dataset {name}"
        assert protocol in datasets[name]["encoding"]["protocols"], f"{benchmark}: {name} does not select {protocol}"
        assert protocol in PROTOCOLS, protocol
        assert datasets[name]["adapter"] in ADAPTERS
    adapters = {d["adapter"] for d in datasets.values()}
    assert set(OTHER_ADAPTERS.values()) <= adapters
    experiments = {d["name"]: d.get("options", {}).get("experiment") for d in datasets.values() if d["adapter"] == "pereira2018"}
    assert all(str(experiments[n]) == re.search(r"_(\d+)_", n).group(1) for n in experiments)
    # ridge and linear variants are normalised by ceilings of their own metric (Brain-Score's); Pereira's
    # linear-shuffle ceiling is Brain-Score's cached one (the adapter's published value, the default method)
    for name, entry in datasets.items():
        metric = entry.get("ceiling", {}).get("metric")
        if metric is not None:
            assert entry["ceiling"]["method"] == "brainscore-extrapolation"
            assert metric in entry["encoding"]["protocols"], name


@pytest.mark.slow
def test_dry_run_plans_every_benchmark(tmp_path):
    result = snakemake(tmp_path, "-n", "--cores", "2", configfile=CONFIG)
    out = result.stdout + result.stderr
    planned = set(re.findall(r"results-brainscore/(?:scores|behaviour|lm_scores)/[^/\s,]+/([A-Za-z0-9_]+)\.csv", out))
    config = _config()
    neural = {d["name"] for d in config["datasets"] if d["adapter"] not in set(OTHER_ADAPTERS.values())}
    assert neural | {"futrell2018", "wikitext", "syntaxgym"} <= planned, sorted(planned)
    assert "compute_ceiling" in out and "lm_readout" in out and "run_model" in out
