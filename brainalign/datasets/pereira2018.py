"""Pereira et al. 2018 experiments 2 (384 sentences, 96 passages, 9 subjects) and 3 (243 sentences, 72 passages,
6 subjects): per-voxel responses of the language network, from Brain-Score's assembly ``assy_Pereira2018_language.nc``.

Option ``experiment`` (243 or 384, required) selects one experiment, as Brain-Score's benchmarks do. Voxels differ
between subjects, so responses are stored pooled: subjects = ["pooled"], neuroids = "<subject>.<voxel>", with
``neuroid_subjects`` naming each voxel's subject (for per-subject ceilings). Voxels of subjects who did not run the
selected experiment are all-NaN there and are dropped (Brain-Score's ``dropna('neuroid')``), recorded as one
summary exclusion per subject. Passages are Brain-Score's: context within a passage. Sentences are sorted by
passage; ``brainscore_order`` keeps each one's position in Brain-Score's assembly and ``story`` its grouping for the
Brain-Score protocols (meta ``split_coord``, encoding.protocols.brainscore_splits).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.datasets.netcdf import read_assembly
from brainalign.errors import BrainalignError

log = logging.getLogger("brainalign.datasets")

NAME = "pereira2018"
KIND = "sentence"
FILE = "assy_Pereira2018_language.nc"
REMOTE_FILES = [
    (FILE, "https://brainscore-storage.s3.amazonaws.com/brainscore-language/assy_Pereira2018_language.nc",
     "sha1:f8434b4022f5b2c862f0ff2854d5b3f5f2a7fb96", None),
]
EXPERIMENTS = {"243": 72, "384": 96}


def _story(pres: pd.DataFrame) -> np.ndarray | None:
    """Brain-Score's ``story`` of each presentation ('<experiment>.<passage_category>', the grouped K-fold's groups
    of its Pereira2018 ridge benchmarks): the assembly's coordinate, else built from its parts, else None."""
    if "story" in pres.columns:
        return pres["story"].astype(str).to_numpy()
    if "passage_category" in pres.columns:
        return (pres["experiment"].astype(str) + "." + pres["passage_category"].astype(str)).to_numpy()
    log.warning("pereira2018: no story or passage_category coordinate; protocol brainscore-ridge cannot run on it")
    return None


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    experiment = str(options["experiment"]).replace("sentences", "")  # the schema allows 243, "384sentences", ...
    path = Path(raw_dir) / FILE
    values, pres, neur = read_assembly(path)
    for cols, table, dim in (({"stimulus_id", "sentence", "experiment", "passage_index", "passage_label"}, pres, "presentation"),
                             ({"subject", "voxel_num"}, neur, "neuroid")):
        if cols - set(table.columns):
            raise BrainalignError(f"{path}: {dim} coordinates lack {sorted(cols - set(table.columns))}")
    if "atlas" in neur.columns:
        keep = (neur["atlas"] == "language").to_numpy()
        values, neur = values[:, keep], neur[keep].reset_index(drop=True)
    rows = (pres["experiment"].astype(str).str.replace("sentences", "", regex=False) == experiment).to_numpy()
    if not rows.any():
        raise BrainalignError(f"{path}: no presentations of experiment {experiment}")
    values, pres = values[rows], pres[rows].reset_index(drop=True)
    if pres["stimulus_id"].duplicated().any():  # repetitions: average them, as Brain-Score's benchmark does
        raise BrainalignError(f"{path}: repeated stimulus_id in experiment {experiment}; expected one row per sentence")
    exclusions = []
    absent = np.isnan(values).all(axis=0)
    for subject in sorted(set(neur["subject"][absent])):
        count = int((absent & (neur["subject"] == subject).to_numpy()).sum())
        exclusions.append({"subject": str(subject), "reason": f"{count} voxels all-NaN: did not run experiment {experiment}"})
        log.info("pereira2018: dropped subject %s (%d voxels, not in experiment %s)", subject, count, experiment)
    values, neur = values[:, ~absent], neur[~absent].reset_index(drop=True)
    story = _story(pres)
    order = np.lexsort((pres["stimulus_id"].astype(str).str.split(".").str[-1].astype(int), pres["passage_index"].astype(int)))
    pres, values = pres.iloc[order].reset_index(drop=True), values[order]
    group = f"{experiment}sentences.passage" + pres["passage_index"].astype(int).astype(str)
    stimuli = pd.DataFrame({"stimulus_id": pres["stimulus_id"].astype(str), "text": pres["sentence"].astype(str),
                            "group": group, "position": pres.groupby(group, sort=False).cumcount(),
                            "passage_label": pres["passage_label"].astype(str), "experiment": experiment,
                            "brainscore_order": order})
    if story is not None:  # Brain-Score's grouping for Pereira2018-*-ridge (protocol brainscore-ridge)
        stimuli["story"] = story[order]
    n_passages = stimuli["group"].nunique()
    if n_passages != EXPERIMENTS[experiment]:
        log.warning("pereira2018: %d passages in experiment %s (paper: %d)", n_passages, experiment, EXPERIMENTS[experiment])
    subjects = neur["subject"].astype(str).tolist()
    meta = {
        "name": NAME, "kind": KIND, "context": "group", "group_averaged": False,
        "description": f"Pereira et al. 2018 experiment {'2' if experiment == '384' else '3'} ({experiment} sentences): "
                       "language-network voxels (top-10% localizer, Brain-Score selection), pooled over subjects.",
        "source": REMOTE_FILES[0][1], "licence": "Pereira et al. 2018 data via Brain-Score (brain-score/language, MIT code)",
        "provenance": f"{FILE} (sha1 {REMOTE_FILES[0][2][5:]}); experiment {experiment}; atlas == language",
        "experiment": experiment, "exclusions": exclusions,
        "ceiling_note": "Brain-Score extrapolation ceiling", "published_ceiling": 0.35378928 if experiment == "243" else 0.36343748,
    }
    if story is not None:
        meta["split_coord"] = "story"
    neuroids = [f"{s}.{v}" for s, v in zip(subjects, neur["voxel_num"])]
    write_prepared(PreparedDataset(stimuli, values[None].astype(np.float32), ["pooled"], neuroids, meta=meta,
                                   neuroid_subjects=subjects), out_dir)
