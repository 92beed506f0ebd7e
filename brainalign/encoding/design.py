"""The regression problem of one layer against one prepared dataset: responses as a samples x neuroids matrix,
and the layer's features aligned to those samples.

Sentence data: one response per stimulus, rows already match, CV groups are the passages. Time series: the
features are per word and the responses per scan, so words -> scans (Lanczos low-pass by default) -> FIR delays,
CV by runs, or by contiguous blocks of scans (with a gap) when there is a single run.
"""

from __future__ import annotations

import logging

import numpy as np

from brainalign.errors import BrainalignError

log = logging.getLogger("brainalign.encoding")  # the package's logger, as before the split (log filters name it)


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


def layer_design(features: np.ndarray, dataset, options: dict) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """The feature matrix aligned to the response samples, the CV groups, and protocol overrides.

    Sentence data: rows already match. Time series: words -> scans (Lanczos by default) -> FIR delays, CV by
    runs or contiguous blocks with a gap, unless the dataset already paired each scan with its text and applied
    the haemodynamic lag (Blank 2014: ``lag_applied``)."""
    from brainalign.timeseries import make_delays, words_to_scans

    meta = dataset.meta
    if meta["kind"] != "timeseries":
        return features, dataset.stimuli["group"].astype(str).to_numpy(), {}
    scan_groups = (np.asarray(dataset.sample_groups).astype(str) if dataset.sample_groups is not None
                   else np.zeros(dataset.responses.shape[1], dtype=str))
    if meta.get("lag_applied") and len(features) == dataset.responses.shape[1]:
        scans, delays = features, [0]
    else:
        stimuli = dataset.stimuli
        scans = np.zeros((dataset.responses.shape[1], features.shape[1]), dtype=np.float64)
        for run in np.unique(scan_groups):
            in_run = scan_groups == run
            words = (stimuli["group"].astype(str) == run).to_numpy() if len(np.unique(scan_groups)) > 1 else np.ones(len(stimuli), bool)
            scans[in_run] = words_to_scans(features[words].astype(np.float64), stimuli.loc[words, "onset"].to_numpy(),
                                           stimuli.loc[words, "offset"].to_numpy(), dataset.sample_times[in_run],
                                           float(meta["tr"]), options.get("downsample", "lanczos"))
        delays = list(options.get("delays") or [1, 2, 3, 4])
    design = make_delays(scans, delays, scan_groups)
    overrides = {"delays": delays}
    if len(np.unique(scan_groups)) >= 2:
        return design, scan_groups, overrides
    overrides["blocks"] = int(options.get("n_folds", 5))
    return design, None, overrides
