"""The reading regression's intervals, for the ``reading-regression`` protocol
(:mod:`brainalign.behaviour.reading_regression`): the text units (:class:`TextUnits`, :func:`text_units`), the
crossed readers x text units bootstrap of held-out values (:func:`crossed_bootstrap`, :func:`resampled_units`)
and the lag check's verdict from its intervals (:func:`lag_check_fires`).

Intervals (``ci_resamples`` and ``coef_ci_method`` in the result say which). Every reader reads the same words, so
a word's (a sentence's) difficulty is shared by all readers: an interval over readers alone leaves the
between-item variance out and is too narrow (Barr et al. 2013; docs/statistics.md, its coverage measured by
benchmarks/coverage_reading.py). The text unit (:func:`text_units`) is the sentence; where a group holds several
sentences (Natural Stories' 10 stories) the group is drawn first and its sentences inside it, because sentences of
one story share its variance: on the default run's Natural Stories surprisals the delta log-likelihood's spread
over stories is 1.7-2.1 times its spread over sentences, and clustering the coefficients by story rather than
sentence widens their errors by 1.3-1.8 (docs/statistics.md, "Reading times"). So:

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

Nothing heavy is imported here: :mod:`brainalign.study.sections` imports this module for :func:`lag_check_fires`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from brainalign.bootstrap import cell_table, crossed_pooled_means, percentile_ci


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
    """The lag check's warning (:mod:`brainalign.behaviour.reading_regression`, the lag check): the next word's
    surprisal beats the previous word's (CI above 0) for a surprisal that predicts reading times at all:
    ``gain_ci_low``, the lower end of the CI of the ``next`` model's held-out gain over ``shared`` (``lag_check_gain``;
    score files written before it existed pass the delta log-likelihood's). NaN never fires."""
    return bool(np.isfinite(lag_ci_low) and np.isfinite(gain_ci_low) and lag_ci_low > 0 and gain_ci_low > 0)
