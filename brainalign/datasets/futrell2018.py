"""Futrell et al. 2018 Natural Stories self-paced reading, per subject: ``processed_RTs.tsv`` (one row per reader x
word: WorkerId, item, zone, RT, ...) joined with ``all_stories.tok`` by (item, zone). Responses are
(readers, 10,256 words, 1 measure ``rt`` in ms), NaN where a reader has no RT. The repository's filtering (readers
with >= 5/6 comprehension answers correct, 100 ms < RT < 3000 ms) is kept as released; no further filtering here.

``processed_RTs.tsv`` has no published checksum; the URL is pinned to commit 4700daa (immutable content) and the
fetch stage records its sha256 on first download (docs/datasets.md, "Checksums").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.datasets.naturalstories import BASE, COMMIT, LICENCE, read_tok, reading_stimuli
from brainalign.errors import BrainalignError

NAME = "futrell2018"
KIND = "reading"
HEADLINE_MEASURE = "rt"  # the reading measure the behaviour headline rows report (brainalign.behaviour.scoring)
REMOTE_FILES = [
    ("all_stories.tok", BASE + "all_stories.tok", None, 119005),
    ("processed_RTs.tsv", BASE + "processed_RTs.tsv", None, None),
]


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    raw_dir = Path(raw_dir)
    tok = read_tok(raw_dir / "all_stories.tok")
    path = raw_dir / "processed_RTs.tsv"
    if not path.is_file():
        raise BrainalignError(f"{path}: missing; expected Natural Stories per-subject RTs")
    rts = pd.read_csv(path, sep="\t", usecols=lambda c: c in {"WorkerId", "item", "zone", "RT", "word"},
                      dtype={"WorkerId": str, "word": str}, keep_default_na=False, na_values=["NA", ""], quoting=3)
    need = {"WorkerId", "item", "zone", "RT"}
    if need - set(rts.columns):
        raise BrainalignError(f"{path}: lacks column(s) {sorted(need - set(rts.columns))}")
    if rts.duplicated(["WorkerId", "item", "zone"]).any():
        raise BrainalignError(f"{path}: duplicate (WorkerId, item, zone) rows")
    stimuli = reading_stimuli(tok)
    row = pd.Series(np.arange(len(tok)), index=pd.MultiIndex.from_frame(tok[["item", "zone"]]))
    keys = pd.MultiIndex.from_frame(rts[["item", "zone"]])
    rows = row.reindex(keys).to_numpy()
    if np.isnan(rows.astype(float)).any():
        raise BrainalignError(f"{path}: {int(np.isnan(rows.astype(float)).sum())} rows with (item, zone) not in all_stories.tok")
    if "word" in rts.columns:
        mismatch = (tok["word"].to_numpy()[rows.astype(int)] != rts["word"].to_numpy()) & rts["word"].notna().to_numpy()
        if mismatch.any():
            i = int(np.flatnonzero(mismatch)[0])
            raise BrainalignError(f"{path}: word {rts['word'].iloc[i]!r} at item {rts['item'].iloc[i]} zone "
                                  f"{rts['zone'].iloc[i]} differs from all_stories.tok")
    subjects = sorted(rts["WorkerId"].unique())
    subject_index = pd.Series(np.arange(len(subjects)), index=subjects)
    responses = np.full((len(subjects), len(tok), 1), np.nan, dtype=np.float32)
    responses[subject_index[rts["WorkerId"]].to_numpy(), rows.astype(int), 0] = rts["RT"].to_numpy(np.float32)
    meta = {
        "name": NAME, "kind": KIND, "context": "group", "group_averaged": False,
        "description": "Natural Stories self-paced reading (Futrell et al. 2018): per-reader RTs (ms) for 10,256 words.",
        "source": BASE + "processed_RTs.tsv", "licence": LICENCE,
        "provenance": f"languageMIT/naturalstories @ {COMMIT}: processed_RTs.tsv (realigned 2025) + all_stories.tok, "
                      "joined by (item, zone)",
        "ceiling_note": "split-half over readers with Spearman-Brown (Brain-Score: 0.858)", "published_ceiling": 0.858,
    }
    write_prepared(PreparedDataset(stimuli, responses, subjects, ["rt"], meta=meta), out_dir)
