"""Rule lm_score: accuracy rows (per SyntaxGym suite and their mean; Wikitext) from a model's read-out."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.behaviour.lm_benchmarks import lm_score_file

    lm_score_file(sm.input.readout, sm.input.dataset, sm.output[0], model=sm.wildcards.model, dataset=sm.wildcards.dataset)


run_rule(snakemake, step)
