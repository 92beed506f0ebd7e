"""Rule figures: every figure of the study (PNG + PDF) and the data each one plots."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.plots import make_figures

    paths = make_figures(sm.input.tidy, sm.input.models, sm.output[0], label=sm.params.label,
                         headline_options=dict(sm.params.headline))
    log.info("wrote %d figures", len(paths))


run_rule(snakemake, step)
