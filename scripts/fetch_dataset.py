"""Rule fetch_dataset: download a dataset's files (or copy the shipped local copy), checksums verified."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.datasets import fetch_dataset

    fetch_dataset(sm.params.spec, sm.output[0])


run_rule(snakemake, step)
