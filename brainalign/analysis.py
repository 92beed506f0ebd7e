"""The study's analysis step (rule analyse and ``brainalign analyse``): read a headline table (``model,dataset,
score[,kind]``, one row per model x dataset) and a models table, run the statistics of ``brainalign.stats`` as the
config's ``analysis`` block says, and write ``instruction_effect.csv`` and ``property_correlations.csv`` (and,
optionally, the pair and property figures).

The ``analysis`` block (workflow/schemas/config.schema.yaml) holds the study's choices, so the paper's analysis
and the default one are the same code:
  * ``brain_datasets``: which datasets are brain alignment and how experiments merge (Pereira 2018 = the mean of
    its 243- and 384-sentence experiments); their mean is ``brain_average``; behaviour datasets are analysed on
    their own, never averaged with brain data.
  * ``families``: ``headline`` (the families whose pairs form the headline, e.g. T5 and LLaMA: the paper's 17
    pairs) and ``apart`` (families reported as groups of their own, e.g. the paper's GPT-2 appendix). Every row of
    the outputs names its ``group``: ``headline``, or the apart family. Without ``families`` all pairs form one
    group, ``all``.
  * ``subset``: the models of each group whose properties are correlated (instruction-tuned ones, as the paper).
  * ``headline``: which tidy rows are the headline scores (used by collect_scores; see tables.headline_scores).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from brainalign.errors import BrainalignError
from brainalign.io import write_table
from brainalign.stats import pair_effect, property_correlations
from brainalign.tables import analysis_measures, check_headline, check_models, pairs_of

log = logging.getLogger("brainalign.analysis")

DEFAULT_N_PERMUTATIONS = 10000  # config.schema.yaml analysis.n_permutations default


def read_inputs(scores_csv, models_csv) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The headline table and the models table, checked (one-line errors naming the file)."""
    for path in (scores_csv, models_csv):
        if not Path(path).is_file():
            raise BrainalignError(f"{path}: file not found")
    scores = check_headline(pd.read_csv(scores_csv), scores_csv)
    models = check_models(pd.read_csv(models_csv), models_csv)
    return scores, models


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


def analyse(scores_csv, models_csv, out_dir, label: str | None = None, subset: str = "instruction_tuned", seed: int = 0,
            figures: bool = True, n_permutations: int = DEFAULT_N_PERMUTATIONS, options: dict | None = None) -> dict:
    """Write instruction_effect.csv and property_correlations.csv (and figures) into ``out_dir``.

    ``options`` is the config's ``analysis`` block (``brain_datasets``, ``families``; its ``subset`` and
    ``n_permutations`` override the arguments of the same name)."""
    options = dict(options or {})
    subset = options.get("subset", subset)
    n_permutations = int(options.get("n_permutations", n_permutations))
    scores, models = read_inputs(scores_csv, models_csv)
    measures, kinds = analysis_measures(scores, options.get("brain_datasets"))
    effects, correlations = [], []
    for group, pairs in pair_groups(models, options.get("families")).items():
        members = {model for pair in pairs for model in pair}
        effect = pair_effect(measures, pairs, kinds, seed=seed, n_permutations=n_permutations)
        effects.append(effect.assign(group=group))
        in_group = models[models["model"].isin(members)] if options.get("families") else models
        correlations.append(property_correlations(measures, in_group, subset, kinds).assign(group=group))
    effect = pd.concat(effects, ignore_index=True)
    effect = effect[["group", *[c for c in effect.columns if c != "group"]]]
    correlation_table = pd.concat(correlations, ignore_index=True)
    correlation_table = correlation_table[["group", *[c for c in correlation_table.columns if c != "group"]]]
    out_dir = Path(out_dir)
    write_table(effect, out_dir / "instruction_effect.csv")
    write_table(correlation_table, out_dir / "property_correlations.csv")
    paths = []
    if figures:
        from brainalign.plots import pair_slopes, property_scatter  # matplotlib only when figures are asked for

        paths += pair_slopes(scores, models, out_dir / "figures", label)
        paths += property_scatter(scores, models, out_dir / "figures", subset)
    for row in effect[effect["measure"] == "brain_average"].itertuples():
        log.info("%s: brain average %+.1f%% relative (%+.4f absolute) over %d pairs, p = %.3g", row.group,
                 100 * row.mean_relative_change, row.mean_absolute_change, row.n_pairs, row.p_perm)
    return {"effect": effect, "correlations": correlation_table, "figures": paths}
