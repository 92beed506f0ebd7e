"""docs/DESIGN.md's recipes, followed from outside the package and run through the workflow end to end.

``tests/support/toy_plugin.py`` registers one of each extension (a dataset adapter, a model source with its own
config key, an encoding protocol, a layer metric, a figure); a config names it under ``plugins``, and Snakemake
runs the whole DAG on a tiny GPT-2 and the toy sentences: each extension must show up in the outputs, with no
edit to the package, the schema or the workflow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from brainalign.datasets.fetch import write_manifest
from tests.support.models import save_tiny_gpt2
from tests.support.toy_dataset import write_raw
from tests.support.toy_names import TOY_CAPTION

REPO = Path(__file__).resolve().parents[1]
PLUGIN = "tests.support.toy_plugin"

pytestmark = pytest.mark.slow


def toy_config(tmp_path: Path) -> dict:
    model_dir = save_tiny_gpt2(tmp_path / "tiny-gpt2")
    raw = write_raw(tmp_path / "toy_raw").parent
    write_manifest(raw)  # local data carry a checksum manifest (docs/datasets.md)
    return {
        "plugins": [PLUGIN],
        "comparison_label": "trained vs untrained",
        "encoding": {"protocols": ["ridge-grouped", "toy-ols"], "n_bootstrap": 50},
        "ceiling": {"n_bootstrap": 10},
        "models": [
            {"name": "toy-gpt2", "source": "toy_folder", "toy_folder": str(model_dir), "kind": "decoder",
             "family": "Toy", "base_model": "toy-gpt2-untrained"},
            {"name": "toy-gpt2-untrained", "source": "untrained", "architecture_of": "toy-gpt2", "kind": "decoder",
             "family": "Toy", "trained": False},
        ],
        "datasets": [{"name": "toy", "adapter": "toy_sentences", "local_dir": str(raw)}],
    }


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("recipes")
    config_path = tmp_path / "toy.yaml"
    config_path.write_text(yaml.safe_dump(toy_config(tmp_path)))
    workdir = tmp_path / "run"
    workdir.mkdir()
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(config_path), "--cores", "2"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir / "results"


def test_the_plugins_dataset_and_source_run_through_every_stage(toy_run):
    tidy = pd.read_csv(toy_run / "analysis" / "scores.csv")
    assert set(tidy["model"]) == {"toy-gpt2", "toy-gpt2-untrained"} and set(tidy["dataset"]) == {"toy"}
    models = pd.read_csv(toy_run / "analysis" / "models.csv")
    assert models.set_index("model").loc["toy-gpt2", "model_id"].endswith("tiny-gpt2")  # the source's own key


def test_the_plugins_protocol_and_layer_metric_get_rows(toy_run):
    scores = pd.read_csv(toy_run / "scores" / "toy-gpt2" / "toy.csv")
    toy_protocol = scores[(scores["protocol"] == "toy-ols") & (scores["metric"] == "linear")]
    assert set(toy_protocol["selection"]) >= {"layer", "best"} and toy_protocol["raw_r"].notna().all()
    spread = scores[scores["metric"] == "toy-spread"]
    # embedding + 2 blocks; the embedding read at every sentence's final "." is one row repeated: spread 0
    assert len(spread[spread["selection"] == "layer"]) == 3 and (spread["raw_r"] >= 0).all() and spread["raw_r"].max() > 0


def test_the_plugins_figure_is_drawn_captioned_and_on_the_summary_page(toy_run):
    figures = toy_run / "figures"
    assert (figures / "toy_figure.png").is_file() and (figures / "data" / "toy_figure.csv").is_file()
    assert json.loads((figures / "captions.json").read_text())["toy_figure"] == TOY_CAPTION
    assert TOY_CAPTION.split(":")[0] in (toy_run / "summary.html").read_text()


def test_the_test_process_never_imports_the_plugin():
    """The plugin registers into process-wide registries: only the workflow's processes may import it."""
    assert PLUGIN not in sys.modules


def test_an_unimportable_plugin_is_one_line_at_config_load(tmp_path):
    config = {"plugins": ["no_such_plugin_module"], "models": [{"name": "m", "source": "local", "path": str(tmp_path),
                                                               "kind": "decoder"}],
              "datasets": [{"name": "t", "adapter": "tuckute2024"}]}
    config_path = tmp_path / "bad.yaml"
    config_path.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "-n",
                             "--directory", str(tmp_path), "--configfile", str(config_path)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode != 0
    assert "config.plugins[0]: cannot import 'no_such_plugin_module'" in result.stderr
