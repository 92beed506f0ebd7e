"""The tidy scores table: the one format every score file, the study-wide table, the analysis, the figures and the
report share, and the documented way to analyse published numbers with the same code (docs/DESIGN.md).

Columns (``TIDY_COLUMNS``): model, dataset, kind (brain | behaviour), metric (linear, rsa, cka, surprisal_r,
perplexity, ...), protocol, selection (best | nested | layer | empty), layer, layer_index, layer_depth, raw_r,
ceiling, normalised (raw / ceiling, unclipped), ci_low, ci_high (95% CI of raw_r), n.

This module owns the table and the tables derived from it: the row constructor (``tidy_row``, the one place
``normalised`` is computed), reading and checking score files (``read_tidy``), the headline table (one score per
model x dataset: ``headline_scores``, checked by ``check_headline``), the models table check (``check_models``),
the model x dataset pivot (``model_by_dataset``), the (base, derived) model pairs (``pairs_of``) and the untrained
controls (``untrained_models``). No statistics and no plotting here: ``statistics`` and ``figures`` build on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType

import numpy as np
import pandas as pd

from brainalign.errors import BrainalignError

TIDY_COLUMNS = [
    "model", "dataset", "kind", "metric", "protocol", "selection", "layer", "layer_index", "layer_depth",
    "raw_r", "ceiling", "normalised", "ci_low", "ci_high", "n",
]
SORT_ORDER = ["model", "dataset", "kind", "metric", "protocol", "selection", "layer_index"]


def normalise(raw: float, ceiling) -> float:
    """raw / ceiling where the ceiling is a positive finite number, else NaN (never clipped)."""
    if ceiling is None or not isinstance(ceiling, (int, float, np.floating)) or not math.isfinite(ceiling) or ceiling <= 0:
        return np.nan
    return raw / ceiling


def tidy_row(model: str, dataset: str, kind: str, metric: str, protocol: str, raw_r: float, *, selection: str = "",
             layer: str = "", layer_index=np.nan, layer_depth=np.nan, ceiling=np.nan, ci=(np.nan, np.nan),
             n=np.nan) -> dict:
    """One row of the tidy table; ``normalised`` is derived from ``raw_r`` and ``ceiling`` here, nowhere else."""
    ceiling = float(ceiling) if ceiling is not None and np.isfinite(ceiling) else np.nan
    return {"model": model, "dataset": dataset, "kind": kind, "metric": metric, "protocol": protocol,
            "selection": selection, "layer": layer, "layer_index": layer_index, "layer_depth": layer_depth,
            "raw_r": raw_r, "ceiling": ceiling, "normalised": normalise(raw_r, ceiling),
            "ci_low": ci[0], "ci_high": ci[1], "n": n}


def tidy_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows in the table's column order (an empty table keeps its columns)."""
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


# ----------------------------------------------------------------------------------------------- reading + checks
def read_tidy(paths) -> pd.DataFrame:
    """Concatenate per-model score files, checking they carry the tidy columns; sorted for determinism."""
    frames = []
    for path in paths:
        frame = pd.read_csv(path, keep_default_na=True)
        missing = [c for c in TIDY_COLUMNS if c not in frame.columns]
        if missing:
            raise BrainalignError(f"{path}: missing tidy-table columns {missing}")
        frames.append(frame[TIDY_COLUMNS])
    if not frames:
        return pd.DataFrame(columns=TIDY_COLUMNS)
    tidy = pd.concat(frames, ignore_index=True)
    return tidy.sort_values(SORT_ORDER, kind="mergesort", na_position="first").reset_index(drop=True)


HEADLINE_REQUIRED = ["model", "dataset", "score"]
MODELS_REQUIRED = ["model", "instruction_tuned", "vanilla_base_model"]


def check_headline(scores: pd.DataFrame, source) -> pd.DataFrame:
    """A headline table: ``model,dataset,score`` present and one row per model x dataset (``source`` names it in errors)."""
    missing = [c for c in HEADLINE_REQUIRED if c not in scores.columns]
    if missing:
        raise BrainalignError(f"{source}: missing required columns {missing} (need model,dataset,score)")
    if scores.duplicated(["model", "dataset"]).any():
        raise BrainalignError(f"{source}: more than one row per model x dataset")
    if "kind" in scores.columns:
        odd = sorted(set(scores["kind"].astype(str)) - {"brain", "behaviour"})
        if odd:
            raise BrainalignError(f"{source}: column kind has {odd}; expected brain or behaviour")
    return scores


def check_models(models: pd.DataFrame, source) -> pd.DataFrame:
    """A models table: ``model,instruction_tuned,vanilla_base_model`` present (``source`` names it in errors)."""
    missing = [c for c in MODELS_REQUIRED if c not in models.columns]
    if missing:
        raise BrainalignError(f"{source}: missing required columns {missing}")
    return models


# ----------------------------------------------------------------------------------------------- derived tables
HEADLINE_COLUMNS = ["model", "dataset", "score", "kind", "metric", "protocol", "layer", "normalised", "ci_low", "ci_high"]


# A time series' baseline-gain rows (brainalign.encoding.baseline): tidy metric of each stored quantity, and their protocol
GAIN_METRICS = {"baseline": "baseline_r", "joint": "joint_r", "gain": "gain_r", "variance_added": "variance_added"}
GAIN_PROTOCOL = "ridge-grouped"  # the joint model's ridge, folds and penalties are ridge-grouped's


@dataclass(frozen=True)
class Headline:
    """Which tidy rows are each model x dataset's headline score: the config's ``analysis.headline``. The schema
    leaves these keys without defaults and names this class: an unset key takes the value below."""

    brain_metric: str = "linear"
    brain_protocol: str = "ridge-grouped"
    brain_selection: str = "best"  # or nested: the layer chosen on training folds only
    timeseries_metric: str = "gain_r"  # "" keeps brain_metric on time series too
    behaviour_metric: str = "surprisal_r"
    behaviour_protocol: str = "default"
    dataset_protocols: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_options(cls, options: Mapping | Headline | None = None) -> Headline:
        """From the ``analysis.headline`` mapping (unset keys take the defaults); a key it does not know is a
        one-line error, as in the config check."""
        if isinstance(options, Headline):
            return options
        given = dict(options or {})
        unknown = sorted(set(given) - {f.name for f in fields(cls)})
        if unknown:
            raise BrainalignError(f"analysis.headline: unknown keys {unknown}; known: {[f.name for f in fields(cls)]}")
        if "dataset_protocols" in given:
            given["dataset_protocols"] = MappingProxyType(dict(given["dataset_protocols"] or {}))
        return cls(**given)

    def protocol_of(self, dataset: str) -> str:
        """The brain protocol of ``dataset``'s headline (its ``dataset_protocols`` entry, else ``brain_protocol``)."""
        return self.dataset_protocols.get(dataset, self.brain_protocol)


def headline_scores(tidy: pd.DataFrame, options: Mapping | Headline | None = None) -> pd.DataFrame:
    """One score per model x dataset from the tidy table, the rows the analysis config names (``analysis.headline``,
    read as a ``Headline``): brain -> ``brain_metric`` / ``brain_protocol`` (``dataset_protocols`` may name
    another per dataset: the paper scored Wehbe 2014 with its own pipeline) / ``brain_selection`` (best layer, or
    nested: chosen on training folds only), except that a dataset with ``timeseries_metric`` rows under that
    protocol and selection (time series: ``gain_r``, the gain over the word-rate/nuisance baseline,
    encoding.baseline) takes that metric: what a model adds beyond what any model carries; behaviour ->
    ``behaviour_metric`` / ``behaviour_protocol``."""
    choice = Headline.from_options(options)
    protocol = tidy["dataset"].map(choice.protocol_of)
    selected = (tidy["kind"] == "brain") & (tidy["protocol"] == protocol) & (tidy["selection"] == choice.brain_selection)
    gain = choice.timeseries_metric
    with_gain = set(tidy.loc[selected & (tidy["metric"] == gain), "dataset"]) if gain else set()
    metric = tidy["dataset"].map(lambda dataset: gain if dataset in with_gain else choice.brain_metric)
    brain = tidy[selected & (tidy["metric"] == metric)]
    behaviour = tidy[(tidy["kind"] == "behaviour") & (tidy["metric"] == choice.behaviour_metric)
                     & (tidy["protocol"] == choice.behaviour_protocol)]
    frame = pd.concat([brain, behaviour], ignore_index=True)
    frame = frame.rename(columns={"raw_r": "score"})
    return frame[HEADLINE_COLUMNS].sort_values(["model", "dataset"], kind="mergesort").reset_index(drop=True)


BRAIN_AVERAGE = "brain_average"


def analysis_measures(scores: pd.DataFrame, brain_datasets: dict | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """What the analysis compares, as models (index) x measures, and each measure's kind (brain | behaviour).

    Brain measures: each entry of ``brain_datasets`` (measure -> the datasets it merges: the paper's Pereira 2018 is
    the mean of its 243- and 384-sentence experiments), then ``brain_average``, the per-model mean over those
    measures (NaN where a model lacks one: the paper's average covers Pereira, Blank and Wehbe, never a subset). A
    measure whose own name is a dataset of ``scores`` (a published table already merged) is taken as it is.
    Without ``brain_datasets`` every brain dataset is its own measure. Brain datasets the mapping leaves out are
    reported on their own, outside the average. Behaviour datasets are measures of their own, never averaged with
    brain data. ``scores`` needs model, dataset, score; its ``kind`` column (absent: brain) sorts the datasets.
    """
    kinds = scores["kind"] if "kind" in scores else pd.Series("brain", index=scores.index)
    wide = model_by_dataset(scores, average=False)
    kind_of = dict(zip(scores["dataset"], kinds))
    brain = sorted(d for d, k in kind_of.items() if k == "brain")
    mapping = dict(brain_datasets) if brain_datasets else {d: [d] for d in brain}
    measures, kind_of_measure = pd.DataFrame(index=wide.index), {}
    for measure, members in mapping.items():
        if measure in wide.columns:
            measures[measure] = wide[measure]
        elif all(m in wide.columns for m in members):
            measures[measure] = wide[list(members)].mean(axis=1, skipna=False)
        else:
            continue  # not in this study (e.g. a config's dataset that this table does not score)
        kind_of_measure[measure] = "brain"
    averaged = list(kind_of_measure)
    if averaged:
        measures[BRAIN_AVERAGE] = measures[averaged].mean(axis=1, skipna=False)
        kind_of_measure[BRAIN_AVERAGE] = "brain"
    covered = {m for members in mapping.values() for m in members} | set(mapping)
    for dataset in brain:
        if dataset not in covered:
            measures[dataset], kind_of_measure[dataset] = wide[dataset], "brain"
    for dataset in sorted(d for d, k in kind_of.items() if k != "brain"):
        measures[dataset], kind_of_measure[dataset] = wide[dataset], kind_of[dataset]
    return measures, kind_of_measure


def model_by_dataset(scores: pd.DataFrame, average: bool = True) -> pd.DataFrame:
    """Headline scores pivoted to models (index) x datasets (columns, sorted); with ``average``, an ``average``
    column: the per-model mean over datasets, NaN where any dataset is missing (skipna=False)."""
    wide = scores.pivot_table(index="model", columns="dataset", values="score", aggfunc="first")
    if average:
        wide["average"] = wide.mean(axis=1, skipna=False)
    return wide


def pairs_of(models: pd.DataFrame) -> list[tuple[str, str]]:
    """(base, derived) for every model whose vanilla_base_model names another model in the table."""
    names = set(models["model"])
    return [(row.vanilla_base_model, row.model) for row in models.itertuples()
            if isinstance(row.vanilla_base_model, str) and row.vanilla_base_model != row.model and row.vanilla_base_model in names]


def untrained_models(models: pd.DataFrame) -> set[str]:
    """The models whose ``trained`` column says 0 / False (random-weight controls); none without the column."""
    if "trained" not in models:
        return set()
    return set(models.loc[models["trained"].astype(str).isin(["0", "0.0", "False", "false"]), "model"])
