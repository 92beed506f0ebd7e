"""The headline choice: which rows of the tidy table (:mod:`brainalign.study.tables`) are each model x dataset's
headline score (``Headline``, the config's ``analysis.headline``; ``headline_scores``), and the layer choice of a
headline table in words (``headline_selection``, ``selection_words``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType

import pandas as pd

from brainalign.errors import BrainalignError

HEADLINE_COLUMNS = ["model", "dataset", "score", "kind", "metric", "protocol", "selection", "layer", "normalised", "ci_low",
                    "ci_high"]


@dataclass(frozen=True)
class Headline:
    """Which tidy rows are each model x dataset's headline score: the config's ``analysis.headline``. The schema
    leaves these keys without defaults and names this class: an unset key takes the value below."""

    brain_metric: str = "linear"
    brain_protocol: str = "ridge-grouped"
    # nested: in each outer fold the layer chosen on its training folds only (unbiased by the number of layers; its CI
    # includes the choice: encoding.selection); best: the layer with the best test score (biased upward: the paper's)
    brain_selection: str = "nested"
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
    another per dataset: the paper scored Wehbe 2014 with its own pipeline) / ``brain_selection`` (nested, the
    default: each outer fold's layer chosen on training folds only; or best: the layer with the best test score,
    biased upward), except that a dataset with ``timeseries_metric`` rows under that protocol and selection (time
    series: ``gain_r``, the gain over the word-rate/nuisance baseline, encoding.baseline) takes that metric: what a
    model adds beyond what any model carries; behaviour -> ``behaviour_metric`` / ``behaviour_protocol``. The
    ``selection`` column says which layer choice each brain row is (empty for behaviour)."""
    choice = Headline.from_options(options)
    protocol = tidy["dataset"].map(choice.protocol_of)
    selected = (tidy["kind"] == "brain") & (tidy["protocol"] == protocol) & (tidy["selection"] == choice.brain_selection)
    gain = choice.timeseries_metric
    with_gain = set(tidy.loc[selected & (tidy["metric"] == gain), "dataset"]) if gain else set()
    metric = tidy["dataset"].map(lambda dataset: gain if dataset in with_gain else choice.brain_metric)
    brain = tidy[selected & (tidy["metric"] == metric)]
    other = tidy[(tidy["kind"] == "brain") & (tidy["protocol"] == protocol) & (tidy["metric"] == metric)
                 & tidy["selection"].isin(list(SELECTION_WORDS)) & (tidy["selection"] != choice.brain_selection)]
    lacking = other[~pd.MultiIndex.from_frame(other[["model", "dataset"]]).isin(pd.MultiIndex.from_frame(brain[["model", "dataset"]]))]
    if len(lacking):  # never a silently missing headline (e.g. score files from before nested rows had what is asked)
        row = lacking.iloc[0]
        raise BrainalignError(f"the scores have no {choice.brain_selection} row of {row.metric} / {row.protocol} for {row.model} on "
                              f"{row.dataset} ({len(lacking)} model x dataset(s) have only {row.selection} rows): score them again, or "
                              f"set analysis.headline.brain_selection: {row.selection}")
    behaviour = tidy[(tidy["kind"] == "behaviour") & (tidy["metric"] == choice.behaviour_metric)
                     & (tidy["protocol"] == choice.behaviour_protocol)]
    frame = pd.concat([brain, behaviour], ignore_index=True)
    frame = frame.rename(columns={"raw_r": "score"})
    return frame[HEADLINE_COLUMNS].sort_values(["model", "dataset"], kind="mergesort").reset_index(drop=True)


SELECTION_WORDS = {  # how the page, the figures and the findings name a headline's layer choice
    "nested": "nested layer choice (each fold's layer chosen on training folds only)",
    "best": "best layer (chosen on the folds that score it: biased upward)",
}


def headline_selection(scores: pd.DataFrame) -> str:
    """The layer choice of a headline table's brain rows (its ``selection`` column): ``best``, ``nested``, ``mixed``
    when rows differ, or "" where the table does not say (a published table without the column, behaviour only)."""
    if "selection" not in scores.columns:
        return ""
    brain = scores[scores["kind"] == "brain"] if "kind" in scores.columns else scores
    values = sorted({str(v) for v in brain["selection"] if isinstance(v, str) and v})
    return values[0] if len(values) == 1 else "mixed" if values else ""


def selection_words(selection: str) -> str:
    """A headline's layer choice in words (:data:`SELECTION_WORDS`); "" when unknown."""
    return SELECTION_WORDS.get(selection, "mixed layer choices" if selection == "mixed" else "")
