# Activations: every layer of a model for every stimulus of a dataset, in one HDF5 shard.


rule extract_activations:
    input:
        model="resources/models/{model}",
        dataset="results/datasets/{dataset}",
    output:
        shard="results/activations/{model}/{dataset}.h5",
    params:
        spec=model_spec,
        options=extraction_options,
    log:
        "logs/extract_activations/{model}/{dataset}.log",
    benchmark:
        "results/benchmarks/extract_activations/{model}/{dataset}.tsv"
    threads: config["extraction"]["threads"]
    resources:
        gpu=model_gpus,
        mem_mb=model_mem_mb,
        runtime=model_runtime,
    conda:
        "../../envs/models.yaml"
    script:
        "../../scripts/extract_activations.py"
