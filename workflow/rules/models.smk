# Models: make every model a local transformers folder once (GGUF conversion, package copy, Hub download,
# or the config of an untrained control), with a provenance file that the reports show.


rule prepare_model:
    input:
        unpack(prepare_model_inputs),
    output:
        directory("resources/models/{model}"),
    params:
        spec=model_spec,
    log:
        "logs/prepare_model/{model}.log",
    benchmark:
        "results/benchmarks/prepare_model/{model}.tsv"
    threads: 1
    resources:
        mem_mb=model_mem_mb,
    conda:
        "../../envs/models.yaml"
    script:
        "../../scripts/prepare_model.py"
