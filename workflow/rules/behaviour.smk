# Behavioural alignment: per-word surprisal from each model with a surprisal reading (decoders; T5 with t5_mode: paper, read
# as the paper did: brainalign.behaviour), then its correlation with reading times (default and brainscore-2023 rows).


rule surprisal:
    input:
        model="resources/models/{model}",
        dataset="results/datasets/{dataset}",
    output:
        tsv="results/surprisal/{model}/{dataset}.tsv",
        summary="results/surprisal/{model}/{dataset}.json",
    params:
        spec=model_spec,
        options=behaviour_options,
    log:
        "logs/surprisal/{model}/{dataset}.log",
    benchmark:
        "results/benchmarks/surprisal/{model}/{dataset}.tsv"
    threads: config["extraction"]["threads"]
    resources:
        gpu=model_gpus,
        mem_mb=model_mem_mb,
        runtime=model_runtime,
    conda:
        "../../envs/models.yaml"
    script:
        "../../scripts/surprisal.py"


rule behaviour:
    input:
        surprisal="results/surprisal/{model}/{dataset}.tsv",
        dataset="results/datasets/{dataset}",
    output:
        "results/behaviour/{model}/{dataset}.csv",
    params:
        options=stage_options("behaviour"),
    log:
        "logs/behaviour/{model}/{dataset}.log",
    threads: 1
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/behaviour.py"
