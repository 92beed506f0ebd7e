"""Rule collect_scores: the study-wide tidy table, the headline table and the models table."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.study.collect import collect_scores

    collect_scores(
        list(sm.input.scores) + list(sm.input.behaviour),
        {"models": sm.params.models_config},
        sm.output.tidy,
        sm.output.headline,
        sm.output.models,
        properties_csv=sm.params.properties or None,
        headline_options=sm.params.headline,
    )


run_rule(snakemake, step)
