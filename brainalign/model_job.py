"""The model job (rule ``run_model``): everything a model reads, with the model loaded once.

A model's work is one job, not one per dataset: its activations for every brain dataset
(:func:`brainalign.activations.extract_to_shard`) and its surprisal for every reading dataset
(:func:`brainalign.behaviour.surprisal_file`). Loading is the dominant cost of a job wherever the data are small
(seconds for torch, transformers and the weights on a laptop; minutes for a 33B model on a cluster's shared file
system), so per-dataset jobs paid it once per dataset and queued once per dataset for a GPU.

The price is the granularity of a re-run: a new dataset in the config re-runs the model's whole job. Within a
job nothing is lost: each dataset's extraction checkpoint is kept until every output is written, so a job that
fails on its third dataset (Snakemake then deletes all of its outputs) resumes the first two from their
checkpoints instead of recomputing them.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence

from brainalign.checkpoint import checkpoint_dir_for
from brainalign.errors import BrainalignError

log = logging.getLogger(__name__)


def run_model_job(spec: dict, model_dir, brain: Sequence[tuple[str, str]], reading: Sequence[tuple[str, str]],
                  extraction_options: dict | None = None, behaviour_options: dict | None = None) -> None:
    """Write ``brain``'s shards and ``reading``'s surprisal tables, both lists of (prepared dataset folder, output
    path), from one :class:`~brainalign.models.ModelSession`."""
    from brainalign.activations import extract_to_shard
    from brainalign.behaviour import surprisal_file
    from brainalign.models import ModelSession

    extraction_options = dict(extraction_options or {})
    if not brain and not reading:
        raise BrainalignError(f"model {spec['name']}: the config lists no dataset for it to read")
    session = ModelSession(spec, model_dir, extraction_options.get("device"), extraction_options.get("matmul_dtype", "float32"))
    for dataset_dir, shard in brain:
        extract_to_shard(spec, session, dataset_dir, shard, extraction_options, keep_checkpoint=True)
    for dataset_dir, table in reading:
        surprisal_file(spec, session, dataset_dir, table, behaviour_options)
    session.release()
    for _, shard in brain:
        shutil.rmtree(checkpoint_dir_for(shard), ignore_errors=True)
    log.info("model %s: %d shard(s), %d surprisal table(s), loaded %d time(s)", spec["name"], len(brain), len(reading),
             session.n_loads)
