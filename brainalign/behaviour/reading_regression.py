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

Estimator (``fit_regression``, statsmodels, maximum likelihood so that log-likelihoods of models with different
fixed effects compare): a linear mixed model with a random intercept per reader (``MixedLM``) for per-reader data,
ordinary least squares (``OLS``) on means. Held-out log-likelihood of an observation: Gaussian density of its
reading time around the training fit's prediction (fixed effects + the reader's predicted intercept), with the
training fit's residual variance.

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

Intervals (``ci_resamples`` and ``coef_ci_method`` in the result say which). Every reader reads the same words, so
a word's (a sentence's) difficulty is shared by all readers: an interval over readers alone leaves the
between-item variance out and is too narrow (Barr et al. 2013; docs/statistics.md, its coverage measured by
benchmarks/coverage_reading.py). The text unit (:func:`text_units`) is the sentence; where a group holds several
sentences (Natural Stories' 10 stories) the group is drawn first and its sentences inside it, because sentences of
one story share its variance: on the default run's Natural Stories surprisals the delta log-likelihood's spread
over stories is 1.7-2.1 times its spread over sentences, and clustering the coefficients by story rather than
sentence widens their errors by 1.3-1.8 (docs/statistics.md ("Reading times")). So:

* delta log-likelihood and lag check: 95% percentile CI of the pooled mean from ``n_bootstrap`` crossed
  (pigeonhole) resamples of readers x text units (:func:`brainalign.bootstrap.crossed_pooled_means`: readers and
  units drawn independently, every cell of a drawn pair kept; Owen 2007), seeded; on mean reading times (one
  pseudo-reader) the text units alone. The held-out values are resampled, the folds' fits are not refitted.
* coefficients (the spillover profile): Wald intervals with two-way cluster-robust standard errors, clustered by
  reader and by group (the sentence on Frank 2013, the story on Natural Stories; Cameron, Gelbach & Miller 2011:
  V = V_reader + V_group - V_reader x group), t with (fewest clusters - 1) degrees of freedom (t(9) for 10
  stories); one-way by group on means. Not the bootstrap: a crossed resample would refit the mixed model 1,000
  times per model x dataset (Frank 2013: 35,000 observations), where the sandwich needs the one fit. For the mixed
  model the scores are those of its GLS form (observations and predictors quasi-demeaned within reader,
  ``Fit.gls_form``), so its point estimates keep their random-intercept weights.

statsmodels, scipy and wordfreq are imported inside the functions that fit and build predictors: they are heavy, and
:mod:`brainalign.study.sections` imports this module for :func:`lag_check_fires` alone.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from brainalign.bootstrap import cell_table, crossed_pooled_means, percentile_ci
from brainalign.errors import BrainalignError
from brainalign.options import BehaviourOptions

RT_RANGE = (50.0, 3000.0)  # ms: the default protocol's per-value outlier bounds
BASELINE = ("length", "log_frequency", "position")
LAGGED_BASELINE = ("length", "log_frequency")
WORD_FORM = ("punctuation", "length_squared")  # the lag check's shared terms, beside LAGGED_BASELINE's, for 3 words


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

    The shared terms make the check symmetric (module docstring): a reading time shifted by one word finds its own
    word's form on the ``next`` side in both models, so only surprisal can tell them apart."""
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


# ----------------------------------------------------------------------------------------------- the estimator
@dataclass
class Fit:
    """A fitted regression: fixed effects (intercept first), their model-based standard errors, the ML residual
    variance, the in-sample log-likelihood (statsmodels' ``llf``) and, for a mixed model, the reader intercepts'
    variance and each reader's predicted intercept."""

    columns: list[str]
    params: np.ndarray
    bse: np.ndarray
    scale: float
    loglik: float
    mixed: bool
    converged: bool = True
    intercepts: dict = field(default_factory=dict)
    re_variance: float = 0.0
    used: list = field(default_factory=list)  # design columns fitted (``independent_columns``); empty: all

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

    def fitted(self) -> np.ndarray:
        """Indices of the design's columns the fit estimated (the intercept first)."""
        return np.asarray(self.used if self.used else range(len(self.params)), dtype=int)

    def gls_form(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The design (the fitted columns only) and reading times on which the fit is ordinary least squares. A
        mixed fit is the GLS of its random-intercept covariance, which is OLS on data quasi-demeaned within each
        reader: x - theta x_mean, theta = 1 - sqrt(scale / (scale + n_reader re_variance)) (Wooldridge 2010, 10.7)."""
        design, y = _design(frame, self.columns)[:, self.fitted()], frame["rt"].to_numpy(dtype=float)
        if self.mixed and self.re_variance > 0:
            inverse = pd.factorize(frame["subject"].to_numpy())[0]
            theta = (1 - np.sqrt(self.scale / (self.scale + np.bincount(inverse) * self.re_variance)))[inverse]
            means = pd.DataFrame(np.column_stack([design, y])).groupby(inverse).transform("mean").to_numpy()
            design, y = design - theta[:, None] * means[:, :-1], y - theta * means[:, -1]
        return design, y

    def cluster_bse(self, frame: pd.DataFrame, clusters) -> tuple[np.ndarray, int]:
        """Cluster-robust standard errors of the fixed effects on the frame the fit was made on, clustered by each
        column of ``clusters`` (``["subject", "group"]``: two-way, :func:`cluster_robust_cov`), and the fewest
        clusters of any of them (for the t interval's degrees of freedom). NaN for columns the fit left out. The
        scores are those of :meth:`gls_form`, so a mixed fit's point estimates keep their weights and only their
        spread is made robust."""
        design, y = self.gls_form(frame)
        used = self.fitted()
        labels = [frame[c].to_numpy() for c in clusters]
        bse = np.full(len(self.params), np.nan)
        bse[used] = np.sqrt(np.diag(cluster_robust_cov(design, y - design @ self.params[used], labels)))
        return bse, min(len(pd.unique(x)) for x in labels)


def _design(frame: pd.DataFrame, columns) -> np.ndarray:
    return np.column_stack([np.ones(len(frame)), frame[list(columns)].to_numpy(dtype=float)])


def cluster_robust_cov(design: np.ndarray, residuals: np.ndarray, clusters) -> np.ndarray:
    """Cluster-robust (sandwich) covariance of least-squares coefficients, clustered one way (one label array in
    ``clusters``) or two ways (two: Cameron, Gelbach & Miller 2011, V = V_1 + V_2 - V_1x2, V_1x2 clustered by the
    pairs), each term with the small-sample factor G / (G - 1). The two-way sum can lose positive definiteness;
    negative eigenvalues are set to 0 (their section 2.3)."""
    design, residuals = np.asarray(design, dtype=float), np.asarray(residuals, dtype=float)
    scores = design * residuals[:, None]
    bread = np.linalg.pinv(design.T @ design)

    def meat(codes: np.ndarray) -> np.ndarray:
        n_clusters = int(codes.max()) + 1
        sums = np.zeros((n_clusters, scores.shape[1]))
        np.add.at(sums, codes, scores)
        return (n_clusters / (n_clusters - 1) if n_clusters > 1 else 1.0) * (sums.T @ sums)

    codes = [pd.factorize(np.asarray(labels))[0] for labels in clusters]
    if len(codes) == 1:
        middle = meat(codes[0])
    elif len(codes) == 2:
        middle = meat(codes[0]) + meat(codes[1]) - meat(pd.factorize(codes[0] * (int(codes[1].max()) + 1) + codes[1])[0])
    else:
        raise BrainalignError(f"cluster_robust_cov: {len(codes)} cluster variables (one or two)")
    values, vectors = np.linalg.eigh(bread @ middle @ bread)
    return (vectors * np.clip(values, 0, None)) @ vectors.T


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
        return Fit(columns, params, bse, float(result.ssr / result.nobs), float(result.llf), mixed=False, used=used)
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
               intercepts=intercepts, re_variance=max(float(np.asarray(result.cov_re)[0, 0]), 0.0), used=used)


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


@dataclass(frozen=True)
class TextUnits:
    """What the intervals resample besides readers (module docstring): each word's ``unit`` (its sentence where the
    stimuli have ``sentence_id``, else its group), whether units are ``nested`` in groups that hold several of them
    (Natural Stories' sentences in its 10 stories: groups are then drawn first, their units inside them), and the
    scheme's ``name``; ``cluster`` names the groups, by which the coefficients' errors are clustered."""

    unit: np.ndarray
    nested: bool
    name: str
    cluster: str


def text_units(stimuli: pd.DataFrame) -> TextUnits:
    """The text units of the stimuli (:class:`TextUnits`): Frank 2013's sentences are its groups (``sentences``);
    Natural Stories' sentences sit in stories (``groups, then sentences within each``)."""
    groups = stimuli["group"].astype(str).to_numpy()
    if "sentence_id" not in stimuli:
        return TextUnits(groups, False, "groups", "groups")
    sentences = stimuli["sentence_id"].astype(str).to_numpy()
    nested = pd.Series(sentences).groupby(groups).nunique().max() > 1
    if not nested:
        return TextUnits(sentences, False, "sentences", "sentences")
    return TextUnits(sentences, True, "groups, then sentences within each (two-level)", "groups")


def crossed_bootstrap(values: np.ndarray, readers: np.ndarray, units: np.ndarray, n_bootstrap: int, seed: int = 0,
                      groups: np.ndarray | None = None) -> dict:
    """The pooled mean of ``values`` (per observation), its 95% percentile CI from crossed (pigeonhole) resamples of
    readers x text units (:func:`brainalign.bootstrap.crossed_pooled_means`, seeded: a resample's pooled mean is
    its cells' summed values / their summed counts, so the interval belongs to the number reported; one reader:
    the units alone; with ``groups``, a group label per observation, the units are drawn inside drawn groups), and
    each reader's mean."""
    sums, counts, reader_labels, unit_labels = cell_table(values, readers, units)
    col_groups = None
    if groups is not None:
        col_groups = pd.Series(np.asarray(groups)).groupby(np.asarray(units)).first().loc[unit_labels].to_numpy()
    low = high = float("nan")
    if n_bootstrap > 0 and counts.shape[1] > 1:
        low, high = percentile_ci(crossed_pooled_means(sums, counts, n_bootstrap, seed, col_groups))
    return {"mean": float(np.mean(values)), "ci_low": float(low), "ci_high": float(high),
            "per_reader": {str(k): float(v) for k, v in zip(reader_labels, sums.sum(1) / counts.sum(1))}}


def resampled_units(n_readers: int, units: TextUnits) -> str:
    """What the crossed bootstrap resamples, in words: ``readers x sentences (crossed)``, or the units alone."""
    return f"readers x {units.name} (crossed)" if n_readers > 1 else f"{units.name}; one pseudo-reader (mean reading times)"


def lag_check_fires(lag_ci_low: float, gain_ci_low: float) -> bool:
    """The lag check's warning (module docstring): the next word's surprisal beats the previous word's (CI above 0)
    for a surprisal that predicts reading times at all: ``gain_ci_low``, the lower end of the CI of the ``next``
    model's held-out gain over ``shared`` (``lag_check_gain``; score files written before it existed pass the delta
    log-likelihood's). NaN never fires."""
    return bool(np.isfinite(lag_ci_low) and np.isfinite(gain_ci_low) and lag_ci_low > 0 and gain_ci_low > 0)


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
