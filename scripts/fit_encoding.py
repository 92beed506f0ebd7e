"""Rule fit_encoding: cross-validated encoding model, RSA and CKA for one layer."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.encoding import fit_layer_file

    fit_layer_file(sm.input.shard, sm.wildcards.layer, sm.input.dataset, sm.output[0], sm.params.options)


run_rule(snakemake, step)
