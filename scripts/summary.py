"""Rule summary: one self-contained HTML page: findings first (pair effects), headline figure, caveats the run
detected (its logs included), figures, models, and the full tidy table collapsed; names config, commit, versions."""
from pathlib import Path

from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.study.summary_page import write_summary_html

    write_summary_html(
        tidy_csv=sm.input.tidy,
        headline_csv=sm.input.headline,
        models_csv=sm.input.models,
        effect_csv=sm.input.effect,
        correlations_csv=sm.input.correlations,
        figures_dir=sm.input.figures,
        out_path=sm.output[0],
        label=sm.params.label,
        config_files=list(sm.params.config_files),
        logs_dir=sm.params.logs_dir,
        results_dir=Path(sm.input.tidy).parents[1],  # <results_dir>/analysis/scores.csv
    )


run_rule(snakemake, step)
