"""Rule run_model: a model's activations for every brain dataset and surprisal for every reading dataset, loaded once."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.extraction.model_job import run_model_job

    brain = list(zip(sm.input.brain, sm.output.shards, strict=True))
    reading = list(zip(sm.input.reading, sm.output.surprisal, strict=True))
    run_model_job(sm.params.spec, sm.input.model, brain, reading, sm.params.extraction, sm.params.behaviour)


run_rule(snakemake, step)
