"""Rule analyse: the instruction-tuning pair effect and the model-property correlations (same code as `brainalign analyse`)."""
from pathlib import Path

from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.analysis import analyse

    out = Path(sm.output.effect).parent
    analyse(sm.input.headline, sm.input.models, out, label=sm.params.label, seed=sm.params.seed,
            options=dict(sm.params.options), figures=False)
    log.info("wrote %s and %s", sm.output.effect, sm.output.correlations)


run_rule(snakemake, step)
