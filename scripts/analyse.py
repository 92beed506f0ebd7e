"""Rule analyse: the instruction-tuning pair effect and the model-property correlations (same code as `brainalign analyse`)."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702
from pathlib import Path

from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.stats import analyse

    out = Path(sm.output.effect).parent
    analyse(sm.input.headline, sm.input.models, out, label=sm.params.label, subset=sm.params.subset,
            seed=sm.params.seed, figures=False)
    log.info("wrote %s and %s", sm.output.effect, sm.output.correlations)


run_rule(snakemake, step)
