"""The miniature's language-model benchmark files in their real formats: SyntaxGym suite JSONs and a WikiText-2 raw
release zip (``wikitext-2-raw/wiki.test.raw``), texts from words the tiny tokenizers know (tests/support/tokenizers.py).

Each suite is written twice over: as designed, where the grammatical condition is the one the prediction says
should be less surprising, and (``swapped_suite``) with the prediction's conditions exchanged, so a model that
prefers the grammatical condition scores 1 on the one and 0 on the other.
"""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path

from brainalign.io import file_hash


def _item(number: int, conditions: dict[str, list[str]]) -> dict:
    return {"item_number": number, "conditions": [
        {"condition_name": name, "regions": [{"region_number": k + 1, "content": c} for k, c in enumerate(regions)]}
        for name, regions in conditions.items()]}


def mini_suites() -> dict[str, dict]:
    """Three suites, named after real ones so the adapter fetches them by name (their content is the miniature's):
    number agreement (one formula), a garden path with an empty region (arithmetic, ``*``, ``=``,
    literals), and a disjunction; their formulas cover the grammar."""
    subjects = ["the quick fox", "the lazy dog", "the brown fox", "her sister"]
    agreement = {
        "meta": {"name": "number_prep", "metric": "sum", "comment": "", "reference": "", "author": ""},
        "region_meta": {"1": "Subject", "2": "Verb", "3": "Continuation"},
        "predictions": [{"type": "formula", "formula": "(2;%mismatch%) > (2;%match%)"}],
        "items": [_item(i + 1, {"match": [s, "jumps", "over the lazy dog ."], "mismatch": [s, "jump", "over the lazy dog ."]})
                  for i, s in enumerate(subjects)],
    }
    garden = {
        "meta": {"name": "npz_obj", "metric": "sum", "comment": "", "reference": "", "author": ""},
        "region_meta": {"1": "Start", "2": "Comma", "3": "Verb", "4": "End"},
        "predictions": [{"type": "formula", "formula":
                         "((3;%no-comma%) - (3;%comma%) > 0.0) & (((*;%comma%) + 1e-3) > -1) & ((1;%comma%) = (1;%comma%))"},
                        {"type": "formula", "formula": "(3;%no-comma%)+0.5 > (3;%comma%) -.5"}],
        "items": [_item(i + 1, {"comma": [s, ",", "was tired", "by the bank ."], "no-comma": [s, "", "was tired", "by the bank ."]})
                  for i, s in enumerate(subjects)],
    }
    choice = {
        "meta": {"name": "cleft", "metric": "sum", "comment": "", "reference": "", "author": ""},
        "region_meta": {"1": "Start", "2": "Word"},
        "predictions": [{"type": "formula", "formula": "((2;%bad%) > (2;%good%)) | ((2;%bad%) < (2;%good%) & (1;%bad%) < 0)"}],
        "items": [_item(i + 1, {"good": [s, "words"], "bad": [s, "word"]}) for i, s in enumerate(subjects)],
    }
    return {"number_prep": agreement, "npz_obj": garden, "cleft": choice}


def swapped_suite(suite: dict, pairs: dict[str, str]) -> dict:
    """``suite`` with the conditions of each formula exchanged by ``pairs`` (e.g. match <-> mismatch)."""
    out = copy.deepcopy(suite)
    for prediction in out["predictions"]:
        formula = prediction["formula"]
        for a, b in pairs.items():
            formula = formula.replace(f"%{a}%", "%\0%").replace(f"%{b}%", f"%{a}%").replace("%\0%", f"%{b}%")
        prediction["formula"] = formula
    return out


WIKITEXT_ROWS = [
    " \n",
    " = Alice = \n",
    " \n",
    " Alice was beginning to get very tired of sitting by her sister on the bank . \n",
    " the quick brown fox jumps over the lazy dog , she didn 't say \" 3 @.@ 5 million \" . \n",
    " \n",
    " = = Words = = \n",
    " \n",
    " naive cafe @-@ goers , ' quoted ' words and numbers 1999 , 42 . \n",
    " the  lazy dog . \n",
]


def write_wikitext(out_dir: Path) -> dict:
    """``wikitext-2-raw-v1.zip`` holding ``wikitext-2-raw/wiki.test.raw`` (the rows above) and the zip's checksum."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "wikitext-2-raw-v1.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("wikitext-2-raw/wiki.test.raw", date_time=(2016, 9, 26, 0, 0, 0))
        archive.writestr(info, "".join(WIKITEXT_ROWS).encode("utf-8"))
    return {"rows": len(WIKITEXT_ROWS), "checksums": {path.name: "sha256:" + file_hash(path)}}


def write_syntaxgym(out_dir: Path) -> dict:
    """The mini suites as ``<suite>.json`` files (each fetchable by name) and their checksums."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checksums = {}
    for key, suite in mini_suites().items():
        path = out_dir / f"{key}.json"
        path.write_text(json.dumps(suite, indent=1) + "\n")
        checksums[path.name] = "sha256:" + file_hash(path)
    return {"suites": list(mini_suites()), "checksums": checksums}
