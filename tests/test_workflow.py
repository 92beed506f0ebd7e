"""The workflow end to end through Snakemake itself, on a reduced default config (real models, real data).

Checks outputs, not just exit codes: the tidy table's rows and values, figures, the summary page; that a
forced re-extraction of one model rebuilds only that model's downstream files; that results do not depend on
--cores (byte-identical tables).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.support.snakemake import planned_jobs
from tests.support.workflow import snakemake  # the finished run, small_run, is tests/conftest.py's (shared with test_faults.py)

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/paper.yaml"])
def test_dry_run_plans_the_study(tmp_path, configfile):
    result = snakemake(tmp_path, "-n", "--cores", "2", configfile=REPO / configfile)
    out = result.stdout + result.stderr
    assert "fetch_dataset" in out and "prepare_dataset" in out and "run_model" in out


def test_results_of_different_configs_sit_side_by_side(tmp_path):
    """The default run writes under results/ and logs/, config/paper.yaml (results_dir: results-paper) under
    results-paper/, its logs included: neither run overwrites the other's files."""
    default = snakemake(tmp_path, "-n", "--cores", "2", configfile=REPO / "config" / "config.yaml").stdout
    paper = snakemake(tmp_path, "-n", "--cores", "2", configfile=REPO / "config" / "paper.yaml").stdout

    def outputs(text):
        return [path for line in text.splitlines() if line.strip().startswith(("output:", "log:"))
                for path in line.split(":", 1)[1].replace(",", " ").split()]

    assert outputs(default) and all(p.startswith(("results/", "logs/", "resources/")) for p in outputs(default))
    assert "results-paper/summary.html" in outputs(paper) and "results-paper/logs/summary.log" in outputs(paper)
    assert all(p.startswith(("results-paper/", "resources/")) for p in outputs(paper)), \
        [p for p in outputs(paper) if not p.startswith(("results-paper/", "resources/"))][:5]


def test_lint_is_clean():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_outputs_of_the_reduced_default(small_run):
    workdir, _ = small_run
    tidy = pd.read_csv(workdir / "results" / "analysis" / "scores.csv")
    brain = tidy[(tidy["kind"] == "brain") & (tidy["metric"] == "linear") & (tidy["selection"] == "best")]
    assert set(brain["model"]) == {"all-minilm-l6-v2", "all-minilm-l6-v2-untrained", "smollm2-135m-instruct"}
    assert set(brain["protocol"]) == {"ridge-grouped", "brainscore-2023"}
    assert brain["raw_r"].between(-1, 1).all() and brain["raw_r"].notna().all()
    # every layer of MiniLM (embeddings + 6 blocks) has a profile row per protocol
    profile = tidy[(tidy["model"] == "all-minilm-l6-v2") & (tidy["selection"] == "layer") & (tidy["metric"] == "linear")]
    assert profile.groupby("protocol")["layer"].nunique().min() == 7
    behaviour = tidy[(tidy["kind"] == "behaviour") & (tidy["metric"] == "surprisal_r")]
    assert set(behaviour["model"]) == {"smollm2-135m-instruct"}
    assert (behaviour["raw_r"] > 0).all()
    headline = pd.read_csv(workdir / "results" / "analysis" / "headline_scores.csv")
    assert {"model", "dataset", "score"} <= set(headline.columns)
    assert not headline.duplicated(["model", "dataset"]).any()
    effect = pd.read_csv(workdir / "results" / "analysis" / "instruction_effect.csv")
    assert "brain_average" in set(effect["measure"]) and (effect.loc[effect["measure"] == "tuckute2024", "n_pairs"] == 1).all()
    behaviour = effect[effect["kind"] == "behaviour"]
    assert set(behaviour["measure"]) <= {"naturalstories", "frank2013"}  # reading datasets: their own rows, never averaged
    figures = sorted((workdir / "results" / "figures").glob("*.png"))
    assert len(figures) >= 2 and all(f.stat().st_size > 10_000 for f in figures)
    summary = (workdir / "results" / "summary.html").read_text()
    assert "Q4_1" in summary and "untrained" in summary and "data:image/png;base64" in summary
    # findings first, and the page names the config it came from (the Snakefile's default, then --configfile)
    assert summary.index("id='findings'") < summary.index("id='tidy'") and "config_small.yaml" in summary
    # the dataset's encoding override reached its jobs, merged with the top-level options
    part = workdir / "results" / "encoding" / "all-minilm-l6-v2" / "tuckute2024" / "part0"
    layer_result = json.loads((part / "encoder.layer.1.json").read_text())
    assert layer_result["options"]["inner_cv"] == "loo" and layer_result["options"]["n_folds"] == 5
    for log in ["prepare_model/smollm2-135m-instruct.log", "run_model/all-minilm-l6-v2.log"]:
        text = (workdir / "logs" / log).read_text()
        assert '"torch"' in text and '"transformers"' in text
    # one job per model reads every dataset with the model loaded once
    assert "loaded 1 time(s)" in (workdir / "logs" / "run_model" / "smollm2-135m-instruct.log").read_text()


def test_readme_rerun_command_plans_one_models_jobs_in_a_finished_run(small_run):
    """The README's "re-read with the model" command (targets first, then ``--forcerun run_model``) plans, in a
    finished run, that model's one job and the target's encoding and score: nothing else."""
    workdir, config = small_run
    result = snakemake(workdir, "-n", "results/scores/all-minilm-l6-v2/tuckute2024.csv", "--forcerun", "run_model",
                       configfile=config)
    jobs = planned_jobs(result.stdout + result.stderr)
    assert jobs.pop("run_model") == 1 and jobs.pop("score") == 1 and jobs.pop("fit_encoding") >= 1, jobs
    assert set(jobs) == {"total"}, jobs


def test_forcerun_one_model_rebuilds_only_its_files_and_is_deterministic(small_run):
    workdir, config = small_run
    results = workdir / "results"
    tidy_before = (results / "analysis" / "scores.csv").read_bytes()
    other = results / "scores" / "all-minilm-l6-v2-untrained" / "tuckute2024.csv"
    target = results / "scores" / "all-minilm-l6-v2" / "tuckute2024.csv"
    stamp_other, stamp_target = other.stat().st_mtime_ns, target.stat().st_mtime_ns
    shard = "results/activations/all-minilm-l6-v2/tuckute2024.h5"
    snakemake(workdir, "--cores", "1", "--forcerun", shard, configfile=config)
    assert other.stat().st_mtime_ns == stamp_other
    assert target.stat().st_mtime_ns != stamp_target
    # recomputed with one core instead of two: the same bytes
    assert (results / "analysis" / "scores.csv").read_bytes() == tidy_before
