"""The one progress bar every loop in brainalign uses.

A tqdm bar redraws up to ten times a second; in a terminal that is what a user wants, but a Snakemake or SLURM
log (stderr redirected to a file) then holds thousands of carriage-return updates per job and is unreadable.
``progress_bar`` keeps the terminal behaviour and, when stderr is not a terminal, updates at most every
``LOG_INTERVAL_S`` seconds, so a log gets a handful of lines per job.
"""

from __future__ import annotations

import sys

TERMINAL_INTERVAL_S = 0.1  # tqdm's own default
LOG_INTERVAL_S = 10.0


def _stderr_is_terminal() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def progress_bar(iterable=None, **kwargs):
    """``tqdm(iterable, **kwargs)`` with ``mininterval`` (and ``miniters``: no count-based redraws) set from whether
    stderr is a terminal; an explicit ``mininterval`` wins."""
    from tqdm import tqdm

    terminal = _stderr_is_terminal()
    kwargs.setdefault("mininterval", TERMINAL_INTERVAL_S if terminal else LOG_INTERVAL_S)
    if not terminal:
        kwargs.setdefault("maxinterval", max(kwargs["mininterval"], LOG_INTERVAL_S))
    return tqdm(iterable, **kwargs)
