"""Blank et al. 2014: 5 subjects listening to 8 Natural Stories, 1,317 TRs (2 s) x 12 language fROIs per subject,
from Brain-Score's ``assy_Blank2014_fROI.nc``. Brain-Score already paired each TR (shifted by 4 s for the BOLD lag)
with the sentence fragment whose words ended in it, and dropped TRs without new words; one stimulus = one fragment
= one sample. Stored as a time series whose words are the fragments: fragment i spans exactly scan i
(``onset = sample_times[i]``, ``offset = onset + 2``), so do NOT add further HRF delays (meta ``lag_applied``).
Fragments are sorted by story; ``brainscore_order`` keeps each one's position in Brain-Score's assembly, and meta
``split_coord``/``split_folds`` its grouped K-fold (8 folds of stories), for the Brain-Score protocols
(encoding.protocols.brainscore_splits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.datasets.netcdf import read_assembly
from brainalign.errors import BrainalignError

NAME = "blank2014"
KIND = "timeseries"
FILE = "assy_Blank2014_fROI.nc"
REMOTE_FILES = [
    (FILE, "https://brainscore-storage.s3.amazonaws.com/brainscore-language/assy_Blank2014_fROI.nc",
     "sha1:af1e868821b897cb1684e4c8dcd33977121ef552", None),
]
TR = 2.0


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    path = Path(raw_dir) / FILE
    values, pres, neur = read_assembly(path)
    # Brain-Score's packaging names the fragment `stimulus` and the subject `subject_id` (older copies: sentence /
    # subject_UID); any of them is accepted
    text_col = next((c for c in ("sentence", "stimulus", "word", "fragment") if c in pres.columns), None)
    need_p = {"stimulus_id", "story"}
    if need_p - set(pres.columns) or text_col is None:
        raise BrainalignError(f"{path}: presentation coordinates {list(pres.columns)}; "
                              "expected stimulus_id, story and stimulus (or sentence)")
    subj_col = next((c for c in ("subject_UID", "subject_id", "subject") if c in neur.columns), None)
    roi_col = next((c for c in ("fROI_area", "roi", "region") if c in neur.columns), None)
    if subj_col is None or roi_col is None:
        raise BrainalignError(f"{path}: neuroid coordinates {list(neur.columns)}; expected subject_id (or subject_UID) and fROI_area")
    subjects = sorted(neur[subj_col].astype(str).unique())
    rois = sorted(neur[roi_col].astype(str).unique())
    responses = np.full((len(subjects), len(pres), len(rois)), np.nan, dtype=np.float32)
    for j, (s, r) in enumerate(zip(neur[subj_col].astype(str), neur[roi_col].astype(str))):
        responses[subjects.index(s), :, rois.index(r)] = values[:, j]
    if np.isnan(responses).all(axis=1).any():
        raise BrainalignError(f"{path}: not every subject has every fROI; expected a full subject x fROI grid")
    order = np.argsort(pres["story"].astype(str).to_numpy(), kind="stable")  # Brain-Score order within each story kept
    pres, responses = pres.iloc[order].reset_index(drop=True), responses[:, order]
    group = pres["story"].astype(str)
    position = group.groupby(group, sort=False).cumcount().to_numpy()
    times = position * TR
    stimuli = pd.DataFrame({"stimulus_id": pres["stimulus_id"].astype(str), "text": pres[text_col].astype(str),
                            "group": group, "position": position, "onset": times, "offset": times + TR,
                            "story": group, "brainscore_order": order})  # Brain-Score's splits (split_coord)
    meta = {
        "name": NAME, "kind": KIND, "context": "group", "group_averaged": False, "tr": TR, "lag_applied": True,
        "description": "Blank et al. 2014: 5 subjects, 8 Natural Stories, 12 language fROIs per subject, one sample "
                       "per TR with its sentence fragment.",
        "source": REMOTE_FILES[0][1], "licence": "Blank et al. 2014 data via Brain-Score (brain-score/language)",
        "provenance": f"{FILE} (sha1 {REMOTE_FILES[0][2][5:]}). TRs were shifted by 4 s and TRs without new words "
                      "dropped by Brain-Score; sample_times are fragment index x 2 s within each story (not scanner time).",
        "ceiling_note": "Brain-Score extrapolation ceiling", "published_ceiling": 0.21026591,
        "split_coord": "story", "split_folds": 8,  # Blank2014-ridge: GroupKFold(8) over stories
    }
    write_prepared(PreparedDataset(stimuli, responses, subjects, rois, times, group.to_numpy(dtype=object), meta=meta), out_dir)
