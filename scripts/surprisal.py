"""Rule surprisal: per-word surprisal (bits) and perplexity of a causal LM on a reading dataset."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.behaviour import surprisal_file

    surprisal_file(sm.params.spec, sm.input.model, sm.input.dataset, sm.output.tsv, sm.params.options)


run_rule(snakemake, step)
