"""Atomic file output, deterministic tables and run logging shared by every stage.

Every output is written to a temporary sibling and renamed into place only when complete, so a killed job
never leaves a file that Snakemake (or a user) would mistake for a finished result.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

FLOAT_FORMAT = "%.10g"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    Works for files and directories (whatever the block creates at the temporary path).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.is_dir():
            shutil.rmtree(tmp_path, ignore_errors=True)
        elif tmp_path.exists():
            tmp_path.unlink()


def rebuild_command(path: str | os.PathLike, rule: str) -> str:
    """The command that rebuilds a broken intermediate file: the file as the target, then ``--forcerun`` its rule
    (targets first: ``--forcerun`` takes the words after it as rule names)."""
    return f"snakemake --cores 2 {path} --forcerun {rule}"


@contextlib.contextmanager
def open_hdf5(path: str | os.PathLike, rule: str, target: str | os.PathLike | None = None) -> Iterator:
    """Open an intermediate HDF5 file (shard, prepared dataset) for reading.

    A missing, truncated or corrupt file, found on opening or while reading inside the block, is one
    :class:`~brainalign.errors.BrainalignError` naming the file and the command that rebuilds it with ``rule``,
    instead of h5py's traceback. ``target``: the rule's output that holds the file, when it is not the file itself
    (a prepared dataset's folder: Snakemake knows no rule for a file inside a folder output)."""
    import h5py

    from brainalign.errors import BrainalignError

    try:
        with h5py.File(path, "r") as handle:
            yield handle
    except (OSError, KeyError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BrainalignError(f"{path}: unreadable ({reason}): the file is truncated or corrupt; rebuild it with "
                              f"`{rebuild_command(target or path, rule)}`") from error


def file_hash(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks (downloads, GGUF files, fixtures: one implementation)."""
    import hashlib

    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_table(df, path: str | os.PathLike, sep: str = ",") -> None:
    """Write a DataFrame atomically with a fixed float format, so reruns give byte-identical files."""
    with atomic_path(path, suffix=".csv") as tmp:
        df.to_csv(tmp, sep=sep, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def write_json(obj, path: str | os.PathLike) -> None:
    """Write JSON atomically with sorted keys (deterministic bytes)."""
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value):
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def software_versions() -> dict[str, str]:
    """Versions of the libraries that can change a number, for logs and HDF5 attributes.

    Read from the installed distributions' metadata, not by importing them: importing torch and transformers
    costs seconds, and every one of the hundreds of small jobs of a run logs its versions.
    """
    from importlib import metadata

    from brainalign import __version__

    versions = {"brainalign": __version__, "python": platform.python_version()}
    distributions = {"numpy": "numpy", "scipy": "scipy", "sklearn": "scikit-learn", "pandas": "pandas",
                     "h5py": "h5py", "torch": "torch", "transformers": "transformers"}
    for name, distribution in distributions.items():
        try:
            versions[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return versions


def setup_logging(log_path: str | os.PathLike | None, name: str = "brainalign") -> logging.Logger:
    """Log to ``log_path`` (and stderr) and record the software versions at the top of the log."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    logger.info("versions: %s", json.dumps(software_versions(), sort_keys=True))
    return logger
