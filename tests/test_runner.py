"""The job glue: the package path exported to jobs, so per-rule conda environments import the same code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from brainalign.runner import export_package_path

REPO = Path(__file__).resolve().parents[1]


def test_export_package_path_puts_the_package_folder_first_once(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    export_package_path()
    export_package_path()
    paths = os.environ["PYTHONPATH"].split(os.pathsep)
    assert paths == [str(REPO), "/elsewhere"]


def test_a_bare_interpreter_imports_the_package_through_the_exported_path(monkeypatch, tmp_path):
    monkeypatch.delenv("PYTHONPATH", raising=False)
    export_package_path()
    # -I would ignore PYTHONPATH; -S drops site-packages, where the editable install lives: only the export remains
    result = subprocess.run([sys.executable, "-S", "-c", "import brainalign.errors, sys; print(brainalign.errors.__file__)"],
                            cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(REPO / "brainalign"))


class _Job:
    """What a ``script:`` job's ``snakemake`` object offers run_rule."""

    def __init__(self, log_path: Path):
        self.log = [str(log_path)]
        self.rule = "fit_encoding"
        self.threads = 1
        self.wildcards = {"model": "gpt2", "dataset": "pereira2018", "part": "0"}


def _run_failing(step, tmp_path, capsys) -> tuple[str, str]:
    import pytest

    from brainalign.runner import run_rule

    log = tmp_path / "logs" / "fit.log"
    with pytest.raises(SystemExit) as exited:
        run_rule(_Job(log), step)
    assert exited.value.code == 1
    return log.read_text(), capsys.readouterr().err


def test_any_exception_ends_in_one_line_naming_rule_wildcards_and_log(tmp_path, capsys):
    def step(sm, logger):
        raise KeyError("layer_names")

    log, err = _run_failing(step, tmp_path, capsys)
    last = err.strip().splitlines()[-1]
    assert "brainalign: error in rule fit_encoding (model=gpt2, dataset=pereira2018, part=0)" in last
    assert f"log: {tmp_path / 'logs' / 'fit.log'}" in last and "KeyError: 'layer_names'" in last
    assert "Traceback (most recent call last)" in log and log.strip().splitlines()[-1].endswith(last.split("ERROR ")[-1])


def test_a_full_disk_is_reported_as_such_and_leaves_no_file_under_its_final_name(tmp_path, capsys, monkeypatch):
    """An injected ENOSPC in the middle of an atomic write: the one line says the disk is full and names the file,
    the output does not exist, and no temporary sibling is left behind."""
    import errno

    import pandas as pd

    from brainalign import io

    out = tmp_path / "results" / "scores.csv"

    def full_disk_to_csv(self, path, *args, **kwargs):
        Path(path).write_text("model,dataset\nhalf")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk_to_csv)

    def step(sm, logger):
        io.write_table(pd.DataFrame({"model": ["m"], "dataset": ["d"]}), out)

    log, err = _run_failing(step, tmp_path, capsys)
    last = err.strip().splitlines()[-1]
    assert "no space left on device writing" in last and "rule fit_encoding" in last
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_a_project_error_stays_one_line_without_a_traceback(tmp_path, capsys):
    from brainalign.errors import BrainalignError

    def step(sm, logger):
        raise BrainalignError("results/x.h5: truncated; rebuild it with --forcerun run_model")

    log, err = _run_failing(step, tmp_path, capsys)
    assert "Traceback" not in log and "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith("log: " + str(tmp_path / "logs" / "fit.log") +
                                                 ": results/x.h5: truncated; rebuild it with --forcerun run_model")
