"""The tidy scores table: the one format every score file, the study-wide table, the analysis, the figures and the
report share, and the documented way to analyse published numbers with the same code (docs/DESIGN.md).

Columns (``TIDY_COLUMNS``): model, dataset, kind (brain | behaviour), metric (linear, rsa, cka, surprisal_r,
perplexity, ...), protocol, selection (best | nested | layer | empty), layer, layer_index, layer_depth, raw_r,
ceiling, normalised (raw / ceiling, unclipped), ci_low, ci_high (95% CI of raw_r), n.

This module owns the table and the tables derived from it: the row constructor (``tidy_row``, the one place
``normalised`` is computed), reading and checking score files (``read_tidy``), the headline table (one score per
model x dataset: ``headline_scores``, read by ``read_table`` and checked by ``check_headline``: one-line errors naming
file, line, model and field, or with ``drop_invalid`` the entry left out), the models table check (``check_models``;
``check_scored_models`` across the two),
the model x dataset pivot (``model_by_dataset``), the (base, derived) model pairs (``pairs_of``) and the untrained
controls (``untrained_models``). No statistics and no plotting here: ``statistics`` and ``figures`` build on it.
"""

from __future__ import annotations

import math
import re
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
# models-table columns that are names or labels, never numbers (the others are numeric properties when they hold numbers)
LABEL_COLUMNS = {"model", "family", "vanilla_base_model", "kind", "source", "model_id", "revision", "quantization", "arithmetic"}
FLAG_VALUES = {"0", "1", "0.0", "1.0", "true", "false"}  # instruction_tuned, trained


class TableError(BrainalignError):
    """A table the analysis reads holds something it cannot use: one line naming the file, the line, the model and
    the field. ``droppable``: an entry that ``drop_invalid`` would leave out."""

    droppable = False


@dataclass(frozen=True)
class InvalidEntry:
    """One value the analysis cannot use (a row of a table, or a cell of it), as a one-line ``message``: what
    ``--drop-invalid`` leaves out, with a warning, instead of stopping."""

    message: str
    model: str
    field: str
    dataset: str = ""
    position: int | None = None  # the row's position in its frame
    value: str = ""  # the value given


def read_table(path) -> pd.DataFrame:
    """A comma-separated table (headline or models table) read as the analysis reads it, with one-line errors
    naming the file and line: a missing, empty or non-UTF-8 file, and a line whose fields are not as many as the
    header's (an unquoted decimal comma splits a number in two: pandas would read the extra field as a column or
    the first one as an index, silently). Each row's line in the file is kept in ``frame.attrs["lines"]``."""
    import csv
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise TableError(f"{path}: file not found")
    header, lines = None, []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            for fields in reader:
                if not fields:
                    continue  # a blank line (pandas skips it too)
                if header is None:
                    header = fields
                    continue
                if len(fields) != len(header):
                    comma = any(_DECIMAL_COMMA.fullmatch(f.strip()) for f in fields)
                    raise TableError(f"{path} line {reader.line_num}: {len(fields)} fields where the header has {len(header)}"
                                     + ("; a decimal comma in an unquoted number? write 0.5, not 0,5" if comma
                                        or len(fields) > len(header) else ""))
                lines.append(reader.line_num)
    except UnicodeDecodeError as error:
        raise TableError(f"{path}: not a UTF-8 text file ({error.reason} at byte {error.start})") from None
    except csv.Error as error:
        raise TableError(f"{path}: not a readable CSV file ({error})") from None
    if header is None:
        raise TableError(f"{path}: empty file (expected a header line and one row per line)")
    frame = pd.read_csv(path, index_col=False, encoding="utf-8-sig")
    if len(frame) == len(lines):
        frame.attrs["lines"] = lines
    return frame


_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")


def _where(frame: pd.DataFrame, source, position: int, row_label: str = "") -> str:
    lines = frame.attrs.get("lines")
    line = lines[position] if lines and len(lines) == len(frame) else position + 2  # header on line 1
    return f"{source} line {line}" + (f" ({row_label})" if row_label else "")


def _empty(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def _not_a_number(value, field: str) -> str:
    text = str(value).strip()
    hint = f" (a decimal comma? write {text.replace(',', '.')})" if _DECIMAL_COMMA.fullmatch(text) else ""
    return f"{field} {text!r} is not a number{hint}"


def _missing_columns(frame: pd.DataFrame, required: list[str], source, need: str = "") -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        separator = " (the file is separated by ';'? write it comma-separated)" if any(";" in str(c) for c in frame.columns) else ""
        raise TableError(f"{source}: missing required columns {missing}{need}{separator}")


def _apply(frame: pd.DataFrame, invalid: list[InvalidEntry], drop_invalid: bool, dropped: list | None,
           drop_rows: bool) -> pd.DataFrame:
    """Raise the first invalid entry (with how many more there are), or leave them out: their rows (``drop_rows``)
    or their cells (set empty), each recorded in ``dropped``."""
    if not invalid:
        return frame
    if not drop_invalid:
        more = f" (and {len(invalid) - 1} more invalid entries)" if len(invalid) > 1 else ""
        error = TableError(invalid[0].message + more)
        error.droppable = True
        raise error
    if dropped is not None:
        dropped.extend(invalid)
    lines = frame.attrs.get("lines")
    if drop_rows:
        keep = [i for i in range(len(frame)) if i not in {entry.position for entry in invalid}]
        out = frame.iloc[keep].reset_index(drop=True)
        if lines and len(lines) == len(frame):
            out.attrs["lines"] = [lines[i] for i in keep]
        return out
    out = frame.copy()
    for entry in invalid:
        out[entry.field] = out[entry.field].astype(object)
        out.iloc[entry.position, out.columns.get_loc(entry.field)] = np.nan
    for name in {entry.field for entry in invalid}:
        if name not in ("vanilla_base_model", "instruction_tuned", "trained"):
            out[name] = pd.to_numeric(out[name], errors="coerce")
    return out


def check_headline(scores: pd.DataFrame, source, *, drop_invalid: bool = False, dropped: list | None = None) -> pd.DataFrame:
    """A headline table (``source`` names it in errors): ``model,dataset,score`` present, one row per model x
    dataset, every model and dataset named and every score a finite number. A row that is not (an empty, NaN or
    infinite score, a number written with a decimal comma) is a one-line error naming the file, line, model,
    dataset and field; with ``drop_invalid`` it is left out instead and recorded in ``dropped``
    (:class:`InvalidEntry`). A valid table is returned as it is."""
    _missing_columns(scores, HEADLINE_REQUIRED, source, " (need model,dataset,score)")
    invalid = []
    numbers = pd.to_numeric(scores["score"], errors="coerce")
    for position, (model, dataset, raw, value) in enumerate(zip(scores["model"], scores["dataset"], scores["score"], numbers)):
        label = f"model {model}, dataset {dataset}"
        if _empty(model) or _empty(dataset):
            problem = "model is empty" if _empty(model) else "dataset is empty"
        elif not _empty(raw) and pd.isna(value):
            problem = _not_a_number(raw, "score")
        elif not np.isfinite(value):
            problem = f"score is {'empty or NaN' if _empty(raw) else raw}; expected a finite number"
        else:
            continue
        invalid.append(InvalidEntry(f"{_where(scores, source, position, label)}: {problem}", str(model), "score", str(dataset), position))
    scores = _apply(scores, invalid, drop_invalid, dropped, drop_rows=True)
    if invalid:
        scores["score"] = pd.to_numeric(scores["score"])
    if scores.duplicated(["model", "dataset"]).any():
        raise TableError(f"{source}: more than one row per model x dataset")
    if "kind" in scores.columns:
        odd = sorted(set(scores["kind"].astype(str)) - {"brain", "behaviour"})
        if odd:
            raise TableError(f"{source}: column kind has {odd}; expected brain or behaviour")
    return scores


def check_models(models: pd.DataFrame, source, *, drop_invalid: bool = False, dropped: list | None = None) -> pd.DataFrame:
    """A models table (``source`` names it in errors): ``model,instruction_tuned,vanilla_base_model`` present, one
    row per model, ``instruction_tuned`` (and ``trained``) 0/1, every ``vanilla_base_model`` a model of the table
    (or empty: no pair), every number of a property column a number. Otherwise a one-line error naming the file,
    line, model and field; with ``drop_invalid`` the value is left out instead (the pair, the flag, the property)
    and recorded in ``dropped`` (:class:`InvalidEntry`). A valid table is returned as it is."""
    import difflib

    _missing_columns(models, MODELS_REQUIRED, source)
    names = models["model"]
    if names.map(_empty).any():
        raise TableError(f"{_where(models, source, int(np.flatnonzero(names.map(_empty))[0]))}: model is empty")
    if names.duplicated().any():
        position = int(np.flatnonzero(names.duplicated())[0])
        raise TableError(f"{_where(models, source, position)}: model {names.iloc[position]!r} has more than one row")
    known = set(names.astype(str))
    invalid = []
    for position, (model, base) in enumerate(zip(names, models["vanilla_base_model"])):
        if not _empty(base) and str(base) not in known:
            close = difflib.get_close_matches(str(base), sorted(known), n=1)
            invalid.append(InvalidEntry(f"{_where(models, source, position, f'model {model}')}: vanilla_base_model {base!r} is not a "
                                        "model of this table" + (f" (did you mean {close[0]!r}?)" if close else ""),
                                        str(model), "vanilla_base_model", position=position, value=str(base)))
    for flag in ("instruction_tuned", "trained"):  # trained may be left empty (trained); instruction_tuned may not
        for position, (model, value) in enumerate(zip(names, models[flag] if flag in models else [])):
            if not (flag == "trained" and _empty(value)) and str(value).strip().lower() not in FLAG_VALUES:
                invalid.append(InvalidEntry(f"{_where(models, source, position, f'model {model}')}: {flag} {value!r} is not "
                                            "0 or 1", str(model), flag, position=position))
    for name in [c for c in models.columns if c not in LABEL_COLUMNS and c not in ("instruction_tuned", "trained")]:
        column = models[name]
        numbers = pd.to_numeric(column, errors="coerce")
        given = ~column.map(_empty)
        bad = given & numbers.isna()
        commas = column.map(lambda v: isinstance(v, str) and bool(_DECIMAL_COMMA.fullmatch(v.strip())))
        if not bad.any() or (not commas.any() and numbers.notna().sum() < bad.sum()):
            continue  # all numbers, or a column of text (notes, labels) with no number written wrongly
        for position in np.flatnonzero(bad):
            invalid.append(InvalidEntry(f"{_where(models, source, int(position), f'model {names.iloc[position]}')}: "
                                        f"{_not_a_number(column.iloc[position], name)}", str(names.iloc[position]), name,
                                        position=int(position)))
    invalid.sort(key=lambda entry: entry.position)
    return _apply(models, invalid, drop_invalid, dropped, drop_rows=False)


def check_scored_models(scores: pd.DataFrame, models: pd.DataFrame, scores_source, models_source, *,
                        drop_invalid: bool = False, dropped: list | None = None) -> pd.DataFrame:
    """Every model of the headline table is a model of the models table (a misspelt name would otherwise leave
    its pair out without a word): a one-line error naming the headline file, line and model (and the closest
    name); with ``drop_invalid`` its rows are left out and recorded in ``dropped``."""
    import difflib

    known = sorted(set(models["model"].astype(str)))
    invalid = []
    for position, (model, dataset) in enumerate(zip(scores["model"].astype(str), scores["dataset"].astype(str))):
        if model not in known:
            close = difflib.get_close_matches(model, known, n=1)
            invalid.append(InvalidEntry(f"{_where(scores, scores_source, position, f'dataset {dataset}')}: model {model!r} is not in "
                                        f"the models table {models_source}" + (f" (did you mean {close[0]!r}?)" if close else ""),
                                        model, "model", dataset, position))
    return _apply(scores, invalid, drop_invalid, dropped, drop_rows=True)


# ----------------------------------------------------------------------------------------------- derived tables
HEADLINE_COLUMNS = ["model", "dataset", "score", "kind", "metric", "protocol", "selection", "layer", "normalised", "ci_low",
                    "ci_high"]


# A time series' baseline-gain rows (brainalign.encoding.baseline): tidy metric of each stored quantity, and their protocol
GAIN_METRICS = {"baseline": "baseline_r", "joint": "joint_r", "gain": "gain_r", "variance_added": "variance_added"}
GAIN_PROTOCOL = "ridge-grouped"  # the joint model's ridge, folds and penalties are ridge-grouped's


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
