"""The gain of a layer over the time-series baseline (encoding.baseline) with its intervals, and its tidy rows.

  * :func:`resampled_fold_scores`: one bootstrap shared by the baseline and the joint fold scores (the same
    resamples, so the gain's CI is that of a paired difference), which draws the subjects, then blocks of scans
    shared by the drawn subjects: an interval about listeners, not only these subjects.
  * :func:`gain_quantities`: baseline r, joint r, gain (joint r - baseline r) and variance added (joint r^2 -
    baseline r^2), each with its score, 95% CI and fold values.
  * :func:`gain_rows`: the tidy rows of the layer metric ``baseline-gain``: every layer, the best layer and the
    nested layer choice.
"""

from __future__ import annotations

import warnings

import numpy as np


def _aggregate(r: np.ndarray) -> np.ndarray:
    """Median over neuroids (last axis), NaN-aware, as the protocols score."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(r, axis=-1)


def resampled_fold_scores(pairs: list, units: list | None, subjects, n_bootstrap: int, seed: int,
                          block: int | None = None) -> tuple[dict, float | None, str]:
    """Every outer fold's score (median over columns) in each bootstrap resample, for each prediction of ``pairs``
    (per fold: ``({name: test predictions}, test responses)``), all names on the same resamples (paired): (name ->
    (resamples x folds) draws, the stretch of their spread around the score or None, what a resample draws).

    ``units``: each test fold's blocks of scans (:func:`encoding.folds.fold_units`; None: single scans), drawn with
    replacement inside each fold (the draws of brainalign.bootstrap.unit_counts, as every time-series CI).
    ``subjects``: the subject of every response column. With two subjects or more a resample also draws the
    subjects with replacement (the same subjects in every fold; brainalign.bootstrap.cluster_members) and its score
    of a fold is the median over the drawn subjects' columns, each subject's as often as it was drawn: the CI then
    reaches the population of listeners, not only these subjects. The blocks drawn are the same for every drawn
    subject, because every subject heard the same story: subjects and stretches of story are crossed, as readers
    and texts are (the pigeonhole bootstrap; drawing blocks afresh for each subject averages the story's share of
    the variance away and under-covers: docs/statistics.md, "Story fMRI"). Those draws are not stretched; blocks alone
    (one subject, or ``subjects`` None) are stretched by sqrt(K / (K - 1)) (brainalign.bootstrap.unit_inflation)."""
    from brainalign.bootstrap import cluster_members, unit_counts, unit_inflation
    from brainalign.encoding.bootstrap import _resample_counts, _resampled_pearson

    names = list(pairs[0][0]) if pairs else []
    resampled = {name: np.full((max(n_bootstrap, 0), len(pairs)), np.nan) for name in names}
    labels = None if subjects is None else np.asarray(subjects).astype(str)
    two_level = labels is not None and len(np.unique(labels)) > 1
    drawn = "scans" if units is None else f"blocks of {int(block)} scans" if block else "blocks of scans"
    resamples = (f"{len(np.unique(labels))} subjects, then {drawn} within each test fold (the same for every drawn "
                 "subject)" if two_level else f"{drawn} within each test fold")
    inflation = unit_inflation(units) if units is not None and not two_level else None
    if n_bootstrap <= 0:
        return resampled, inflation, resamples
    counts = (_resample_counts([len(actual) for _, actual in pairs], n_bootstrap, seed) if units is None
              else unit_counts(units, n_bootstrap, seed))
    members = cluster_members(labels, n_bootstrap, np.random.default_rng((seed, 1))) if two_level else None
    for k, (predictions, actual) in enumerate(pairs):
        b = actual - actual.mean(0)
        for name, predicted in predictions.items():
            r = _resampled_pearson(counts[k], predicted - predicted.mean(0), b)
            if members is not None:  # -1 (a subject with fewer columns than the largest): the NaN column
                r = np.take_along_axis(np.hstack([r, np.full((len(r), 1), np.nan)]), members, axis=1)
            resampled[name][:, k] = _aggregate(r)
    return resampled, inflation, resamples


def gain_quantities(per_fold: dict, resampled: dict | None, inflation: float | None) -> dict:
    """Baseline, joint, gain and variance added from each fold's baseline and joint scores (``per_fold``: name ->
    fold values) and their (resamples x folds) draws (``resampled``, the same resamples for both, so the gain's CI
    is a paired difference's; None: no bootstrap), stretched by ``inflation`` around the score where whole blocks
    were resampled: each quantity's score, 95% CI and fold values. One layer's
    (:func:`encoding.baseline.baseline_gain`) and the nested layer choice's (:func:`gain_rows`) alike."""
    from brainalign.bootstrap import percentile_ci

    score = {name: float(np.nanmean(per_fold[name])) for name in ("baseline", "joint")}
    draws = {name: np.full(0, np.nan) for name in score}
    if resampled is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            draws = {name: np.nanmean(resampled[name], axis=1) for name in score}
        if inflation is not None:
            draws = {name: score[name] + inflation * (values - score[name]) for name, values in draws.items()}
    quantities = {
        "baseline": (score["baseline"], draws["baseline"], per_fold["baseline"]),
        "joint": (score["joint"], draws["joint"], per_fold["joint"]),
        "gain": (score["joint"] - score["baseline"], draws["joint"] - draws["baseline"],
                 list(np.subtract(per_fold["joint"], per_fold["baseline"]))),
        "variance_added": (score["joint"] ** 2 - score["baseline"] ** 2, draws["joint"] ** 2 - draws["baseline"] ** 2,
                           list(np.square(per_fold["joint"]) - np.square(per_fold["baseline"]))),
    }
    result = {}
    for name, (value, draw, folds_value) in quantities.items():
        low, high = percentile_ci(draw) if resampled is not None else (np.nan, np.nan)
        result[name] = {"score": float(value), "ci_low": float(low), "ci_high": float(high),
                        "fold_scores": [float(v) for v in folds_value]}
    return result


def gain_rows(metric, profile) -> list[dict]:
    """Tidy rows of ``baseline-gain``: ``baseline_r``, ``joint_r``, ``gain_r`` and ``variance_added`` for every layer,
    the best layer (the largest joint score, hence the largest gain: the baseline is the same for every layer) and
    the nested layer (in each outer fold the layer with the best training-only joint score; its test values, mean
    over folds; CIs from the chosen layers' draws combined fold by fold, encoding.selection, the choices part of the
    estimator). Baseline and joint r carry the dataset's ceiling; the gain and the variance added do not (a
    difference of scores is not a fraction of a ceiling)."""
    from brainalign.encoding.selection import fold_picks, modal_layer, nested_draws, nested_fold_values
    from brainalign.study.tables import GAIN_METRICS, GAIN_PROTOCOL  # pandas: only the score step pays its import

    layer_names = profile.layer_names
    stored = {name: metric.stored(profile.by_layer[name]) for name in layer_names}
    rows = []

    def add(selection, layer, values: dict, n):
        for key, metric_name in GAIN_METRICS.items():
            entry = values[key]
            ceiling = profile.ceiling if key in ("baseline", "joint") else np.nan
            rows.append(profile.row(metric_name, GAIN_PROTOCOL, selection, layer, entry["score"], ceiling,
                                    (entry["ci_low"], entry["ci_high"]), n))

    for name in layer_names:
        add("layer", name, stored[name], stored[name]["n"])
    best = layer_names[int(np.nanargmax([stored[name]["joint"]["score"] for name in layer_names]))]
    add("best", best, stored[best], stored[best]["n"])
    first = stored[layer_names[0]]
    picks = fold_picks({name: stored[name]["joint"]["inner_scores"] for name in layer_names}, layer_names)
    per_fold = {key: nested_fold_values(picks, {name: stored[name][key]["fold_scores"] for name in layer_names})
                for key in ("baseline", "joint")}
    resampled = {key: nested_draws(picks, {name: stored[name][key].get("fold_draws") for name in layer_names})
                 for key in ("baseline", "joint")}
    nested = gain_quantities(per_fold, None if any(v is None for v in resampled.values()) else resampled,
                             first.get("bootstrap_inflation"))
    add("nested", modal_layer(picks, layer_names), nested, first["n"])
    return rows
