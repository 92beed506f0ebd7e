"""Tuckute et al. 2024 as Brain-Score Language scores it: its ``Tuckute2024.language`` assembly
(``assy_Tuckute2024_language.nc``): 1,000 baseline sentences x 1 response (the left-hemisphere language network,
z-scored, averaged over the 5 train participants 848, 853, 865, 875, 876).

One stimulus per presentation, keyed by Brain-Score's ``stimulus_id`` (the source's item_id); each sentence is read
on its own (its own group, no context), as Brain-Score's benchmark digests one sentence at a time. The default
config's ``tuckute2024`` adapter reads de Varda's averaged CSV instead (2,000 sentences: baseline, drive, suppress).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.datasets.brainscore_assembly import read_checked, remote_file, unique_ids
from brainalign.datasets.tuckute2024 import CONDITIONS

NAME = "tuckute2024_assembly"
KIND = "sentence"
IDENTIFIER = "Tuckute2024.language"
SHA1 = "5c8fc7f3e24cc1af5f5296459377b638b6492641"  # brainscore_language/data/tuckute2024/__init__.py
REMOTE_FILES = [remote_file(IDENTIFIER, SHA1)]
FILE = REMOTE_FILES[0][0]
PRESENTATION = {"stimulus_id", "stimulus"}
NEUROID = {"neuroid_id"}


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    path = Path(raw_dir) / FILE
    values, pres, neur = read_checked(path, ("presentation", "neuroid"), {"presentation": PRESENTATION, "neuroid": NEUROID})
    ids = unique_ids(path, pres, "stimulus_id")
    stimuli = pd.DataFrame({"stimulus_id": ids.to_numpy(), "text": pres["stimulus"].astype(str).str.strip().to_numpy(),
                            "group": ids.to_numpy(), "position": 0})
    for column in ("cond", "cond_approach"):
        if column in pres.columns:
            stimuli[column] = pres[column].astype(str).to_numpy()
    if "cond" in stimuli:
        stimuli["condition"] = stimuli["cond"].map(CONDITIONS).fillna(stimuli["cond"])
    neuroids = (neur["roi"] if "roi" in neur.columns else unique_ids(path, neur, "neuroid_id")).astype(str).tolist()
    meta = {
        "name": NAME, "kind": KIND, "context": "sentence", "group_averaged": True,
        "description": f"Tuckute et al. 2024 ({IDENTIFIER}): {len(stimuli):,} sentences x {len(neuroids)} "
                       "participant-averaged LH language-network response (z-scored).",
        "source": REMOTE_FILES[0][1],
        "licence": "Tuckute et al. 2024 data via Brain-Score (brain-score/language; drive_suppress_brains code MIT)",
        "provenance": f"{FILE} (sha1 {SHA1}): Brain-Score Language's {IDENTIFIER}; stimulus_id and file order kept",
        "brainscore_identifier": IDENTIFIER,
        "ceiling_note": "group-averaged data: no per-subject split-half ceiling; Brain-Score reports raw scores (no ceiling)",
    }
    if "subject_UID" in neur.columns:
        meta["averaged_subjects"] = neur["subject_UID"].astype(str).tolist()
    write_prepared(PreparedDataset(stimuli, values[None].astype(np.float32), ["average"], neuroids, meta=meta), out_dir)
