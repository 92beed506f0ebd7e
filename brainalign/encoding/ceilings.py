"""Noise ceilings: how well one person's responses can be predicted from other people's, the most a model can
be expected to reach.

  * ``split-half``: random halves of the subjects, each half averaged, Pearson r per neuroid between halves,
    Spearman-Brown corrected (2r / (1 + r)) to the full group size, median over splits. Fast; it is the
    ceiling of the *group-mean* response.
  * ``extrapolation`` (Brain-Score's kind): for each subject and neuroid, the r between that subject and the
    mean of a pool of n other subjects, for growing n; per neuroid a saturating curve is fitted over n with
    bootstrap resamples and its asymptote v0 (median over bootstraps) is the ceiling of that subject's neuroid
    as if infinitely many other subjects were available. The default curve, v0 / sqrt(1 + c / n), is exact
    when subjects share one response plus independent noise (tested: recovers a planted ceiling within 0.02);
    Brain-Score's v0 (1 - exp(-n / tau)) is available as ``curve: exponential`` and runs low on the same data. Brain-Score maps the pool to
    the held-out subject with its linear-regression metric; here the pool's same neuroid is the predictor
    (a consistency ceiling), which is exact for ROI-level data whose neuroids correspond across subjects.
  * ``isc`` (time series, the default there): leave-one-subject-out inter-subject correlation, each subject's
    time course against the mean of all the others, averaged over subjects per neuroid (ROI), then corrected from
    a pool of S - 1 subjects to infinitely many in closed form (:func:`isc_ceiling`), with a bootstrap CI over
    subjects. The per-neuroid extrapolation fit is unstable on 362 scans of 6 ROIs (Brennan 2016: 14 of 162
    subject x ROI asymptotes at +-1); the ISC uses every subject for every ROI and has no curve to fit.
Group-averaged data (one subject, ``average``) have no ceiling: raw r is reported, with a note.

A ceiling bounds the scores it normalises only when it is computed on the same responses. The time-series baseline
and joint scores are computed on responses cleaned of each subject's confounds (Brennan 2016: head motion;
encoding.baseline.clean_confounds), so the ceiling is computed on the same cleaned responses
(encoding.baseline.cleaned_responses): head motion locked to the stimulus (subjects move at the same moments of
the story) is shared between subjects and inflates a raw ISC with variance no score is allowed to explain. The
raw responses' ISC is kept beside it (``raw_isc``, ``raw_ceiling``); ``responses`` says which one normalises.
"""

from __future__ import annotations

import logging

import numpy as np

from brainalign.bootstrap import draw_units, percentile_ci
from brainalign.correlation import pearson_columns, spearman_brown, split_half_r
from brainalign.io import write_json
from brainalign.options import CeilingOptions

log = logging.getLogger("brainalign.encoding.ceilings")


def split_half_ceiling(responses: np.ndarray, n_splits: int = 10, seed: int = 0) -> dict:
    """responses: (subjects, samples, neuroids). Median over splits of the Spearman-Brown corrected half r per
    neuroid (halves of equal size: with an odd count one subject sits out each split), median over neuroids."""
    n_subjects = responses.shape[0]
    if n_subjects < 2:
        raise ValueError("split-half ceiling needs at least 2 subjects")
    per_split = split_half_r(responses, pearson_columns, n_splits, seed, equal=True)
    per_neuroid = np.nanmedian(np.vstack(per_split), axis=0)
    return {"ceiling": float(np.nanmedian(per_neuroid)), "per_neuroid": per_neuroid.tolist()}


def _exponential(n, v0, tau):
    """Brain-Score's saturating curve; biased low when the true curve rises like 1 / sqrt(1 + c / n)."""
    return v0 * (1 - np.exp(-n / tau))


def _pool_reliability(n, v0, c):
    """Exact under additive independent noise: corr(subject, mean of n others) = v0 / sqrt(1 + c / n), where v0
    is the subject's correlation with the noise-free shared response (the ceiling)."""
    return v0 / np.sqrt(1 + c / n)


CURVES = {"pool-reliability": (_pool_reliability, [1.0, 1e3]), "exponential": (_exponential, [1.0, 1e3])}


def extrapolation_ceiling(responses: np.ndarray, pool_sizes=None, n_draws: int = 10, n_bootstrap: int = 100,
                          seed: int = 0, curve: str = "pool-reliability") -> dict:
    """Per (subject, neuroid): r with the mean of n other subjects, for growing n, extrapolated to n -> inf."""
    from scipy.optimize import curve_fit

    n_subjects, _, n_neuroids = responses.shape
    if n_subjects < 3:
        raise ValueError("extrapolation ceiling needs at least 3 subjects")
    rng = np.random.RandomState(seed)
    if pool_sizes is None:
        pool_sizes = sorted({int(round(x)) for x in np.geomspace(1, n_subjects - 1, num=min(8, n_subjects - 1))})
    pool_sizes = np.asarray(pool_sizes)
    # consistency[k, d, s, j]: pool size k, draw d, held-out subject s, neuroid j
    consistency = np.full((len(pool_sizes), n_draws, n_subjects, n_neuroids), np.nan)
    for k, size in enumerate(pool_sizes):
        for d in range(n_draws):
            for s in range(n_subjects):
                others = np.delete(np.arange(n_subjects), s)
                pool = rng.choice(others, size=size, replace=False)
                consistency[k, d, s] = pearson_columns(responses[pool].mean(0), responses[s])
    mean_by_size = np.nanmean(consistency, axis=1)  # sizes x subjects x neuroids
    v0 = np.full((n_subjects, n_neuroids), np.nan)
    for s in range(n_subjects):
        for j in range(n_neuroids):
            estimates = []
            for _ in range(n_bootstrap):
                draw = consistency[:, rng.randint(0, n_draws, n_draws), s, j].mean(1)
                try:
                    function, upper = CURVES[curve]
                    (value, _), _ = curve_fit(function, pool_sizes, draw, p0=[max(draw.max(), 1e-3), 1.0],
                                              bounds=([-1.0, 1e-6], upper), maxfev=2000)
                except (RuntimeError, ValueError):
                    continue
                estimates.append(value)
            if estimates:
                v0[s, j] = np.median(estimates)
    per_neuroid = v0.reshape(-1)
    return {"ceiling": float(np.nanmedian(per_neuroid)), "per_neuroid": per_neuroid.tolist(),
            "pool_sizes": pool_sizes.tolist(),
            "mean_consistency_by_pool_size": np.nanmedian(mean_by_size.reshape(len(pool_sizes), -1), axis=1).tolist()}


def subject_reliability(isc, n_subjects: int):
    """The correlation between two subjects' responses (rho) implied by a leave-one-out ISC of ``n_subjects``.

    Under shared response + independent noise, a subject correlates with the mean of m others at
    sqrt(rho * rho_m), rho_m = m rho / (1 + (m - 1) rho) (Spearman-Brown); with m = S - 1 that is a quadratic in
    rho, (S - 1) rho^2 - isc^2 (S - 2) rho - isc^2 = 0, whose positive root this returns (0 where isc <= 0)."""
    isc = np.asarray(isc, dtype=float)
    m = n_subjects - 1
    square = np.clip(isc, 0, None) ** 2
    rho = (square * (m - 1) + np.sqrt(square**2 * (m - 1) ** 2 + 4 * m * square)) / (2 * m)
    return np.where(np.isfinite(isc), np.clip(rho, 0, 1), np.nan)


def leave_one_out_isc(responses: np.ndarray) -> np.ndarray:
    """(subjects, neuroids): each subject's Pearson r with the mean of the other subjects, per neuroid."""
    n_subjects = responses.shape[0]
    total = responses.sum(0)
    return np.stack([pearson_columns(responses[s], (total - responses[s]) / (n_subjects - 1)) for s in range(n_subjects)])


def isc_ceiling(responses: np.ndarray, n_bootstrap: int = 100, seed: int = 0) -> dict:
    """responses: (subjects, samples, neuroids). Leave-one-subject-out ISC per neuroid (mean over subjects), the
    single-subject reliability rho it implies (:func:`subject_reliability`), and two ceilings:

      * ``ceiling`` (per subject, what normalises): sqrt(rho), the correlation of one subject's responses with the
        noise-free shared response, i.e. the most an encoding model scored per subject (as ``ridge-grouped`` is on
        Brennan 2016: one column per subject x ROI) can reach; the median over neuroids;
      * ``group_mean_ceiling``: sqrt(Spearman-Brown(rho, S)), the same for the mean of the S subjects.

    95% CIs: percentiles over ``n_bootstrap`` resamples of the subjects (their leave-one-out ISCs, with
    replacement), every resample transformed the same way."""
    n_subjects = responses.shape[0]
    if n_subjects < 3:
        raise ValueError("the leave-one-subject-out ISC ceiling needs at least 3 subjects")
    loso = leave_one_out_isc(np.asarray(responses, dtype=np.float64))
    isc = np.nanmean(loso, axis=0)
    rho = subject_reliability(isc, n_subjects)
    subject, group = np.sqrt(rho), np.sqrt(spearman_brown(rho, n_subjects))
    draws = draw_units(n_subjects, n_bootstrap, seed)  # subjects, with replacement
    with np.errstate(invalid="ignore"):
        boot_rho = subject_reliability(np.nanmean(loso[draws], axis=1), n_subjects)  # resamples x neuroids
    boot_subject = np.nanmedian(np.sqrt(boot_rho), axis=1)
    boot_group = np.nanmedian(np.sqrt(spearman_brown(boot_rho, n_subjects)), axis=1)
    ci = lambda values: list(percentile_ci(values))  # noqa: E731
    per_ci = np.array(percentile_ci(np.sqrt(boot_rho), axis=0))
    return {"ceiling": float(np.nanmedian(subject)), "ci": ci(boot_subject),
            "group_mean_ceiling": float(np.nanmedian(group)), "group_mean_ci": ci(boot_group),
            "isc": float(np.nanmedian(isc)), "per_neuroid": subject.tolist(), "per_neuroid_ci": per_ci.T.tolist(),
            "per_neuroid_isc": isc.tolist(), "per_neuroid_group_mean": group.tolist(), "n_subjects": int(n_subjects)}


def scored_responses(dataset, options: CeilingOptions) -> tuple[np.ndarray, list[str]]:
    """The responses the normalised scores are computed on, and the confounds cleaned from them: a time series'
    responses cleaned of each subject's confounds as the baseline and joint scores clean them
    (encoding.baseline.cleaned_responses), unless the dataset's encoding options (``options.extra["encoding"]``, as
    the workflow passes them) turn the baseline off, which leaves only raw scores; any other dataset's as given."""
    encoding = dict(options.extra.get("encoding") or {})
    if dataset.meta.get("kind") != "timeseries" or dataset.nuisance is None or encoding.get("baseline") is False:
        return dataset.responses, []
    from brainalign.encoding.baseline import cleaned_responses

    return cleaned_responses(dataset)


def compute_ceiling(dataset, options: CeilingOptions | dict | None = None) -> dict:
    """The dataset's ceiling per the ceiling options (``method``: auto | isc | extrapolation | split-half |
    brainscore-extrapolation, the last with ``metric``: encoding.brainscore_ceiling), typed or
    a dict (missing keys take the schema's defaults), on the responses the scores use (:func:`scored_responses`):
    ``responses`` says which (``confound-cleaned``: ``confounds`` regressed out of each subject; ``raw``), and a
    time series' ISC of the raw responses is kept beside (``raw_isc``, ``raw_ceiling``)."""
    options = options if isinstance(options, CeilingOptions) else CeilingOptions.from_dict(options)
    seed = int(options.seed)
    meta = dataset.meta
    responses = dataset.responses
    if options.method == "brainscore-extrapolation" and not meta.get("group_averaged"):  # Brain-Score 2.3.0's, with one of its metrics
        from brainalign.encoding.brainscore_ceiling import dataset_brainscore_ceiling

        result = dataset_brainscore_ceiling(dataset, options.metric, int(options.n_bootstrap))
        return {**result, "method": "brainscore-extrapolation", "responses": "raw", "confounds": [],
                "note": f"Brain-Score Language's ExtrapolationCeiling with its metric {result['metric']} (subjects held out "
                        "in turn and predicted from the others, extrapolated over the number of subjects), median over neuroids"}
    if meta.get("group_averaged") or responses.shape[0] < 2:
        published = meta.get("published_ceiling")
        return {"ceiling": published, "method": "published" if published else "none",
                "note": "only participant-averaged responses are available, so no noise ceiling can be computed here; "
                        "scores are raw r" + (f" (the published ceiling {published} is used for normalisation)" if published else "")}
    if dataset.neuroid_subjects is not None:
        published = meta.get("published_ceiling")
        return {"ceiling": published, "method": "published" if published else "none",
                "note": "voxels differ between subjects, so a consistency ceiling does not apply; "
                        + (f"Brain-Score's published ceiling {published} is used" if published else "raw r is reported")}
    method = options.method
    responses, confounds = scored_responses(dataset, options)
    cleaned = {"responses": "confound-cleaned" if confounds else "raw", "confounds": list(confounds)}
    result = {"split_half": split_half_ceiling(responses, int(options.n_splits), seed)}
    if method == "isc" or (method == "auto" and meta.get("kind") == "timeseries" and responses.shape[0] >= 3):
        result["isc"] = isc_ceiling(responses, int(options.n_bootstrap), seed)
        value = result["isc"]["ceiling"]
        note = ("leave-one-subject-out inter-subject correlation per ROI, corrected from S - 1 subjects to infinitely many "
                "(Spearman-Brown; the correlation of one subject with the noise-free shared response), median over ROIs; "
                "it normalises the per-subject encoding scores (group_mean_ceiling: the same for the mean of all subjects)")
        if confounds:
            result["raw_isc"] = isc_ceiling(dataset.responses, int(options.n_bootstrap), seed)
            cleaned["raw_ceiling"] = result["raw_isc"]["ceiling"]
            note += (f"; computed on the responses cleaned of each subject's {', '.join(confounds)} (least squares over all "
                     "scans), as the baseline and joint scores are; raw_isc / raw_ceiling: the same on the raw responses, "
                     "which the raw ridge-grouped score uses")
        return {"ceiling": value, "ci": result["isc"]["ci"], "method": "isc", **cleaned, "note": note, **result}
    if method in ("auto", "extrapolation") and responses.shape[0] >= 3:
        result["extrapolation"] = extrapolation_ceiling(responses, n_bootstrap=int(options.n_bootstrap), seed=seed,
                                                        curve=options.curve)
        chosen = "extrapolation"
    else:
        chosen = "split-half"
    value = result["extrapolation" if chosen == "extrapolation" else "split_half"]["ceiling"]
    note = ("extrapolation ceiling of each subject's neuroid from pools of other subjects (asymptote of a saturating fit), "
            "median over neuroids; it bounds the per-subject encoding scores" if chosen == "extrapolation"
            else "split-half consistency of the group mean, Spearman-Brown corrected")
    return {"ceiling": value, "method": chosen, **cleaned, "note": note, **result}


def compute_ceiling_file(dataset_dir, out_path, options: CeilingOptions | dict | None = None) -> dict:
    """Step of rule compute_ceiling: :func:`compute_ceiling` of a prepared dataset -> JSON."""
    from brainalign.datasets.base import load_prepared

    options = options if isinstance(options, CeilingOptions) else CeilingOptions.from_dict(options)

    result = compute_ceiling(load_prepared(dataset_dir), options)
    write_json(result, out_path)
    log.info("ceiling %s (%s)", result["ceiling"], result["method"])
    return result
