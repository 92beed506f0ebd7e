"""Natural Stories self-paced reading (Futrell et al. 2018/2021): per-word mean reading times over readers
(``processed_wordinfo.tsv``) joined with the word list ``all_stories.tok`` by (item = story, zone = word).

Group-averaged (one subject ``average``); measures ``rt_mean`` (arithmetic mean RT, ms) and ``rt_gmean``
(geometric mean). ``item``/``zone`` columns are kept: the repository's 2025-05-12 note says the SPR data were
misaligned by one position and only ``processed_RTs.tsv`` was regenerated, so the behaviour stage tests lags.
Sentence ids are derived from sentence-final punctuation (., ?, ! possibly followed by closing quotes/brackets).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.errors import BrainalignError

NAME = "naturalstories"
KIND = "reading"
HEADLINE_MEASURE = "rt_mean"  # the reading measure the behaviour headline rows report (brainalign.behaviour.scoring)
COMMIT = "4700daad696e942f5aba23c957a7423d0de66612"
BASE = f"https://raw.githubusercontent.com/languageMIT/naturalstories/{COMMIT}/naturalstories_RTS/"
REMOTE_FILES = [
    ("all_stories.tok", BASE + "all_stories.tok", None, 119005),
    ("processed_wordinfo.tsv", BASE + "processed_wordinfo.tsv", None, 901515),
]
SENTENCE_END = re.compile(r"[.?!][\"'’”)\]]*$")


def sentence_numbers(words: pd.Series, groups: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Running sentence index (restarting at each group change) and 1-based word position in the sentence."""
    sentence, within = np.zeros(len(words), dtype=int), np.zeros(len(words), dtype=int)
    current, position, previous_group, ends = 0, 0, None, False
    for i, (word, group) in enumerate(zip(words, groups)):
        if group != previous_group or ends:
            current, position = (0 if group != previous_group else current + 1), 0
        position += 1
        sentence[i], within[i] = current, position
        ends, previous_group = bool(SENTENCE_END.search(str(word))), group
    return sentence, within


def read_tok(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise BrainalignError(f"{path}: missing; expected the Natural Stories word list (word, zone, item)")
    tok = pd.read_csv(path, sep="\t", dtype={"word": str}, keep_default_na=False, quoting=3)
    if {"word", "zone", "item"} - set(tok.columns):
        raise BrainalignError(f"{path}: columns {list(tok.columns)}; expected word, zone, item")
    if tok.duplicated(["item", "zone"]).any():
        raise BrainalignError(f"{path}: duplicate (item, zone) keys")
    return tok.sort_values(["item", "zone"], kind="stable").reset_index(drop=True)


def reading_stimuli(tok: pd.DataFrame) -> pd.DataFrame:
    """The stimuli table for Natural Stories words in reading order (shared with the futrell2018 adapter)."""
    group = "story" + tok["item"].astype(str).str.zfill(2)
    sentence, within = sentence_numbers(tok["word"], group)
    return pd.DataFrame({
        "stimulus_id": [f"ns.{i}.{z}" for i, z in zip(tok["item"], tok["zone"])],
        "text": tok["word"],
        "group": group,
        "position": tok.groupby("item").cumcount(),
        "sentence_id": [f"{g}.s{s:03d}" for g, s in zip(group, sentence)],
        "word_in_sentence": within,
        "item": tok["item"],
        "zone": tok["zone"],
    })


LICENCE = "CC BY-NC-SA 4.0 (languageMIT/naturalstories LICENSE.txt)"


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    raw_dir = Path(raw_dir)
    tok = read_tok(raw_dir / "all_stories.tok")
    info_path = raw_dir / "processed_wordinfo.tsv"
    if not info_path.is_file():
        raise BrainalignError(f"{info_path}: missing; expected Natural Stories per-word mean RTs")
    info = pd.read_csv(info_path, sep="\t", dtype={"word": str}, keep_default_na=False, quoting=3)
    need = {"word", "zone", "item", "nItem", "meanItemRT", "gmeanItemRT"}
    if need - set(info.columns):
        raise BrainalignError(f"{info_path}: lacks column(s) {sorted(need - set(info.columns))}")
    if info.duplicated(["item", "zone"]).any():
        raise BrainalignError(f"{info_path}: duplicate (item, zone) keys")
    merged = tok.merge(info, on=["item", "zone"], how="left", suffixes=("", "_info"), validate="one_to_one")
    unmatched = merged["meanItemRT"].isna() & merged["word_info"].isna()
    extra = len(info) - int((~unmatched).sum())
    if extra:
        raise BrainalignError(f"{info_path}: {extra} (item, zone) rows have no word in all_stories.tok")
    differ = (~unmatched) & (merged["word"] != merged["word_info"])
    if differ.any():
        row = merged[differ].iloc[0]
        raise BrainalignError(f"{info_path}: word {row['word_info']!r} at item {row['item']} zone {row['zone']} differs "
                              f"from all_stories.tok {row['word']!r}")
    stimuli = reading_stimuli(tok)
    stimuli["n_readers"] = merged["nItem"].fillna(0).astype(int).to_numpy()
    responses = merged[["meanItemRT", "gmeanItemRT"]].to_numpy(np.float32)[None]
    meta = {
        "name": NAME, "kind": KIND, "context": "group", "group_averaged": True,
        "description": "Natural Stories corpus (10 stories, 10,256 words): self-paced reading times averaged over "
                       "readers per word (ms).",
        "source": BASE + "processed_wordinfo.tsv",
        "licence": LICENCE,
        "provenance": f"languageMIT/naturalstories @ {COMMIT}: all_stories.tok + processed_wordinfo.tsv joined by "
                      "(item, zone). CAVEAT: processed_wordinfo.tsv predates the 2025 realignment of the SPR data "
                      "(README: misaligned by one position); use item/zone to test lags.",
        "measures": {"rt_mean": "meanItemRT (ms)", "rt_gmean": "gmeanItemRT (geometric mean, ms)"},
        "ceiling_note": "group-averaged: no split-half ceiling (needs per-subject RTs, see futrell2018)",
        "n_unmatched_words": int(unmatched.sum()),
    }
    write_prepared(PreparedDataset(stimuli, responses, ["average"], ["rt_mean", "rt_gmean"], meta=meta), out_dir)
