"""Brennan et al. 2016 "Alice": 28 listeners x 362 fMRI scans x 6 left-hemisphere ROIs (10 mm spheres), with the
hand-corrected word TextGrid and per-subject nuisance regressors (SPM8 movement, sound power, word rate).

Scan timing (documented in meta and docs/datasets.md): TR = 2 s; the authors discarded the first 10 volumes, and
the audio (with 20 s of leading silence, the TextGrid's clock) is taken to start with the first acquired volume, so
kept scan i (0-based) starts at ``20 + 2 i`` s on the TextGrid clock. Evidence in the files themselves:
the movement files have 372 rows (362 + the 10 discarded volumes); the authors' HRF-convolved word-rate predictor
in ``sept18-generic-predictors*.txt`` (372 rows) matches ``s##-rate.txt`` best at a 10-row shift (r = 0.98); and a
word-rate regressor rebuilt from the TextGrid onsets and convolved with a canonical HRF matches ``s##-rate.txt`` best
when sampled at 20 + 2 i s (r = 0.99; tests/test_datasets_real.py repeats this check). The exact sub-TR phase
(start vs. middle of the volume) cannot be recovered from these files.

Subjects whose time course is not 362 x 6 finite, non-constant values are excluded with a logged note
(s33 in the public snapshot: 362 rows of zeros, 4,344 bytes).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.errors import BrainalignError

log = logging.getLogger("brainalign.datasets")

NAME = "brennan2016"
KIND = "timeseries"
REMOTE_FILES = []  # offline only: the public snapshot has no stable per-file URL with checksums (see SOURCE)
SOURCE = ("Brennan et al. 2016 (Brain & Language 157-158:81-94) ROI data as shared in github.com/daandouwe/Thesis "
          "@ ec54039, brain-data/syntax-in-rnng/alice_data_shared and alice_stim_shared")
ROIS = ["LATL", "RATL", "LPTL", "LIPL", "LPreM", "LIFG"]
TR = 2.0
N_SCANS = 362
N_DISCARDED = 10
SCAN0_TIME = N_DISCARDED * TR  # 20 s on the TextGrid clock
TEXTGRID = "alice_stim_shared/DownTheRabbitHoleFinal_exp120_pad_1.TextGrid"
NON_WORDS = {"", "sp", "sil", "{sl}", "<sil>"}


def read_textgrid_words(path: Path) -> pd.DataFrame:
    """Word intervals (onset, offset, word) of a Praat TextGrid's first interval tier, silences dropped."""
    if not path.is_file():
        raise BrainalignError(f"{path}: missing; expected the Alice word TextGrid")
    text = path.read_text(encoding="utf-8", errors="replace")
    intervals = re.findall(r'xmin = ([-\d.eE+]+)\s+xmax = ([-\d.eE+]+)\s+text = "((?:[^"]|"")*)"', text)
    if not intervals:
        raise BrainalignError(f"{path}: no intervals found; expected a Praat TextGrid (ooTextFile) with a word tier")
    rows = [(float(a), float(b), w.replace('""', '"').strip()) for a, b, w in intervals]
    words = pd.DataFrame([r for r in rows if r[2].lower() not in NON_WORDS], columns=["onset", "offset", "text"])
    if (np.diff(words["onset"]) < 0).any():
        raise BrainalignError(f"{path}: word onsets are not increasing")
    return words


def _load_matrix(path: Path, rows: int, cols: int | None) -> np.ndarray:
    values = np.loadtxt(path, ndmin=2)
    if values.shape[0] != rows or (cols is not None and values.shape[1] != cols):
        raise BrainalignError(f"{path}: shape {values.shape}; expected ({rows}, {cols or 'k'})")
    return values


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    raw_dir = Path(raw_dir)
    data_dir = raw_dir / "alice_data_shared"
    roi_dir = data_dir / options["roi_radius"]
    files = sorted(roi_dir.glob("s*-timecourses.txt"))
    if not files:
        raise BrainalignError(f"{roi_dir}: no s##-timecourses.txt files; expected the Alice ROI time courses")
    words = read_textgrid_words(raw_dir / TEXTGRID)
    subjects, responses, nuisance, exclusions = [], [], [], []
    for path in files:
        subject = path.name.split("-")[0]
        values = np.loadtxt(path, ndmin=2)
        problem = None
        if values.shape != (N_SCANS, len(ROIS)):
            problem = f"shape {values.shape}, expected ({N_SCANS}, {len(ROIS)})"
        elif not np.isfinite(values).all():
            problem = "non-finite values"
        elif (np.ptp(values, axis=0) == 0).any():
            problem = f"constant ROI time course(s) ({path.stat().st_size} bytes; all zeros)" if not values.any() \
                else "constant ROI time course(s)"
        if problem:
            exclusions.append({"subject": subject, "file": path.relative_to(raw_dir).as_posix(), "reason": problem})
            log.warning("%s: excluded subject %s: %s", NAME, subject, problem)
            continue
        movement = sorted(data_dir.glob(f"{subject}-rp_*.txt"))
        if len(movement) != 1:
            raise BrainalignError(f"{data_dir}: expected one {subject}-rp_*.txt movement file, found {len(movement)}")
        rp = _load_matrix(movement[0], N_SCANS + N_DISCARDED, 6)[N_DISCARDED:]
        sndpwr = _load_matrix(data_dir / f"{subject}-sndpwr.txt", N_SCANS, 1)
        rate = _load_matrix(data_dir / f"{subject}-rate.txt", N_SCANS, 1)
        subjects.append(subject)
        responses.append(values)
        nuisance.append(np.hstack([rp, sndpwr, rate]))
    if not subjects:
        raise BrainalignError(f"{roi_dir}: no usable subject time courses")
    stimuli = words.assign(stimulus_id=[f"alice.w{i:04d}" for i in range(len(words))], group="alice",
                           position=np.arange(len(words)))[["stimulus_id", "text", "group", "position", "onset", "offset"]]
    meta = {
        "name": NAME, "kind": KIND, "context": "group", "group_averaged": False, "tr": TR,
        "description": "Brennan et al. 2016: 12.4 min of Alice in Wonderland ch. 1 (audiobook), fMRI ROI time courses "
                       "(10 mm spheres: " + " ".join(ROIS) + "), TR 2 s, 362 scans after 10 discarded volumes.",
        "source": SOURCE,
        "licence": "CC BY 4.0 (alice_data_shared/LICENSE.txt; TextGrid CC BY 4.0)",
        "provenance": "words: hand-corrected forced alignment (TextGrid, 20 s silence padding, 120% dilation), "
                      "silences ('sp') dropped; responses: s##-timecourses.txt; nuisance: SPM8 movement (first 10 "
                      "rows = discarded volumes dropped), sound power, word rate (authors' regressors, 362 rows).",
        "scan_timing": f"scan i starts at {SCAN0_TIME:g} + {TR:g} i s on the TextGrid clock (10 discarded volumes = "
                       "the 20 s silence padding). Verified from the files: movement has 372 rows; authors' rate "
                       "regressor matches a TextGrid-derived HRF-convolved word rate best at this offset (r=0.99). "
                       "Sub-TR phase (volume start vs. middle) is not recoverable: uncertain by up to 1 s.",
        "nuisance_names": ["rp_x", "rp_y", "rp_z", "rp_pitch", "rp_roll", "rp_yaw", "sound_power", "word_rate"],
        "exclusions": exclusions,
        "ceiling_note": "per-subject data: split-half / leave-one-subject-out noise ceiling computable",
    }
    times = SCAN0_TIME + TR * np.arange(N_SCANS)
    write_prepared(PreparedDataset(stimuli, np.stack(responses).astype(np.float32), subjects, ROIS, times,
                                   np.array(["alice"] * N_SCANS, dtype=object), np.stack(nuisance).astype(np.float32),
                                   meta), out_dir)
