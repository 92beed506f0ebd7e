# Configuration checks and the helper functions the rules use (no rules in this file).

import sys

from brainalign import options as brainalign_options
from brainalign import resources as brainalign_resources
from brainalign.behaviour.surprisal import surprisal_reading
from brainalign.config import dataset_specs, load_and_check, model_specs
from brainalign.errors import BrainalignError
from brainalign.plugins import load_plugins
from brainalign.runner import export_package_path

export_package_path()  # jobs in per-rule conda environments (--sdm conda) import the same package


def _load_workflow_config():
    """Validate the config and check that every model's weights are installed, before any job is planned."""
    from brainalign.datasets import ADAPTERS
    from brainalign.models.session import check_model_available

    try:
        load_plugins(config.get("plugins"))  # before the check: plugins register sources, protocols, adapters
        # a relative local_dir is looked up as the fetch job looks it up: the working directory, then the Snakefile's folder
        load_and_check(config, known_adapters=ADAPTERS, base_dir=workflow.basedir)
        for spec in model_specs(config).values():
            check_model_available(spec)
    except BrainalignError as error:
        sys.exit(f"brainalign: {error}")


_load_workflow_config()

# where this config's outputs and logs go (results_dir: runs of different configs side by side)
RESULTS = config["results_dir"].rstrip("/")
LOGS = "logs" if RESULTS == "results" else f"{RESULTS}/logs"


def results_path(path):
    """``path`` inside this config's results folder (results_dir)."""
    return f"{RESULTS}/{path}"


def log_path(path):
    """``path`` inside this config's log folder."""
    return f"{LOGS}/{path}"

MODELS = model_specs(config)
DATASETS = dataset_specs(config)
SEED = config["seed"]


wildcard_constraints:
    model="|".join(MODELS) if MODELS else "NONE",
    dataset="|".join(DATASETS) if DATASETS else "NONE",
    part="[0-9]+",


def dataset_kind(name):
    """sentence | timeseries | reading, from the dataset's adapter (known before anything is fetched)."""
    from brainalign.datasets import get_adapter

    return get_adapter(DATASETS[name]["adapter"]).KIND


BRAIN_DATASETS = [d for d in DATASETS if dataset_kind(d) in ("sentence", "timeseries")]
READING_DATASETS = [d for d in DATASETS if dataset_kind(d) == "reading"]
# models with a surprisal reading: decoders, and encoder-decoders with t5_mode: paper (brainalign.behaviour.surprisal.surprisal_reading)
SURPRISAL_MODELS = [m for m, spec in MODELS.items() if surprisal_reading(spec)]


def model_dir(name):
    return f"resources/models/{name}"


def prepare_model_inputs(wildcards):
    """The prepared folder of the model this one is built from, as its source says (ModelSource.base_model in
    brainalign/models/registry.py): an untrained control's architecture_of, delta weights' delta_of."""
    from brainalign.models.registry import get_source

    spec = MODELS[wildcards.model]
    base = get_source(spec["source"]).base_model(spec)
    return {"base": model_dir(base)} if base else {}


def model_spec(wildcards):
    return MODELS[wildcards.model]


def dataset_spec(wildcards):
    return DATASETS[wildcards.dataset]


def layer_parts(dataset):
    """How many jobs share one model x dataset's layers (encoding.layer_parts, per dataset overridable)."""
    return int(brainalign_options.dataset_encoding_options(config, dataset).get("layer_parts", 1))


def encoding_parts(wildcards):
    return layer_parts(wildcards.dataset)


def part_folders(model, dataset):
    return [f"{RESULTS}/encoding/{model}/{dataset}/part{part}" for part in range(layer_parts(dataset))]


def model_part_folders(wildcards):
    """Every encoding part folder of one model, all brain datasets (the input of its score job)."""
    return [folder for dataset in BRAIN_DATASETS for folder in part_folders(wildcards.model, dataset)]


def score_plan(wildcards):
    """Per brain dataset, what the model's score job reads: its part folders and encoding options."""
    return {dataset: {"parts": part_folders(wildcards.model, dataset),
                      "options": brainalign_options.dataset_encoding_options(config, dataset)}
            for dataset in BRAIN_DATASETS}


def fit_encoding_options(wildcards):
    """The encoding options a layer's result records: how the jobs are split is not one of them."""
    options = dict(dataset_encoding_options(wildcards))
    options.pop("layer_parts", None)
    return options


def score_files():
    return [f"{RESULTS}/scores/{m}/{d}.csv" for m in MODELS for d in BRAIN_DATASETS]


def behaviour_files():
    return [f"{RESULTS}/behaviour/{m}/{d}.csv" for m in SURPRISAL_MODELS for d in READING_DATASETS] + lm_score_files()


# language-model benchmarks (KIND language: SyntaxGym, Wikitext): read by causal LMs as Brain-Score's HuggingfaceSubject
LANGUAGE_DATASETS = [d for d in DATASETS if dataset_kind(d) == "language"]
LM_MODELS = [m for m, spec in MODELS.items() if spec["kind"] == "decoder"]


def lm_score_files():
    return [f"{RESULTS}/lm_scores/{m}/{d}.csv" for m in LM_MODELS for d in LANGUAGE_DATASETS]


def all_outputs():
    return [
        results_path("analysis/scores.csv"),
        results_path("analysis/instruction_effect.csv"),
        results_path("figures"),
        results_path("summary.html"),
    ]


# Every job gets its stage's complete options: each schema default filled in (brainalign/options.py reads them
# from the schema, the one place they are written), the global seed, and the model's or dataset's overrides.
def stage_options(stage, **extra):
    """A stage's options: the config block with every schema default, the global seed, then ``extra``."""
    return brainalign_options.stage_options(config, stage, **extra)


def dataset_encoding_options(wildcards):
    """Encoding options for the job's dataset: the top-level block with the dataset's overrides."""
    return brainalign_options.dataset_encoding_options(config, wildcards.dataset)


def ceiling_options(wildcards):
    return brainalign_options.ceiling_options(config, wildcards.dataset)


def extraction_options(wildcards):
    return brainalign_options.extraction_options(config, wildcards.model)


def behaviour_options(wildcards):
    return brainalign_options.behaviour_options(config, wildcards.model)


# Resources of the model jobs: the arithmetic lives (tested) in brainalign/resources.py.
def model_gpus(wildcards, attempt):
    """GPUs for a model's jobs: its `gpus` entry, else 1, on every attempt (ignored locally unless --resources gpu=N)."""
    return brainalign_resources.model_gpus(MODELS[wildcards.model], attempt)


def model_mem_mb(wildcards, attempt):
    """Memory for loading a model (per dtype, times the attempt; a retry reserves the float32 reload)."""
    return brainalign_resources.model_mem_mb(MODELS[wildcards.model], attempt)


def model_runtime(wildcards, attempt):
    """Minutes for a model's GPU job: grows with size (33B models get hours) and datasets, doubled on each retry."""
    return brainalign_resources.model_runtime_min(MODELS[wildcards.model], attempt, len(BRAIN_DATASETS) + len(READING_DATASETS))


# prepare_model downloads: on the submit host (compute nodes often have no internet), or, with
# `cluster: {download_partition: NAME}`, a small job on that partition
PREPARE_LOCALLY = brainalign_resources.download_partition(config) is None
PREPARE_PARTITION = {} if PREPARE_LOCALLY else {"slurm_partition": brainalign_resources.download_partition(config)}


def model_priority(wildcards):
    """The largest models' jobs first (the run ends soon after its longest job instead of with it)."""
    return brainalign_resources.model_priority(MODELS, wildcards.model)


PREPARE_PRIORITY = brainalign_resources.prepare_priority(MODELS)


def prepare_mem_mb(wildcards):
    return brainalign_resources.prepare_mem_mb(MODELS[wildcards.model])


def prepare_runtime(wildcards):
    return brainalign_resources.prepare_runtime_min(MODELS[wildcards.model])
