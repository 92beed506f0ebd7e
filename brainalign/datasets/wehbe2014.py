"""Wehbe et al. 2014: 8 subjects reading Harry Potter chapter 9 word by word (0.5 s/word, 5,176 words), 1,351 TRs
(2 s) in 4 runs, from the authors' public files ``subject_{1..8}.mat`` (CMU, PLoS ONE 2014 supplement), with the
language-ROI voxel indices ``HP_subj_roi_inds.npy`` of Aw & Toneva's BLS repository (key ``all``: union of the
language/ToM ROIs, ~5k voxels per subject), which the instruction-tuning paper used for Wehbe2014.

Each .mat holds ``data`` (TRs x voxels), ``time`` (TRs x 2: seconds, run) and ``words`` (text, onset seconds).
Voxels differ between subjects, so responses are pooled (subjects = ["pooled"], ``neuroid_subjects``).
ASSUMPTION (documented in meta): BLS subject letters F, H, I, J, K, L, M, N are subject_1 ... subject_8 in order.
Words are grouped by run (``run1``..``run4``, the scans' ``sample_groups``; extraction context therefore starts
afresh at each run). The BLS pipeline's trimming (first 20 / last 15 TRs of each run) belongs to the encoding stage
(protocol ``wehbe-2014``); all 1,351 TRs are kept here. BLS read Toneva's detrended, smoothed copies of these data
(``data_subject_*.npy``), not the CMU files: no detrending or smoothing is applied here.
Option ``voxels: all`` keeps every voxel instead of the ROI union (large: ~30k per subject).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.errors import BrainalignError

NAME = "wehbe2014"
KIND = "timeseries"
SUBJECTS = ["F", "H", "I", "J", "K", "L", "M", "N"]
CMU = "http://www.cs.cmu.edu/~fmri/plosone/files/"
ROI_FILE = "HP_subj_roi_inds.npy"
REMOTE_FILES = [(f"subject_{i}.mat", f"{CMU}subject_{i}.mat", None, None) for i in range(1, 9)] + [
    (ROI_FILE, "https://raw.githubusercontent.com/awwkl/brain_language_summarization/"
     "9983f91b46c6c3a823d748993842a6cf12791fc7/data/HP_subj_roi_inds.npy", None, None),
]
TR = 2.0
WORD_DURATION = 0.5


def _scalar(value):
    while isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    return value


def read_subject(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """``(data, times, runs, words)`` from one subject_N.mat file."""
    from scipy.io import loadmat

    if not path.is_file():
        raise BrainalignError(f"{path}: missing; expected a Wehbe 2014 subject_N.mat file")
    mat = loadmat(path)
    for key in ("data", "time", "words"):
        if key not in mat:
            raise BrainalignError(f"{path}: no variable {key!r}; expected data, time, words")
    data, time = np.asarray(mat["data"], dtype=np.float32), np.asarray(mat["time"], dtype=float)
    if time.ndim != 2 or time.shape[0] != data.shape[0] or time.shape[1] < 2:
        raise BrainalignError(f"{path}: time has shape {time.shape}; expected ({data.shape[0]}, 2) = (seconds, run)")
    entries = mat["words"].reshape(-1)
    words = pd.DataFrame({"text": [str(_scalar(e[0])) for e in entries], "onset": [float(_scalar(e[1])) for e in entries]})
    return data, time[:, 0], time[:, 1].astype(int), words


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    raw_dir = Path(raw_dir)
    use_roi = options["voxels"] != "all"
    if use_roi:
        if not (raw_dir / ROI_FILE).is_file():
            raise BrainalignError(f"{raw_dir / ROI_FILE}: missing; expected BLS language-ROI indices (or options.voxels: all)")
        roi = np.load(raw_dir / ROI_FILE, allow_pickle=True).item()
    blocks, neuroids, neuroid_subjects, reference = [], [], [], None
    for number, letter in enumerate(SUBJECTS, 1):
        data, times, runs, words = read_subject(raw_dir / f"subject_{number}.mat")
        if reference is None:
            reference = (times, runs, words)
        elif not (np.allclose(times, reference[0]) and (runs == reference[1]).all() and words.equals(reference[2])):
            raise BrainalignError(f"{raw_dir}/subject_{number}.mat: scan times, runs or words differ from subject_1.mat")
        index = np.arange(data.shape[1])
        if use_roi:
            if letter not in roi or "all" not in roi[letter]:
                raise BrainalignError(f"{raw_dir / ROI_FILE}: no entry [{letter!r}]['all']")
            index = np.asarray(roi[letter]["all"], dtype=int)
            if index.max() >= data.shape[1]:
                raise BrainalignError(f"{raw_dir / ROI_FILE}: index {index.max()} out of range for subject_{number}.mat "
                                      f"({data.shape[1]} voxels); subject letter mapping wrong?")
        blocks.append(data[:, index])
        neuroids += [f"{letter}.{i}" for i in index]
        neuroid_subjects += [letter] * len(index)
    times, runs, words = reference
    # each word's group is the run of the scan its onset falls in (the last scan starting at or before it), the
    # same labels as the scans' sample_groups, so the encoding stage maps every run's words to that run's scans
    word_runs = runs[np.searchsorted(times, words["onset"].to_numpy(), side="right").clip(1, len(runs)) - 1]
    groups = pd.Series([f"run{r}" for r in word_runs])
    stimuli = pd.DataFrame({"stimulus_id": [f"hp9.w{i:04d}" for i in range(len(words))], "text": words["text"],
                            "group": groups, "position": groups.groupby(groups, sort=False).cumcount().to_numpy(),
                            "onset": words["onset"], "offset": words["onset"] + WORD_DURATION, "run": word_runs})
    meta = {
        "name": NAME, "kind": KIND, "context": "group", "group_averaged": False, "tr": TR,
        "description": "Wehbe et al. 2014: Harry Potter ch. 9 read word by word (0.5 s/word), 8 subjects, 1,351 TRs, "
                       "4 runs; language-ROI voxels (BLS 'all'), pooled over subjects.",
        "source": CMU, "licence": "Wehbe et al. 2014 PLoS ONE supplementary data (CC BY 4.0 per PLoS ONE)",
        "provenance": "subject_{1..8}.mat (data, time, words) + BLS HP_subj_roi_inds.npy; ASSUMED subject letters "
                      "F,H,I,J,K,L,M,N = subject_1..8. All 1,351 TRs kept (BLS trims 20/15 TRs per run at encoding). "
                      "'+' tokens are fixation marks between paragraphs, kept as in the source.",
        "ceiling_note": "paper Tab. 6 ceiling 0.104 (method not public)", "published_ceiling": 0.104,
    }
    responses = np.concatenate(blocks, axis=1)[None]
    write_prepared(PreparedDataset(stimuli, responses, ["pooled"], neuroids, times, np.array([f"run{r}" for r in runs], dtype=object),
                                   meta=meta, neuroid_subjects=neuroid_subjects), out_dir)
