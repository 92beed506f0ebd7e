"""A dataset adapter defined outside the package (the "Add a dataset" recipe of docs/DESIGN.md): sentences in a
CSV (``sentence``, ``passage``, ``response``) with one group-averaged response per sentence. Registered by
:mod:`tests.support.toy_plugin`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.errors import BrainalignError

NAME = "toy_sentences"
KIND = "sentence"
FILE = "toy_sentences.csv"
REMOTE_FILES = [(FILE, "https://example.org/toy_sentences.csv", None, None)]


def write_raw(folder: Path, n_passages: int = 8, per_passage: int = 5, seed: int = 0) -> Path:
    """The raw CSV: short sentences whose response grows with their length (a planted signal any layer carries)."""
    rng = np.random.default_rng(seed)
    words = ("the", "river", "old", "teacher", "watched", "a", "quiet", "harbor", "near", "forest", "bright", "window")
    rows = []
    for passage in range(n_passages):
        for _ in range(per_passage):
            sentence = " ".join(rng.choice(words, size=int(rng.integers(3, 12)))).capitalize() + "."
            rows.append({"sentence": sentence, "passage": f"p{passage}", "response": len(sentence) / 10 + rng.normal(0, 0.3)})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    path = Path(raw_dir) / FILE
    if not path.is_file():
        raise BrainalignError(f"{path}: missing; expected the toy sentences CSV")
    table = pd.read_csv(path)
    stimuli = pd.DataFrame({"stimulus_id": [f"toy.{i}" for i in range(len(table))], "text": table["sentence"],
                            "group": table["passage"], "position": table.groupby("passage").cumcount()})
    meta = {"name": NAME, "kind": KIND, "context": "sentence", "group_averaged": True, "description": "toy sentences",
            "source": str(path), "licence": "test data", "provenance": "tests/support/toy_dataset.py write_raw"}
    responses = table["response"].to_numpy(np.float32)[None, :, None]
    write_prepared(PreparedDataset(stimuli, responses, ["average"], ["toy_roi"], meta=meta), out_dir)
