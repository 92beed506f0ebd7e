# Behavioural alignment: the correlation of per-word surprisal (rule run_model, for each model with a surprisal reading:
# decoders; T5 with t5_mode: paper, read as the paper did: brainalign.behaviour) with reading times (default and
# brainscore-2023 rows).


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
