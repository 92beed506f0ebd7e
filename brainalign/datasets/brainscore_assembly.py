"""Brain-Score Language assemblies as files: where brainscore_language downloads each one, and reading one with the
coordinates an adapter relies on checked.

brainscore_language (2.3.0) loads a data identifier with ``load_from_s3(identifier, sha1)``
(``brainscore_language/utils/s3.py``): the file is ``assy_<identifier with '.' -> '_'>.nc`` under the
``brainscore-language/`` prefix of the public ``brainscore-storage`` S3 bucket, and brainio's fetch checks its sha1
(the value each ``brainscore_language/data/<name>/__init__.py`` registers). :func:`remote_file` builds the same
file name, URL and checksum, so the fetch stage downloads and verifies exactly the file Brain-Score scores.

Why a coordinate check here: the adapters keep Brain-Score's coordinates (sentence ids, word positions, subject
ids) rather than recomputing them, so a file lacking one must stop with a message naming it, not fall back to
something computed differently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.netcdf import read_assembly
from brainalign.errors import BrainalignError

BUCKET_URL = "https://brainscore-storage.s3.amazonaws.com/brainscore-language"


def assembly_filename(identifier: str) -> str:
    """Brain-Score's file name for a data identifier: ``Fedorenko2016.language`` -> ``assy_Fedorenko2016_language.nc``."""
    return f"assy_{identifier.replace('.', '_')}.nc"


def remote_file(identifier: str, sha1: str) -> tuple[str, str, str, None]:
    """The ``REMOTE_FILES`` entry (file, url, checksum, size) for a Brain-Score Language data identifier; Brain-Score
    publishes no size, only the sha1."""
    filename = assembly_filename(identifier)
    return filename, f"{BUCKET_URL}/{filename}", f"sha1:{sha1}", None


def read_checked(path: Path, dims: tuple[str, str], required: dict[str, set[str]]) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """``(values[dims[0], dims[1]], coords of dims[0], coords of dims[1])`` of a 2-D assembly file; a missing
    file, a file that is not NetCDF4/HDF5, or a coordinate in ``required`` (dim -> names) that the file lacks is
    a one-line :class:`BrainalignError` naming the file."""
    values, first, second = read_assembly(Path(path), dims)
    for dim, table in zip(dims, (first, second)):
        missing = sorted(set(required.get(dim, ())) - set(table.columns))
        if missing:
            raise BrainalignError(f"{path}: {dim} coordinates lack {missing} (has {sorted(table.columns)}); "
                                  "expected Brain-Score's packaging")
    return values, first, second


def integer_coord(path: Path, table: pd.DataFrame, name: str) -> np.ndarray:
    """A coordinate that Brain-Score's packaging writes as integers (ids, positions), as int64."""
    column = table[name]
    try:
        values = pd.to_numeric(column, errors="raise").to_numpy()
    except (TypeError, ValueError):
        raise BrainalignError(f"{path}: coordinate {name} holds non-numeric values, e.g. {column.iloc[0]!r}; "
                              "expected integers") from None
    if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
        raise BrainalignError(f"{path}: coordinate {name} holds non-integer values; expected integers")
    return values.astype(np.int64)


def unique_ids(path: Path, table: pd.DataFrame, name: str) -> pd.Series:
    """A coordinate that identifies its rows (stimulus_id, subject_id, neuroid_id), as strings; repeats are an error."""
    ids = table[name].astype(str)
    repeated = ids[ids.duplicated()].unique().tolist()
    if repeated:
        raise BrainalignError(f"{path}: coordinate {name} repeats {repeated[:5]}; expected one row per value")
    return ids
