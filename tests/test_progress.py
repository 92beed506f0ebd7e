"""Progress bars stay readable in logs: few updates when stderr is a file, tqdm's usual redraws in a terminal."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

from brainalign import progress
from brainalign.progress import LOG_INTERVAL_S, TERMINAL_INTERVAL_S, progress_bar

PACKAGE = Path(progress.__file__).resolve().parent


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_file_gets_a_handful_of_updates_not_thousands(monkeypatch):
    log = io.StringIO()  # not a terminal, like a Snakemake log
    monkeypatch.setattr(sys, "stderr", log)
    bar = progress_bar(range(300), desc="windows")
    assert bar.mininterval == LOG_INTERVAL_S
    for _ in bar:
        time.sleep(0.002)  # 0.6 s in all: tqdm's default 0.1 s interval would redraw about six times
    assert log.getvalue().count("\r") <= 3, log.getvalue()[:500]  # start, (at most one timed update), final


def test_a_terminal_keeps_live_updates(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert progress_bar(range(3)).mininterval == TERMINAL_INTERVAL_S
    assert progress_bar(range(3), mininterval=2).mininterval == 2  # an explicit interval wins


def test_every_progress_bar_in_the_package_goes_through_the_helper():
    direct = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
              if path.name != "progress.py" and "tqdm" in path.read_text()]
    assert direct == [], f"use brainalign.progress.progress_bar instead of tqdm in {direct}"
