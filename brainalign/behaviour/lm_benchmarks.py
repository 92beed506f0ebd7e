"""Brain-Score Language's language-model benchmarks (``language`` datasets): the model's read-out, then accuracy.

* SyntaxGym (``syntaxgym-<suite>`` and the ``SyntaxGym2020`` mean): per item and condition the model reads the
  regions as Brain-Score's text parts (``reading_times``: :func:`brainalign.behaviour.brainscore_readout.part_surprisals`);
  a NaN region total becomes 0; each prediction formula is evaluated on the item's totals keyed by (condition,
  region position, 1-based); an item is correct when every prediction holds; a suite's score is the fraction of
  correct items, and SyntaxGym2020 the mean over the suites. The suite's ``metric`` is checked but, as in
  Brain-Score, a region's total is always the sum over its tokens.
* Wikitext (``Wikitext-accuracy``): Brain-Score hands all contexts to one ``digest_text`` call, so the model reads
  them as one text (each context a part, joined with spaces) and predicts after each
  (:func:`brainalign.behaviour.brainscore_readout.next_word_predictions`); the score is the fraction of predicted
  words equal to the targets.

Tidy rows: ``kind`` behaviour, ``protocol`` brainscore-2023 (Brain-Score's choices), ``metric`` ``accuracy`` (the
suite mean for SyntaxGym, the accuracy for Wikitext) and ``accuracy_<suite>`` per suite; ``ceiling`` 1 for SyntaxGym
(Brain-Score's), none for Wikitext; ``n`` the items (suites for the mean, contexts for Wikitext); ``ci_low`` and
``ci_high`` a 95% interval over items (a suite: Wilson; the mean: items drawn within each fixed suite) or over
articles (Wikitext): :mod:`brainalign.behaviour.accuracy_intervals`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.behaviour.accuracy_intervals import clustered_accuracy_interval, suite_mean_interval, wilson_interval
from brainalign.behaviour.prediction_formula import evaluate_formula, parse_formula
from brainalign.datasets.base import load_prepared
from brainalign.errors import BrainalignError
from brainalign.io import write_json, write_table
from brainalign.study.tables import tidy_frame, tidy_row

log = logging.getLogger(__name__)
PROTOCOL = "brainscore-2023"
READOUT_COLUMNS = {"reading_times": ["stimulus_id", "region", "surprisal_bits"],
                   "next_word": ["stimulus_id", "context", "target", "prediction"]}


def lm_reading(spec: dict) -> bool:
    """Whether a model can be read as Brain-Score's ``HuggingfaceSubject`` (a causal LM: decoders)."""
    return spec["kind"] == "decoder"


def _task(dataset) -> str:
    task = dataset.meta.get("task")
    if task not in READOUT_COLUMNS:
        raise BrainalignError(f"{dataset.meta.get('name')}: meta task is {task!r}; expected one of {', '.join(READOUT_COLUMNS)}")
    return task


def readout_file(spec: dict, model, dataset_dir, out_path, *, device: str | None = None, progress: bool = True) -> None:
    """The model's read-out of a ``language`` dataset as a TSV (+ a JSON summary beside it): region surprisals in
    bits (SyntaxGym) or the predicted word after each context (Wikitext). ``model`` is a prepared folder or the job's
    :class:`~brainalign.models.session.ModelSession`. A model that is not a causal LM gets an empty table and a JSON
    that says why, without loading it."""
    from brainalign.models.session import model_session

    dataset = load_prepared(dataset_dir)
    task = _task(dataset)
    summary = {"model": spec["name"], "dataset": dataset.meta.get("name"), "task": task, "readout": "brainscore-huggingface-subject"}
    if not lm_reading(spec):
        table = pd.DataFrame(columns=READOUT_COLUMNS[task])
        summary.update(applicable=False, reason=f"{spec['kind']} models have no left-to-right next-word distribution")
    else:
        from brainalign.behaviour.brainscore_readout import next_word_predictions, part_surprisals

        loaded = model_session(spec, model, device).get()
        stimuli = dataset.stimuli
        if task == "reading_times":
            texts = [json.loads(r) for r in stimuli["regions"]]
            bits = part_surprisals(loaded.model, loaded.tokenizer, texts, loaded.device, progress=progress)
            table = pd.DataFrame([{"stimulus_id": sid, "region": k + 1, "surprisal_bits": value}
                                  for sid, values in zip(stimuli["stimulus_id"], bits) for k, value in enumerate(values)],
                                 columns=READOUT_COLUMNS[task])
        else:
            from brainalign.datasets.wikitext import build_contexts

            contexts, targets, owners = build_contexts([str(t) for t in stimuli["text"]])
            predictions = next_word_predictions(loaded.model, loaded.tokenizer, contexts, loaded.device, progress=progress)
            ids = stimuli["stimulus_id"].tolist()
            table = pd.DataFrame({"stimulus_id": [ids[o] for o in owners], "context": contexts, "target": targets,
                                  "prediction": predictions}, columns=READOUT_COLUMNS[task])
        summary.update(applicable=True, n_rows=len(table))
    write_table(table, out_path, sep="\t")
    write_json(summary, Path(out_path).with_suffix(".json"))


def suite_accuracy(suite: dict, totals_by_item: list[dict], where: str = "suite") -> tuple[float, np.ndarray]:
    """(accuracy, per-item correctness) of one suite: every formula of ``suite["predictions"]`` on each item's
    region totals ``{(condition, region position): bits}`` (NaN already 0), conjoined within the item."""
    trees = [parse_formula(f, where=f"{where}: predictions[{i}]") for i, f in enumerate(suite["predictions"])]
    correct = np.array([all(evaluate_formula(tree, totals, where=f"{where}: item {i}") for tree in trees)
                        for i, totals in enumerate(totals_by_item)], dtype=bool)
    return float(correct.mean()), correct


def syntaxgym_rows(readout: pd.DataFrame, dataset, model: str, name: str) -> list[dict]:
    """Per-suite accuracy rows and the SyntaxGym2020 mean over the suites (Brain-Score's ceiling 1)."""
    stimuli = dataset.stimuli.set_index("stimulus_id")
    values = readout.assign(surprisal_bits=readout["surprisal_bits"].astype(float).fillna(0.0))
    by_stimulus = {sid: part.sort_values("region")["surprisal_bits"].tolist() for sid, part in values.groupby("stimulus_id", sort=False)}
    rows, scores, counts = [], [], []
    for key, suite in dataset.meta["suites"].items():
        items: dict[int, dict] = {}
        for sid, stim in stimuli[stimuli["suite"] == key].iterrows():
            if sid not in by_stimulus:
                raise BrainalignError(f"{name}: the read-out has no rows for {sid}; rerun the model's read-out")
            totals = items.setdefault(int(stim["item"]), {})
            for position, value in enumerate(by_stimulus[sid][: len(suite["region_names"])], 1):
                totals[(stim["condition"], position)] = value
        accuracy, correct = suite_accuracy(suite, [items[i] for i in sorted(items)], where=f"{name}: suite {key}")
        scores.append(accuracy)
        counts.append((int(correct.sum()), len(correct)))
        rows.append(tidy_row(model, name, "behaviour", f"accuracy_{key}", PROTOCOL, accuracy, ceiling=1.0,
                             ci=wilson_interval(*counts[-1]), n=len(correct)))
    interval = suite_mean_interval([c for c, _ in counts], [n for _, n in counts])
    rows.append(tidy_row(model, name, "behaviour", "accuracy", PROTOCOL, float(np.mean(scores)), ceiling=1.0,
                         ci=interval, n=len(scores)))
    return rows


def wikitext_row(readout: pd.DataFrame, dataset, model: str, name: str) -> dict:
    """The next-word accuracy row, its interval clustered by article (the stimuli's ``article`` column; by line in
    datasets prepared without it)."""
    hits = readout["prediction"].fillna("").to_numpy() == readout["target"].fillna("").to_numpy()
    if not len(hits):
        return tidy_row(model, name, "behaviour", "accuracy", PROTOCOL, np.nan, n=0)
    stimuli = dataset.stimuli.set_index("stimulus_id")
    unit = "article" if "article" in stimuli.columns else None
    clusters = readout["stimulus_id"].map(stimuli[unit]) if unit else readout["stimulus_id"]
    if clusters.isna().any():
        raise BrainalignError(f"{name}: the read-out names stimuli the dataset lacks; rerun the model's read-out")
    return tidy_row(model, name, "behaviour", "accuracy", PROTOCOL, float(hits.mean()),
                    ci=clustered_accuracy_interval(hits, clusters.to_numpy()), n=len(hits))


def lm_score_file(readout_path, dataset_dir, out_path, *, model: str, dataset: str) -> None:
    """Step function of rule ``lm_score``: a ``language`` dataset's accuracy rows from the model's read-out."""
    ds = load_prepared(dataset_dir)
    task = _task(ds)
    summary = json.loads(Path(readout_path).with_suffix(".json").read_text())
    rows = []
    if summary.get("applicable", True):
        readout = pd.read_csv(readout_path, sep="\t", keep_default_na=False, na_values=[""],
                              dtype={"stimulus_id": str, "target": str, "prediction": str, "context": str})
        missing = [c for c in READOUT_COLUMNS[task] if c not in readout.columns]
        if missing:
            raise BrainalignError(f"{readout_path}: lacks column(s) {missing}; rerun the model's read-out")
        if task == "reading_times":
            rows = syntaxgym_rows(readout, ds, model, dataset)
        else:
            rows = [wikitext_row(readout, ds, model, dataset)]
    else:
        log.info("%s on %s: %s", model, dataset, summary.get("reason"))
    write_table(tidy_frame(rows), out_path)
