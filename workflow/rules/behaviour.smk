# Behavioural alignment: the correlation of per-word surprisal (rule run_model, for each model with a surprisal reading:
# decoders; T5 with t5_mode: paper, read as the paper did: brainalign.behaviour.surprisal) with reading times (default,
# brainscore-2023 and reading-regression rows: brainalign.behaviour.scoring).


rule behaviour:
    input:
        surprisal=results_path("surprisal/{model}/{dataset}.tsv"),
        dataset=results_path("datasets/{dataset}"),
    output:
        results_path("behaviour/{model}/{dataset}.csv"),
    params:
        options=stage_options("behaviour"),
    log:
        log_path("behaviour/{model}/{dataset}.log"),
    benchmark:
        results_path("benchmarks/behaviour/{model}/{dataset}.tsv")
    threads: 1
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/behaviour.py"
