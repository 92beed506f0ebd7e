"""The project's one prepared-dataset format: ``stimuli.tsv`` + ``data.h5`` + ``meta.json``.

Every adapter ends by calling :func:`write_prepared`; every downstream stage reads with :func:`load_prepared`.
Keeping both sides in one module means the format (docs/DESIGN.md, "Prepared dataset format") is defined once.
Files are written deterministically (fixed float format, sorted JSON, HDF5 without timestamps) so a rerun on
the same inputs gives the same bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from brainalign.errors import BrainalignError
from brainalign.io import FLOAT_FORMAT, atomic_path, open_hdf5, rebuild_command, write_json

KINDS = ("sentence", "timeseries", "reading", "language")  # language: a language-model benchmark, no human responses
REQUIRED_COLUMNS = ("stimulus_id", "text", "group", "position")
REQUIRED_META = ("name", "kind", "description", "source", "licence", "provenance", "context", "group_averaged")
STIMULI_FILE, DATA_FILE, META_FILE = "stimuli.tsv", "data.h5", "meta.json"


@dataclass
class PreparedDataset:
    """A prepared dataset in memory.

    ``responses`` is float32 ``(subjects, samples, neuroids)``; samples are the rows of ``stimuli`` except for
    time series, where they are scans with ``sample_times`` (s, scan onsets) and ``sample_groups`` (run/story)
    and ``stimuli`` are the words (with ``onset``/``offset``). ``nuisance`` is ``(subjects, scans, k)`` with
    column names in ``meta["nuisance_names"]``. ``neuroid_subjects`` is set for data whose neuroids differ between
    subjects (voxels: Pereira2018, Wehbe2014): then ``subjects == ["pooled"]`` and it names each neuroid's subject.
    """

    stimuli: pd.DataFrame
    responses: np.ndarray
    subjects: list[str]
    neuroids: list[str]
    sample_times: np.ndarray | None = None
    sample_groups: np.ndarray | None = None
    nuisance: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    neuroid_subjects: list[str] | None = None

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def stimulus_ids(self) -> list[str]:
        return self.stimuli["stimulus_id"].tolist()


def _str_dataset(group: h5py.Group, name: str, values: Sequence[str]) -> None:
    data = np.array([str(v) for v in values], dtype=object)
    group.create_dataset(name, data=data, dtype=h5py.string_dtype("utf-8"), track_times=False)


def _read_str(ds: h5py.Dataset) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in ds[()]]


def check_prepared(ds: PreparedDataset, where: str = "prepared dataset") -> None:
    """Raise BrainalignError unless ``ds`` satisfies the format contract (columns, ids, shapes, meta)."""
    stim = ds.stimuli
    missing = [c for c in REQUIRED_COLUMNS if c not in stim.columns]
    if missing:
        raise BrainalignError(f"{where}: stimuli table lacks column(s) {missing}; expected {list(REQUIRED_COLUMNS)}")
    ids = stim["stimulus_id"].astype(str)
    dup = ids[ids.duplicated()].unique().tolist()
    if dup:
        raise BrainalignError(f"{where}: stimulus_id not unique, e.g. {dup[:5]}")
    if stim["text"].isna().any():
        raise BrainalignError(f"{where}: stimuli text is empty for ids {ids[stim['text'].isna()].tolist()[:5]}")
    missing_meta = [k for k in REQUIRED_META if k not in ds.meta]
    if missing_meta:
        raise BrainalignError(f"{where}: meta lacks key(s) {missing_meta}")
    kind = ds.meta["kind"]
    if kind not in KINDS:
        raise BrainalignError(f"{where}: meta kind is {kind!r}; expected one of {list(KINDS)}")
    r = ds.responses
    if r.ndim != 3:
        raise BrainalignError(f"{where}: responses must be 3-D (subjects, samples, neuroids), got shape {r.shape}")
    if r.shape[0] != len(ds.subjects) or r.shape[2] != len(ds.neuroids):
        raise BrainalignError(
            f"{where}: responses shape {r.shape} does not match {len(ds.subjects)} subjects x "
            f"{len(ds.neuroids)} neuroids"
        )
    if len(set(ds.subjects)) != len(ds.subjects) or len(set(ds.neuroids)) != len(ds.neuroids):
        raise BrainalignError(f"{where}: subject or neuroid names not unique")
    if kind == "timeseries":
        if ds.sample_times is None or ds.sample_groups is None:
            raise BrainalignError(f"{where}: time-series dataset needs sample_times and sample_groups")
        if len(ds.sample_times) != r.shape[1] or len(ds.sample_groups) != r.shape[1]:
            raise BrainalignError(
                f"{where}: {r.shape[1]} scans but {len(ds.sample_times)} sample_times / "
                f"{len(ds.sample_groups)} sample_groups"
            )
        if "tr" not in ds.meta:
            raise BrainalignError(f"{where}: time-series meta needs 'tr' (seconds)")
        for col in ("onset", "offset"):
            if col not in stim.columns:
                raise BrainalignError(f"{where}: time-series stimuli need column {col!r} (seconds)")
    elif r.shape[1] != len(stim):
        raise BrainalignError(
            f"{where}: responses have {r.shape[1]} samples but stimuli.tsv has {len(stim)} rows; expected one "
            "response per stimulus"
        )
    if ds.neuroid_subjects is not None and len(ds.neuroid_subjects) != r.shape[2]:
        raise BrainalignError(f"{where}: {len(ds.neuroid_subjects)} neuroid_subjects for {r.shape[2]} neuroids")
    if ds.nuisance is not None:
        n = ds.nuisance
        if n.ndim != 3 or n.shape[:2] != r.shape[:2]:
            raise BrainalignError(f"{where}: nuisance shape {n.shape} must be (subjects, scans, k) = {r.shape[:2]}+(k,)")
        names = ds.meta.get("nuisance_names")
        if names is None or len(names) != n.shape[2]:
            raise BrainalignError(f"{where}: meta nuisance_names must name the {n.shape[2]} nuisance columns")


def write_prepared(ds: PreparedDataset, out_dir: str | os.PathLike) -> None:
    """Validate ``ds`` and write it to ``out_dir`` atomically (the directory appears only when complete)."""
    check_prepared(ds, where=str(out_dir))
    stim = ds.stimuli.reset_index(drop=True).copy()
    stim["stimulus_id"] = stim["stimulus_id"].astype(str)
    stim["group"] = stim["group"].astype(str)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        stim.to_csv(tmp / STIMULI_FILE, sep="\t", index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
        with h5py.File(tmp / DATA_FILE, "w", track_order=False) as h5:
            h5.create_dataset("responses", data=np.asarray(ds.responses, dtype=np.float32), track_times=False)
            _str_dataset(h5, "subjects", ds.subjects)
            _str_dataset(h5, "neuroids", ds.neuroids)
            if ds.sample_times is not None:
                h5.create_dataset("sample_times", data=np.asarray(ds.sample_times, dtype=np.float64), track_times=False)
            if ds.sample_groups is not None:
                _str_dataset(h5, "sample_groups", ds.sample_groups)
            if ds.neuroid_subjects is not None:
                _str_dataset(h5, "neuroid_subjects", ds.neuroid_subjects)
            if ds.nuisance is not None:
                h5.create_dataset("nuisance", data=np.asarray(ds.nuisance, dtype=np.float32), track_times=False)
        write_json(ds.meta, tmp / META_FILE)


def load_prepared(dataset_dir: str | os.PathLike) -> PreparedDataset:
    """Read a prepared dataset directory written by :func:`write_prepared` (checked on the way in)."""
    d = Path(dataset_dir)
    for name in (STIMULI_FILE, DATA_FILE, META_FILE):
        if not (d / name).is_file():
            raise BrainalignError(f"{d / name}: missing; expected a prepared dataset: rebuild it with "
                                  f"`{rebuild_command(d, 'prepare_dataset')}`")
    rebuild = f"rebuild it with `{rebuild_command(d, 'prepare_dataset')}`"
    try:
        stimuli = pd.read_csv(
            d / STIMULI_FILE, sep="\t", dtype={"stimulus_id": str, "group": str, "text": str},
            keep_default_na=False, na_values=[""],
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BrainalignError(f"{d / STIMULI_FILE}: not a readable stimuli table ({reason}); {rebuild}") from None
    try:
        meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BrainalignError(f"{d / META_FILE}: not valid JSON ({error}); {rebuild}") from None
    if not isinstance(meta, dict):
        raise BrainalignError(f"{d / META_FILE}: expected a JSON object, got {type(meta).__name__}; {rebuild}")
    with open_hdf5(d / DATA_FILE, "prepare_dataset", target=d) as h5:  # the rule's output is the folder
        responses = h5["responses"][()].astype(np.float32, copy=False)
        subjects = _read_str(h5["subjects"])
        neuroids = _read_str(h5["neuroids"])
        sample_times = h5["sample_times"][()] if "sample_times" in h5 else None
        sample_groups = np.array(_read_str(h5["sample_groups"]), dtype=object) if "sample_groups" in h5 else None
        nuisance = h5["nuisance"][()] if "nuisance" in h5 else None
        neuroid_subjects = _read_str(h5["neuroid_subjects"]) if "neuroid_subjects" in h5 else None
    ds = PreparedDataset(stimuli, responses, subjects, neuroids, sample_times, sample_groups, nuisance, meta,
                         neuroid_subjects)
    try:
        check_prepared(ds, where=str(d))
    except BrainalignError as error:  # written by prepare_dataset, so damaged since: say how to rebuild it
        raise BrainalignError(f"{error}; {rebuild}") from None
    return ds
