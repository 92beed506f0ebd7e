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


def run_rule(snakemake, step: Callable) -> None:
    """Run ``step(snakemake, logger)`` inside the rule's logging and thread limits."""
    from threadpoolctl import threadpool_limits

    from brainalign.errors import BrainalignError
    from brainalign.io import setup_logging

    log_path = snakemake.log[0] if len(snakemake.log) else None
    # handlers on the package logger, so every brainalign.* module logs into the rule's log file
    logger = setup_logging(log_path, name="brainalign")
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
        with threadpool_limits(limits=threads):
            step(snakemake, logger)
    except BrainalignError as error:
        logger.error("%s", error)
        print(f"brainalign: error: {error}", file=sys.stderr)
        sys.exit(1)
    logger.info("done in %.1f s", time.perf_counter() - start)
