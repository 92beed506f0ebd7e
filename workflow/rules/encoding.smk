# Brain alignment: a noise ceiling per dataset, an encoding model per layer, then the layer profile, the best
# layer and a nested (leak-free) layer choice, ceiling-normalised.


rule compute_ceiling:
    input:
        dataset="results/datasets/{dataset}",
    output:
        "results/ceilings/{dataset}.json",
    params:
        options=ceiling_options,
    log:
        "logs/compute_ceiling/{dataset}.log",
    benchmark:
        "results/benchmarks/compute_ceiling/{dataset}.tsv"
    threads: 1
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/compute_ceiling.py"


rule fit_encoding:
    input:
        shard="results/activations/{model}/{dataset}.h5",
        dataset="results/datasets/{dataset}",
    output:
        "results/encoding/{model}/{dataset}/{layer}.json",
    params:
        options=dataset_encoding_options,
    log:
        "logs/fit_encoding/{model}/{dataset}/{layer}.log",
    benchmark:
        "results/benchmarks/fit_encoding/{model}/{dataset}/{layer}.tsv"
    threads: 1
    group:
        "encoding"
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/fit_encoding.py"


rule score:
    input:
        layers=layer_results,
        ceiling="results/ceilings/{dataset}.json",
    output:
        "results/scores/{model}/{dataset}.csv",
    params:
        layer_names=layer_names_param,
        options=dataset_encoding_options,
    log:
        "logs/score/{model}/{dataset}.log",
    threads: 1
    group:
        "encoding"
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/score.py"
