"""The study's statistics: the effect of a model change over pairs (instruction-tuning in the paper; training in
the offline default) and the correlation of alignment with model properties.

Input is any table with ``model,dataset,score`` (one row per model x dataset) and a models table (``model,
family, instruction_tuned, vanilla_base_model, n_params`` + numeric properties), so published numbers can be
analysed with the same code.
  * Pair effect: relative change (derived - base) / |base| per pair, per dataset and on the per-model average over
    datasets; mean over pairs; a two-sided paired sign-flip permutation test (exact over all 2^n flips when
    n <= 16, else ``n_permutations`` random flips) and a percentile bootstrap CI of the mean.
  * Property correlations: Pearson r (p-values Benjamini-Hochberg corrected over all tests, as the paper) and
    Spearman rho across the selected models (instruction-tuned by default, as the paper).

Pure statistics on tables in memory: no file I/O and no plotting (reading the inputs and writing the results is
``brainalign.analysis``; the tables themselves are ``brainalign.tables``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from brainalign.tables import model_by_dataset, pairs_of

ID_COLUMNS = {"model", "family", "instruction_tuned", "vanilla_base_model", "trained", "kind", "source", "model_id",
              "revision", "quantization", "n_layers"}


def sign_flip_test(differences, n_permutations: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value of the mean paired difference under random sign flips (exact for n <= 16)."""
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


def bootstrap_mean_ci(values, n_bootstrap: int = 10000, seed: int = 0) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_bootstrap, len(v)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


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


def pair_effect(scores: pd.DataFrame, models: pd.DataFrame, seed: int = 0, n_permutations: int = 10000) -> pd.DataFrame:
    wide = model_by_dataset(scores)
    pairs = [(b, d) for b, d in pairs_of(models) if b in wide.index and d in wide.index]
    rows = []
    for measure in wide.columns:
        changes = []
        for base, derived in pairs:
            b, d = wide.at[base, measure], wide.at[derived, measure]
            if np.isfinite(b) and np.isfinite(d) and b != 0:
                changes.append((d - b) / abs(b))
        changes = np.asarray(changes)
        low, high = bootstrap_mean_ci(changes, seed=seed)
        rows.append({"measure": measure, "mean_relative_change": float(changes.mean()) if len(changes) else np.nan,
                     "ci_low": low, "ci_high": high, "p_perm": sign_flip_test(changes, n_permutations, seed),
                     "n_pairs": int(len(changes)), "n_improved": int((changes > 0).sum())})
    return pd.DataFrame(rows, columns=["measure", "mean_relative_change", "ci_low", "ci_high", "p_perm", "n_pairs", "n_improved"])


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


def property_correlations(scores: pd.DataFrame, models: pd.DataFrame, subset: str = "instruction_tuned") -> pd.DataFrame:
    from scipy.stats import pearsonr, spearmanr

    wide = model_by_dataset(scores)
    chosen = models if subset == "all" else models[pd.to_numeric(models["instruction_tuned"], errors="coerce") == 1]
    props = property_columns(chosen).set_index("model")
    rows = []
    for measure in wide.columns:
        for prop in props.columns:
            joined = pd.concat([wide[measure], props[prop]], axis=1, join="inner").dropna()
            n = len(joined)
            r = p = rho = np.nan
            if n >= 3 and joined.iloc[:, 0].nunique() > 1 and joined.iloc[:, 1].nunique() > 1:
                result = pearsonr(joined.iloc[:, 0], joined.iloc[:, 1])
                r, p = float(result.statistic), float(result.pvalue)
                rho = float(spearmanr(joined.iloc[:, 0], joined.iloc[:, 1]).statistic)
            rows.append({"measure": measure, "property": prop, "r": r, "p": p, "spearman_rho": rho, "n": n})
    table = pd.DataFrame(rows, columns=["measure", "property", "r", "p", "p_fdr", "spearman_rho", "n"])
    table["p_fdr"] = benjamini_hochberg(table["p"].to_numpy())
    return table
