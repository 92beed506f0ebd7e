"""Rule prepare_dataset: convert raw files to the common format (stimuli.tsv, data.h5, meta.json)."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.datasets import prepare_dataset

    prepare_dataset(sm.params.spec, sm.input.raw, sm.output[0])


run_rule(snakemake, step)
