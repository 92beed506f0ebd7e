"""The reading regression's predictors and observations, for the ``reading-regression`` protocol
(:mod:`brainalign.behaviour.reading_regression`: how the models below are compared and scored).

Predictors per word (``word_predictors``), lags taken within the word's group (story, or sentence where each was
read on its own), ``k`` = 1 .. ``regression_spillover``:

* baseline: ``length`` (characters of the displayed word), ``log_frequency`` (Zipf value from ``wordfreq``: log10
  of occurrences per billion words; 0 for words it does not know), ``position`` (word in sentence), and
  ``length_lag{k}``, ``log_frequency_lag{k}`` of the k-th previous word (spillover);
* test: ``surprisal_lag0`` (the word's own) .. ``surprisal_lag{k}`` (the previous words': spillover);
* lag check only, in all three of its models: ``length_next``, ``log_frequency_next`` (the next word's), and for the
  word and both neighbours (``""``, ``_lag1``, ``_next``) ``punctuation`` (1 where the word carries punctuation, as
  the ``attached_punctuation`` exclusion reads it) and ``length_squared``; ``surprisal_lag1`` / ``surprisal_next``
  are the one term its two compared models differ in.

Observations (``observations``): one per reader x word where the data have readers (Frank 2013 eye tracking,
futrell2018), one per word on mean reading times otherwise (Natural Stories' ``processed_wordinfo.tsv``). Reading
times outside 50-3000 ms are dropped, as in the default protocol, and so are words the caller excludes and words
with any predictor undefined (the first words of a group, a missing surprisal, the group's last word). Each
observation also carries its text unit (``unit``): the sentence where the stimuli have ``sentence_id``, else the
group; words of one unit share context and are read by every reader, so the unit is what the intervals resample.

The models (``model_columns``): ``baseline``, ``full`` (baseline + surprisal lags) and the lag check's ``shared``,
``previous`` and ``next``.

wordfreq is imported inside the function that reads frequencies: it is heavy, and :mod:`brainalign.study.sections`
imports the protocol for its lag check alone.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from brainalign.errors import BrainalignError

RT_RANGE = (50.0, 3000.0)  # ms: the default protocol's per-value outlier bounds
BASELINE = ("length", "log_frequency", "position")
LAGGED_BASELINE = ("length", "log_frequency")
WORD_FORM = ("punctuation", "length_squared")  # the lag check's shared terms, beside LAGGED_BASELINE's, for 3 words


def shift_within_groups(values: np.ndarray, groups: np.ndarray, lag: int) -> np.ndarray:
    """values[i - lag] when that word is in the same group as word i, else NaN (lag 1: the previous word; lag -1:
    the next)."""
    values = np.asarray(values, dtype=float)
    out = np.full(len(values), np.nan)
    source = np.arange(len(values)) - lag
    ok = (source >= 0) & (source < len(values))
    ok[ok] &= groups[source[ok]] == groups[ok]
    out[ok] = values[source[ok]]
    return out


@functools.lru_cache(maxsize=200_000)
def _zipf(word: str, language: str) -> float:
    from wordfreq import zipf_frequency  # lazy (module docstring)

    return float(zipf_frequency(word, language))


def log_frequencies(words, language: str = "en") -> np.ndarray:
    """Zipf frequency (log10 per billion words) of each word from ``wordfreq`` (offline word lists; punctuation
    stripped by its tokenizer; 0 for an unknown word)."""
    try:
        return np.array([_zipf(str(w), language) for w in words], dtype=float)
    except LookupError as error:
        raise BrainalignError(f"config.behaviour.regression_language: wordfreq has no word list for {language!r} ({error})") from None


def word_predictors(stimuli: pd.DataFrame, surprisal: np.ndarray, spillover: int = 2, language: str = "en") -> pd.DataFrame:
    """The regression's predictors per word (module docstring), in the stimuli's order.

    ``stimuli`` needs ``text`` and ``group``; ``word_in_sentence`` (1-based) is the position, else the position in
    the group."""
    for column in ("text", "group"):
        if column not in stimuli:
            raise BrainalignError(f"stimuli: no column {column!r} (the reading regression needs words and their groups)")
    if len(surprisal) != len(stimuli):
        raise BrainalignError(f"surprisal: {len(surprisal)} values for {len(stimuli)} words")
    if spillover < 0:
        raise BrainalignError(f"config.behaviour.regression_spillover: {spillover} < 0")
    text = stimuli["text"].astype(str)
    groups = stimuli["group"].astype(str).to_numpy()
    position = (stimuli["word_in_sentence"].to_numpy(dtype=float) if "word_in_sentence" in stimuli
                else stimuli.groupby("group", sort=False).cumcount().to_numpy(dtype=float) + 1)
    table = pd.DataFrame({"length": text.str.len().to_numpy(dtype=float), "log_frequency": log_frequencies(text, language),
                          "position": position}, index=stimuli.index)
    for k in range(1, max(spillover, 1) + 1):  # lag 1 always: the lag check's previous word
        for name in LAGGED_BASELINE:
            table[f"{name}_lag{k}"] = shift_within_groups(table[name].to_numpy(), groups, k)
    for name in LAGGED_BASELINE:  # the next word's: the lag check's symmetric design
        table[f"{name}_next"] = shift_within_groups(table[name].to_numpy(), groups, -1)
    table["punctuation"] = (~text.str.fullmatch(r"[\w'’-]+")).to_numpy(dtype=float)  # as the attached_punctuation exclusion
    table["length_squared"] = table["length"] ** 2
    for name in WORD_FORM:
        table[f"{name}_lag1"] = shift_within_groups(table[name].to_numpy(), groups, 1)
        table[f"{name}_next"] = shift_within_groups(table[name].to_numpy(), groups, -1)
    surprisal = np.asarray(surprisal, dtype=float)
    for k in range(0, max(spillover, 1) + 1):
        table[f"surprisal_lag{k}"] = shift_within_groups(surprisal, groups, k)
    table["surprisal_next"] = shift_within_groups(surprisal, groups, -1)
    return table


def model_columns(spillover: int) -> dict[str, list[str]]:
    """The models: ``baseline``, ``full`` (baseline + surprisal at lags 0..spillover), and the lag check's three:
    ``shared`` (the baseline + the word form of both neighbours and the word: length, log frequency, squared length,
    attached punctuation), ``previous`` and ``next`` (``shared`` + the word's own surprisal + the previous, or the
    next, word's surprisal).

    The shared terms make the check symmetric (:mod:`brainalign.behaviour.reading_regression`, the lag check): a
    reading time shifted by one word finds its own word's form on the ``next`` side in both models, so only
    surprisal can tell them apart."""
    baseline = list(BASELINE) + [f"{name}_lag{k}" for k in range(1, spillover + 1) for name in LAGGED_BASELINE]
    shared = (baseline + [f"{name}_next" for name in LAGGED_BASELINE] + (["length_lag1", "log_frequency_lag1"] if spillover < 1 else [])
              + [f"{name}{side}" for name in WORD_FORM for side in ("", "_lag1", "_next")])
    return {"baseline": baseline, "full": baseline + [f"surprisal_lag{k}" for k in range(spillover + 1)], "shared": shared,
            "previous": shared + ["surprisal_lag0", "surprisal_lag1"], "next": shared + ["surprisal_lag0", "surprisal_next"]}


def observations(predictors: pd.DataFrame, rts: np.ndarray, keep: np.ndarray, groups, subjects=None, units=None) -> pd.DataFrame:
    """Long table: one row per reader x kept word with a reading time inside ``RT_RANGE`` and every predictor
    defined; columns ``subject``, ``word`` (index into the stimuli), ``group``, ``unit`` (the word's text unit:
    ``units``, by default its group), ``rt`` and the predictors.

    rts: (readers, words); one reader = mean reading times."""
    rts = np.asarray(rts, dtype=float)
    if rts.ndim != 2 or rts.shape[1] != len(predictors):
        raise BrainalignError(f"reading times: shape {rts.shape}, expected (readers, {len(predictors)} words)")
    subjects = list(subjects) if subjects is not None else [f"s{i}" for i in range(len(rts))]
    defined = np.asarray(keep, dtype=bool) & np.isfinite(predictors.to_numpy(dtype=float)).all(axis=1)
    frames = []
    for s, subject in enumerate(subjects):
        rt = rts[s]
        ok = defined & np.isfinite(rt) & (rt >= RT_RANGE[0]) & (rt <= RT_RANGE[1])
        index = np.flatnonzero(ok)
        frame = predictors.iloc[index].reset_index(drop=True)
        frame.insert(0, "rt", rt[index])
        frame.insert(0, "unit", np.asarray(groups if units is None else units)[index])
        frame.insert(0, "group", np.asarray(groups)[index])
        frame.insert(0, "word", index)
        frame.insert(0, "subject", str(subject))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
