"""Fedorenko et al. 2016 ECoG as Brain-Score Language scores it: its ``Fedorenko2016.language`` assembly
(``assy_Fedorenko2016_language.nc``): 52 eight-word sentences presented word by word (416 presentations) x 97
language-responsive electrodes of 5 subjects (``subject_UID``).

One stimulus per word, group = its sentence (``sentence_id``): each word is read with the preceding words of its
sentence, as Brain-Score's benchmark feeds a sentence's words one by one; sentences in ``sentence_id`` order, words
in the file's order within each. Electrodes differ between subjects, so responses are stored pooled (subjects =
["pooled"], neuroids "<subject_UID>.<neuroid_id>", ``neuroid_subjects`` the subject_UID), as Brain-Score regresses
all electrodes at once and computes its ceiling over ``subject_UID``. Meta ``split_coord: sentence_id`` names the
stimuli column whose values cross-validation folds must keep together (Brain-Score's ridge benchmark splits
GroupKFold on ``sentence_id``); ``brainscore_order`` keeps each word's position in the file, the order in which
Brain-Score's splits draw presentations (encoding.protocols.brainscore_splits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.datasets.brainscore_assembly import integer_coord, read_checked, remote_file, unique_ids

NAME = "fedorenko2016"
KIND = "sentence"
IDENTIFIER = "Fedorenko2016.language"
SHA1 = "2966b6d78e972a72068aa6907377483f427e8d9a"  # brainscore_language/data/fedorenko2016/__init__.py
REMOTE_FILES = [remote_file(IDENTIFIER, SHA1)]
FILE = REMOTE_FILES[0][0]
PRESENTATION = {"stimulus_id", "stimulus", "sentence_id"}
NEUROID = {"neuroid_id", "subject_UID"}


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    path = Path(raw_dir) / FILE
    values, pres, neur = read_checked(path, ("presentation", "neuroid"), {"presentation": PRESENTATION, "neuroid": NEUROID})
    stimulus_ids = unique_ids(path, pres, "stimulus_id")
    sentence = integer_coord(path, pres, "sentence_id")
    order = np.argsort(sentence, kind="stable")  # Brain-Score: sentences sorted, words in file order within each
    values, pres, stimulus_ids, sentence = values[order], pres.iloc[order].reset_index(drop=True), stimulus_ids.iloc[order], sentence[order]
    group = pd.Series([f"sentence{s:02d}" for s in sentence])
    position = group.groupby(group, sort=False).cumcount().to_numpy()
    stimuli = pd.DataFrame({"stimulus_id": stimulus_ids.to_numpy(), "text": pres["stimulus"].astype(str).to_numpy(),
                            "group": group, "position": position, "sentence_id": sentence, "word_in_sentence": position + 1,
                            "brainscore_order": order})  # position in the file (Brain-Score's split order)
    if "word_num" in pres.columns:
        stimuli["word_num"] = integer_coord(path, pres, "word_num")
    neuroid_ids = unique_ids(path, neur, "neuroid_id")
    subjects = neur["subject_UID"].astype(str).tolist()
    meta = {
        "name": NAME, "kind": KIND, "context": "group", "group_averaged": False, "split_coord": "sentence_id",
        "description": f"Fedorenko et al. 2016 ECoG ({IDENTIFIER}): {len(stimuli)} words of "
                       f"{stimuli['sentence_id'].nunique()} sentences x {len(neuroid_ids)} language-responsive electrodes "
                       f"of {len(set(subjects))} subjects, pooled.",
        "source": REMOTE_FILES[0][1], "licence": "Fedorenko et al. 2016 data via Brain-Score (brain-score/language)",
        "provenance": f"{FILE} (sha1 {SHA1}): Brain-Score Language's {IDENTIFIER}; stimulus_id, sentence_id and "
                      "subject_UID kept as in the file",
        "brainscore_identifier": IDENTIFIER,
        "ceiling_note": "Brain-Score: extrapolation ceiling over subject_UID (depends on the metric; none published)",
    }
    neuroids = [f"{s}.{n}" for s, n in zip(subjects, neuroid_ids)]
    write_prepared(PreparedDataset(stimuli, values[None].astype(np.float32), ["pooled"], neuroids, meta=meta,
                                   neuroid_subjects=subjects), out_dir)
