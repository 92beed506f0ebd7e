"""Cluster resources of the model jobs (brainalign/resources.py, called by workflow/rules/common.smk): memory per
dtype and attempt, the float32 retry's memory, runtime, GPUs, and the small download job of prepare_model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from brainalign import resources

REPO = Path(__file__).resolve().parents[1]
B = 1_000_000_000


def test_memory_per_dtype_and_attempt():
    assert resources.model_mem_mb({"n_params": B, "dtype": "float32"}) == 4500 + 4000
    assert resources.model_mem_mb({"n_params": B, "dtype": "float16"}) == 2500 + 4000
    assert resources.model_mem_mb({"n_params": B, "dtype": "bfloat16"}) == 2500 + 4000
    assert resources.model_mem_mb({"n_params": B, "dtype": "float32"}, attempt=2) == 2 * 8500
    assert resources.model_mem_mb({}) == 8500  # no n_params: 1e9 assumed, float32 by default
    # LLaMA-33B in float16 (the README's ~87 GB)
    assert resources.model_mem_mb({"n_params": 33 * B, "dtype": "float16"}) == 86500


def test_the_default_config_asks_for_what_it_asked_before():
    """The formula common.smk had inline: (n_params * (4.5 if float32 else 2.5) / 1e6 + 4000) * attempt."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for spec in config["models"]:
        for attempt in (1, 2, 3):
            bytes_per_param = 4.5 if spec.get("dtype", "float32") == "float32" else 2.5
            assert resources.model_mem_mb(spec, attempt) == int((spec["n_params"] * bytes_per_param / 1e6 + 4000) * attempt)
            assert resources.model_runtime_min(spec, attempt) == int((30 + 10 * spec["n_params"] / 1e9) * attempt)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_retry_of_a_half_precision_model_reserves_the_float32_reload(dtype, monkeypatch):
    """extract_to_shard reloads a float16/bfloat16 model that gave NaN in float32 inside the same job: a retried
    job (attempt >= 2, the first one may have been killed during that reload) asks for at least the float32
    memory; with retry_float32_on_nonfinite: false it never reloads and a retry only scales the first request."""
    spec = {"n_params": 33 * B, "dtype": dtype}
    float32 = resources.weights_mem_mb(33 * B, "float32")
    assert resources.model_mem_mb(spec, 1) < float32  # the first attempt asks for its own dtype only
    assert resources.model_mem_mb(spec, 2) >= float32
    assert resources.needs_float32_on_retry(spec) and not resources.needs_float32_on_retry(dict(spec, retry_float32_on_nonfinite=False))
    assert not resources.needs_float32_on_retry({"n_params": B, "dtype": "float32"})
    # the float32 term is what binds when doubling the half-precision request is not enough
    monkeypatch.setitem(resources.BYTES_PER_PARAM, "float32", 6.0)
    assert resources.model_mem_mb(spec, 2) == int(resources.weights_mem_mb(33 * B, "float32")) > 2 * resources.model_mem_mb(spec, 1)
    assert resources.model_mem_mb(dict(spec, retry_float32_on_nonfinite=False), 2) == 2 * resources.model_mem_mb(spec, 1)


def test_runtime_grows_with_size_and_attempt_gpus_do_not():
    spec = {"n_params": 13 * B, "dtype": "float16", "gpus": 2}
    assert resources.model_runtime_min(spec) == 160 and resources.model_runtime_min(spec, 2) == 320
    assert resources.model_gpus(spec) == resources.model_gpus(spec, attempt=3) == 2  # more GPUs only help device_map sharding
    assert resources.model_gpus({}) == 1


def test_prepare_model_is_a_small_download_job():
    """prepare_model (a Hub download, a link, a streamed delta sum) asks for little, whatever the model's size;
    converting a GGUF model holds it twice in float32."""
    llama33 = {"name": "llama-33b", "source": "hub", "n_params": 33 * B, "dtype": "float16"}
    assert resources.prepare_mem_mb(llama33) == resources.DOWNLOAD_MEM_MB <= 4000
    assert resources.prepare_mem_mb(dict(llama33, delta_of="llama-13b")) <= 8000
    assert resources.prepare_runtime_min(llama33) > resources.prepare_runtime_min(dict(llama33, n_params=B))
    gguf = {"name": "smollm2", "source": "gguf_package", "n_params": 134515008}
    assert resources.prepare_mem_mb(gguf) == int(2 * 4 * 134515008 / 1e6 + 2000)


def test_where_prepare_model_runs():
    assert resources.download_partition({}) is None and resources.download_partition({"cluster": {}}) is None
    assert resources.download_partition({"cluster": {"download_partition": "transfer"}}) == "transfer"
    assert resources.prepare_resources({"source": "hub", "n_params": B}, {}) == {
        "mem_mb": resources.DOWNLOAD_MEM_MB, "runtime": resources.prepare_runtime_min({"source": "hub", "n_params": B})}
    on_partition = resources.prepare_resources({"source": "hub", "n_params": B}, {"cluster": {"download_partition": "transfer"}})
    assert on_partition["slurm_partition"] == "transfer"


def _dry_run(tmp_path, *args):
    command = [sys.executable, "-m", "snakemake", "resources/models/llama-33b", "-n", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(tmp_path), "--workflow-profile", str(REPO / "profiles" / "slurm"),
               "--configfile", str(REPO / "config" / "paper.yaml"), *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return next(block for block in result.stdout.split("rule ") if block.startswith("prepare_model"))


def test_the_slurm_dry_run_asks_little_for_the_download(tmp_path):
    job = _dry_run(tmp_path)
    assert f"mem_mb={resources.DOWNLOAD_MEM_MB}," in job and "86500" not in job
    job = _dry_run(tmp_path, "--config", "cluster={download_partition: transfer}")
    assert "slurm_partition=transfer" in job and f"mem_mb={resources.DOWNLOAD_MEM_MB}," in job


def _local_rules(tmp_path, config: dict) -> set:
    """The workflow's local rules, read from Snakemake's own Workflow object (no public accessor exists)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings(quiet=None)) as api:
        workflow_api = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=REPO / "Snakefile", workdir=tmp_path,
                                    config_settings=ConfigSettings(configfiles=[REPO / "config" / "paper.yaml"], config=config))
        workflow_api.dag()
        local = getattr(workflow_api._workflow, "_localrules", None)
    if local is None:
        pytest.skip("this Snakemake keeps its local rules elsewhere")
    return set(local)


def test_prepare_model_runs_on_the_submit_host_unless_a_download_partition_is_set(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    assert "prepare_model" in _local_rules(tmp_path, {})
    monkeypatch.chdir(REPO)
    assert "prepare_model" not in _local_rules(tmp_path, {"cluster": {"download_partition": "transfer"}})


def test_the_largest_model_jobs_start_first_after_every_preparation():
    specs = {"small": {"n_params": 2e7}, "large": {"n_params": 3e8}, "medium": {"n_params": 1e8},
             "medium-untrained": {"n_params": 1e8}, "unknown": {}}
    priorities = {name: resources.model_priority(specs, name) for name in specs}
    # by size, ties in config order; an entry without n_params counts as 1e9 parameters
    assert priorities == {"small": 1, "medium": 2, "medium-untrained": 3, "large": 4, "unknown": 5}
    assert resources.prepare_priority(specs) > max(priorities.values()) > 0  # encoding jobs have priority 0
