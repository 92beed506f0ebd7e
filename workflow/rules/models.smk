# Models: make every model a local transformers folder once (GGUF conversion, package copy, Hub download, a delta
# repo added to its base model, or the config of an untrained control), with a provenance file that the reports show.
#
# prepare_model needs the network (Hub downloads) and little memory (downloads, links and the delta sum stream; a
# GGUF conversion holds a small model twice): it runs on the submit host (a local rule), since cluster compute
# nodes often have no internet. Where the submit host must not do this work, `cluster: {download_partition: NAME}`
# in the config makes it a small job on that partition (brainalign/resources.py: prepare_resources).


rule prepare_model:
    input:
        unpack(prepare_model_inputs),
    output:
        directory("resources/models/{model}"),
    params:
        spec=model_spec,
    log:
        log_path("prepare_model/{model}.log"),
    benchmark:
        results_path("benchmarks/prepare_model/{model}.tsv")
    localrule: PREPARE_LOCALLY
    priority: PREPARE_PRIORITY  # before any model job: an untrained control waits for its base model's folder
    threads: 1
    resources:
        mem_mb=prepare_mem_mb,
        runtime=prepare_runtime,
        **PREPARE_PARTITION,
    conda:
        "../../envs/models.yaml"
    script:
        "../../scripts/prepare_model.py"
