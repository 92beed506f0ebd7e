"""Brain-Score Language 2.3.0's noise ceiling (``benchmarks/blank2014/ceiling.py``: ``ExtrapolationCeiling`` with
``HoldoutSubjectCeiling``), reproduced exactly with one of its metrics (a ``brainscore-*`` protocol), as ceiling
method ``brainscore-extrapolation`` (ceiling options ``metric: <protocol>``).

Why its own procedure beside encoding.ceilings' ``extrapolation``: Brain-Score normalises each benchmark by a
ceiling computed with the benchmark's own metric, mapping a pool of subjects to a held-out subject by regression;
its scores are only comparable after the same normalisation. The procedure:
  1. for every number of subjects n = 2..S and every combination of n subjects (sorted), each subject of the
     combination in turn is held out and predicted from the others' neuroids (all of them as features) by the
     metric, on the metric's splits of the stimuli: one r per held-out neuroid per split;
  2. per neuroid, for each n, the r of every combination containing its subject (combinations in the order of
     their names, ``str(tuple)`` sorted, then splits) are the choices; 100 bootstraps (``RandomState(0)`` anew for
     each neuroid): per n the mean of as many choices drawn with replacement, and ``v0 (1 - exp(-n / tau0))`` fitted
     over n (scipy ``curve_fit``, v0 in [0, 1]; a failed fit gives NaN); the neuroid's ceiling is the median v0
     over bootstraps (NaN if any fit failed, as numpy's median);
  3. the ceiling is the median over neuroids (NaN skipped, as xarray's).
A score is then divided by the ceiling and clipped to [0, 1] (``ceiling_normalize``); this module gives the
ceiling, the study tables divide.

The procedure is discontinuous in its inputs: a bootstrap whose two or three means fit the curve badly can exhaust
scipy's evaluations (``max_nfev``) or not after a change of 1e-8 in the r, and that one failed fit turns its
neuroid's ceiling to NaN and removes it from the median over neuroids. A prepared dataset stores its responses as
float32 (Brain-Score's assemblies are float64), so :func:`dataset_brainscore_ceiling` equals Brain-Score's ceiling
on the same float32 values, and may differ from Brain-Score's on the float64 assembly by more than rounding (a
neuroid more or less in the median).
"""

from __future__ import annotations

import itertools
import logging

import numpy as np

from brainalign.errors import BrainalignError

log = logging.getLogger("brainalign.encoding.ceilings")

N_BOOTSTRAPS = 100  # ExtrapolationCeiling(num_bootstraps=100)
CEILING_METRICS = ("brainscore-ridge", "brainscore-ridge-shuffle", "brainscore-linear-shuffle")  # per-neuroid r


def _saturating(n, v0, tau0):
    return v0 * (1 - np.exp(-n / tau0))


def subject_columns(dataset) -> tuple[np.ndarray, np.ndarray]:
    """(samples x neuroids) responses and each neuroid's subject: pooled voxels with ``neuroid_subjects``, or
    every subject's neuroids side by side; all-NaN neuroids dropped (Brain-Score's ``dropna('neuroid')``)."""
    responses = np.asarray(dataset.responses, dtype=np.float64)
    if dataset.neuroid_subjects is not None:
        y, subjects = responses[0], np.asarray(dataset.neuroid_subjects).astype(str)
    else:
        y = np.transpose(responses, (1, 0, 2)).reshape(responses.shape[1], -1)
        subjects = np.repeat(np.asarray(dataset.subjects).astype(str), responses.shape[2])
    keep = np.isfinite(y).all(axis=0)
    return y[:, keep], subjects[keep]


def holdout_scores(y: np.ndarray, subjects: np.ndarray, protocol: str, folds: list) -> dict:
    """Step 1: {n: {combination name: (held-out neuroid indices, splits x neuroids r)}} for every combination."""
    from brainalign.encoding.backend import NUMPY
    from brainalign.encoding.protocols.registry import Fold, get_protocol
    from brainalign.encoding.ridge_gcv import BRAINSCORE_ALPHAS
    from brainalign.options import EncodingOptions

    chosen = get_protocol(protocol)
    correlate = chosen.correlation
    if protocol not in CEILING_METRICS:
        raise BrainalignError(f"ceiling metric {protocol!r} is not one of Brain-Score's regression protocols (expected one of "
                              f"{', '.join(CEILING_METRICS)})")
    options = EncodingOptions.from_dict({})
    names = sorted(set(subjects.tolist()))
    groups = np.zeros(len(y), dtype=str)
    out = {}
    for n in range(2, len(names) + 1):
        out[n] = {}
        for combination in itertools.combinations(names, n):
            for held in combination:
                target = np.flatnonzero(subjects == held)
                pool = np.flatnonzero(np.isin(subjects, [s for s in combination if s != held]))
                x, t = y[:, pool], y[:, target]
                r = []
                for k, (train, test) in enumerate(folds):
                    fold = Fold(k, x, t, train, test, train, test, groups, BRAINSCORE_ALPHAS, options, 0, NUMPY)
                    predicted, actual = chosen.fit_fold(fold)[:2]
                    r.append(np.asarray(correlate(predicted, actual), dtype=np.float64))
                out[n].setdefault(str(combination), []).append((target, np.vstack(r)))
    return out


def neuroid_choices(scores: dict, n_neuroids: int) -> list[dict]:
    """Step 2's inputs: per neuroid, {n: its r over the combinations holding it out (names sorted), splits in order};
    combinations with a NaN split dropped (Brain-Score's ``dropna`` over combinations)."""
    choices = [dict() for _ in range(n_neuroids)]
    for n, combinations in scores.items():
        for name in sorted(combinations):
            for target, r in combinations[name]:
                for column, neuroid in enumerate(target):
                    values = r[:, column]
                    if np.isfinite(values).all():
                        choices[neuroid].setdefault(n, []).append(values)
    return [{n: np.concatenate(v) for n, v in sorted(c.items())} for c in choices]


def extrapolate_neuroid(choices: dict, n_bootstraps: int = N_BOOTSTRAPS) -> float:
    """Step 2: the median over bootstraps of the fitted asymptote v0 for one neuroid."""
    import warnings

    from scipy.optimize import curve_fit

    sizes = np.array(sorted(choices), dtype=float)
    rng = np.random.RandomState(0)
    v0 = []
    for _ in range(n_bootstraps):
        means = np.array([np.mean(rng.choice(choices[n], size=len(choices[n]), replace=True)) for n in sorted(choices)])
        valid = np.isfinite(means)
        try:
            if valid.sum() < 1:
                raise RuntimeError("no valid scores")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params, _ = curve_fit(_saturating, sizes[valid], means[valid], bounds=([0, -np.inf], [1, np.inf]))
            v0.append(params[0])
        except (RuntimeError, ValueError):
            v0.append(np.nan)
    return float(np.median(v0))


def brainscore_extrapolation_ceiling(y: np.ndarray, subjects: np.ndarray, protocol: str, folds: list,
                                     n_bootstraps: int = N_BOOTSTRAPS) -> dict:
    """Brain-Score's ExtrapolationCeiling of (samples x neuroids) ``y`` whose neuroids belong to ``subjects``, with
    the metric of ``protocol`` on ``folds`` (the protocol's splits of the dataset)."""
    subjects = np.asarray(subjects).astype(str)
    if len(set(subjects.tolist())) < 3:  # with 2, one point to fit a 2-parameter curve (Brain-Score's code fails)
        raise BrainalignError(f"Brain-Score's extrapolation ceiling needs at least 3 subjects, got {len(set(subjects.tolist()))}")
    scores = holdout_scores(np.asarray(y, dtype=np.float64), subjects, protocol, folds)
    per_neuroid = np.array([extrapolate_neuroid(c, n_bootstraps) if c else np.nan
                            for c in neuroid_choices(scores, y.shape[1])])
    ceiling = float(np.nanmedian(per_neuroid)) if np.isfinite(per_neuroid).any() else float("nan")
    return {"ceiling": ceiling, "per_neuroid": per_neuroid.tolist(), "metric": protocol,
            "n_subjects": len(set(subjects.tolist()))}


def dataset_brainscore_ceiling(dataset, protocol: str | None, n_bootstraps: int = N_BOOTSTRAPS) -> dict:
    """Ceiling method ``brainscore-extrapolation`` for a prepared dataset: its responses per subject, the
    protocol's splits of its stimuli (protocols.brainscore_splits, from meta ``split_coord`` / ``brainscore_order``);
    ``n_bootstraps``: the ceiling options' ``n_bootstrap`` (default 100, Brain-Score's)."""
    from brainalign.encoding.protocols.brainscore_ridge import SPLIT_KEY
    from brainalign.encoding.protocols.brainscore_splits import brainscore_split
    from brainalign.encoding.protocols.registry import get_protocol
    from brainalign.options import EncodingOptions

    name = dataset.meta.get("name")
    if not protocol:
        raise BrainalignError(f"dataset {name}: ceiling method brainscore-extrapolation needs ceiling option 'metric' "
                              "(a Brain-Score protocol, e.g. brainscore-ridge)")
    n = dataset.responses.shape[1]
    if len(dataset.stimuli) != n:
        raise BrainalignError(f"dataset {name}: ceiling method brainscore-extrapolation needs one stimulus per sample "
                              f"({len(dataset.stimuli)} stimuli, {n} samples)")
    split = brainscore_split(dataset, n)
    folds, _ = get_protocol(protocol).layer_folds(n, {SPLIT_KEY: split}, EncodingOptions.from_dict({}))
    y, subjects = subject_columns(dataset)
    result = brainscore_extrapolation_ceiling(y, subjects, protocol, folds, n_bootstraps)
    log.info("%s: Brain-Score extrapolation ceiling %.4f (%s)", name, result["ceiling"], protocol)
    return result
