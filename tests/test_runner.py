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
