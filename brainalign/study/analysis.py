"""The study's analysis step (rule analyse and ``brainalign analyse``): read a headline table (``model,dataset,
score[,kind]``, one row per model x dataset) and a models table, run the statistics of ``brainalign.study.statistics``
as the config's ``analysis`` block says (read as ``AnalysisOptions``: the schema's defaults for what it leaves out),
and write ``instruction_effect.csv`` and ``property_correlations.csv`` (and, optionally, the pair and property
figures).

The ``analysis`` block (brainalign/schemas/config.schema.yaml) holds the study's choices, so the paper's analysis
and the default one are the same code:
  * ``brain_datasets``: which datasets are brain alignment and how experiments merge (Pereira 2018 = the mean of
    its 243- and 384-sentence experiments); their mean is ``brain_average``; behaviour datasets are analysed on
    their own, never averaged with brain data.
  * ``families``: ``headline`` (the families whose pairs form the headline, e.g. T5 and LLaMA: the paper's 17
    pairs) and ``apart`` (families reported as groups of their own, e.g. the paper's GPT-2 appendix). Every row of
    the outputs names its ``group``: ``headline``, or the apart family. Without ``families`` all pairs form one
    group, ``all``.
  * ``subset``: the models of each group whose properties are correlated (instruction-tuned ones, as the paper).
  * ``n_permutations``: random sign flips of the permutation test when a measure has more than 16 pairs.
  * ``headline``: which tidy rows are the headline scores (used by collect_scores; see ``headline.Headline``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from brainalign.io import write_table
from brainalign.options import AnalysisOptions
from brainalign.study.comparisons import analysis_measures, pairs_of
from brainalign.study.statistics import pair_effect, property_correlations
from brainalign.study.table_checks import InvalidEntry, check_headline, check_models, check_scored_models, read_table

log = logging.getLogger("brainalign.study.analysis")

# The figures `brainalign analyse` draws: the ones that need only headline scores and the models table.
ANALYSIS_FIGURES = ("pair_effect", "alignment_vs_size", "alignment_vs_mmlu")


def read_inputs(scores_csv, models_csv, drop_invalid: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The headline table and the models table, checked: anything the analysis cannot use (a non-finite or
    unparsable score, a model the models table lacks, a base model that is not in it, a property that is not a
    number) is a one-line error naming the file, line, model and field (``brainalign.study.table_checks``). With
    ``drop_invalid`` it is left out instead, with a warning naming it and every pair it takes out of a measure.
    A pair whose model has no score at all is always named in a warning."""
    dropped: list[InvalidEntry] = []
    models = check_models(read_table(models_csv), models_csv, drop_invalid=drop_invalid, dropped=dropped)
    scores = check_headline(read_table(scores_csv), scores_csv, drop_invalid=drop_invalid, dropped=dropped)
    scores = check_scored_models(scores, models, scores_csv, models_csv, drop_invalid=drop_invalid, dropped=dropped)
    pairs = pairs_of(models)
    for entry in dropped:
        log.warning("%s: left out (--drop-invalid)%s", entry.message, _consequence(entry, pairs))
    scored = set(scores["model"].astype(str))
    for base, derived in pairs:
        unscored = [model for model in (base, derived) if model not in scored]
        if unscored:
            log.warning("pair %s -> %s is left out: %s has no score in %s", base, derived, " and ".join(unscored), scores_csv)
    return scores, models


def _consequence(entry: InvalidEntry, pairs: list[tuple[str, str]]) -> str:
    """What leaving ``entry`` out takes from the analysis, for its warning: the pairs it drops from a measure."""
    if entry.field == "vanilla_base_model":
        return f"; pair {entry.value} -> {entry.model} left out"
    if entry.field in ("instruction_tuned", "trained"):
        return f"; {entry.model} counts as {'not instruction-tuned' if entry.field == 'instruction_tuned' else 'trained'}"
    if entry.field not in ("score", "model"):
        return f"; {entry.model} has no {entry.field} in the property correlations"
    if entry.field == "model":  # a model the models table lacks is in no pair
        return ""
    affected = [f"{base} -> {derived}" for base, derived in pairs if entry.model in (base, derived)]
    return (f"; pairs without a {entry.dataset} score (left out of it and of any average over it): {', '.join(affected)}"
            if affected else f"; {entry.model} is in no pair")


def pair_groups(models: pd.DataFrame, families: dict | None) -> dict[str, list[tuple[str, str]]]:
    """The (base, derived) pairs of each reported group: ``headline`` and one group per family reported apart
    (``families: {headline: [...], apart: [...]}``), or ``all`` without a families choice. A pair's family is its
    derived model's."""
    pairs = pairs_of(models)
    if not families:
        return {"all": pairs}
    family_of = dict(zip(models["model"], models["family"].astype(str))) if "family" in models else {}
    apart = list(families.get("apart") or [])
    headline = families.get("headline")
    unknown = sorted({*apart, *(headline or [])} - set(family_of.values()))
    if unknown:
        log.warning("analysis.families names families no model has: %s", ", ".join(unknown))
    groups = {"headline": [(b, d) for b, d in pairs if family_of.get(d) not in apart
                           and (headline is None or family_of.get(d) in headline)]}
    for family in apart:
        groups[family] = [(b, d) for b, d in pairs if family_of.get(d) == family]
    return groups


def analyse(scores_csv, models_csv, out_dir, options: AnalysisOptions | Mapping | None = None, label: str | None = None,
            figures: bool = True, drop_invalid: bool = False) -> dict:
    """Write instruction_effect.csv and property_correlations.csv (and figures) into ``out_dir``.

    ``options``: the config's ``analysis`` block with the run's ``seed`` (an ``AnalysisOptions`` or a mapping;
    what it leaves out takes the schema's defaults); ``label`` is the config's name for what the pairs compare;
    ``drop_invalid``: leave out, with a warning, what :func:`read_inputs` would otherwise stop at."""
    options = AnalysisOptions.from_dict(options) if not isinstance(options, AnalysisOptions) else options
    scores, models = read_inputs(scores_csv, models_csv, drop_invalid)
    measures, kinds = analysis_measures(scores, options.brain_datasets)
    effects, correlations = [], []
    for group, pairs in pair_groups(models, options.families).items():
        members = {model for pair in pairs for model in pair}
        effect = pair_effect(measures, pairs, kinds, seed=options.seed, n_permutations=options.n_permutations)
        effects.append(effect.assign(group=group))
        in_group = models[models["model"].isin(members)] if options.families else models
        correlations.append(property_correlations(measures, in_group, options.subset, kinds).assign(group=group))
    effect = pd.concat(effects, ignore_index=True)
    effect = effect[["group", *[c for c in effect.columns if c != "group"]]]
    from brainalign.study.headline import headline_selection

    selection = headline_selection(scores)  # the headline table's layer choice (best | nested), "" where it does not say
    if selection:  # so every brain measure's row says which layer choice it compares
        effect["selection"] = effect["kind"].map(lambda kind: selection if kind == "brain" else "")
    correlation_table = pd.concat(correlations, ignore_index=True)
    correlation_table = correlation_table[["group", *[c for c in correlation_table.columns if c != "group"]]]
    out_dir = Path(out_dir)
    write_table(effect, out_dir / "instruction_effect.csv")
    write_table(correlation_table, out_dir / "property_correlations.csv")
    paths = []
    if figures:
        from brainalign.study.figures import FigureInputs, draw_figures

        study = FigureInputs(tidy=pd.DataFrame(), scores=scores, models=models, label=label)
        paths += draw_figures(study, out_dir / "figures", names=ANALYSIS_FIGURES)
    for row in effect[effect["measure"] == "brain_average"].itertuples():
        log.info("%s: brain average %+.1f%% relative (%+.4f absolute) over %d pairs, p = %.3g%s", row.group,
                 100 * row.mean_relative_change, row.mean_absolute_change, row.n_pairs, row.p_perm,
                 f" (brain scores: {selection} layer choice)" if selection else "")
    return {"effect": effect, "correlations": correlation_table, "figures": paths}
