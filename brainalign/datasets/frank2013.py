"""Frank et al. 2013 UCL corpus, eye-tracking part: 43 readers x 205 sentences (1,931 words), per-subject reading
measures first fixation, first pass (gaze duration) and go-past (regression path) time, in ms.

A 0 in the source means "not fixated" and becomes NaN. Each sentence was read on its own (random order per
reader), so group = sentence and context = the sentence so far.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.errors import BrainalignError

NAME = "frank2013"
KIND = "reading"
HEADLINE_MEASURE = "first_pass"  # the reading measure the behaviour headline rows report (brainalign.behaviour.scoring)
REMOTE_FILES = []  # offline only: original supplementary material of Behav Res Methods 45:1182 (no stable URL)
SOURCE = "Frank, Fernandez Monsalve, Thompson & Vigliocco 2013, Behav Res Methods 45:1182-1190, supplementary data " \
         "(copy: github.com/Data-X01/PsychLing-101 @ 7e207c69 frank2013_reading/original_data)"
MEASURES = {"first_fixation": "RTfirstfix", "first_pass": "RTfirstpass", "go_past": "RTgopast"}


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    raw_dir = Path(raw_dir)
    rt_path, stim_path = raw_dir / "eyetracking.RT.txt", raw_dir / "stimuli.txt"
    for path in (rt_path, stim_path):
        if not path.is_file():
            raise BrainalignError(f"{path}: missing; expected the Frank 2013 eye-tracking files")
    rt = pd.read_csv(rt_path, sep="\t", encoding="cp1252", dtype={"word": str}, keep_default_na=False, na_values=["NaN"], quoting=3)
    need = {"subj_nr", "sent_nr", "word_pos", "word", *MEASURES.values()}
    if need - set(rt.columns):
        raise BrainalignError(f"{rt_path}: lacks column(s) {sorted(need - set(rt.columns))}")
    if rt.duplicated(["subj_nr", "sent_nr", "word_pos"]).any():
        raise BrainalignError(f"{rt_path}: duplicate (subj_nr, sent_nr, word_pos) rows")
    sentences = pd.read_csv(stim_path, sep="\t", encoding="cp1252", keep_default_na=False, quoting=3).set_index("sent_nr")["sentence"]
    words = rt.drop_duplicates(["sent_nr", "word_pos"]).sort_values(["sent_nr", "word_pos"])[["sent_nr", "word_pos", "word"]]
    for sent_nr, table in words.groupby("sent_nr"):
        expected = str(sentences.get(sent_nr, "")).split()
        if table["word"].tolist() != expected or table["word_pos"].tolist() != list(range(1, len(expected) + 1)):
            raise BrainalignError(f"{rt_path}: words of sentence {sent_nr} do not match stimuli.txt {expected!r}")
    words = words.reset_index(drop=True)
    ids = [f"frank2013.{s}.{w}" for s, w in zip(words["sent_nr"], words["word_pos"])]
    group = [f"sent{s:03d}" for s in words["sent_nr"]]
    stimuli = pd.DataFrame({"stimulus_id": ids, "text": words["word"], "group": group,
                            "position": words["word_pos"] - 1, "sentence_id": group,
                            "word_in_sentence": words["word_pos"], "sent_nr": words["sent_nr"]})
    subjects = sorted(rt["subj_nr"].unique())
    row = {key: i for i, key in enumerate(zip(words["sent_nr"], words["word_pos"]))}
    responses = np.full((len(subjects), len(words), len(MEASURES)), np.nan, dtype=np.float32)
    s_index = {s: i for i, s in enumerate(subjects)}
    rows = np.array([row[k] for k in zip(rt["sent_nr"], rt["word_pos"])])
    subj = rt["subj_nr"].map(s_index).to_numpy()
    for j, column in enumerate(MEASURES.values()):
        values = rt[column].to_numpy(np.float64)
        responses[subj, rows, j] = np.where(values > 0, values, np.nan)
    meta = {
        "name": NAME, "kind": KIND, "context": "group", "group_averaged": False,
        "description": "Frank et al. 2013 UCL corpus eye-tracking: 43 readers, 205 isolated sentences; first "
                       "fixation, first-pass and go-past times (ms), NaN = word not fixated.",
        "source": SOURCE,
        "licence": "CC BY-NC-SA 4.0 (PsychLing-101 repository licence); original data: Frank et al. 2013 supplement",
        "provenance": "eyetracking.RT.txt (subj_nr, sent_nr, word_pos, RTfirstfix, RTfirstpass, RTgopast; 0 -> NaN), "
                      "words checked against stimuli.txt",
        "measures": MEASURES,
        "ceiling_note": "per-subject data: split-half ceiling over readers computable",
    }
    write_prepared(PreparedDataset(stimuli, responses, [f"s{s:02d}" for s in subjects], list(MEASURES), meta=meta), out_dir)
