# The study: one tidy table of every score, the pair effect and property correlations, figures, a summary page.

# the figure registry (matplotlib is imported only when a figure is drawn): the report's captions come from it
from brainalign.study.figures import figure_captions


localrules:
    collect_scores,
    analyse,
    figures,
    summary,


rule collect_scores:
    input:
        scores=score_files(),
        behaviour=behaviour_files(),
    output:
        tidy=report(
            results_path("analysis/scores.csv"),
            category="Scores",
            caption="../report/scores.rst",
        ),
        headline=results_path("analysis/headline_scores.csv"),
        models=results_path("analysis/models.csv"),
    params:
        models_config=config["models"],
        properties=config.get("model_properties", ""),
        headline=config["analysis"].get("headline", {}),
    log:
        log_path("collect_scores.log"),
    benchmark:
        results_path("benchmarks/collect_scores.tsv")
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/collect_scores.py"


rule analyse:
    input:
        headline=results_path("analysis/headline_scores.csv"),
        models=results_path("analysis/models.csv"),
    output:
        effect=report(
            results_path("analysis/instruction_effect.csv"),
            category="Statistics",
            caption="../report/instruction_effect.rst",
        ),
        correlations=report(
            results_path("analysis/property_correlations.csv"),
            category="Statistics",
            caption="../report/property_correlations.rst",
        ),
    params:
        label=config["comparison_label"],
        seed=SEED,
        options=config["analysis"],
    log:
        log_path("analyse.log"),
    benchmark:
        results_path("benchmarks/analyse.tsv")
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/analyse.py"


rule figures:
    input:
        tidy=results_path("analysis/scores.csv"),
        models=results_path("analysis/models.csv"),
    output:
        report(
            directory(results_path("figures")),
            patterns=["{name}.png"],
            category="Figures",
            caption="../report/figures.rst",
        ),
    params:
        label=config["comparison_label"],
        headline=config["analysis"].get("headline", {}),
        # each figure's caption in the report (workflow/report/figures.rst); a changed caption redraws the figures
        captions=figure_captions(),
    log:
        log_path("figures.log"),
    benchmark:
        results_path("benchmarks/figures.tsv")
    conda:
        "../../envs/plots.yaml"
    script:
        "../../scripts/figures.py"


rule summary:
    input:
        tidy=results_path("analysis/scores.csv"),
        headline=results_path("analysis/headline_scores.csv"),
        models=results_path("analysis/models.csv"),
        effect=results_path("analysis/instruction_effect.csv"),
        correlations=results_path("analysis/property_correlations.csv"),
        figures=results_path("figures"),
    output:
        report(results_path("summary.html"), category="Summary", caption="../report/summary.rst"),
    params:
        label=config["comparison_label"],
        # named on the page: which config the numbers came from (the Snakefile's default, then any --configfile)
        config_files=[str(f) for f in workflow.configfiles],
        logs_dir=LOGS,
    log:
        log_path("summary.log"),
    benchmark:
        results_path("benchmarks/summary.tsv")
    conda:
        "../../envs/plots.yaml"
    script:
        "../../scripts/summary.py"
