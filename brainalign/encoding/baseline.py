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
    ``feature_scaling: auto``, which would be two). ``encoding.baseline_band_ratios`` with several values chooses
    the bands' ratio on the inner folds too (one fit per ratio; :func:`_fit_fold`): it recovers the gain the fixed
    ratio loses when the baseline carries nothing, and only adds noise on Brennan 2016, so one ratio (1) is the
    default (docs/statistics.md, "Story fMRI"). Projecting the baseline out of the features instead (credit for shared
    variance to the baseline) or leaving it unpenalised scored below the features alone on Brennan 2016
    (docs/timeseries.md).
  * **gain**: joint r - baseline r (median over neuroids, mean over folds, as every protocol), and the variance
    added, joint r^2 - baseline r^2 (variance partitioning: what the features explain that the baseline does not);
    95% CIs from one bootstrap shared by all four (the same resamples, so the gain's CI is that of a paired
    difference), which draws the subjects, then blocks of scans shared by the drawn subjects
    (:func:`encoding.gain.resampled_fold_scores`): an interval about listeners, not only these subjects.

Computed in each layer job (``fit_layer``) as the layer metric ``baseline-gain`` (``encoding.baseline: false``
turns it off): the baseline part costs a ridge fit of a few columns, the joint part one ridge fit of the layer
(half of ``ridge-grouped`` with ``feature_scaling: auto``).

The baseline and the joint fits are here; their intervals, the gain and the tidy rows in :mod:`encoding.gain`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainalign.encoding.gain import _aggregate, gain_quantities, resampled_fold_scores
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
    subjects: np.ndarray | None = None  # per usable response column: its subject's label (the CIs resample subjects)

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


def subject_confounds(dataset) -> tuple[np.ndarray | None, list[str], np.ndarray]:
    """A time series' per-subject confounds: the nuisance columns that differ between subjects (not
    :func:`shared_nuisance_columns`; Brennan 2016: the six SPM movement parameters) as (subjects, scans, m) float64,
    or None; their names; and which nuisance columns are shared (the baseline's stimulus regressors). The one rule
    for what the scores (:func:`clean_confounds`) and the noise ceiling (:func:`cleaned_responses`) clean away."""
    nuisance = dataset.nuisance
    if nuisance is None or not nuisance.shape[2]:
        return None, [], np.zeros(0, dtype=bool)
    nuisance_names = list(dataset.meta.get("nuisance_names") or [f"nuisance{j}" for j in range(nuisance.shape[2])])
    nuisance = np.asarray(nuisance, dtype=np.float64)
    shared = shared_nuisance_columns(nuisance) if nuisance.shape[0] > 1 else np.ones(nuisance.shape[2], bool)
    if shared.all():
        return None, [], shared
    return nuisance[:, :, ~shared], [n for n, s in zip(nuisance_names, shared) if not s], shared


def column_subjects(dataset, neuroid_names: list[str]) -> np.ndarray:
    """The subject (label) of each usable response column ``neuroid_names`` (as :func:`design.responses_matrix`
    returns them): the subject axis, or ``neuroid_subjects`` for data pooled over subjects."""
    from brainalign.encoding.design import response_subjects

    all_names = [f"{s}.{n}" if len(dataset.subjects) > 1 else str(n) for s in dataset.subjects for n in dataset.neuroids]
    subject_of = dict(zip(all_names, response_subjects(dataset)))
    return np.array([str(subject_of[n]) for n in neuroid_names], dtype=object)


def baseline_design(dataset, neuroid_names: list[str], options: EncodingOptions) -> Baseline:
    """The baseline of one time series for the usable response columns ``neuroid_names`` (as
    :func:`design.responses_matrix` returns them): delayed word rate, shared nuisance columns, per-subject confounds,
    and each column's subject."""
    from brainalign.encoding.design import dataset_scan_groups
    from brainalign.encoding.timeseries import make_delays

    if dataset.meta["kind"] != "timeseries":
        raise BrainalignError(f"dataset {dataset.meta.get('name')}: a baseline of word rate and nuisance regressors needs a time series")
    rate, delays = word_rate(dataset, options)
    columns = [make_delays(rate, delays, dataset_scan_groups(dataset))]
    names = [f"word_rate@d{d}" for d in delays]
    confounds, confound_names, shared = subject_confounds(dataset)
    if shared.any():
        nuisance_names = list(dataset.meta.get("nuisance_names") or [f"nuisance{j}" for j in range(len(shared))])
        columns.append(np.asarray(dataset.nuisance, dtype=np.float64).mean(0)[:, shared])
        names += [n for n, s in zip(nuisance_names, shared) if s]
    subjects = column_subjects(dataset, neuroid_names)
    column_subject = np.full(len(neuroid_names), -1)
    if confounds is not None:
        index = {str(s): i for i, s in enumerate(dataset.subjects)}
        column_subject = np.array([index.get(s, -1) for s in subjects])
    x = np.hstack(columns)
    keep = np.ptp(x, axis=0) > 0
    return Baseline(x[:, keep], [n for n, k in zip(names, keep) if k], confounds, confound_names, column_subject,
                    dataset_scan_groups(dataset), subjects)


def _least_squares(c_train: np.ndarray, y_train: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(c_train, y_train, rcond=None)[0]


def _run_intercepts(runs: np.ndarray | None, n_scans: int) -> np.ndarray:
    """(scans x runs) indicator columns: a mean per run."""
    runs = np.zeros(n_scans, dtype=int) if runs is None else np.unique(np.asarray(runs).astype(str), return_inverse=True)[1]
    return (runs[:, None] == np.arange(runs.max() + 1)[None, :]).astype(np.float64)


def _residualise(y: np.ndarray, design: np.ndarray) -> np.ndarray:
    """``y`` (scans x columns) minus its least-squares fit on ``design`` (scans x regressors), over all scans."""
    return y - design @ _least_squares(design, y)


def clean_confounds(y: np.ndarray, baseline: Baseline, runs: np.ndarray | None = None) -> np.ndarray:
    """``y`` (scans x columns) with each subject's confounds and a mean per run removed by least squares over all
    scans: the confound regression that fMRI preprocessing applies before any model (SPM, fMRIPrep + nilearn).

    Over all scans rather than per training fold: the projection uses no model feature, so it is the same for the
    baseline, every model and every layer and favours none; fitted on training scans only it adds the coefficients'
    estimation noise to the held-out scans (docs/timeseries.md). The noise ceiling is computed on the same cleaned
    responses (:func:`cleaned_responses`)."""
    if baseline.confounds is None:
        return y
    intercepts = _run_intercepts(runs, len(y))
    out = np.array(y, dtype=np.float64)
    for s in np.unique(baseline.column_subject):
        if s < 0:
            continue
        columns = np.flatnonzero(baseline.column_subject == s)
        out[:, columns] = _residualise(out[:, columns], np.column_stack([intercepts, baseline.confounds[s]]))
    return out


def cleaned_responses(dataset) -> tuple[np.ndarray, list[str]]:
    """The responses (subjects, scans, neuroids; float64) as the baseline and joint scores see them: each subject's
    confounds (:func:`subject_confounds`) and a mean per run regressed out by least squares over all scans, the
    projection :func:`clean_confounds` applies to the score's columns; and the confounds' names. Unchanged (and no
    names) where the dataset has no per-subject confounds. The noise ceiling of a time series is computed on these
    (encoding.ceilings.compute_ceiling): stimulus-locked head motion shared by the subjects inflates a raw ISC."""
    from brainalign.encoding.design import dataset_scan_groups

    responses = np.array(dataset.responses, dtype=np.float64)
    confounds, names, _ = subject_confounds(dataset)
    if confounds is None:
        return responses, []
    intercepts = _run_intercepts(dataset_scan_groups(dataset), responses.shape[1])
    for s in range(responses.shape[0]):
        finite = np.flatnonzero(np.isfinite(responses[s]).all(0))
        responses[s][:, finite] = _residualise(responses[s][:, finite], np.column_stack([intercepts, confounds[s]]))
    return responses, names


def band_ratios(options: EncodingOptions) -> tuple[float, ...]:
    """``encoding.baseline_band_ratios``, checked: the baseline band's total prior variance relative to the feature
    band's, each > 0 (one: fixed; several: chosen by the inner CV, :func:`_fit_fold`)."""
    ratios = tuple(float(r) for r in options.baseline_band_ratios)
    if not ratios or min(ratios) <= 0:
        raise BrainalignError(f"encoding.baseline_band_ratios: {list(ratios)}; expected one or more numbers > 0, e.g. [1]")
    return ratios


def _fit_fold(k, x, y_clean, regressors, train, test, groups, alphas, options: EncodingOptions, seed, inner_blocks=None):
    """One outer fold: (baseline prediction, joint prediction) on the test scans, the joint model's training-only
    score (pooled inner predictions) for the nested layer choice, and the band ratio the joint model used.

    Baseline: ridge on the z-scored baseline regressors, its penalty per neuroid from the inner CV. Joint: a banded
    ridge, the z-scored baseline regressors scaled by sqrt(ratio * features / regressors) beside the z-scored
    features, the penalty per neuroid from the same inner CV. With ratio 1 the two bands carry the same total prior
    variance: the few baseline columns are shrunk sqrt(p / k) times less than each feature column and are not
    drowned by them; a ratio r multiplies the baseline band's prior variance by r (divides its penalty by r). With
    several ``encoding.baseline_band_ratios`` each is fitted on the same inner folds and the one with the smallest
    inner squared error summed over neuroids (each relative to its training variance) is kept: the baseline band's
    penalty relative to the feature band's chosen by inner CV, once per layer and outer fold (per neuroid, the
    choice among ratios x penalties overfits the inner folds: docs/statistics.md, "Story fMRI"). The inner folds are
    ``ridge-grouped``'s (``inner_blocks``: a single run's blocks of scans)."""
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
    y_train = y_clean[train]
    ratios = band_ratios(options)
    spread = y_train.var(0) * len(y_train)
    spread[~(spread > 0)] = 1.0
    chosen, chosen_error = None, np.inf
    for ratio in ratios:
        scale = weight * np.sqrt(ratio)
        if len(ratios) == 1:
            chosen = (ratio, scale, *ridge_cv(np.hstack([scale * b_train, x_train]), y_train, alphas, inner))
            break
        *fit, errors = ridge_cv(np.hstack([scale * b_train, x_train]), y_train, alphas, inner, errors=True)
        error = float(np.sum(errors / spread))
        if error < chosen_error:
            chosen, chosen_error = (ratio, scale, *fit), error
    ratio, scale, best, pooled, solver = chosen
    joint_test = solver.predict_per_target(np.hstack([scale * b_test, x_test]), alphas, best)
    return base_test, joint_test, float(_aggregate(pearson_columns(pooled, y_train))), ratio


def baseline_gain(x: np.ndarray, y: np.ndarray, baseline: Baseline, groups, overrides: dict, options: EncodingOptions) -> dict:
    """Baseline, joint, gain and variance added of one layer's design ``x`` against responses ``y`` (time series),
    on ``ridge-grouped``'s outer folds, with bootstrap CIs over subjects and blocks of scans
    (:func:`resampled_fold_scores`; see the module docstring)."""
    from brainalign.correlation import pearson_columns
    from brainalign.encoding.bootstrap import encode_draws
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
    pairs, inner, per_fold, ratios = [], [], {"baseline": [], "joint": []}, []
    neuroid = {"baseline": [], "joint": []}
    y_clean = clean_confounds(y, baseline, baseline.runs)
    for k, (train, test) in enumerate(folds):
        train, test = np.asarray(train), np.asarray(test)
        base, joint, inner_score, ratio = _fit_fold(k, x, y_clean, baseline.x, train, test, groups, alphas, options,
                                                    seed, inner_blocks)
        actual = y_clean[test]
        for name, predicted in (("baseline", base), ("joint", joint)):
            r = pearson_columns(predicted, actual)
            neuroid[name].append(r)
            per_fold[name].append(float(_aggregate(r)))
        inner.append(inner_score)
        ratios.append(ratio)
        pairs.append(({"baseline": base, "joint": joint}, actual))
    n_bootstrap = int(options.n_bootstrap)
    units = fold_units(folds, overrides.get("bootstrap_units"))
    resampled, inflation, resamples = resampled_fold_scores(pairs, units, baseline.subjects, n_bootstrap, seed,
                                                            overrides.get("bootstrap_block"))
    result = gain_quantities(per_fold, resampled if n_bootstrap > 0 else None, inflation)
    if n_bootstrap > 0:  # each fold's draws, for the nested layer choice's interval (gain_rows, encoding.selection)
        for name in ("baseline", "joint"):
            result[name]["fold_draws"] = encode_draws(resampled[name])
        result["bootstrap_inflation"] = inflation
    result["joint"]["inner_scores"] = inner
    r_base, r_joint = (np.nanmean(np.vstack(neuroid[name]), axis=0) for name in ("baseline", "joint"))
    result["joint"]["band_ratios"] = ratios  # the baseline band's prior variance relative to the features', per fold
    result.update(n=int(n), regressors=list(baseline.names), confounds=list(baseline.confound_names),
                  description=baseline.describe(), neuroid_gain=(r_joint - r_base).tolist(),
                  bootstrap="blocks of scans" if units is not None else "scans", ci_resamples=resamples,
                  feature_scaling="zscore")
    return result
