"""Rule figures: every registered figure of the study (PNG + PDF), the data each one plots, and captions.json."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.study.figures import make_figures

    paths = make_figures(sm.input.tidy, sm.input.models, sm.output[0], label=sm.params.label,
                         headline_options=sm.params.headline)
    log.info("wrote %d figures", len(paths))


run_rule(snakemake, step)
