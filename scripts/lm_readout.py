"""Rule lm_readout: a causal LM's read-out of a language-model benchmark (Brain-Score's HuggingfaceSubject)."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.behaviour.lm_benchmarks import readout_file
    from brainalign.models.session import ModelSession
    from brainalign.options import ExtractionOptions

    options = ExtractionOptions.from_dict(sm.params.extraction)
    session = ModelSession(sm.params.spec, sm.input.model, options.device, options.matmul_dtype)
    readout_file(sm.params.spec, session, sm.input.dataset, sm.output.readout)


run_rule(snakemake, step)
