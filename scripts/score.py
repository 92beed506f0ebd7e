"""Rule score: layer profile, best layer and nested layer choice, ceiling-normalised, as tidy rows."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.encoding import score_layers_file
    from brainalign.shards import read_layer_names

    score_layers_file(
        list(sm.input.layers),
        sm.input.ceiling,
        sm.output[0],
        model=sm.wildcards.model,
        dataset=sm.wildcards.dataset,
        layer_names=read_layer_names(sm.input.shard),
        options=sm.params.options,
    )


run_rule(snakemake, step)
