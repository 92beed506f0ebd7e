"""Read a Brain-Score DataAssembly NetCDF4 file (which is HDF5) with h5py, without xarray/brainio.

xarray writes the data array as one 2-D variable and each (reset multi-index) coordinate as a 1-D variable along
its dimension; dimension scales name the dimensions. We identify the data variable as the 2-D numeric dataset and
assign each 1-D variable to the dimension whose length it has, which is unambiguous because the presentation and
neuroid counts of these assemblies differ.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from brainalign.errors import BrainalignError


def _decode(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in ("S", "O"):
        return np.array([v.decode("utf-8") if isinstance(v, bytes) else v for v in values], dtype=object)
    return values


def read_assembly(path: Path, dims: tuple[str, str] = ("presentation", "neuroid")) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """``(values[presentation, neuroid], presentation coords, neuroid coords)`` of a 2-D assembly file."""
    if not Path(path).is_file():
        raise BrainalignError(f"{path}: missing; expected a Brain-Score assembly NetCDF file")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise BrainalignError(f"{path}: not a readable NetCDF4/HDF5 file ({error})") from None
    with handle:
        arrays = {name: ds for name, ds in handle.items() if isinstance(ds, h5py.Dataset)}
        data = [ds for ds in arrays.values() if ds.ndim == 2 and ds.dtype.kind == "f"]
        if len(data) != 1:
            raise BrainalignError(f"{path}: expected one 2-D float data variable, found {[d.name for d in data]}")
        values = data[0][()].astype(np.float32)
        dim_names = [handle[ref[0]].name.strip("/") if len(ref) else None
                     for ref in data[0].attrs.get("DIMENSION_LIST", [[], []])] if "DIMENSION_LIST" in data[0].attrs else list(dims)
        if dim_names[0] == dims[1] and dim_names[1] == dims[0]:
            values = values.T
        n_pres, n_neur = values.shape
        if n_pres == n_neur:
            raise BrainalignError(f"{path}: as many presentations as neuroids ({n_pres}); cannot tell coordinates apart")
        pres, neur = {}, {}
        for name, ds in arrays.items():
            if ds.ndim != 1 or name in dims:
                continue
            column = _decode(ds[()])
            if len(column) == n_pres:
                pres[name] = column
            elif len(column) == n_neur:
                neur[name] = column
    return values, pd.DataFrame(pres), pd.DataFrame(neur)
