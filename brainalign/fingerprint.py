"""What a resumable partial result was computed from, so a re-run trusts it only when its inputs are the same.

Two stages keep finished work of a killed job and resume from it: extraction (``<shard>.partial/<dtype>/``,
:mod:`brainalign.extraction.checkpoint`) and encoding (``part{k}.partial/``, :func:`brainalign.encoding.layer_fits.fit_layers_file`).
Each records a *fingerprint* of its inputs beside the kept work: the options and code version, and the identity of
every input file (:func:`file_identity`, :func:`folder_identity`). A re-run whose fingerprint differs discards the
kept work with a log line naming what differs (:func:`differing`), instead of mixing results of two inputs.

A file's identity is its size and modification time (nanoseconds), read without opening it: cheap for a
multi-gigabyte shard or model, and it changes whenever the file is rewritten (a rebuilt shard, a re-prepared
model or dataset). A copy that keeps times (``cp -p``, ``shutil.copytree``) keeps the identity; one that does not
only costs the kept work, never a wrong number.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def file_identity(path) -> dict:
    """``{"size": bytes, "mtime_ns": ...}`` of ``path`` (links followed)."""
    stat = Path(path).stat()
    return {"size": int(stat.st_size), "mtime_ns": int(stat.st_mtime_ns)}


def folder_identity(path) -> dict:
    """Every file below ``path`` (links followed; names starting with '.' skipped: temporary and cache files) ->
    ``[size, mtime_ns]``, keyed by its path relative to ``path``."""
    root = Path(path)
    files = {}
    for folder, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            file = Path(folder) / name
            if file.is_file():
                identity = file_identity(file)
                files[file.relative_to(root).as_posix()] = [identity["size"], identity["mtime_ns"]]
    return files


def plain(value):
    """``value`` as JSON gives it back (tuples -> lists, numpy scalars -> numbers, anything else -> str), so a
    fingerprint compares equal to the one read back from disk."""

    def default(item):
        return item.item() if hasattr(item, "item") else str(item)

    return json.loads(json.dumps(value, sort_keys=True, default=default))


def differing(stored: dict | None, current: dict) -> list[str]:
    """The top-level keys whose values differ between a stored fingerprint (None: none or unreadable) and ``current``."""
    stored = stored or {}
    return sorted(key for key in set(stored) | set(current) if stored.get(key) != current.get(key))


def read_fingerprint(path) -> dict | None:
    """The fingerprint stored at ``path``, or None when there is none or it cannot be read."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
