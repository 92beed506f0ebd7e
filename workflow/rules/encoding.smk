# Brain alignment: a noise ceiling per dataset; one job per model x dataset fits an encoding model to every layer
# (encoding.layer_parts: N spreads one model's layers over N jobs); then one job per model writes, for each dataset,
# the layer profile, the best layer and a nested (leak-free) layer choice, ceiling-normalised.


rule compute_ceiling:
    input:
        dataset=results_path("datasets/{dataset}"),
    output:
        results_path("ceilings/{dataset}.json"),
    params:
        options=ceiling_options,
    log:
        log_path("compute_ceiling/{dataset}.log"),
    benchmark:
        results_path("benchmarks/compute_ceiling/{dataset}.tsv")
    threads: 1
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/compute_ceiling.py"


rule fit_encoding:
    input:
        shard=results_path("activations/{model}/{dataset}.h5"),
        dataset=results_path("datasets/{dataset}"),
    output:
        directory(results_path("encoding/{model}/{dataset}/part{part}")),
    params:
        options=fit_encoding_options,
        n_parts=encoding_parts,
    log:
        log_path("fit_encoding/{model}/{dataset}/part{part}.log"),
    benchmark:
        results_path("benchmarks/fit_encoding/{model}/{dataset}/part{part}.tsv")
    threads: 1
    group:
        "encoding"
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/fit_encoding.py"


rule score:
    input:
        layers=model_part_folders,
        shards=expand(results_path("activations/{{model}}/{dataset}.h5"), dataset=BRAIN_DATASETS),
        ceilings=expand(results_path("ceilings/{dataset}.json"), dataset=BRAIN_DATASETS),
    output:
        scores=expand(results_path("scores/{{model}}/{dataset}.csv"), dataset=BRAIN_DATASETS),
    params:
        datasets=BRAIN_DATASETS,
        plan=score_plan,
    log:
        log_path("score/{model}.log"),
    benchmark:
        results_path("benchmarks/score/{model}.tsv")
    threads: 1
    group:
        "encoding"
    conda:
        "../../envs/stats.yaml"
    script:
        "../../scripts/score.py"
