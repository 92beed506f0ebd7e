"""The regression problem of one layer against one prepared dataset: responses as a samples x neuroids matrix,
and the layer's features aligned to those samples.

Sentence data: one response per stimulus, rows already match, CV groups are the passages. Time series: the
features are per word and the responses per scan, so words -> scans (Lanczos low-pass by default) -> FIR delays,
CV by runs, or by contiguous blocks of scans (with a gap) when there is a single run. Protocols that transform the
word features inside each fold (``wehbe-2014``) get the word level too (:func:`word_level_design`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from brainalign.errors import BrainalignError
from brainalign.options import EncodingOptions

log = logging.getLogger("brainalign.encoding")  # the package's logger (log filters name it)


def responses_matrix(dataset) -> tuple[np.ndarray, list[str], list[dict]]:
    """Responses as samples x (subject, neuroid) columns, NaN/constant columns dropped with a note."""
    r = dataset.responses
    y = np.transpose(r, (1, 0, 2)).reshape(r.shape[1], -1)
    names = [f"{s}.{n}" if len(dataset.subjects) > 1 else str(n) for s in dataset.subjects for n in dataset.neuroids]
    excluded = []
    keep = np.ones(y.shape[1], dtype=bool)
    for j in range(y.shape[1]):
        column = y[:, j]
        if not np.isfinite(column).all():
            keep[j], reason = False, "non-finite values"
        elif np.ptp(column) == 0:
            keep[j], reason = False, "constant"
        else:
            continue
        excluded.append({"neuroid": names[j], "reason": reason})
        log.warning("excluded neuroid %s: %s", names[j], reason)
    if not keep.any():
        raise BrainalignError(f"dataset {dataset.meta.get('name')}: no usable neuroid (all NaN or constant)")
    return y[:, keep], [n for n, k in zip(names, keep) if k], excluded


def layer_design(features: np.ndarray, dataset, options: EncodingOptions) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """The feature matrix aligned to the response samples, the CV groups, and protocol overrides.

    Sentence data: rows already match. Time series: words -> scans (Lanczos by default) -> FIR delays, CV by
    runs or contiguous blocks with a gap, unless the dataset already paired each scan with its text and applied
    the haemodynamic lag (Blank 2014: ``lag_applied``)."""
    from brainalign.encoding.timeseries import make_delays, words_to_scans

    meta = dataset.meta
    if meta["kind"] != "timeseries":
        groups = dataset.stimuli["group"].astype(str).to_numpy()
        # sentences nested in passages: resample passages
        return features, groups, {"bootstrap_units": groups, **_brainscore_split(dataset, len(features))}
    scan_groups = dataset_scan_groups(dataset)
    if meta.get("lag_applied") and len(features) == dataset.responses.shape[1]:
        scans, delays = features, [0]
    else:
        stimuli = dataset.stimuli
        scans = np.zeros((dataset.responses.shape[1], features.shape[1]), dtype=np.float64)
        for run in map(str, np.unique(scan_groups)):
            in_run = scan_groups == run
            words = (stimuli["group"].astype(str) == run).to_numpy() if len(np.unique(scan_groups)) > 1 else np.ones(len(stimuli), bool)
            if not words.any():
                raise BrainalignError(
                    f"dataset {meta.get('name')}: run {run!r} has {int(in_run.sum())} scans but no word of stimuli.tsv "
                    f"has group {run!r} (word groups: {sorted(stimuli['group'].astype(str).unique())[:5]}); each word's "
                    "group must be the run (sample_groups) of the scans it was presented in")
            scans[in_run] = words_to_scans(features[words].astype(np.float64), stimuli.loc[words, "onset"].to_numpy(),
                                           stimuli.loc[words, "offset"].to_numpy(), dataset.sample_times[in_run],
                                           float(meta["tr"]), options.downsample)
        delays = checked_delays(options, meta.get("name"))
    design = make_delays(scans, delays, scan_groups)
    overrides = timeseries_overrides(scan_groups, options, meta.get("name"))
    overrides["delays"] = delays
    overrides.update(_brainscore_split(dataset, len(design)))
    if len(np.unique(scan_groups)) >= 2:
        return design, scan_groups, overrides
    overrides["blocks"] = int(options.n_folds)
    return design, None, overrides


def _brainscore_split(dataset, n_samples: int) -> dict:
    """The dataset's Brain-Score splits (protocols.brainscore_splits), for the brainscore-* protocols; not stored
    with a layer's result (encoding.layer_fits)."""
    from brainalign.encoding.protocols.brainscore_splits import brainscore_split

    return {"brainscore_split": brainscore_split(dataset, n_samples)}


def dataset_scan_groups(dataset) -> np.ndarray:
    """Every scan's run (str); one run when the dataset names none."""
    if dataset.sample_groups is not None:
        return np.asarray(dataset.sample_groups).astype(str)
    return np.zeros(dataset.responses.shape[1], dtype=str)


def checked_delays(options: EncodingOptions, dataset=None) -> list[int]:
    """``encoding.delays`` (scans back in time; schema default 1-4: 2-8 s at TR 2 s, the rise and peak of the
    haemodynamic response), checked: at least one, none negative, no repeats."""
    delays = [int(d) for d in options.delays]
    if not delays or min(delays) < 0 or len(set(delays)) != len(delays):
        raise BrainalignError(f"dataset {dataset}: encoding.delays {delays}; expected distinct scan counts >= 0, e.g. [1, 2, 3, 4]")
    return delays


def timeseries_overrides(scan_groups: np.ndarray, options: EncodingOptions, dataset=None) -> dict:
    """What every time-series protocol of one dataset shares, recorded in each layer's result: ``gap`` (scans left
    out at the edges of a test block), ``bootstrap_block`` (scans per bootstrap unit) and the units themselves
    (``bootstrap_units``, not recorded: one label per scan)."""
    from brainalign.encoding.folds import scan_block_units

    gap, block = int(options.gap), int(options.bootstrap_block)
    if gap < 0:
        raise BrainalignError(f"dataset {dataset}: encoding.gap {gap}; expected scans >= 0")
    return {"gap": gap, "bootstrap_block": block, "bootstrap_units": scan_block_units(scan_groups, block)}


# ----------------------------------------------------------------------------------------------- word level
@dataclass(frozen=True)
class WordLevel:
    """A time series' word-level input, for protocols that transform the word features inside each outer fold
    (``wehbe-2014``: PCA fitted on the training words, then words -> scans): what :func:`layer_design`'s scan
    design has already averaged away. Built by :func:`word_level_design` only when a selected protocol asks."""

    features: np.ndarray          # words x features (float64), stimuli.tsv order
    word_scans: np.ndarray        # the scan each word belongs to (timeseries.scan_of_events; -1: before the first)
    scan_groups: np.ndarray       # every scan's run (str)
    neuroid_subjects: np.ndarray  # the subject of each usable response column (responses_matrix order)
    dataset: str                  # the dataset's name, for messages


def response_subjects(dataset) -> list[str]:
    """The subject of every column of the responses as :func:`responses_matrix` lays them out (before dropping):
    the subject axis, or ``neuroid_subjects`` for data pooled over subjects (Pereira 2018, Wehbe 2014)."""
    if len(dataset.subjects) > 1 or not dataset.neuroid_subjects:
        return [str(s) for s in dataset.subjects for _ in dataset.neuroids]
    return [str(s) for s in dataset.neuroid_subjects]


def word_level_design(features: np.ndarray, dataset, neuroid_names: list[str]) -> WordLevel:
    """The word-level input of one layer (``features``: one row per word of stimuli.tsv) against a time series,
    for the usable response columns ``neuroid_names`` (as :func:`responses_matrix` returns them)."""
    from brainalign.encoding.timeseries import scan_of_events

    meta, stimuli = dataset.meta, dataset.stimuli
    name = meta.get("name")
    if meta["kind"] != "timeseries" or meta.get("lag_applied") or "onset" not in stimuli.columns:
        raise BrainalignError(f"dataset {name}: a word-level protocol (wehbe-2014) needs a time series of words with "
                              f"onsets; this dataset is {meta['kind']!r}" + (" with scan-level texts (lag_applied)"
                                                                              if meta.get("lag_applied") else ""))
    if len(features) != len(stimuli):
        raise BrainalignError(f"dataset {name}: {len(features)} feature rows for {len(stimuli)} words")
    scan_groups = dataset_scan_groups(dataset)
    all_names = [f"{s}.{n}" if len(dataset.subjects) > 1 else str(n) for s in dataset.subjects for n in dataset.neuroids]
    subject_of = dict(zip(all_names, response_subjects(dataset)))
    return WordLevel(np.asarray(features, dtype=np.float64),
                     scan_of_events(stimuli["onset"].to_numpy(dtype=float), dataset.sample_times), scan_groups,
                     np.array([subject_of[n] for n in neuroid_names], dtype=object), str(name))
