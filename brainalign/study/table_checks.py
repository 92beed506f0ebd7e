"""The headline and models tables as the analysis reads them (``brainalign analyse``, rule analyse): ``read_table``
(a comma-separated file, with one-line errors naming file and line), ``check_headline`` (``model,dataset,score``, one
finite score per model x dataset), ``check_models`` (one row per model, 0/1 flags, pairs naming models of the table,
numeric properties) and ``check_scored_models`` (every scored model in the models table). An entry they cannot use is a
one-line error (:class:`TableError`) naming file, line, model and field, or with ``drop_invalid`` the entry left out
and recorded (:class:`InvalidEntry`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from brainalign.errors import BrainalignError

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
