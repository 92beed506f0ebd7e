# Datasets: fetch (download with checksums, or copy a shipped local copy) -> prepare (one common format).

# downloads run on the submit host: cluster compute nodes often have no internet access
localrules:
    fetch_dataset,


rule fetch_dataset:
    output:
        directory(results_path("raw/{dataset}")),
    params:
        spec=dataset_spec,
    log:
        log_path("fetch_dataset/{dataset}.log"),
    benchmark:
        results_path("benchmarks/fetch_dataset/{dataset}.tsv")
    conda:
        "../../envs/data.yaml"
    script:
        "../../scripts/fetch_dataset.py"


rule prepare_dataset:
    input:
        raw=results_path("raw/{dataset}"),
    output:
        directory(results_path("datasets/{dataset}")),
    params:
        spec=dataset_spec,
    log:
        log_path("prepare_dataset/{dataset}.log"),
    benchmark:
        results_path("benchmarks/prepare_dataset/{dataset}.tsv")
    conda:
        "../../envs/data.yaml"
    script:
        "../../scripts/prepare_dataset.py"
