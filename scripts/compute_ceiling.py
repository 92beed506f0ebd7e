"""Rule compute_ceiling: the dataset's noise ceiling from per-subject data (or a note when there is none)."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.encoding.ceilings import compute_ceiling_file

    compute_ceiling_file(sm.input.dataset, sm.output[0], sm.params.options)


run_rule(snakemake, step)
