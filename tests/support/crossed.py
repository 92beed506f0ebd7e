"""Planted crossed reading data with a known truth, and the coverage of the reading regression's intervals on it
(docs/statistics.md, "Reading times"): used by tests/test_coverage_reading.py (a few hundred replicates) and
benchmarks/coverage_reading.py (more, and the mixed-model fits).

Every reader reads the same sentences, as in Frank 2013: a reading time (or a per-observation held-out
log-likelihood difference) is

    value = mean + (slope + reader slope) x_word + reader + story + sentence + word + noise

with readers, stories, sentences (nested in stories) and words (nested in sentences) each a normal random effect,
``x_word`` a word property shared by every reader (a surprisal: part sentence-level, part word-level), and a
fraction of reader x word cells missing (words skipped). The truth is ``mean`` (the population mean) and ``slope``.
An interval over readers alone leaves the sentence, word (and story) variance out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from brainalign.behaviour.regression_estimator import fit_regression
from brainalign.behaviour.regression_intervals import crossed_bootstrap
from brainalign.bootstrap import draw_units, percentile_ci


@dataclass(frozen=True)
class Design:
    """The planted data's size and variance components (standard deviations). ``stories`` > 1: sentences nested in
    stories (Natural Stories), drawn in two levels."""

    readers: int = 40
    stories: int = 1
    sentences: int = 120  # in all
    words: tuple[int, int] = (4, 10)  # words per sentence, uniform in [low, high]
    missing: float = 0.2
    mean: float = 0.0
    slope: float = 1.0
    sd_reader: float = 0.5
    sd_story: float = 0.0
    sd_sentence: float = 1.0
    sd_word: float = 1.5
    sd_noise: float = 4.0
    sd_reader_slope: float = 0.3
    sd_x_sentence: float = 0.5
    sd_x_word: float = 1.0


#: readers and items of comparable weight: the pigeonhole's overcount of the noise matters least here
BALANCED = Design()
#: Frank 2013's shape (43 readers x 205 sentences) and variance composition on the default run's held-out
#: log-likelihood differences: the sentences' variance dominates, the readers' is about the noise's
#: (docs/statistics.md, "Reading times": SEs readers-only 0.00040, sentences-only 0.00073, iid 0.00041)
FRANK_LIKE = Design(readers=43, sentences=205, sd_reader=0.2, sd_sentence=1.0, sd_word=1.0, sd_noise=6.0)
#: one pseudo-reader (mean reading times) over 10 stories of 40 sentences: Natural Stories' shape
STORIES_LIKE = Design(readers=1, stories=10, sentences=400, words=(8, 14), missing=0.0, sd_reader=0.0, sd_story=0.5,
                      sd_sentence=1.0, sd_word=1.5, sd_reader_slope=0.0)


def simulate(design: Design, rng: np.random.Generator) -> pd.DataFrame:
    """One planted data set: a row per observed reader x word, columns ``subject``, ``group`` (the story, or the
    sentence when there are no stories: the cluster of the coefficients' errors), ``unit`` (the sentence), ``word``,
    ``x`` and ``rt`` (the value)."""
    sizes = rng.integers(design.words[0], design.words[1] + 1, design.sentences)
    sentence = np.repeat(np.arange(design.sentences), sizes)
    story = (sentence * design.stories) // design.sentences
    n_words = len(sentence)
    x = (rng.standard_normal(design.sentences) * design.sd_x_sentence)[sentence] + rng.standard_normal(n_words) * design.sd_x_word
    item = ((rng.standard_normal(design.stories) * design.sd_story)[story] + (rng.standard_normal(design.sentences)
            * design.sd_sentence)[sentence] + rng.standard_normal(n_words) * design.sd_word)
    reader = rng.standard_normal(design.readers) * design.sd_reader
    reader_slope = rng.standard_normal(design.readers) * design.sd_reader_slope
    value = (design.mean + (design.slope + reader_slope[:, None]) * x[None] + reader[:, None] + item[None]
             + rng.standard_normal((design.readers, n_words)) * design.sd_noise)
    seen = rng.random((design.readers, n_words)) >= design.missing
    r, w = np.nonzero(seen)
    groups = story + design.sentences if design.stories > 1 else sentence  # labels of one kind (numbers): fast to factorise
    return pd.DataFrame({"subject": r, "group": groups[w], "unit": sentence[w], "word": w, "x": x[w], "rt": value[r, w]})


def readers_only_ci(values: np.ndarray, readers: np.ndarray, n_bootstrap: int, seed: int) -> tuple[float, float]:
    """The interval the reading regression reported before: whole readers resampled, the texts held fixed."""
    codes = pd.factorize(np.asarray(readers), sort=True)[0]
    sums, counts = np.bincount(codes, weights=values), np.bincount(codes).astype(float)
    draws = draw_units(len(sums), n_bootstrap, seed)
    return percentile_ci(sums[draws].sum(1) / counts[draws].sum(1))


def units_only_ci(values: np.ndarray, units: np.ndarray, n_bootstrap: int, seed: int) -> tuple[float, float]:
    """Sentences resampled, the stories that hold them ignored."""
    return readers_only_ci(values, units, n_bootstrap, seed)


def mean_coverage(design: Design, replicates: int, n_bootstrap: int = 400, seed: int = 0) -> dict:
    """Fraction of replicates whose 95% interval of the pooled mean holds ``design.mean``: the crossed bootstrap
    (readers x sentences; sentences inside stories where there are stories) beside readers alone (several readers)
    or sentences alone (stories), and the intervals' median widths."""
    rng = np.random.default_rng(seed)
    naive_name = "readers only" if design.readers > 1 else "sentences only"
    hits, widths = {"crossed": [], naive_name: []}, {"crossed": [], naive_name: []}
    for rep in range(replicates):
        frame = simulate(design, rng)
        values, readers, units = frame["rt"].to_numpy(), frame["subject"].to_numpy(), frame["unit"].to_numpy()
        nest = frame["group"].to_numpy() if design.stories > 1 else None
        crossed = crossed_bootstrap(values, readers, units, n_bootstrap, seed=rep, groups=nest)
        naive = readers_only_ci(values, readers, n_bootstrap, rep) if design.readers > 1 else units_only_ci(values, units, n_bootstrap, rep)
        for name, (low, high) in (("crossed", (crossed["ci_low"], crossed["ci_high"])), (naive_name, naive)):
            hits[name].append(low <= design.mean <= high)
            widths[name].append(high - low)
    return {name: {"coverage": float(np.mean(hits[name])), "median_width": float(np.median(widths[name]))} for name in hits}


def slope_coverage(design: Design, replicates: int, mixed: bool, seed: int = 0) -> dict:
    """Fraction of replicates whose 95% Wald interval of the slope of ``x`` holds ``design.slope``: two-way
    cluster-robust errors (readers, groups) with t(fewest clusters - 1), as ``reading_regression`` reports, beside
    errors clustered by reader alone and the fit's model-based errors (MixedLM: a random intercept per reader, what
    the reading regression reported before; OLS: independent observations)."""
    from scipy.stats import norm, t

    rng = np.random.default_rng(seed)
    names = ("two-way cluster-robust", "readers-clustered", "model-based")
    hits, widths = {name: [] for name in names}, {name: [] for name in names}
    for _ in range(replicates):
        frame = simulate(design, rng)
        fit = fit_regression(frame, ["x"], mixed)
        two_way, fewest = fit.cluster_bse(frame, ["subject", "group"] if design.readers > 1 else ["group"])
        readers, n_readers = fit.cluster_bse(frame, ["subject"])
        for name, se, critical in (("two-way cluster-robust", two_way[1], t.ppf(0.975, fewest - 1)),
                                   ("readers-clustered", readers[1], t.ppf(0.975, n_readers - 1)),
                                   ("model-based", fit.bse[1], norm.ppf(0.975))):
            hits[name].append(abs(fit.params[1] - design.slope) <= critical * se)
            widths[name].append(2 * critical * se)
    return {name: {"coverage": float(np.mean(hits[name])), "median_width": float(np.median(widths[name]))} for name in names}


def smaller(design: Design, **changes) -> Design:
    """The design with some fields changed (a faster one for the test)."""
    return replace(design, **changes)
