# Configuration checks and the helper functions the rules use (no rules in this file).

import sys

from brainalign import options as brainalign_options
from brainalign.config import dataset_specs, load_and_check, model_specs
from brainalign.errors import BrainalignError
from brainalign.runner import export_package_path

export_package_path()  # jobs in per-rule conda environments (--sdm conda) import the same package


def _load_workflow_config():
    """Validate the config and check that every model's weights are installed, before any job is planned."""
    from brainalign.datasets import ADAPTERS
    from brainalign.models import check_model_available

    try:
        load_and_check(config, known_adapters=ADAPTERS)
        for spec in model_specs(config).values():
            check_model_available(spec)
    except BrainalignError as error:
        sys.exit(f"brainalign: {error}")


_load_workflow_config()

MODELS = model_specs(config)
DATASETS = dataset_specs(config)
SEED = config["seed"]


wildcard_constraints:
    model="|".join(MODELS) if MODELS else "NONE",
    dataset="|".join(DATASETS) if DATASETS else "NONE",
    layer="[^/]+",


def dataset_kind(name):
    """sentence | timeseries | reading, from the dataset's adapter (known before anything is fetched)."""
    from brainalign.datasets import get_adapter

    return get_adapter(DATASETS[name]["adapter"]).KIND


BRAIN_DATASETS = [d for d in DATASETS if dataset_kind(d) in ("sentence", "timeseries")]
READING_DATASETS = [d for d in DATASETS if dataset_kind(d) == "reading"]
SURPRISAL_MODELS = [m for m, spec in MODELS.items() if spec["kind"] == "decoder"]


def model_dir(name):
    return f"resources/models/{name}"


def prepare_model_inputs(wildcards):
    """An untrained control needs the prepared folder of the model whose architecture it copies."""
    spec = MODELS[wildcards.model]
    if spec["source"] == "untrained":
        return {"base": model_dir(spec["architecture_of"])}
    return {}


def model_spec(wildcards):
    return MODELS[wildcards.model]


def dataset_spec(wildcards):
    return DATASETS[wildcards.dataset]


def layer_names(model, dataset):
    """Layers stored in the (checkpointed) activation shard, in model order."""
    from brainalign.shards import read_layer_names

    shard = checkpoints.extract_activations.get(model=model, dataset=dataset).output.shard
    return read_layer_names(shard)


def layer_results(wildcards):
    return [
        f"results/encoding/{wildcards.model}/{wildcards.dataset}/{layer}.json"
        for layer in layer_names(wildcards.model, wildcards.dataset)
    ]


def layer_names_param(wildcards):
    return layer_names(wildcards.model, wildcards.dataset)


def score_files():
    return [f"results/scores/{m}/{d}.csv" for m in MODELS for d in BRAIN_DATASETS]


def behaviour_files():
    return [f"results/behaviour/{m}/{d}.csv" for m in SURPRISAL_MODELS for d in READING_DATASETS]


def all_outputs():
    return [
        "results/analysis/scores.csv",
        "results/analysis/instruction_effect.csv",
        "results/figures",
        "results/summary.html",
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


def model_gpus(wildcards):
    """GPUs for a model's jobs: its `gpus` entry, else 1 (ignored locally unless --resources gpu=N is set)."""
    return MODELS[wildcards.model].get("gpus", 1)


def model_mem_mb(wildcards, attempt):
    """Memory for loading a model: ~2.5 bytes/parameter (fp16 weights + overhead) + 4 GB for activations,
    times the attempt number so a retry after an out-of-memory kill asks for more."""
    n_params = MODELS[wildcards.model].get("n_params") or 1e9
    bytes_per_param = 4.5 if MODELS[wildcards.model].get("dtype", "float32") == "float32" else 2.5
    return int((n_params * bytes_per_param / 1e6 + 4000) * attempt)


def model_runtime(wildcards, attempt):
    """Minutes for a model's GPU job: grows with size (33B models get hours), doubled on each retry."""
    n_params = MODELS[wildcards.model].get("n_params") or 1e9
    return int((30 + 10 * n_params / 1e9) * attempt)
