"""Reading behaviour as psycholinguists measure it (the ``reading-regression`` behaviour protocol): how much a
model's surprisal adds to a regression of reading times on baseline predictors, judged on held-out text.

Why a second protocol: the paper's Pearson r between surprisal and reading time rewards any surprisal that tracks
word length or frequency. An untrained model's surprisal grows with a word's token count, long words are read
slowly, and on Frank 2013 the untrained Gemma-3-270m beats the trained one on |r|. The field's standard since
Goodkind & Bicknell (2018), Wilcox et al. (2020, 2023) and Oh & Schuler (2023) is the increase in log-likelihood
(delta log-likelihood) that surprisal brings over a baseline that already knows length and frequency: a surprisal
that only re-encodes them gets ~0.

Predictors per word (``word_predictors``), lags taken within the word's group (story, or sentence where each was
read on its own), ``k`` = 1 .. ``regression_spillover``:

* baseline: ``length`` (characters of the displayed word), ``log_frequency`` (Zipf value from ``wordfreq``: log10
  of occurrences per billion words; 0 for words it does not know), ``position`` (word in sentence), and
  ``length_lag{k}``, ``log_frequency_lag{k}`` of the k-th previous word (spillover);
* test: ``surprisal_lag0`` (the word's own) .. ``surprisal_lag{k}`` (the previous words': spillover);
* lag check only: ``surprisal_lag1`` and ``surprisal_next`` (the next word's).

Observations (``observations``): one per reader x word where the data have readers (Frank 2013 eye tracking,
futrell2018), one per word on mean reading times otherwise (Natural Stories' ``processed_wordinfo.tsv``). Reading
times outside 50-3000 ms are dropped, as in the default protocol, and so are words the caller excludes and words
with any predictor undefined (the first words of a group, a missing surprisal, the group's last word).

Estimator (``fit_regression``, statsmodels, maximum likelihood so that log-likelihoods of models with different
fixed effects compare): a linear mixed model with a random intercept per reader (``MixedLM``) for per-reader data,
ordinary least squares (``OLS``) on means. Held-out log-likelihood of an observation: Gaussian density of its
reading time around the training fit's prediction (fixed effects + the reader's predicted intercept), with the
training fit's residual variance.

Scores (``reading_regression``), all on the same observations, groups split into ``regression_folds`` folds
(seeded; a group never straddles training and test):

* delta log-likelihood (headline): mean over held-out observations of log p(rt | baseline + surprisal lags) -
  log p(rt | baseline), in nats per observation; 95% CI from ``n_bootstrap`` resamples of whole readers
  (per-reader data) or folds (means), seeded;
* surprisal coefficients (ms per bit) at lag 0 .. k from the full model fitted on every observation, Wald 95% CIs:
  the spillover profile, and ``peak_lag``, the lag with the largest z;
* lag check: log p(rt | baseline + surprisal + next word's surprisal) - log p(rt | baseline + surprisal + previous
  word's surprisal), held out. Spillover makes the previous word's surprisal predictive; the next word's
  predicting better, with the interval above 0, means the reading times are shifted against the words (Natural
  Stories' means predate the repository's 2025 realignment): ``lag_check_fires``. It fires only for a surprisal
  that predicts at all (delta log-likelihood CI above 0): one that adds nothing over length and frequency (an
  untrained model's) only stands in for the neighbours' length, and eye-tracking readers do see the next word's
  length (parafoveal preview).

statsmodels and wordfreq are imported inside the functions that fit and build predictors: they are heavy, and
:mod:`brainalign.study.sections` imports this module for :func:`lag_check_fires` alone.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from brainalign.bootstrap import draw_units, percentile_ci
from brainalign.errors import BrainalignError
from brainalign.options import BehaviourOptions

RT_RANGE = (50.0, 3000.0)  # ms: the default protocol's per-value outlier bounds
BASELINE = ("length", "log_frequency", "position")
LAGGED_BASELINE = ("length", "log_frequency")
Z95 = 1.959963984540054


# ----------------------------------------------------------------------------------------------- predictors
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
    for k in range(1, spillover + 1):
        for name in LAGGED_BASELINE:
            table[f"{name}_lag{k}"] = shift_within_groups(table[name].to_numpy(), groups, k)
    surprisal = np.asarray(surprisal, dtype=float)
    for k in range(0, max(spillover, 1) + 1):
        table[f"surprisal_lag{k}"] = shift_within_groups(surprisal, groups, k)
    table["surprisal_next"] = shift_within_groups(surprisal, groups, -1)
    return table


def model_columns(spillover: int) -> dict[str, list[str]]:
    """The four models: baseline, full (baseline + surprisal at lags 0..spillover), and the lag check's pair
    (baseline + the word's surprisal + the previous, or the next, word's surprisal).

    The next word's length and frequency stay out of the lag check's baseline on purpose: in self-paced reading the
    next word is not yet on screen, and on Natural Stories' means they alone raise the held-out log-likelihood by
    more than any surprisal does, which is the misalignment the check exists to show."""
    baseline = list(BASELINE) + [f"{name}_lag{k}" for k in range(1, spillover + 1) for name in LAGGED_BASELINE]
    return {"baseline": baseline, "full": baseline + [f"surprisal_lag{k}" for k in range(spillover + 1)],
            "previous": baseline + ["surprisal_lag0", "surprisal_lag1"], "next": baseline + ["surprisal_lag0", "surprisal_next"]}


def observations(predictors: pd.DataFrame, rts: np.ndarray, keep: np.ndarray, groups, subjects=None) -> pd.DataFrame:
    """Long table: one row per reader x kept word with a reading time inside ``RT_RANGE`` and every predictor
    defined; columns ``subject``, ``word`` (index into the stimuli), ``group``, ``rt`` and the predictors.

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
        frame.insert(0, "group", np.asarray(groups)[index])
        frame.insert(0, "word", index)
        frame.insert(0, "subject", str(subject))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------------------------- the estimator
@dataclass
class Fit:
    """A fitted regression: fixed effects (intercept first), their standard errors, the ML residual variance, the
    in-sample log-likelihood (statsmodels' ``llf``) and, for a mixed model, each reader's predicted intercept."""

    columns: list[str]
    params: np.ndarray
    bse: np.ndarray
    scale: float
    loglik: float
    mixed: bool
    converged: bool = True
    intercepts: dict = field(default_factory=dict)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Fixed effects, plus the reader's intercept (0 for a reader the fit has not seen, the population mean)."""
        design = _design(frame, self.columns)
        prediction = design @ self.params
        if self.mixed:
            prediction = prediction + frame["subject"].map(self.intercepts).fillna(0.0).to_numpy(dtype=float)
        return prediction

    def loglik_per_observation(self, frame: pd.DataFrame) -> np.ndarray:
        """Gaussian log-density of each reading time around the prediction, with the fit's residual variance."""
        residual = frame["rt"].to_numpy(dtype=float) - self.predict(frame)
        return -0.5 * (math.log(2 * math.pi * self.scale) + residual ** 2 / self.scale)


def _design(frame: pd.DataFrame, columns) -> np.ndarray:
    return np.column_stack([np.ones(len(frame)), frame[list(columns)].to_numpy(dtype=float)])


def independent_columns(design: np.ndarray) -> list[int]:
    """Indices of a full-rank subset of the design's columns, in order (the intercept first): a column that is
    constant or an exact linear combination of earlier ones (a surprisal that is exactly a function of length, a
    word list without frequencies) is left out. MixedLM cannot fit a rank-deficient design."""
    keep = [0]
    for j in range(1, design.shape[1]):
        if np.linalg.matrix_rank(design[:, keep + [j]]) == len(keep) + 1:
            keep.append(j)
    return keep


def fit_regression(frame: pd.DataFrame, columns, mixed: bool) -> Fit:
    """Maximum-likelihood fit of rt ~ 1 + columns: ``statsmodels`` MixedLM with a random intercept per ``subject``
    (``mixed``) or OLS. ML, not REML: REML likelihoods of models with different fixed effects do not compare.
    Columns left out by ``independent_columns`` get coefficient 0 and standard error NaN."""
    import statsmodels.api as sm  # lazy (module docstring)

    columns = list(columns)
    y = frame["rt"].to_numpy(dtype=float)
    design = _design(frame, columns)
    used = independent_columns(design)
    params, bse = np.zeros(design.shape[1]), np.full(design.shape[1], np.nan)
    if not mixed:
        result = sm.OLS(y, design[:, used]).fit()
        params[used], bse[used] = np.asarray(result.params), np.asarray(result.bse)
        return Fit(columns, params, bse, float(result.ssr / result.nobs), float(result.llf), mixed=False)
    groups = frame["subject"].to_numpy()
    with warnings.catch_warnings():  # statsmodels warns when its first optimiser fails and it retries another
        warnings.simplefilter("ignore")
        result = sm.MixedLM(y, design[:, used], groups=groups).fit(reml=False)
    params[used], bse[used] = np.asarray(result.fe_params), np.asarray(result.bse)[:len(used)]
    try:
        intercepts = {g: float(np.asarray(v)[0]) for g, v in result.random_effects.items()}
    except ValueError:  # a zero reader variance: every reader at the population intercept
        intercepts = {}
    return Fit(columns, params, bse, float(result.scale), float(result.llf), mixed=True, converged=bool(result.converged),
               intercepts=intercepts)


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


def unit_bootstrap(values: np.ndarray, units: np.ndarray, n_bootstrap: int, seed: int = 0) -> dict:
    """The pooled mean of ``values`` (per observation), its 95% percentile CI from resampling whole units (readers
    or folds) with replacement (seeded; the pooled mean of each resample = its units' summed values / their summed
    counts, so the interval belongs to the number reported), and each unit's mean."""
    frame = pd.DataFrame({"value": values, "unit": units}).groupby("unit", sort=True)["value"].agg(["sum", "count"])
    sums, counts = frame["sum"].to_numpy(), frame["count"].to_numpy()
    low = high = float("nan")
    if n_bootstrap > 0 and len(frame) > 1:
        draws = draw_units(len(frame), n_bootstrap, seed)
        low, high = percentile_ci(sums[draws].sum(axis=1) / counts[draws].sum(axis=1))
    return {"mean": float(np.mean(values)), "ci_low": float(low), "ci_high": float(high),
            "per_unit": {str(k): float(v) for k, v in (frame["sum"] / frame["count"]).items()}}


def lag_check_fires(lag_ci_low: float, delta_ci_low: float) -> bool:
    """The lag check's warning (module docstring): the next word's surprisal beats the previous word's (CI above 0)
    for a surprisal that predicts reading times at all (delta log-likelihood CI above 0). NaN never fires."""
    return bool(np.isfinite(lag_ci_low) and np.isfinite(delta_ci_low) and lag_ci_low > 0 and delta_ci_low > 0)


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
    keep = np.ones(len(stimuli), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    predictors = word_predictors(stimuli.reset_index(drop=True), surprisal, spillover, language)
    rts = np.asarray(rts, dtype=float)
    mixed = rts.shape[0] > 1
    frame = observations(predictors, rts, keep, stimuli["group"].astype(str).to_numpy(), subjects)
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
    units, unit_kind = (frame["subject"].to_numpy(), "readers") if mixed else (folds, "folds")
    delta = unit_bootstrap(heldout["full"] - heldout["baseline"], units, options.n_bootstrap, seed)
    lag = unit_bootstrap(heldout["next"] - heldout["previous"], units, options.n_bootstrap, seed)
    full = fit_regression(frame, models["full"], mixed)
    coefficients = {}
    for k in range(spillover + 1):
        i = 1 + full.columns.index(f"surprisal_lag{k}")
        coefficients[str(k)] = {"coef": float(full.params[i]), "ci_low": float(full.params[i] - Z95 * full.bse[i]),
                                "ci_high": float(full.params[i] + Z95 * full.bse[i]), "z": float(full.params[i] / full.bse[i])}
    peak = max(coefficients, key=lambda k: coefficients[k]["z"] if np.isfinite(coefficients[k]["z"]) else -np.inf)
    fires = bool(lag_check_fires(lag["ci_low"], delta["ci_low"]))
    return {**base, "applicable": True, "n_folds": int(folds.max() + 1), "ci_across": unit_kind,
            "n_subjects": int(frame["subject"].nunique()),
            "delta_loglik": delta["mean"], "delta_loglik_ci": [delta["ci_low"], delta["ci_high"]],
            "delta_loglik_per_unit": delta["per_unit"], "delta_loglik_total": float(np.sum(heldout["full"] - heldout["baseline"])),
            "surprisal_coef": coefficients["0"]["coef"], "surprisal_coef_ci": [coefficients["0"]["ci_low"], coefficients["0"]["ci_high"]],
            "spillover_profile": coefficients, "peak_lag": int(peak),
            "lag_check": lag["mean"], "lag_check_ci": [lag["ci_low"], lag["ci_high"]], "lag_check_fires": fires,
            "lag_check_note": ("the next word's surprisal predicts reading times better than the previous word's: the "
                               "reading times look shifted against the words") if fires else "",
            "heldout_loglik": {name: float(np.mean(values)) for name, values in heldout.items()},
            "insample_loglik_full": full.loglik, "converged": bool(all(converged) and full.converged),
            "columns": models}
