"""The SLURM profile against a real one-node SLURM cluster started on this machine (tests/slurm/setup_slurm.sh).

Skipped, with the reason, where SLURM cannot be set up (not root, no apt-get, daemons fail); CI here runs it.
It submits a reduced real workflow with profiles/slurm, checks from slurmctld's job records that the GPU rules
asked for a GPU on the gpu partition and the CPU rules did not, compares the scores table with a local run of
the same config (byte-identical), and stops the daemons by their process ids.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GPU_RULES = {"run_model"}

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("a local SLURM cluster needs root and apt-get")
    state = tmp_path_factory.mktemp("slurm_state")
    setup = subprocess.run(["bash", str(REPO / "tests" / "slurm" / "setup_slurm.sh"), str(state)], capture_output=True, text=True)
    if setup.returncode != 0:
        pytest.skip(f"SLURM could not start: {(setup.stderr or setup.stdout).strip().splitlines()[-1:]}")
    yield state
    subprocess.run(["bash", str(REPO / "tests" / "slurm" / "stop_slurm.sh"), str(state)], check=False)


def _config(workdir: Path) -> Path:
    path = workdir / "config.yaml"
    path.write_text((REPO / "tests" / "data" / "config_slurm.yaml").read_text().replace("RESOURCES", str(REPO / "resources" / "data")))
    return path


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(_config(workdir)), *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                            env=dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _job_records() -> list[dict]:
    out = subprocess.run(["scontrol", "-o", "show", "job"], capture_output=True, text=True).stdout
    records = []
    for line in out.splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        records.append(fields)
    return records


def test_slurm_profile_submits_gpu_rules_with_gpus_and_matches_a_local_run(slurm_cluster, tmp_path):
    slurm_dir, local_dir = tmp_path / "slurm", tmp_path / "local"
    slurm_dir.mkdir()
    local_dir.mkdir()
    _snakemake(slurm_dir, "--workflow-profile", str(REPO / "profiles" / "slurm"), "--slurm-status-command", "squeue",
               "--slurm-init-seconds-before-status-checks", "2", "--jobs", "4", "--latency-wait", "5",
               # this one-node test cluster has 2 CPUs: the profile's 4 CPUs per GPU, or a group of 8 one-thread
               # encoding jobs, would never be scheduled
               "--group-components", "encoding=1",
               "--set-resources", "run_model:slurm_partition=gpu", "run_model:cpus_per_gpu=1", "--set-threads", "run_model=1")
    records = [r for r in _job_records() if r.get("Comment", "").startswith("rule_") and str(slurm_dir) in r.get("WorkDir", "")]
    assert records, "no SLURM job records found"
    by_rule: dict[str, list[dict]] = {}
    for record in records:
        rule = record["Comment"][len("rule_"):].split("_wildcards")[0]
        by_rule.setdefault(rule, []).append(record)
    assert GPU_RULES <= set(by_rule), sorted(by_rule)
    for rule, jobs in by_rule.items():
        for job in jobs:
            assert job["JobState"] == "COMPLETED", (rule, job["JobState"])
            asks_gpu = "gpu" in job.get("TresPerJob", "") + job.get("TresPerNode", "") or "gres/gpu" in job.get("TRES", "")
            if rule in GPU_RULES:
                assert asks_gpu and job["Partition"] == "gpu", (rule, job)
            else:
                assert not asks_gpu and job["Partition"] == "cpu", (rule, job)
    # downloads and the study-level rules run on the submit host; the per-layer encodings go as groups
    assert not {"fetch_dataset", "collect_scores", "analyse", "figures", "summary"} & set(by_rule), sorted(by_rule)
    assert "prepare_dataset" in by_rule, sorted(by_rule)
    assert any(rule.startswith("encoding") for rule in by_rule), sorted(by_rule)
    _snakemake(local_dir, "--cores", "2")
    slurm_scores = (slurm_dir / "results" / "analysis" / "scores.csv").read_bytes()
    assert slurm_scores == (local_dir / "results" / "analysis" / "scores.csv").read_bytes()
