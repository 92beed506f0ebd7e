"""Running the workflow through Snakemake itself in tests: the command, the reduced default config, and copies of a
finished run (so one run serves every test that needs one: ``tests/conftest.py``'s ``small_run``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SMALL_CONFIG = REPO / "tests" / "data" / "config_small.yaml"


def snakemake(workdir: Path, *args: str, configfile: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``snakemake --snakefile <repo>/Snakefile --directory <workdir> [--configfile <config>] <args>``; with ``check``, a
    failure is an AssertionError carrying the end of Snakemake's output."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    if configfile is not None:
        command += ["--configfile", str(configfile)]
    result = subprocess.run(command + list(args), capture_output=True, text=True, cwd=REPO)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def small_config(workdir: Path) -> Path:
    """tests/data/config_small.yaml with its data folders made absolute, written into ``workdir``."""
    text = SMALL_CONFIG.read_text().replace("RESOURCES", str(REPO / "resources" / "data"))
    path = workdir / "config_small.yaml"
    path.write_text(text)
    return path


def copy_run(workdir: Path, dest: Path) -> Path:
    """A copy of a finished run that Snakemake sees as finished too (times kept, its ``.snakemake`` records included).
    The prepared models (hundreds of MB, only ever replaced whole by their rule, never written in place) are
    hard-linked; everything else is copied, so a fault injected into the copy never reaches the original."""
    models = str(workdir / "resources" / "models") + os.sep

    def copy(source, target):
        if str(source).startswith(models):
            os.link(source, target)
        else:
            shutil.copy2(source, target)

    shutil.copytree(workdir, dest, symlinks=True, copy_function=copy)
    return dest
