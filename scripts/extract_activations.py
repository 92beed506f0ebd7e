"""Rule extract_activations: every layer for every stimulus, one HDF5 shard (resumable)."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.activations import extract_to_shard

    extract_to_shard(sm.params.spec, sm.input.model, sm.input.dataset, sm.output.shard, sm.params.options)


run_rule(snakemake, step)
