"""Reading behaviour as psycholinguists measure it (the ``reading-regression`` behaviour protocol): how much a
model's surprisal adds to a regression of reading times on baseline predictors, judged on held-out text.

Why a second protocol: the paper's Pearson r between surprisal and reading time rewards any surprisal that tracks
word length or frequency. An untrained model's surprisal grows with a word's token count, long words are read
slowly, and on Frank 2013 the untrained Gemma-3-270m beats the trained one on |r|. The field's standard since
Goodkind & Bicknell (2018), Wilcox et al. (2020, 2023) and Oh & Schuler (2023) is the increase in log-likelihood
(delta log-likelihood) that surprisal brings over a baseline that already knows length and frequency: a surprisal
that only re-encodes them gets ~0.

The regression itself: :mod:`brainalign.behaviour.regression_predictors` (the predictors per word: length,
frequency, position and their spillover lags; the models' columns; the observations, one per reader x word) and
:mod:`brainalign.behaviour.regression_estimator` (MixedLM or OLS by maximum likelihood, held-out
log-likelihoods, cluster-robust errors), with the intervals in :mod:`brainalign.behaviour.regression_intervals`.
This module is the protocol: the cross-validation and the scores.

Scores (``reading_regression``), all on the same observations, groups split into ``regression_folds`` folds
(seeded; a group never straddles training and test):

* delta log-likelihood (headline): mean over held-out observations of log p(rt | baseline + surprisal lags) -
  log p(rt | baseline), in nats per observation;
* surprisal coefficients (ms per bit) at lag 0 .. k from the full model fitted on every observation: the
  spillover profile, and ``peak_lag``, the lag with the largest z;
* lag check: log p(rt | shared + surprisal + next word's surprisal) - log p(rt | shared + surprisal + previous word's
  surprisal), held out, where ``shared`` = the baseline + the word form of the word and both neighbours (the next
  word's length and log frequency; squared length and attached punctuation of all three). Spillover makes the
  previous word's surprisal predictive; the next word's predicting better, with the interval above 0, means the
  reading times are shifted against the words: ``lag_check_fires``.
  The design is symmetric: all its models hold the same word form of both neighbours, so under a one-word shift
  the two compared models swap roles and nothing but surprisal decides between them. Without the next word's
  length and frequency the check credited the next word's surprisal with them (a dashed moving window in
  self-paced reading shows the next word's length; eye tracking previews it) and fired on aligned data: on the
  default run, for both trained decoders on Natural Stories. The squared lengths and the punctuation are there for
  a surprisal that re-encodes word form (an untrained model's, about its token count): on Frank 2013 its next-word
  term stood for the sentence-final punctuation of the next word (+0.098 nats on the mean reading times, -0.0002
  with the punctuation terms), on Natural Stories for a nonlinear length effect.
  It fires only for a surprisal that predicts at all: ``lag_check_gain``, the ``next`` model's held-out gain over
  ``shared`` (the same terms without surprisal), has its CI above 0. The gate is the ``next`` model's gain, not the
  delta log-likelihood: on reading times that really are shifted, the word's true surprisal sits at the next
  position, outside the ``full`` model, and the delta log-likelihood (SmolLM2-135M on Natural Stories shifted by
  one word: 0.0063, CI [-0.0041, 0.0150]) would keep the check silent on the very shift it exists to find.

Intervals (``ci_resamples`` and ``coef_ci_method`` in the result say which): crossed readers x text units
bootstrap of the held-out values for the delta log-likelihood and the lag check, two-way cluster-robust Wald
intervals for the coefficients; what they resample and why: :mod:`brainalign.behaviour.regression_intervals`.

scipy is imported inside :func:`reading_regression` (statsmodels and wordfreq inside the functions of the two
modules above that fit and build predictors): they are heavy. :mod:`brainalign.study.sections` reads the lag check's
verdict from :mod:`brainalign.behaviour.regression_intervals`, which imports none of them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from brainalign.behaviour.regression_estimator import fit_regression
from brainalign.behaviour.regression_intervals import crossed_bootstrap, lag_check_fires, resampled_units, text_units
from brainalign.behaviour.regression_predictors import model_columns, observations, word_predictors
from brainalign.options import BehaviourOptions


# ----------------------------------------------------------------------------------------------- cross-validation
def group_folds(groups, n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold index per row: the distinct groups in a seeded random order, dealt round-robin into
    min(n_folds, number of groups) folds, so a story or sentence is never split between training and test."""
    groups = np.asarray(groups).astype(str)
    unique = np.unique(groups)
    order = np.random.default_rng(seed).permutation(len(unique))
    n_folds = min(int(n_folds), len(unique))
    fold_of = {unique[g]: i % n_folds for i, g in enumerate(order)}
    return np.array([fold_of[g] for g in groups], dtype=int)


def heldout_loglik(frame: pd.DataFrame, models: dict[str, list[str]], folds: np.ndarray, mixed: bool) -> tuple[dict, list]:
    """Each model's held-out log-likelihood of every observation (fitted on the other folds), and whether every
    fit converged (one flag per fold and model)."""
    out = {name: np.full(len(frame), np.nan) for name in models}
    converged = []
    for fold in np.unique(folds):
        test = folds == fold
        train, held = frame[~test], frame[test]
        for name, columns in models.items():
            fit = fit_regression(train, columns, mixed)
            out[name][test] = fit.loglik_per_observation(held)
            converged.append(fit.converged)
    return out, converged


# ----------------------------------------------------------------------------------------------- the protocol
def reading_regression(stimuli: pd.DataFrame, surprisal: np.ndarray, rts: np.ndarray, keep: np.ndarray | None = None,
                       subjects=None, options: BehaviourOptions | dict | None = None) -> dict:
    """The ``reading-regression`` protocol on one reading measure (module docstring).

    rts: (readers, words), one reader for mean reading times; keep: words the caller keeps (its exclusions).
    Returns ``applicable: False`` with a reason when the data cannot support the cross-validation (fewer than two
    groups, or too few observations per coefficient)."""
    options = BehaviourOptions.from_dict(options)
    spillover, n_folds, language = options.regression_spillover, options.regression_folds, options.regression_language
    seed = options.seed
    stimuli = stimuli.reset_index(drop=True)
    keep = np.ones(len(stimuli), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    predictors = word_predictors(stimuli, surprisal, spillover, language)
    rts = np.asarray(rts, dtype=float)
    mixed = rts.shape[0] > 1
    units = text_units(stimuli)
    frame = observations(predictors, rts, keep, stimuli["group"].astype(str).to_numpy(), subjects, units.unit)
    models = model_columns(spillover)
    n_groups = frame["group"].nunique()
    needed = 10 * (len(models["full"]) + 1)
    base = {"estimator": "MixedLM (random intercept per reader), ML" if mixed else "OLS on mean reading times",
            "spillover": spillover, "language": language, "n_observations": int(len(frame)), "n_groups": int(n_groups)}
    if n_groups < 2 or len(frame) < needed:
        return {**base, "applicable": False,
                "reason": f"{len(frame)} observations in {n_groups} groups: the cross-validation needs 2 groups and {needed} observations"}
    folds = group_folds(frame["group"], n_folds, seed)
    heldout, converged = heldout_loglik(frame, models, folds, mixed)
    readers, text = frame["subject"].to_numpy(), frame["unit"].to_numpy()
    nest = frame["group"].to_numpy() if units.nested else None
    delta = crossed_bootstrap(heldout["full"] - heldout["baseline"], readers, text, options.n_bootstrap, seed, nest)
    lag = crossed_bootstrap(heldout["next"] - heldout["previous"], readers, text, options.n_bootstrap, seed, nest)
    gain = crossed_bootstrap(heldout["next"] - heldout["shared"], readers, text, options.n_bootstrap, seed, nest)
    full = fit_regression(frame, models["full"], mixed)
    clusters = ["subject", "group"] if mixed else ["group"]  # groups: sentences (Frank 2013) or the stories that hold them
    bse, fewest = full.cluster_bse(frame, clusters)
    from scipy.stats import t as student  # lazy (module docstring)

    critical = float(student.ppf(0.975, fewest - 1)) if fewest > 1 else float("nan")
    coefficients = {}
    for k in range(spillover + 1):
        i = 1 + full.columns.index(f"surprisal_lag{k}")
        coefficients[str(k)] = {"coef": float(full.params[i]), "ci_low": float(full.params[i] - critical * bse[i]),
                                "ci_high": float(full.params[i] + critical * bse[i]), "z": float(full.params[i] / bse[i]),
                                "se": float(bse[i]), "se_model": float(full.bse[i])}
    peak = max(coefficients, key=lambda k: coefficients[k]["z"] if np.isfinite(coefficients[k]["z"]) else -np.inf)
    fires = bool(lag_check_fires(lag["ci_low"], gain["ci_low"]))
    n_readers, n_units = int(frame["subject"].nunique()), int(frame["unit"].nunique())
    coef_method = (f"Wald, t({fewest - 1}), two-way cluster-robust SE (readers, {units.cluster})" if mixed
                   else f"Wald, t({fewest - 1}), cluster-robust SE ({units.cluster})")
    return {**base, "applicable": True, "n_folds": int(folds.max() + 1), "n_subjects": n_readers, "n_units": n_units,
            "ci_resamples": resampled_units(n_readers, units), "coef_ci_method": coef_method,
            "delta_loglik": delta["mean"], "delta_loglik_ci": [delta["ci_low"], delta["ci_high"]],
            "delta_loglik_per_reader": delta["per_reader"], "delta_loglik_total": float(np.sum(heldout["full"] - heldout["baseline"])),
            "surprisal_coef": coefficients["0"]["coef"], "surprisal_coef_ci": [coefficients["0"]["ci_low"], coefficients["0"]["ci_high"]],
            "spillover_profile": coefficients, "peak_lag": int(peak),
            "lag_check": lag["mean"], "lag_check_ci": [lag["ci_low"], lag["ci_high"]], "lag_check_fires": fires,
            "lag_check_gain": gain["mean"], "lag_check_gain_ci": [gain["ci_low"], gain["ci_high"]],
            "lag_check_note": ("the next word's surprisal predicts reading times better than the previous word's, with "
                               "both neighbours' length and frequency in both models: the reading times look shifted "
                               "against the words") if fires else "",
            "heldout_loglik": {name: float(np.mean(values)) for name, values in heldout.items()},
            "insample_loglik_full": full.loglik, "converged": bool(all(converged) and full.converged),
            "columns": models}
