"""What the analysis compares, read from the headline and models tables: the model x dataset pivot
(``model_by_dataset``), the measures (``analysis_measures``: brain datasets merged and averaged into
``brain_average``, behaviour datasets on their own), the (base, derived) model pairs (``pairs_of``) and the untrained
controls (``untrained_models``).
"""

from __future__ import annotations

import pandas as pd

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
