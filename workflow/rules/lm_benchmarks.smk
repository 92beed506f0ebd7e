# Brain-Score Language's language-model benchmarks (datasets of KIND language: SyntaxGym, Wikitext): a causal LM's
# read-out as Brain-Score's HuggingfaceSubject gives it (brainalign.behaviour.brainscore_readout), then accuracy rows
# (brainalign.behaviour.lm_benchmarks) that collect_scores gathers with the behaviour rows.


rule lm_readout:
    input:
        model="resources/models/{model}",
        dataset=results_path("datasets/{dataset}"),
    output:
        readout=results_path("lm_readout/{model}/{dataset}.tsv"),
        summary=results_path("lm_readout/{model}/{dataset}.json"),
    params:
        spec=model_spec,
        extraction=extraction_options,
    log:
        log_path("lm_readout/{model}/{dataset}.log"),
    benchmark:
        results_path("benchmarks/lm_readout/{model}/{dataset}.tsv")
    threads: config["extraction"]["threads"]
    resources:
        gpu=model_gpus,
        mem_mb=model_mem_mb,
        runtime=model_runtime,
    conda:
        "../../envs/models.yaml"
    script:
        "../../scripts/lm_readout.py"


rule lm_score:
    input:
        readout=results_path("lm_readout/{model}/{dataset}.tsv"),
        dataset=results_path("datasets/{dataset}"),
    output:
        results_path("lm_scores/{model}/{dataset}.csv"),
    log:
        log_path("lm_score/{model}/{dataset}.log"),
    threads: 1
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/lm_score.py"
