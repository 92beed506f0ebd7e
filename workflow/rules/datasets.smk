# Datasets: fetch (download with checksums, or copy a shipped local copy) -> prepare (one common format).

# downloads run on the submit host: cluster compute nodes often have no internet access
localrules:
    fetch_dataset,


rule fetch_dataset:
    output:
        directory("results/raw/{dataset}"),
    params:
        spec=dataset_spec,
    log:
        "logs/fetch_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/fetch_dataset/{dataset}.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../../scripts/fetch_dataset.py"


rule prepare_dataset:
    input:
        raw="results/raw/{dataset}",
    output:
        directory("results/datasets/{dataset}"),
    params:
        spec=dataset_spec,
    log:
        "logs/prepare_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../../scripts/prepare_dataset.py"
