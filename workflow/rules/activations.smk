# The model job: one per model, the model loaded once. Activations (every layer for every stimulus, one HDF5 shard
# per brain dataset) and per-word surprisal (one table per reading dataset; a model with no surprisal reading gets
# a table that says why). brainalign/model_job.py says why one job, and how a failed job resumes.


rule run_model:
    input:
        model="resources/models/{model}",
        brain=expand(results_path("datasets/{dataset}"), dataset=BRAIN_DATASETS),
        reading=expand(results_path("datasets/{dataset}"), dataset=READING_DATASETS),
    output:
        shards=expand(results_path("activations/{{model}}/{dataset}.h5"), dataset=BRAIN_DATASETS),
        surprisal=expand(results_path("surprisal/{{model}}/{dataset}.tsv"), dataset=READING_DATASETS),
        summaries=expand(results_path("surprisal/{{model}}/{dataset}.json"), dataset=READING_DATASETS),
    params:
        spec=model_spec,
        extraction=extraction_options,
        behaviour=behaviour_options,
    log:
        log_path("run_model/{model}.log"),
    benchmark:
        results_path("benchmarks/run_model/{model}.tsv")
    threads: config["extraction"]["threads"]
    priority: model_priority  # model jobs head the critical path: before the encoding jobs, the largest first
    resources:
        gpu=model_gpus,
        mem_mb=model_mem_mb,
        runtime=model_runtime,
    conda:
        "../../envs/models.yaml"
    script:
        "../../scripts/run_model.py"
