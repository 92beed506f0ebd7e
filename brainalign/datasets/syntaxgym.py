"""SyntaxGym targeted syntactic evaluation (Gauthier et al. 2020; Hu et al. 2020): the 31 suites Brain-Score Language
2.3.0 registers as ``syntaxgym-<suite>`` (its ``test_suites.json``: syntactic-generalization at commit 6dda302).

A suite is a JSON file of items; each item has conditions (the same sentence in variants), each a list of regions;
its predictions are formulas over region totals (:mod:`brainalign.behaviour.prediction_formula`). Prepared as a
``language`` dataset (no human responses): one stimulus row per item x condition (``text``: the sentence as the
model reads it; ``regions``: the region contents, JSON), and ``meta["suites"]`` holding each suite's region names,
metric and formulas. ``options: {suites: [...]}`` selects suites (default: all 31); only those are fetched.

Brain-Score registers ``syntaxgym-npz_obj`` with ``identifier='npz_ambig_mod'`` (its ``__init__.py``): the suite it
scores is npz_obj's, reported under npz_ambig_mod's name; its ``SyntaxGym2020`` aggregate builds the suites from
``test_suites.json`` and is not affected. Here every suite is named by its file (npz_obj is npz_obj).

The suite files have no published checksums: the URLs are pinned to a commit (immutable content) and fetch records
each file's sha256 on first download (pin them with ``options: {checksums: ...}``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.behaviour.brainscore_readout import prepare_context
from brainalign.behaviour.prediction_formula import SUITE_METRICS, parse_formula
from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.errors import BrainalignError

NAME = "syntaxgym"
KIND = "language"
TASK = "reading_times"  # Brain-Score's behavioural task this benchmark reads (brainalign.behaviour.lm_benchmarks)
COMMIT = "6dda3024ef0454f3c7c02a31b42c162854ca2445"
BASE = f"https://raw.githubusercontent.com/cpllab/syntactic-generalization/{COMMIT}/test_suites/json/"
SUITES = (
    "center_embed", "center_embed_mod", "cleft", "cleft_modifier", "fgd_hierarchy", "fgd_object", "fgd_pp",
    "fgd_subject", "mvrr", "mvrr_mod", "npi_orc_any", "npi_orc_ever", "npi_src_any", "npi_src_ever", "npz_ambig",
    "npz_ambig_mod", "npz_obj", "npz_obj_mod", "number_orc", "number_prep", "number_src", "reflexive_orc_fem",
    "reflexive_orc_masc", "reflexive_prep_fem", "reflexive_prep_masc", "reflexive_src_fem", "reflexive_src_masc",
    "subordination", "subordination_orc-orc", "subordination_pp-pp", "subordination_src-src",
)
REMOTE_FILES = [(f"{suite}.json", BASE + f"{suite}.json", None, None) for suite in SUITES]


def selected_suites(options: dict | None) -> list[str]:
    """The suites ``options.suites`` names (default all), checked against :data:`SUITES`."""
    suites = (options or {}).get("suites")
    if suites is None:
        return list(SUITES)
    if isinstance(suites, str) or not isinstance(suites, list) or not suites:
        raise BrainalignError(f"syntaxgym options.suites: expected a non-empty list of suite names, got {suites!r}")
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise BrainalignError(f"syntaxgym options.suites: unknown suite(s) {unknown}; known: {', '.join(SUITES)}")
    return list(dict.fromkeys(suites))


def remote_files(options: dict | None) -> list[tuple]:
    """The REMOTE_FILES entries of the selected suites (fetch downloads only these)."""
    chosen = set(selected_suites(options))
    return [entry for entry in REMOTE_FILES if entry[0].removesuffix(".json") in chosen]


def read_suite(path: Path) -> dict:
    """One suite file, checked: ``meta`` (name, metric), ``region_meta``, formula predictions, and items whose
    conditions each have one region per region name. Returns the suite as parsed JSON."""
    where = str(path)
    if not path.is_file():
        raise BrainalignError(f"{path}: missing; expected a SyntaxGym suite JSON")
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BrainalignError(f"{where}: not valid JSON ({error})") from None
    if not isinstance(suite, dict) or any(k not in suite for k in ("meta", "region_meta", "predictions", "items")):
        raise BrainalignError(f"{where}: expected a SyntaxGym suite object with meta, region_meta, predictions and items")
    metric = suite["meta"].get("metric") if isinstance(suite["meta"], dict) else None
    if metric not in SUITE_METRICS:
        raise BrainalignError(f"{where}: meta.metric is {metric!r}; expected one of {', '.join(SUITE_METRICS)}")
    try:
        numbers = sorted(int(k) for k in suite["region_meta"])
    except (TypeError, ValueError):
        raise BrainalignError(f"{where}: region_meta keys must be region numbers") from None
    for i, prediction in enumerate(suite["predictions"]):
        if not isinstance(prediction, dict) or prediction.get("type") != "formula" or not isinstance(prediction.get("formula"), str):
            raise BrainalignError(f"{where}: predictions[{i}]: expected {{type: formula, formula: <string>}}")
        parse_formula(prediction["formula"], where=f"{where}: predictions[{i}]")
    if not suite["items"] or not suite["predictions"]:
        raise BrainalignError(f"{where}: a suite needs at least one item and one prediction")
    for item in suite["items"]:
        for condition in item.get("conditions", []):
            regions = condition.get("regions")
            if not isinstance(regions, list) or len(regions) != len(numbers) or \
                    any(not isinstance(r.get("content"), str) for r in regions):
                raise BrainalignError(f"{where}: item {item.get('item_number')} condition {condition.get('condition_name')!r}: "
                                      f"expected {len(numbers)} regions with string content")
        if not item.get("conditions"):
            raise BrainalignError(f"{where}: item {item.get('item_number')} has no conditions")
    return suite


def prepare(raw_dir: Path, out_dir: Path, options: dict) -> None:
    raw_dir = Path(raw_dir)
    rows, suites = [], {}
    for key in selected_suites(options):
        suite = read_suite(raw_dir / f"{key}.json")
        suites[key] = {"name": suite["meta"].get("name", key), "metric": suite["meta"]["metric"],
                       "region_names": [suite["region_meta"][k] for k in sorted(suite["region_meta"], key=int)],
                       "predictions": [p["formula"] for p in suite["predictions"]], "n_items": len(suite["items"])}
        for item_index, item in enumerate(suite["items"]):
            for condition in item["conditions"]:
                contents = [r["content"] for r in condition["regions"]]
                rows.append({"stimulus_id": f"{key}/{item_index}/{condition['condition_name']}",
                             "text": prepare_context(contents), "group": key, "suite": key, "item": item_index,
                             "condition": condition["condition_name"], "regions": json.dumps(contents, ensure_ascii=False)})
    stimuli = pd.DataFrame(rows)
    stimuli["position"] = stimuli.groupby("group", sort=False).cumcount()
    meta = {"name": NAME, "kind": KIND, "task": TASK, "context": "sentence", "group_averaged": False,
            "description": "SyntaxGym targeted syntactic evaluation suites (Brain-Score Language's syntaxgym-*)",
            "source": BASE, "licence": "see cpllab/syntactic-generalization", "suites": suites,
            "provenance": "suite JSON files of cpllab/syntactic-generalization at commit " + COMMIT,
            "ceiling_note": "accuracy; Brain-Score's ceiling is 1"}
    write_prepared(PreparedDataset(stimuli, np.zeros((0, len(stimuli), 0), dtype=np.float32), [], [], meta=meta), out_dir)
