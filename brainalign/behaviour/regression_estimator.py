"""The reading regression's estimator, for the ``reading-regression`` protocol
(:mod:`brainalign.behaviour.reading_regression`): the fit (:class:`Fit`, :func:`fit_regression`), its held-out
log-likelihoods and its cluster-robust standard errors (:func:`cluster_robust_cov`).

Estimator (``fit_regression``, statsmodels, maximum likelihood so that log-likelihoods of models with different
fixed effects compare): a linear mixed model with a random intercept per reader (``MixedLM``) for per-reader data,
ordinary least squares (``OLS``) on means. Held-out log-likelihood of an observation: Gaussian density of its
reading time around the training fit's prediction (fixed effects + the reader's predicted intercept), with the
training fit's residual variance.

Coefficient errors (:meth:`Fit.cluster_bse`): cluster-robust, one- or two-way (:func:`cluster_robust_cov`), on the
scores of the fit's GLS form (:meth:`Fit.gls_form`); which clusters the protocol uses, and why: its docstring.

statsmodels is imported inside :func:`fit_regression`: it is heavy, and :mod:`brainalign.study.sections` imports
the protocol for its lag check alone.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from brainalign.errors import BrainalignError


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
