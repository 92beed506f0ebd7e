"""What every model carries on a time series, trained or not, and what a model adds beyond it.

Story fMRI follows the stimulus's low-level rhythm: how many words arrive per scan, how loud the sound is, and
(artefactually) how the head moves. Any feature matrix that changes with every word, an untrained network's
included, picks that up, so a raw encoding score mixes language with rhythm. LITcoder (Binhuraib et al. 2025) and
the Huth lab therefore report each model against a *baseline* of such regressors; so does this module:

  * **baseline regressors** (:func:`baseline_design`): the word rate from the stimulus timing (the words -> scans
    step of the features with every word's feature set to 1, then the same FIR delays), always available; plus the
    dataset's nuisance columns that are the same for every subject (Brennan 2016: the authors' sound power and
    HRF-convolved word rate, used as given). Columns that differ between subjects (Brennan 2016: the six SPM
    movement parameters) are **confounds**: each subject's responses are cleaned of them by least squares fitted on
    all scans, as fMRI preprocessing does (:func:`clean_confounds`); the baseline and the joint model are scored on
    the cleaned responses (the raw ``ridge-grouped`` score is not).
  * **baseline score**: ridge (with intercept) of the cleaned responses on the z-scored baseline regressors, the
    penalty per neuroid by the inner CV, on ``ridge-grouped``'s outer and inner folds. It does not depend on the
    model (every layer and model gets the same numbers).
  * **joint score**: the baseline regressors beside the layer's features in one banded ridge: both z-scored, the
    baseline columns multiplied by sqrt(features / regressors) so that both bands carry the same total prior
    variance (each baseline column is shrunk that many times less than a feature column and is not drowned by
    hundreds of them), the penalty per neuroid from the same inner CV. One ridge fit per layer, z-scored (not
    ``feature_scaling: auto``, which would be two). Projecting the baseline out of the features instead (credit
    for shared variance to the baseline) or leaving it unpenalised scored below the features alone on Brennan
    2016 (docs/timeseries.md).
  * **gain**: joint r - baseline r (median over neuroids, mean over folds, as every protocol), and the variance
    added, joint r^2 - baseline r^2 (variance partitioning: what the features explain that the baseline does not);
    95% CIs from one block bootstrap shared by all four (the same resamples, so the gain's CI is that of a paired
    difference).

Computed in each layer job (``fit_layer``) as the layer metric ``baseline-gain`` (``encoding.baseline: false``
turns it off): the baseline part costs a ridge fit of a few columns, the joint part one ridge fit of the layer
(half of ``ridge-grouped`` with ``feature_scaling: auto``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from brainalign.errors import BrainalignError
from brainalign.options import EncodingOptions

SHARED_COLUMN_MIN_R = 0.99  # a nuisance column whose every subject correlates this well with their mean is stimulus-locked


@dataclass(frozen=True)
class Baseline:
    """One time series' baseline: regressors shared by all subjects, and per-subject confounds."""

    x: np.ndarray                # scans x k baseline regressors (float64)
    names: list                  # the k columns' names (``word_rate@d2`` = word rate delayed by 2 scans)
    confounds: np.ndarray | None  # (subjects, scans, m) per-subject confounds, or None
    confound_names: list         # their m names
    column_subject: np.ndarray   # per usable response column: its subject's index into ``confounds`` (-1: none)
    runs: np.ndarray             # every scan's run (confounds are regressed out with a mean per run)

    def describe(self) -> str:
        text = "OLS on " + ", ".join(self.names)
        if self.confound_names:
            text += "; responses cleaned per subject of " + ", ".join(self.confound_names) + " (least squares over all scans)"
        return text


def word_rate(dataset, options: EncodingOptions) -> tuple[np.ndarray, list[int]]:
    """The words per scan as the features see them (scans x 1) and the delays applied to it: every word an impulse
    of 1 through the same words -> scans step and FIR delays as the features (:func:`design.layer_design`); on a
    dataset that pairs each scan with its text (``lag_applied``: Blank 2014) the number of words of that text."""
    from brainalign.encoding.design import checked_delays, dataset_scan_groups
    from brainalign.encoding.timeseries import words_to_scans

    meta, stimuli = dataset.meta, dataset.stimuli
    n_scans = dataset.responses.shape[1]
    groups = dataset_scan_groups(dataset)
    if meta.get("lag_applied") and len(stimuli) == n_scans:
        return stimuli["text"].astype(str).str.split().str.len().to_numpy(dtype=np.float64)[:, None], [0]
    rate = np.zeros((n_scans, 1))
    runs = np.unique(groups)
    for run in runs:
        in_run = groups == run
        words = (stimuli["group"].astype(str) == run).to_numpy() if len(runs) > 1 else np.ones(len(stimuli), bool)
        rate[in_run] = words_to_scans(np.ones((int(words.sum()), 1)), stimuli.loc[words, "onset"].to_numpy(),
                                      stimuli.loc[words, "offset"].to_numpy(), dataset.sample_times[in_run],
                                      float(meta["tr"]), options.downsample)
    return rate, checked_delays(options, meta.get("name"))


def shared_nuisance_columns(nuisance: np.ndarray) -> np.ndarray:
    """Which nuisance columns (subjects x scans x k) are stimulus regressors, the same for every subject up to
    rounding (every subject's column correlates >= ``SHARED_COLUMN_MIN_R`` with the subjects' mean)."""
    from brainalign.correlation import pearson_columns

    mean = nuisance.mean(0)
    shared = np.zeros(nuisance.shape[2], dtype=bool)
    for j in range(nuisance.shape[2]):
        if np.ptp(mean[:, j]) == 0:
            continue
        r = pearson_columns(np.repeat(mean[:, j:j + 1], nuisance.shape[0], 1), nuisance[:, :, j].T)
        shared[j] = bool(np.all(np.nan_to_num(r) >= SHARED_COLUMN_MIN_R))
    return shared


def baseline_design(dataset, neuroid_names: list[str], options: EncodingOptions) -> Baseline:
    """The baseline of one time series for the usable response columns ``neuroid_names`` (as
    :func:`design.responses_matrix` returns them): delayed word rate, shared nuisance columns, per-subject confounds."""
    from brainalign.encoding.design import dataset_scan_groups, response_subjects
    from brainalign.encoding.timeseries import make_delays

    if dataset.meta["kind"] != "timeseries":
        raise BrainalignError(f"dataset {dataset.meta.get('name')}: a baseline of word rate and nuisance regressors needs a time series")
    rate, delays = word_rate(dataset, options)
    columns = [make_delays(rate, delays, dataset_scan_groups(dataset))]
    names = [f"word_rate@d{d}" for d in delays]
    confounds, confound_names = None, []
    column_subject = np.full(len(neuroid_names), -1)
    nuisance = dataset.nuisance
    if nuisance is not None and nuisance.shape[2]:
        nuisance_names = list(dataset.meta.get("nuisance_names") or [f"nuisance{j}" for j in range(nuisance.shape[2])])
        nuisance = np.asarray(nuisance, dtype=np.float64)
        shared = shared_nuisance_columns(nuisance) if nuisance.shape[0] > 1 else np.ones(nuisance.shape[2], bool)
        if shared.any():
            columns.append(nuisance.mean(0)[:, shared])
            names += [n for n, s in zip(nuisance_names, shared) if s]
        if (~shared).any():
            confounds = nuisance[:, :, ~shared]
            confound_names = [n for n, s in zip(nuisance_names, shared) if not s]
            all_names = [f"{s}.{n}" if len(dataset.subjects) > 1 else str(n) for s in dataset.subjects for n in dataset.neuroids]
            subject_of = dict(zip(all_names, response_subjects(dataset)))
            index = {str(s): i for i, s in enumerate(dataset.subjects)}
            column_subject = np.array([index.get(subject_of[n], -1) for n in neuroid_names])
    x = np.hstack(columns)
    keep = np.ptp(x, axis=0) > 0
    return Baseline(x[:, keep], [n for n, k in zip(names, keep) if k], confounds, confound_names, column_subject,
                    dataset_scan_groups(dataset))


def _least_squares(c_train: np.ndarray, y_train: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(c_train, y_train, rcond=None)[0]


def clean_confounds(y: np.ndarray, baseline: Baseline, runs: np.ndarray | None = None) -> np.ndarray:
    """``y`` (scans x columns) with each subject's confounds and a mean per run removed by least squares over all
    scans: the confound regression that fMRI preprocessing applies before any model (SPM, fMRIPrep + nilearn).

    Over all scans rather than per training fold: the projection uses no model feature, so it is the same for the
    baseline, every model and every layer and favours none; fitted on training scans only it adds the coefficients'
    estimation noise to the held-out scans (docs/timeseries.md)."""
    if baseline.confounds is None:
        return y
    runs = np.zeros(len(y), dtype=int) if runs is None else np.unique(np.asarray(runs).astype(str), return_inverse=True)[1]
    intercepts = (runs[:, None] == np.arange(runs.max() + 1)[None, :]).astype(np.float64)
    out = np.array(y, dtype=np.float64)
    for s in np.unique(baseline.column_subject):
        if s < 0:
            continue
        columns = np.flatnonzero(baseline.column_subject == s)
        c = np.column_stack([intercepts, baseline.confounds[s]])
        out[:, columns] -= c @ _least_squares(c, out[:, columns])
    return out


def _aggregate(r: np.ndarray) -> np.ndarray:
    """Median over neuroids (last axis), NaN-aware, as the protocols score."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(r, axis=-1)


def _fit_fold(k, x, y_clean, regressors, train, test, groups, alphas, options: EncodingOptions, seed, inner_blocks=None):
    """One outer fold: (baseline prediction, joint prediction) on the test scans, and the joint model's
    training-only score (pooled inner predictions) for the nested layer choice.

    Baseline: ridge on the z-scored baseline regressors, its penalty per neuroid from the inner CV. Joint: ridge on
    the z-scored baseline regressors, scaled by sqrt(features / regressors), beside the z-scored features, the penalty
    per neuroid from the same inner CV: a banded ridge whose two bands carry the same total prior variance, so the
    few baseline columns are shrunk sqrt(p / k) times less than each feature column and are not drowned by them.
    The inner folds are ``ridge-grouped``'s (``inner_blocks``: a single run's blocks of scans)."""
    from brainalign.correlation import pearson_columns
    from brainalign.encoding.backend import NUMPY
    from brainalign.encoding.protocols.registry import Fold
    from brainalign.encoding.protocols.ridge_grouped import ridge_inner_folds
    from brainalign.encoding.ridge import ridge_cv
    from brainalign.encoding.scaling import _standardise

    fold = Fold(k, x, y_clean, train, test, train, test, groups, alphas, options, seed, NUMPY, inner_blocks=inner_blocks)
    inner = ridge_inner_folds(fold)
    b_train, b_test = _standardise(regressors[train], regressors[test])
    best, _, solver = ridge_cv(b_train, y_clean[train], alphas, inner)
    base_test = solver.predict_per_target(b_test, alphas, best)
    x_train, x_test = _standardise(x[train], x[test])
    weight = np.sqrt(x.shape[1] / regressors.shape[1])
    best, pooled, solver = ridge_cv(np.hstack([weight * b_train, x_train]), y_clean[train], alphas, inner)
    joint_test = solver.predict_per_target(np.hstack([weight * b_test, x_test]), alphas, best)
    return base_test, joint_test, float(_aggregate(pearson_columns(pooled, y_clean[train])))


def baseline_gain(x: np.ndarray, y: np.ndarray, baseline: Baseline, groups, overrides: dict, options: EncodingOptions) -> dict:
    """Baseline, joint, gain and variance added of one layer's design ``x`` against responses ``y`` (time series),
    on ``ridge-grouped``'s outer folds, with block-bootstrap CIs (see the module docstring)."""
    from brainalign.bootstrap import percentile_ci, unit_counts, unit_inflation
    from brainalign.correlation import pearson_columns
    from brainalign.encoding.bootstrap import _resample_counts, _resampled_pearson
    from brainalign.encoding.folds import fold_units, grouped_folds
    from brainalign.encoding.protocols.registry import get_protocol
    from brainalign.encoding.ridge import DEFAULT_ALPHAS

    seed = int(options.seed)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = len(x)
    folds, inner_blocks = get_protocol("ridge-grouped").layer_folds(n, overrides, options)
    groups = np.arange(n) if groups is None else np.asarray(groups)
    if folds is None:
        folds = grouped_folds(groups, int(options.n_folds), seed)
    alphas = np.asarray(options.alphas or DEFAULT_ALPHAS, dtype=float)
    if not baseline.x.shape[1]:
        raise BrainalignError("the baseline has no regressor that varies (word rate, nuisance columns)")
    pairs, inner, per_fold = [], [], {"baseline": [], "joint": []}
    neuroid = {"baseline": [], "joint": []}
    y_clean = clean_confounds(y, baseline, baseline.runs)
    for k, (train, test) in enumerate(folds):
        train, test = np.asarray(train), np.asarray(test)
        base, joint, inner_score = _fit_fold(k, x, y_clean, baseline.x, train, test, groups, alphas, options, seed,
                                             inner_blocks)
        actual = y_clean[test]
        for name, predicted in (("baseline", base), ("joint", joint)):
            r = pearson_columns(predicted, actual)
            neuroid[name].append(r)
            per_fold[name].append(float(_aggregate(r)))
        inner.append(inner_score)
        pairs.append((base, joint, actual))
    n_bootstrap = int(options.n_bootstrap)
    units = fold_units(folds, overrides.get("bootstrap_units"))
    resampled = {"baseline": np.full((max(n_bootstrap, 0), len(folds)), np.nan), "joint": None}
    resampled["joint"] = resampled["baseline"].copy()
    if n_bootstrap > 0:
        counts = (_resample_counts([len(t) for _, _, t in pairs], n_bootstrap, seed) if units is None
                  else unit_counts(units, n_bootstrap, seed))
        for k, (base, joint, actual) in enumerate(pairs):
            b = actual - actual.mean(0)
            for name, predicted in (("baseline", base), ("joint", joint)):
                resampled[name][:, k] = _aggregate(_resampled_pearson(counts[k], predicted - predicted.mean(0), b))
    score = {name: float(np.nanmean(per_fold[name])) for name in per_fold}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        draws = {name: np.nanmean(values, axis=1) for name, values in resampled.items()}
    if units is not None:  # few blocks per fold: stretch the draws as bootstrap._bootstrap does
        inflation = unit_inflation(units)
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
        low, high = percentile_ci(draw) if n_bootstrap > 0 else (np.nan, np.nan)
        result[name] = {"score": float(value), "ci_low": float(low), "ci_high": float(high),
                        "fold_scores": [float(v) for v in folds_value]}
    result["joint"]["inner_scores"] = inner
    r_base, r_joint = (np.nanmean(np.vstack(neuroid[name]), axis=0) for name in ("baseline", "joint"))
    result.update(n=int(n), regressors=list(baseline.names), confounds=list(baseline.confound_names),
                  description=baseline.describe(), neuroid_gain=(r_joint - r_base).tolist(),
                  bootstrap="blocks of scans" if units is not None else "scans", feature_scaling="zscore")
    return result


# ----------------------------------------------------------------------------------------------- tidy rows
def gain_rows(metric, profile) -> list[dict]:
    """Tidy rows of ``baseline-gain``: ``baseline_r``, ``joint_r``, ``gain_r`` and ``variance_added`` for every layer,
    the best layer (the largest joint score, hence the largest gain: the baseline is the same for every layer) and
    the nested layer (in each outer fold the layer with the best training-only joint score; its test values, mean
    over folds). Baseline and joint r carry the dataset's ceiling; the gain and the variance added do not (a
    difference of scores is not a fraction of a ceiling)."""
    from brainalign.study.tables import GAIN_METRICS, GAIN_PROTOCOL  # pandas: only the score step pays its import

    layer_names = profile.layer_names
    stored = {name: metric.stored(profile.by_layer[name]) for name in layer_names}
    rows = []

    def add(selection, layer, values: dict, n, with_ci=True):
        for key, metric_name in GAIN_METRICS.items():
            entry = values[key]
            ceiling = profile.ceiling if key in ("baseline", "joint") else np.nan
            ci = (entry["ci_low"], entry["ci_high"]) if with_ci else (np.nan, np.nan)
            rows.append(profile.row(metric_name, GAIN_PROTOCOL, selection, layer, entry["score"], ceiling, ci, n))

    for name in layer_names:
        add("layer", name, stored[name], stored[name]["n"])
    best = layer_names[int(np.nanargmax([stored[name]["joint"]["score"] for name in layer_names]))]
    add("best", best, stored[best], stored[best]["n"])
    first = stored[layer_names[0]]
    chosen, fold_values = [], {key: [] for key in GAIN_METRICS}
    for k in range(len(first["joint"]["fold_scores"])):
        pick = layer_names[int(np.nanargmax([stored[name]["joint"]["inner_scores"][k] for name in layer_names]))]
        chosen.append(pick)
        for key in GAIN_METRICS:
            fold_values[key].append(stored[pick][key]["fold_scores"][k])
    mode = max(set(chosen), key=lambda name: (chosen.count(name), -profile.index[name]))
    nested = {key: {"score": float(np.nanmean(values)), "ci_low": np.nan, "ci_high": np.nan} for key, values in fold_values.items()}
    nested["variance_added"]["score"] = nested["joint"]["score"] ** 2 - nested["baseline"]["score"] ** 2  # as for every row
    add("nested", mode, nested, first["n"], with_ci=False)
    return rows
