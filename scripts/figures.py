"""Rule figures: every figure of the study (PNG + PDF) and the data each one plots."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.plots import make_figures

    paths = make_figures(sm.input.tidy, sm.input.models, sm.output[0], label=sm.params.label)
    log.info("wrote %d figures", len(paths))


run_rule(snakemake, step)
