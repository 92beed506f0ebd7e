"""Step function of rule ``prepare_dataset``: adapter -> validation/cleaning -> prepared directory.

The adapter converts raw files to :class:`PreparedDataset`; this module applies the checks every dataset
must pass, so that no adapter can hand a NaN or constant neuroid to the encoding stage (which would give a NaN
or meaningless correlation and, through a median, a silently shifted score). Bad neuroids are dropped with a
logged note recorded in ``meta["exclusions"]``; anything that cannot be repaired is a BrainalignError.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np

from brainalign.datasets.base import PreparedDataset, load_prepared, write_prepared
from brainalign.datasets.fetch import FETCH_RECORD
from brainalign.datasets.options import dataset_options
from brainalign.errors import BrainalignError

log = logging.getLogger("brainalign.datasets")


def clean_neuroids(ds: PreparedDataset, where: str) -> PreparedDataset:
    """Drop neuroids with NaN (brain data) or no variance in any subject; record each in meta['exclusions'].

    Reading data keep NaN (a word a subject did not fixate/read); there only all-NaN or constant measures are
    dropped. Infinite values are always an error (they signal a broken conversion, not missing data).
    """
    r = ds.responses
    if ds.meta["kind"] == "language":  # a language-model benchmark has no human measures to clean
        return ds
    if np.isinf(r).any():
        raise BrainalignError(f"{where}: responses contain infinite values")
    reading = ds.meta["kind"] == "reading"
    exclusions = list(ds.meta.get("exclusions", []))
    keep = np.ones(r.shape[2], dtype=bool)
    for j, neuroid in enumerate(ds.neuroids):
        column = r[:, :, j]
        nan = np.isnan(column)
        if reading:
            if nan.all():
                reason = "all values missing"
            elif np.nanstd(column) == 0:
                reason = "constant"
            else:
                continue
        elif nan.any():
            bad = [s for s, row in zip(ds.subjects, nan) if row.any()]
            reason = f"NaN in {int(nan.sum())} of {nan.size} values (subjects {', '.join(bad)})"
        else:
            flat = [s for s, row in zip(ds.subjects, column) if np.ptp(row) == 0]
            if not flat:
                continue
            reason = f"constant over samples (subjects {', '.join(flat)})"
        keep[j] = False
        exclusions.append({"neuroid": neuroid, "reason": reason})
        log.warning("%s: excluded neuroid %s: %s", where, neuroid, reason)
    if not keep.any():
        raise BrainalignError(f"{where}: every neuroid is NaN or constant; nothing left to score")
    if keep.all():
        return ds
    meta = dict(ds.meta, exclusions=exclusions)
    neuroid_subjects = None if ds.neuroid_subjects is None else [s for s, k in zip(ds.neuroid_subjects, keep) if k]
    return PreparedDataset(ds.stimuli, r[:, :, keep], ds.subjects, [n for n, k in zip(ds.neuroids, keep) if k],
                           ds.sample_times, ds.sample_groups, ds.nuisance, meta, neuroid_subjects)


def subset_groups(ds: PreparedDataset, n_groups: int, where: str) -> PreparedDataset:
    """Keep the first ``n_groups`` groups (passages, stories, sentences) in presentation order.

    For quick runs and tests on real data (``options: {subset: N}``). Time series keep whole runs, so the
    subset applies to their scan groups too.
    """
    groups = list(dict.fromkeys(ds.stimuli["group"].tolist()))
    if n_groups < 1:
        raise BrainalignError(f"{where}: options.subset must be >= 1, got {n_groups}")
    keep_groups = set(groups[:n_groups])
    rows = ds.stimuli["group"].isin(keep_groups).to_numpy()
    stimuli = ds.stimuli[rows].reset_index(drop=True)
    responses, times, sample_groups, nuisance = ds.responses, ds.sample_times, ds.sample_groups, ds.nuisance
    if ds.kind == "timeseries":
        if sample_groups is None:
            raise BrainalignError(f"{where}: options.subset needs scan groups (runs) in a time-series dataset")
        scans = np.isin(np.asarray(sample_groups).astype(str), list(keep_groups))
        responses, times, sample_groups = responses[:, scans], times[scans], np.asarray(sample_groups)[scans]
        nuisance = None if nuisance is None else nuisance[:, scans]
    else:
        responses = responses[:, rows]
    meta = dict(ds.meta, subset=f"first {len(keep_groups)} of {len(groups)} groups")
    return PreparedDataset(stimuli, responses, ds.subjects, ds.neuroids, times, sample_groups, nuisance, meta, ds.neuroid_subjects)


def prepare_dataset(spec: dict, raw_dir, out_dir) -> None:
    """Convert ``raw_dir`` (the fetch output) to the prepared format in ``out_dir``, validated and cleaned."""
    from brainalign.datasets.registry import get_adapter

    adapter = get_adapter(spec["adapter"])
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.is_dir():
        raise BrainalignError(f"{raw_dir}: raw dataset folder missing; run the fetch rule first")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.", dir=out_dir.parent) as staging:
        staged = Path(staging) / "adapter"
        options = dataset_options(spec, adapter)
        subset = options.pop("subset", None)
        adapter.prepare(raw_dir, staged, options)
        ds = load_prepared(staged)
        if subset is not None:
            ds = subset_groups(ds, int(subset), where=spec["name"])
    if ds.meta["kind"] != adapter.KIND:
        raise BrainalignError(f"{spec['name']}: adapter {adapter.NAME} declares KIND {adapter.KIND!r} but wrote kind {ds.meta['kind']!r}")
    ds = clean_neuroids(ds, where=spec["name"])
    meta = dict(ds.meta, name=spec["name"], adapter=adapter.NAME)
    record = raw_dir / FETCH_RECORD
    if record.is_file():
        fetched = json.loads(record.read_text())
        meta["raw_files"] = {f["path"]: f["sha256"] for f in fetched.get("files", [])}
        meta["raw_source"] = fetched.get("source")
    ds.meta = meta
    write_prepared(ds, out_dir)
    log.info("prepared %s: %d subjects x %d samples x %d neuroids, %d stimuli, %d exclusions", spec["name"],
             *ds.responses.shape, len(ds.stimuli), len(meta.get("exclusions", [])))
