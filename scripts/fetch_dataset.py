"""Rule fetch_dataset: download a dataset's files (or copy the shipped local copy), checksums verified."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702  (works in any conda env)
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.datasets import fetch_dataset

    fetch_dataset(sm.params.spec, sm.output[0])


run_rule(snakemake, step)
