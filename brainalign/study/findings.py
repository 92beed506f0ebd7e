"""What the comparison found, in words and one table: the summary page's opening sentences (per group of pairs:
on how many brain datasets the derived model scores higher, each measure's change with CI and p) and the pair
effects table. Read from ``instruction_effect.csv`` (``brainalign.study.analysis``) and the models table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from brainalign.study.comparisons import pairs_of, untrained_models
from brainalign.study.headline import selection_words


def _signed(value: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:+.{digits}f}"


def _ci(low: float, high: float, digits: int = 3) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "95% CI not estimable (fewer than 2 pairs)"
    return f"95% CI {low:+.{digits}f} to {high:+.{digits}f}"


def _p(value: float) -> str:
    return "p n/a" if not np.isfinite(value) else f"p = {value:.2g}" if value >= 0.001 else "p < 0.001"


def change_word(models: pd.DataFrame) -> str:
    """What the pairs change, in words: training (every base is an untrained control), instruction-tuning (every
    derived model is flagged instruction-tuned), else 'the change'."""
    pairs = pairs_of(models)
    if not pairs:
        return "the change"
    untrained = untrained_models(models)
    if all(base in untrained for base, _ in pairs):
        return "training"
    tuned = set(models.loc[models.get("instruction_tuned", pd.Series(dtype=str)).astype(str).isin(["1", "1.0", "True", "true"]),
                           "model"]) if "instruction_tuned" in models else set()
    if all(derived in tuned for _, derived in pairs):
        return "instruction-tuning"
    return "the change"


def findings(effect: pd.DataFrame, models: pd.DataFrame, label: str, selection: str = "") -> list[str]:
    """The page's opening sentences (plain text): which layer choice the brain scores are (``selection``: the
    headline table's, ``headline.headline_selection``; nothing where unknown), then per group of pairs, on how many
    brain datasets the derived model scores higher, the brain average's change with CI and p, each behaviour
    measure's; measures no pair scored."""
    word = change_word(models)
    sentences = []
    if selection_words(selection) and "kind" in effect.columns and (effect["kind"] == "brain").any():
        sentences.append(f"Brain scores are each model's {selection_words(selection)}.")
    for group, rows in effect.groupby("group", sort=False):
        prefix = "" if group == "all" else f"[{group}] "
        scored = rows[rows["n_pairs"] > 0]
        brain = scored[(scored["kind"] == "brain") & (scored["measure"] != "brain_average")]
        if len(brain):
            up = int((brain["mean_absolute_change"] > 0).sum())
            verb = "raises" if up > len(brain) / 2 else "lowers" if up < len(brain) / 2 else "changes"
            count = up if verb != "lowers" else len(brain) - up
            sentences.append(f"{prefix}{word[0].upper() + word[1:]} {verb} brain alignment on {count}/{len(brain)} "
                             f"dataset{'s' if len(brain) != 1 else ''} ({label}).")
        for row in scored.itertuples():
            if row.kind == "brain" and row.measure != "brain_average" and len(brain) > 1:
                continue  # the datasets are in the table; the average speaks for them here
            if row.measure == "brain_average" and len(brain) == 1:
                continue  # the average of one dataset is that dataset
            name = "brain average" if row.measure == "brain_average" else row.measure
            sentences.append(
                f"{prefix}{name} ({row.kind}): {_signed(row.mean_absolute_change)} r "
                f"({_ci(row.absolute_ci_low, row.absolute_ci_high)}), {_signed(100 * row.mean_relative_change, 1)}% relative, "
                f"{_p(row.p_perm)} (sign-flip over {row.n_pairs} pair{'s' if row.n_pairs != 1 else ''}, "
                f"{row.n_improved} improved).")
        unscored = rows.loc[rows["n_pairs"] == 0, "measure"].tolist()
        if unscored:
            sentences.append(f"{prefix}No pair has scores for both its models on: {', '.join(unscored)} "
                             "(e.g. encoder-only models give no surprisal).")
    return sentences or ["No model pairs in this configuration: scores only, no comparison."]


def effect_table(effect: pd.DataFrame) -> pd.DataFrame:
    """The pair effects as the page shows them: pairs improved, mean base and derived r, the change with its CI,
    the relative change with its CI, and the sign-flip p-value."""
    rows = []
    for row in effect.itertuples():
        rows.append({"group": row.group, "measure": row.measure, "kind": row.kind, "pairs improved": f"{row.n_improved}/{row.n_pairs}",
                     "base mean r": row.mean_base, "derived mean r": row.mean_derived,
                     "change (r)": _signed(row.mean_absolute_change),
                     "95% CI": "" if not np.isfinite(row.absolute_ci_low) else f"{row.absolute_ci_low:+.3f} to {row.absolute_ci_high:+.3f}",
                     "relative change": "n/a" if not np.isfinite(row.mean_relative_change) else f"{100 * row.mean_relative_change:+.1f}%",
                     "relative 95% CI": "" if not np.isfinite(row.ci_low) else f"{100 * row.ci_low:+.1f}% to {100 * row.ci_high:+.1f}%",
                     "p (sign-flip)": "" if not np.isfinite(row.p_perm) else f"{row.p_perm:.3g}"})
    return pd.DataFrame(rows)
