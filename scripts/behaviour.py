"""Rule behaviour: surprisal vs reading times, with exclusions, CIs and ceilings, as tidy rows."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.behaviour.scoring import behaviour_score_file

    behaviour_score_file(
        sm.input.surprisal,
        sm.input.dataset,
        sm.output[0],
        model=sm.wildcards.model,
        dataset=sm.wildcards.dataset,
        options=sm.params.options,
    )


run_rule(snakemake, step)
