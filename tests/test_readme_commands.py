"""Every `snakemake` command in the README's code blocks plans what its text says.

Each command is dry-run verbatim (plus ``-n``) in a fresh directory that looks like a clone without results
(``config/``, ``resources/`` and ``profiles/`` linked in). A command naming result files of some models must
plan one ``run_model`` job per model named and nothing study-wide; a command without targets plans the whole
study. This is the check that catches a target written after ``--forcerun`` (which swallows it, so the whole
study runs instead of one model).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.snakemake import planned_jobs

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
# result paths that name a model: <results_dir>/<stage>/<model>/<dataset>.<ext>
TARGET = re.compile(r"^results[\w-]*/(?:scores|behaviour|activations|encoding|surprisal)/(?P<model>[^/]+)/")


def readme_commands(text: str) -> list[str]:
    """The `snakemake ...` commands of the README's bash code blocks, continuation lines joined, comments cut."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "snakemake":
                commands.append(" ".join(shlex.quote(word) for word in words))
    return commands


def test_command_parser_joins_continuations_and_drops_comments():
    text = "```bash\nsnakemake a.csv \\\n    --forcerun run_model   # re-run\nmake run\n```\n```python\nsnakemake x\n```\n"
    assert readme_commands(text) == ["snakemake a.csv --forcerun run_model"]


def test_job_table_parser():
    output = "Building DAG\nJob stats:\njob    count\n-----  -----\nrun_model  2\nscore  3\ntotal  5\n\nReasons:"
    assert planned_jobs(output) == {"run_model": 2, "score": 3, "total": 5}


def fresh_clone_dir(tmp_path: Path) -> Path:
    for name in ("config", "resources", "profiles"):
        (tmp_path / name).symlink_to(REPO / name)
    # the README's "your models" file: the default's models without the MiniLM pair
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    models = [m for m in default["models"] if m.get("family") != "MiniLM"]
    (tmp_path / "my_models.yaml").write_text(yaml.safe_dump({"models": models}))
    return tmp_path


def expected_models(words: list[str], workdir: Path) -> set[str] | None:
    """The models a command's targets name, or None when it has no targets (the whole study)."""
    named = {match["model"] for word in words if (match := TARGET.match(word))}
    return named or None


def study_models(words: list[str], workdir: Path) -> int:
    """How many models the command's config lists (the last --configfile's models, else the default's)."""
    configs = [REPO / "config" / "config.yaml"]
    if "--configfile" in words:
        configs.append(workdir / words[words.index("--configfile") + 1])
    models = None
    for config in configs:
        models = yaml.safe_load(config.read_text()).get("models", models)
    return len(models)


COMMANDS = readme_commands(README.read_text())


def test_the_readme_has_the_documented_commands():
    assert any("--forcerun run_model" in command for command in COMMANDS)
    assert any("profiles/slurm" in command for command in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_plans_what_its_text_says(command, tmp_path):
    workdir = fresh_clone_dir(tmp_path)
    words = shlex.split(command)[1:]
    result = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "-n", *words],
                            capture_output=True, text=True, cwd=workdir)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{command}\n{output[-3000:]}"
    jobs = planned_jobs(output)
    models = expected_models(words, workdir)
    if models is None:
        assert jobs.get("all") == 1 and jobs.get("summary") == 1, f"{command}: expected the whole study, got {jobs}"
        assert jobs["run_model"] == study_models(words, workdir), jobs
    else:
        assert jobs["run_model"] == len(models), f"{command}: planned {jobs['run_model']} model jobs for {sorted(models)}"
        assert "all" not in jobs and "summary" not in jobs and "collect_scores" not in jobs, jobs
