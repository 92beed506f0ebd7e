"""WikiText-2 (raw) test split: Brain-Score Language 2.3.0's ``Wikitext-accuracy`` next-word benchmark.

Brain-Score reads the split with Hugging Face ``datasets`` (``load_dataset('wikitext', 'wikitext-2-raw-v1',
split='test')``: 4,358 rows, one per line of ``wiki.test.raw``, blank lines as ``""``, the others with their
``"\\n"``). That builder made its rows from the release zip fetched here (``wikitext-2-raw-v1.zip``, 4,721,645
bytes, the sha256 the builder pinned), so the rows are read back from ``wiki.test.raw`` the way the builder read
it (text mode, UTF-8). Prepared as a ``language`` dataset: one stimulus row per line that yields a context
(``text``: the stripped line), in order; ``group`` is the line's row number, so ``options: {subset: N}`` keeps the
first N such lines. :func:`build_contexts` turns lines into Brain-Score's contexts and target words.
"""

from __future__ import annotations

import io
import re
import string
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.datasets.options import adapter_option_default
from brainalign.errors import BrainalignError

NAME = "wikitext"
KIND = "language"
TASK = "next_word"  # Brain-Score's behavioural task this benchmark reads (brainalign.behaviour.lm_benchmarks)
ZIP = "wikitext-2-raw-v1.zip"
# the release zip as llama.cpp's get-wikitext-2.sh fetches it, pinned to the ggml-org/ci commit that holds it
URL = "https://huggingface.co/datasets/ggml-org/ci/resolve/927b3642933080f1b0e811e2f916e14c292992f9/" + ZIP
REMOTE_FILES = [(ZIP, URL, "sha256:ef7edb566e3e2b2d31b29c1fdb0c89a4cc683597484c3dc2517919c615435a11", 4721645)]
_PAGE_HEADER = re.compile(r"^=[^=]*(=\n)$")
_ARTICLE_TITLE = re.compile(r"^= [^=](.*[^=])? =$")


def read_test_rows(zip_path: Path, member: str | None = None) -> list[str]:
    """The rows ``datasets`` gives for the test split: every line of ``wiki.test.raw`` (``member``, default the
    schema's ``options.member``) read in text mode (universal newlines), ``""`` for a blank one."""
    member = member or adapter_option_default(NAME, "member")
    if not zip_path.is_file():
        raise BrainalignError(f"{zip_path}: missing; expected the WikiText-2 raw release zip")
    try:
        with zipfile.ZipFile(zip_path) as archive, archive.open(member) as raw:
            return [line if line.strip() else "" for line in io.TextIOWrapper(raw, encoding="utf-8")]
    except (zipfile.BadZipFile, KeyError) as error:
        raise BrainalignError(f"{zip_path}: expected a zip holding {member} ({error})") from None


def build_contexts(rows: list[str]) -> tuple[list[str], list[str], list[int]]:
    """Brain-Score's ``WikitextAccuracy.build_contexts``: per row, each prefix of the stripped line that ends before
    one of its whitespace characters (the last one excepted) is a context, and the word after it the target. A page
    header (a row matching ``^=[^=]*(=\\n)$``) resets the carried-over context, but none is ever carried over (each
    context is its line's prefix alone), so the reset changes nothing. Returns contexts, targets and each context's
    row number."""
    contexts, targets, owners = [], [], []
    previous = ""
    for number, row in enumerate(rows):
        if _PAGE_HEADER.match(row):
            previous = ""
        line = row.strip()
        cuts = [i for i, char in enumerate(line) if char in string.whitespace and i > 0]
        contexts += [previous + line[:cut] for cut in cuts[:-1]]
        targets += [line[cuts[k - 1]:cuts[k]].strip() for k in range(1, len(cuts))]
        owners += [number] * max(len(cuts) - 1, 0)
    return contexts, targets, owners


def article_numbers(rows: list[str]) -> list[int]:
    """Each row's article, counted from 1: WikiText-2 opens an article with its title line (`` = Title = ``; sections
    are `` = = Section = = ``); rows before the first title are article 0. The articles are the units the accuracy's
    interval draws (:func:`brainalign.behaviour.accuracy_intervals.clustered_accuracy_interval`)."""
    numbers, current = [], 0
    for row in rows:
        current += bool(_ARTICLE_TITLE.match(row.strip()))
        numbers.append(current)
    return numbers


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    rows = read_test_rows(Path(raw_dir) / ZIP, options["member"])
    expected = options["n_rows"]
    if len(rows) != expected:
        raise BrainalignError(f"{Path(raw_dir) / ZIP}: {len(rows)} rows in the test split; expected {expected}")
    _, _, owners = build_contexts(rows)
    kept = sorted(set(owners))
    articles = article_numbers(rows)
    stimuli = pd.DataFrame({"stimulus_id": [f"row{n}" for n in kept], "text": [rows[n].strip() for n in kept],
                            "group": [str(n) for n in kept], "position": 0, "row": kept,
                            "article": [articles[n] for n in kept]})
    meta = {"name": NAME, "kind": KIND, "task": TASK, "context": "group", "group_averaged": False,
            "description": "WikiText-2 raw test split, Brain-Score Language's Wikitext-accuracy next-word benchmark",
            "source": URL, "licence": "CC BY-SA 3.0", "n_rows": len(rows),
            "provenance": "wiki.test.raw of the WikiText-2 raw release zip (the rows of Hugging Face's wikitext-2-raw-v1 test split)",
            "ceiling_note": "accuracy; Brain-Score gives no ceiling"}
    write_prepared(PreparedDataset(stimuli, np.zeros((0, len(stimuli), 0), dtype=np.float32), [], [], meta=meta), out_dir)
