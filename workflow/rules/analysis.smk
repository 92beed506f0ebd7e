# The study: one tidy table of every score, the pair effect and property correlations, figures, a summary page.


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
            "results/analysis/scores.csv",
            category="Scores",
            caption="../report/scores.rst",
        ),
        headline="results/analysis/headline_scores.csv",
        models="results/analysis/models.csv",
    params:
        models_config=config["models"],
        properties=config.get("model_properties", ""),
        headline=config["analysis"].get("headline", {}),
    log:
        "logs/collect_scores.log",
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/collect_scores.py"


rule analyse:
    input:
        headline="results/analysis/headline_scores.csv",
        models="results/analysis/models.csv",
    output:
        effect=report(
            "results/analysis/instruction_effect.csv",
            category="Statistics",
            caption="../report/instruction_effect.rst",
        ),
        correlations=report(
            "results/analysis/property_correlations.csv",
            category="Statistics",
            caption="../report/property_correlations.rst",
        ),
    params:
        label=config["comparison_label"],
        seed=SEED,
        options=config["analysis"],
    log:
        "logs/analyse.log",
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/analyse.py"


rule figures:
    input:
        tidy="results/analysis/scores.csv",
        models="results/analysis/models.csv",
    output:
        report(
            directory("results/figures"),
            patterns=["{name}.png"],
            category="Figures",
            caption="../report/figures.rst",
        ),
    params:
        label=config["comparison_label"],
        headline=config["analysis"].get("headline", {}),
    log:
        "logs/figures.log",
    conda:
        "../../envs/plots.yaml"
    script:
        "../../scripts/figures.py"


rule summary:
    input:
        tidy="results/analysis/scores.csv",
        headline="results/analysis/headline_scores.csv",
        models="results/analysis/models.csv",
        effect="results/analysis/instruction_effect.csv",
        correlations="results/analysis/property_correlations.csv",
        figures="results/figures",
    output:
        report("results/summary.html", category="Summary", caption="../report/summary.rst"),
    params:
        label=config["comparison_label"],
        # named on the page: which config the numbers came from (the Snakefile's default, then any --configfile)
        config_files=[str(f) for f in workflow.configfiles],
    log:
        "logs/summary.log",
    conda:
        "../../envs/plots.yaml"
    script:
        "../../scripts/summary.py"
