"""Pereira et al. 2018 experiments 2 + 3 (384 + 243 sentences): the participant-averaged language-network response
per sentence (de Varda et al.'s file), with passages from the Brain-Score stimulus set for grouped CV and context.

The averaged file uses the original wording and the stimulus set a dereferenced wording in 52 sentences
("He hammers ..." vs "A blacksmith hammers ..."), and carries no ids. Sentences are therefore matched exactly
first and the remainder by an optimal one-to-one assignment on string similarity; a weak best match is an error.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.errors import BrainalignError

NAME = "pereira2018_averaged"
KIND = "sentence"
RESPONSES = "pereira_averaged_langnetwork_deVarda.csv"
STIMULUS_SET = "Pereira2018_stimulus_set_20220209.csv"
REMOTE_FILES = [
    (RESPONSES, "https://raw.githubusercontent.com/Andrea-de-Varda/multilingual-models-brain/"
     "6bc237d9477155387c8f1ddf28cefd5ad812996a/additional_analyses/pereira/pereira_averaged.csv", None, 53692),
    # from github.com/carina-kauf/perturbed-neural-nlp @ 03825af1 (exact path not recorded): local copy only
    (STIMULUS_SET, None, None, 95256),
]
MIN_SIMILARITY = 0.6


def match_sentences(sentences: list[str], candidates: list[str], where: str) -> np.ndarray:
    """Index into ``candidates`` for each sentence: exact matches, then an optimal assignment on similarity."""
    if len(sentences) != len(candidates):
        raise BrainalignError(f"{where}: {len(sentences)} response sentences but {len(candidates)} stimulus-set sentences")
    index = {text: i for i, text in enumerate(candidates)}
    match = np.array([index.get(s, -1) for s in sentences])
    free_rows = np.flatnonzero(match < 0)
    free_cols = sorted(set(range(len(candidates))) - set(match[match >= 0].tolist()))
    if len(free_rows):
        sim = np.array([[difflib.SequenceMatcher(None, sentences[r].lower(), candidates[c].lower()).ratio()
                         for c in free_cols] for r in free_rows])
        rows, cols = linear_sum_assignment(-sim)
        worst = sim[rows, cols].argmin()
        if sim[rows, cols][worst] < MIN_SIMILARITY:
            r = free_rows[rows[worst]]
            raise BrainalignError(f"{where}: no stimulus-set sentence matches {sentences[r]!r} (best similarity "
                                  f"{sim[rows, cols][worst]:.2f} < {MIN_SIMILARITY})")
        match[free_rows[rows]] = np.array(free_cols)[cols]
    return match


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    raw_dir = Path(raw_dir)
    for name in (RESPONSES, STIMULUS_SET):
        if not (raw_dir / name).is_file():
            raise BrainalignError(f"{raw_dir / name}: missing; expected the Pereira 2018 averaged data files")
    resp = pd.read_csv(raw_dir / RESPONSES, index_col=0)
    stim = pd.read_csv(raw_dir / STIMULUS_SET, index_col=0)
    for table, cols, path in ((resp, {"Sentence", "EffectSize"}, RESPONSES),
                              (stim, {"sentence", "stimulus_id", "experiment", "passage_index", "passage_label"}, STIMULUS_SET)):
        if cols - set(table.columns):
            raise BrainalignError(f"{raw_dir / path}: lacks column(s) {sorted(cols - set(table.columns))}")
    match = match_sentences(resp["Sentence"].tolist(), stim["sentence"].tolist(), str(raw_dir / RESPONSES))
    order = np.argsort(match)  # response rows in stimulus-set (presentation) order
    stim = stim.reset_index(drop=True)
    group = stim["experiment"].astype(str) + ".passage" + stim["passage_index"].astype(str)
    stimuli = pd.DataFrame({
        "stimulus_id": stim["stimulus_id"].astype(str),
        "text": resp["Sentence"].to_numpy()[order],
        "group": group,
        "position": stim.groupby(group, sort=False).cumcount(),
        "experiment": stim["experiment"].str.replace("sentences", "", regex=False),
        "passage_label": stim["passage_label"],
        "passage_category": stim.get("passage_category", stim["passage_label"]),
        "text_stimulus_set": stim["sentence"],
    })
    responses = resp["EffectSize"].to_numpy(np.float32)[order][None, :, None]
    n_reworded = int((stimuli["text"] != stimuli["text_stimulus_set"]).sum())
    meta = {
        "name": NAME, "kind": KIND, "context": "group", "group_averaged": True,
        "description": "Pereira et al. 2018 exps 2 (384 sentences, 96 passages) and 3 (243 sentences, 72 passages): "
                       "participant-averaged language-network response per sentence.",
        "source": REMOTE_FILES[0][1],
        "licence": "Pereira et al. 2018 data; de Varda repository states no licence; "
                   "stimulus set from carina-kauf/perturbed-neural-nlp (no licence file)",
        "provenance": f"responses: de Varda et al. pereira_averaged.csv (original wording); passages: Brain-Score-style "
                      f"Pereira2018_stimulus_set_20220209.csv. {n_reworded} sentences differ in wording (pronouns "
                      f"dereferenced in the stimulus set) and were matched by optimal string-similarity assignment; "
                      f"text = the averaged file's wording, text_stimulus_set = the stimulus set's.",
        "ceiling_note": "group-averaged data: no per-subject ceiling is possible; Brain-Score's per-voxel ceilings "
                        "(0.354 / 0.363) do not apply to the averaged response",
        "n_reworded": n_reworded,
    }
    write_prepared(PreparedDataset(stimuli, responses, ["average"], ["language_network"], meta=meta), out_dir)
