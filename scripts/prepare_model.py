"""Rule prepare_model: make the model a local transformers folder with a provenance file, once."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.models.session import prepare_model

    prepare_model(sm.params.spec, sm.output[0], base_dir=sm.input.get("base"))


run_rule(snakemake, step)
