"""Rule summary: one self-contained HTML page with the headline numbers, models (source, quantization), figures."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.study import write_summary_html

    write_summary_html(
        tidy_csv=sm.input.tidy,
        headline_csv=sm.input.headline,
        models_csv=sm.input.models,
        effect_csv=sm.input.effect,
        correlations_csv=sm.input.correlations,
        figures_dir=sm.input.figures,
        out_path=sm.output[0],
        label=sm.params.label,
    )


run_rule(snakemake, step)
