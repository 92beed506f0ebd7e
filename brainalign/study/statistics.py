"""The study's statistics: the effect of a model change over pairs (instruction-tuning in the paper; training in
the offline default) and the correlation of alignment with model properties.

Input is a measures table, models (index) x measures (columns: the brain datasets, the brain average, the
behaviour datasets; ``brainalign.study.comparisons.analysis_measures`` builds it from any ``model,dataset,score`` table, so
published numbers are analysed with the same code), the (base, derived) pairs and a models table.
  * Pair effect: absolute (derived - base) and relative ((derived - base) / |base|) change per pair and measure;
    mean over pairs with percentile bootstrap CIs; a two-sided paired sign-flip permutation test of the relative
    change (exact over all 2^n flips when n <= 16, else ``n_permutations`` random flips).
  * Property correlations: Pearson r (p-values Benjamini-Hochberg corrected within each measure over the
    properties, the family of the paper's Table 2) and Spearman rho across the selected models (the config's
    ``analysis.subset``: instruction-tuned ones in the paper).

Pure statistics on tables in memory: no file I/O, no plotting and no option defaults (the caller passes the
configured ``n_permutations``, ``subset`` and ``seed``; reading the inputs and writing the results is
``brainalign.study.analysis``; the tables themselves are ``brainalign.study.tables`` and the modules beside it).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from brainalign.bootstrap import draw_units, percentile_ci

ID_COLUMNS = {"model", "family", "instruction_tuned", "vanilla_base_model", "trained", "kind", "source", "model_id",
              "revision", "quantization", "n_layers"}


def sign_flip_test(differences, n_permutations: int, seed: int) -> float:
    """Two-sided p-value of the mean paired difference under random sign flips: exact over all 2^n flips for n <= 16,
    else ``n_permutations`` random flips drawn with ``seed``."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return float("nan")
    observed = abs(d.mean())
    if n <= 16:
        signs = np.array(list(itertools.product([1.0, -1.0], repeat=n)))
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice([1.0, -1.0], size=(n_permutations, n))
    means = np.abs((signs * d).mean(axis=1))
    return float(np.mean(means >= observed - 1e-12))


def bootstrap_mean_ci(values, n_bootstrap: int = 10000, *, seed: int) -> tuple[float, float]:
    """Percentile 95% CI of the mean of ``values`` (NaN dropped) from ``n_bootstrap`` resamples; NaN for fewer than 2."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan"), float("nan")
    means = v[draw_units(len(v), n_bootstrap, seed)].mean(axis=1)  # the pairs, with replacement
    return percentile_ci(means)


def benjamini_hochberg(p_values) -> np.ndarray:
    """BH-FDR adjusted p-values (NaN stays NaN)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if len(ok) == 0:
        return out
    order = ok[np.argsort(p[ok])]
    m = len(ok)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out[order] = np.minimum(adjusted, 1.0)
    return out


EFFECT_COLUMNS = ["measure", "kind", "n_pairs", "n_improved", "mean_base", "mean_derived", "mean_absolute_change",
                  "absolute_ci_low", "absolute_ci_high", "mean_relative_change", "ci_low", "ci_high", "p_perm"]


def pair_effect(measures: pd.DataFrame, pairs: list[tuple[str, str]], kinds: dict | None = None, *, n_permutations: int,
                seed: int) -> pd.DataFrame:
    """Per measure: the change from base to derived model over ``pairs``, absolute (derived - base) and relative
    ((derived - base) / |base|, the paper's), each as a mean over pairs with a bootstrap 95% CI; the sign-flip
    p-value tests the relative change. Pairs where either score is missing (or the base is 0) are left out."""
    kinds = kinds or {}
    rows = []
    for measure in measures.columns:
        base, derived = [], []
        for b, d in pairs:
            if b in measures.index and d in measures.index:
                value_b, value_d = measures.at[b, measure], measures.at[d, measure]
                if np.isfinite(value_b) and np.isfinite(value_d) and value_b != 0:
                    base.append(value_b)
                    derived.append(value_d)
        base, derived = np.asarray(base, dtype=float), np.asarray(derived, dtype=float)
        absolute = derived - base
        relative = absolute / np.abs(base)
        absolute_ci = bootstrap_mean_ci(absolute, seed=seed)
        relative_ci = bootstrap_mean_ci(relative, seed=seed)
        empty = len(base) == 0
        rows.append({"measure": measure, "kind": kinds.get(measure, ""), "n_pairs": int(len(base)),
                     "n_improved": int((absolute > 0).sum()),
                     "mean_base": np.nan if empty else float(base.mean()),
                     "mean_derived": np.nan if empty else float(derived.mean()),
                     "mean_absolute_change": np.nan if empty else float(absolute.mean()),
                     "absolute_ci_low": absolute_ci[0], "absolute_ci_high": absolute_ci[1],
                     "mean_relative_change": np.nan if empty else float(relative.mean()),
                     "ci_low": relative_ci[0], "ci_high": relative_ci[1],
                     "p_perm": sign_flip_test(relative, n_permutations, seed)})
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def property_columns(models: pd.DataFrame) -> pd.DataFrame:
    """Numeric model properties; n_params becomes log10_n_params."""
    props = pd.DataFrame({"model": models["model"]})
    if "n_params" in models:
        props["log10_n_params"] = np.log10(pd.to_numeric(models["n_params"], errors="coerce"))
    for column in models.columns:
        if column in ID_COLUMNS or column == "n_params":
            continue
        values = pd.to_numeric(models[column], errors="coerce")
        if values.notna().any() and pd.api.types.is_numeric_dtype(models[column]):
            props[column] = values
    return props


def property_correlations(measures: pd.DataFrame, models: pd.DataFrame, subset: str, kinds: dict | None = None) -> pd.DataFrame:
    """Pearson r (and Spearman rho) between each measure and each numeric model property across the ``subset`` of
    ``models`` (``instruction_tuned``: the instruction-tuned ones, as the paper; ``all``). p-values are
    Benjamini-Hochberg corrected within each measure, over its properties: the family of tests of the paper's Table 2
    (one alignment measure against every property)."""
    from scipy.stats import pearsonr, spearmanr

    kinds = kinds or {}
    chosen = models if subset == "all" else models[pd.to_numeric(models["instruction_tuned"], errors="coerce") == 1]
    props = property_columns(chosen).set_index("model")
    rows = []
    for measure in measures.columns:
        for prop in props.columns:
            joined = pd.concat([measures[measure], props[prop]], axis=1, join="inner").dropna()
            n = len(joined)
            r = p = rho = np.nan
            if n >= 3 and joined.iloc[:, 0].nunique() > 1 and joined.iloc[:, 1].nunique() > 1:
                result = pearsonr(joined.iloc[:, 0], joined.iloc[:, 1])
                r, p = float(result.statistic), float(result.pvalue)
                rho = float(spearmanr(joined.iloc[:, 0], joined.iloc[:, 1]).statistic)
            rows.append({"measure": measure, "kind": kinds.get(measure, ""), "property": prop, "r": r, "p": p,
                         "spearman_rho": rho, "n": n})
    table = pd.DataFrame(rows, columns=["measure", "kind", "property", "r", "p", "p_fdr", "spearman_rho", "n"])
    for _, rows_of_measure in table.groupby("measure", sort=False):
        table.loc[rows_of_measure.index, "p_fdr"] = benjamini_hochberg(rows_of_measure["p"].to_numpy())
    return table
