"""Tuckute et al. 2024 (Nat Hum Behav) drive/suppress sentences: 2,000 sentences x 1 participant-averaged
left-hemisphere language-network response (de Varda et al.'s averaged file). A sentence-level benchmark that runs
in seconds; each sentence is read on its own (no context), so each sentence is its own CV group.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.errors import BrainalignError

NAME = "tuckute2024"
KIND = "sentence"
FILE = "tuckute_averaged_langnetwork_deVarda.csv"
REMOTE_FILES = [
    (FILE, "https://raw.githubusercontent.com/Andrea-de-Varda/multilingual-models-brain/6bc237d9477155387c8f1ddf28cefd5ad812996a/"
     "additional_analyses/control/tuckute_averaged.csv", None, 114405),
]
CONDITIONS = {"B": "baseline", "D": "drive", "S": "suppress"}


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    path = Path(raw_dir) / FILE
    if not path.is_file():
        raise BrainalignError(f"{path}: missing; expected the Tuckute 2024 averaged response file")
    table = pd.read_csv(path)
    missing = {"Sentence", "EffectSize", "cond"} - set(table.columns)
    if missing:
        raise BrainalignError(f"{path}: lacks column(s) {sorted(missing)}; expected Sentence, EffectSize, cond")
    unknown = sorted(set(table["cond"]) - set(CONDITIONS))
    if unknown:
        raise BrainalignError(f"{path}: cond values {unknown}; expected B, D or S")
    ids = [f"tuckute2024.{i}" for i in range(len(table))]
    stimuli = pd.DataFrame({
        "stimulus_id": ids,
        "text": table["Sentence"].astype(str).str.strip(),
        "group": ids,
        "position": 0,
        "condition": table["cond"].map(CONDITIONS),
    })
    responses = table["EffectSize"].to_numpy(np.float32)[None, :, None]
    meta = {
        "name": NAME, "kind": KIND, "context": "sentence", "group_averaged": True,
        "description": "Tuckute et al. 2024 drive/suppress sentences: participant-averaged LH language-network "
                       "response per sentence (1,000 baseline, 500 drive, 500 suppress).",
        "source": REMOTE_FILES[0][1],
        "licence": "Tuckute et al. 2024 data (drive_suppress_brains code MIT); de Varda repository states no licence",
        "provenance": "Andrea-de-Varda/multilingual-models-brain @ 6bc237d9 additional_analyses/control/tuckute_averaged.csv "
                      "(averaged from Tuckute et al. 2024 brain-lang-data_participant_20230728.csv); file order kept",
        "ceiling_note": "group-averaged data: no per-subject split-half ceiling; Brain-Score reports raw scores (no ceiling)",
    }
    write_prepared(PreparedDataset(stimuli, responses, ["average"], ["lang_LH_netw"], meta=meta), out_dir)
