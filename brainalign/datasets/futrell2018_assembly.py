"""Futrell et al. 2018 Natural Stories self-paced reading as Brain-Score Language scores it: its ``Futrell2018``
assembly (``assy_Futrell2018.nc``, sha1 381ccc80..., built from the earlier ``processed_RTs.csv``), per reader.

Responses are (readers, words, 1 measure ``rt`` in ms), NaN where a reader has no RT, in the assembly's own
presentation and subject order (Brain-Score feeds the words to a model in that order and draws its split halves
over subjects in that order). Brain-Score's coordinates are kept, not recomputed: ``sentence_id`` and
``word_within_sentence_id`` (its packaging's punctuation rule: 481 sentences, where the realigned-TSV adapter
``futrell2018`` finds 506) become the stimuli's ``sentence_id`` and ``word_in_sentence``, so the ``brainscore-2023``
behaviour protocol drops exactly the words Brain-Score's Futrell2018-pearsonr drops (``word_within_sentence_id ==
1``) and averages readers as it does (mean over subjects, missing RTs skipped). Group = story (context).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.datasets.brainscore_assembly import integer_coord, read_checked, remote_file, unique_ids
from brainalign.datasets.naturalstories import LICENCE
from brainalign.errors import BrainalignError

NAME = "futrell2018_assembly"
KIND = "reading"
HEADLINE_MEASURE = "rt"  # the reading measure the behaviour headline rows report (brainalign.behaviour.scoring)
IDENTIFIER = "Futrell2018"
SHA1 = "381ccc8038fbdb31235b5f3e1d350f359b5e287f"  # brainscore_language/data/futrell2018/__init__.py
REMOTE_FILES = [remote_file(IDENTIFIER, SHA1)]
FILE = REMOTE_FILES[0][0]
PRESENTATION = {"word", "story_id", "word_id", "sentence_id", "word_within_sentence_id", "stimulus_id"}
SUBJECT = {"subject_id"}


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    path = Path(raw_dir) / FILE
    values, pres, subj = read_checked(path, ("presentation", "subject"), {"presentation": PRESENTATION, "subject": SUBJECT})
    stimulus_ids = unique_ids(path, pres, "stimulus_id")
    subjects = unique_ids(path, subj, "subject_id").tolist()
    story = integer_coord(path, pres, "story_id")
    within = integer_coord(path, pres, "word_within_sentence_id")
    if (within < 1).any():
        raise BrainalignError(f"{path}: word_within_sentence_id below 1; expected 1-based positions")
    group = pd.Series([f"story{s:02d}" for s in story])
    stimuli = pd.DataFrame({
        "stimulus_id": stimulus_ids.to_numpy(),
        "text": pres["word"].astype(str).to_numpy(),
        "group": group,
        "position": group.groupby(group, sort=False).cumcount().to_numpy(),
        "sentence_id": integer_coord(path, pres, "sentence_id"),
        "word_in_sentence": within,
        "word_within_sentence_id": within,
        "item": story,
        "zone": integer_coord(path, pres, "word_id"),
    })
    if "word_core" in pres.columns:
        stimuli["word_core"] = pres["word_core"].astype(str).to_numpy()
    responses = values.T[:, :, None].astype(np.float32)
    meta = {
        "name": NAME, "kind": KIND, "context": "group", "group_averaged": False,
        "description": f"Natural Stories self-paced reading (Futrell et al. 2018) as Brain-Score's {IDENTIFIER} assembly: "
                       f"per-reader RTs (ms) for {len(stimuli):,} words, {stimuli['sentence_id'].nunique()} sentences "
                       "(Brain-Score's sentence_id).",
        "source": REMOTE_FILES[0][1], "licence": LICENCE + " (data); assembly via Brain-Score (brain-score/language)",
        "provenance": f"{FILE} (sha1 {SHA1}): Brain-Score Language's {IDENTIFIER}, packaged from the naturalstories "
                      "processed_RTs.csv (before the 2025 realignment) + all_stories.tok; presentation and subject "
                      "order, sentence_id and word_within_sentence_id kept as in the file",
        "brainscore_identifier": IDENTIFIER, "n_sentences": int(stimuli["sentence_id"].nunique()),
        "ceiling_note": "split-half over readers with Spearman-Brown (Brain-Score: 0.858)", "published_ceiling": 0.858,
    }
    if "correct" in subj.columns:
        correct = pd.to_numeric(subj["correct"], errors="coerce")  # comprehension answers right (of 6)
        meta["subject_correct"] = {s: (None if pd.isna(c) else int(c)) for s, c in zip(subjects, correct)}
    write_prepared(PreparedDataset(stimuli, responses, subjects, ["rt"], meta=meta), out_dir)
