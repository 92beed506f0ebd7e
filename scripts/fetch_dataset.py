"""Rule fetch_dataset: download a dataset's files (or copy the shipped local copy), checksums verified."""
from brainalign.runner import run_rule


def step(sm, log):
    from pathlib import Path

    from brainalign.datasets import fetch_dataset

    # a relative local_dir that is not below the working directory (snakemake --directory elsewhere) is read from
    # the repository, the folder holding the Snakefile (Snakemake sets __file__ to this script's real path)
    fetch_dataset(sm.params.spec, sm.output[0], base_dir=Path(__file__).resolve().parents[1])


run_rule(snakemake, step)
