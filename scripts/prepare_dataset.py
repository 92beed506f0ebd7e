"""Rule prepare_dataset: convert raw files to the common format (stimuli.tsv, data.h5, meta.json)."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.datasets import prepare_dataset

    prepare_dataset(sm.params.spec, sm.input.raw, sm.output[0])


run_rule(snakemake, step)
