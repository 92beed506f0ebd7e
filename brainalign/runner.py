"""Glue between a Snakemake ``script:`` job and a package step function.

Every rule's script is three lines: import the step, define how the rule's inputs map onto it, and call
``run_rule``. This module gives all of them the same behaviour: log to the rule's ``log:`` file with the
software versions, honour the rule's ``threads`` for BLAS and torch (one BLAS thread per job is fastest on small
machines, see docs), and turn user-fixable errors into one line instead of a traceback.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable


def export_package_path() -> None:
    """Put the folder holding this ``brainalign`` package on PYTHONPATH for the jobs Snakemake starts.

    Every rule's script imports the package. The project's venv has it installed, but a per-rule conda environment
    (``--sdm conda``) does not: jobs inherit Snakemake's environment, so exporting the folder Snakemake itself
    imported the package from makes the same code importable there, with no path manipulation in each script."""
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])


def _where(snakemake, log_path) -> str:
    """``rule fit_encoding (model=m, dataset=d); log: logs/...``: what a failure line names."""
    wildcards = ", ".join(f"{key}={value}" for key, value in snakemake.wildcards.items())
    where = f"rule {snakemake.rule}" + (f" ({wildcards})" if wildcards else "")
    return where + (f"; log: {log_path}" if log_path else "")


def failure_line(error: BaseException) -> str:
    """The one line a failed job ends with: a full disk said as such (with the file), anything else as
    ``Type: message``."""
    import errno

    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        target = f" writing {error.filename}" if error.filename else ""
        return f"no space left on device{target}: free disk space and run the same command again (nothing half-written is kept)"
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def run_rule(snakemake, step: Callable) -> None:
    """Run ``step(snakemake, logger)`` inside the rule's logging and thread limits.

    Whatever goes wrong ends the same way: the traceback in the rule's log (where Snakemake and a SLURM user
    look), and one line on stderr and in the log naming the rule, its wildcards and the log file. A project error
    (:class:`BrainalignError`) is already a sentence for the user, so it gets no traceback. A crash below Python
    (a segfault in a C extension) writes its Python stack into the log too (``faulthandler``)."""
    import faulthandler

    from threadpoolctl import threadpool_limits

    from brainalign.errors import BrainalignError
    from brainalign.io import setup_logging
    from brainalign.plugins import load_plugins

    log_path = snakemake.log[0] if len(snakemake.log) else None
    # handlers on the package logger, so every brainalign.* module logs into the rule's log file
    logger = setup_logging(log_path, name="brainalign")
    crash_log = open(log_path, "a") if log_path else None  # noqa: SIM115  (kept open for faulthandler until exit)
    if crash_log is not None:
        faulthandler.enable(file=crash_log)
    threads = max(1, int(getattr(snakemake, "threads", 1) or 1))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logger.info("rule %s wildcards %s threads %d", snakemake.rule, dict(snakemake.wildcards.items()), threads)
    # the rule's thread budget for libraries imported later (torch reads OMP_NUM_THREADS when it starts; without
    # it, two 2-thread jobs sharing 2 cores would each start one torch thread per core)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    start = time.perf_counter()
    try:
        load_plugins(getattr(snakemake, "config", {}).get("plugins"))
        with threadpool_limits(limits=threads):
            step(snakemake, logger)
    except BrainalignError as error:
        _fail(logger, f"brainalign: error in {_where(snakemake, log_path)}: {error}")
    except Exception as error:
        logger.exception("%s failed", snakemake.rule)
        _fail(logger, f"brainalign: error in {_where(snakemake, log_path)}: {failure_line(error)}")
    logger.info("done in %.1f s", time.perf_counter() - start)


def _fail(logger, line: str) -> None:
    """The last line of the job, in the log and on stderr (the logger writes to both)."""
    logger.error("%s", line)
    sys.exit(1)
