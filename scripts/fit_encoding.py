"""Rule fit_encoding: cross-validated encoding models, RSA and CKA for every layer (or one part of the layers)."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.encoding.layer_fits import fit_layers_file

    fit_layers_file(sm.input.shard, sm.input.dataset, sm.output[0], sm.params.options,
                    part=int(sm.wildcards.part), n_parts=int(sm.params.n_parts))


run_rule(snakemake, step)
