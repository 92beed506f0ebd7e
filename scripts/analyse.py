"""Rule analyse: the instruction-tuning pair effect and the model-property correlations (same code as `brainalign analyse`)."""
from pathlib import Path

from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.options import AnalysisOptions
    from brainalign.study.analysis import analyse

    out = Path(sm.output.effect).parent
    options = AnalysisOptions.from_dict(sm.params.options, seed=sm.params.seed)
    analyse(sm.input.headline, sm.input.models, out, options, label=sm.params.label, figures=False)
    log.info("wrote %s and %s", sm.output.effect, sm.output.correlations)


run_rule(snakemake, step)
