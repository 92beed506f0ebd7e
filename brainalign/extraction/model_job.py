"""The model job (rule ``run_model``): everything a model reads, with the model loaded once.

A model's work is one job, not one per dataset: its activations for every brain dataset
(:func:`brainalign.extraction.activations.extract_to_shard`) and its surprisal for every reading dataset
(:func:`brainalign.behaviour.surprisal.surprisal_file`). Loading is the dominant cost of a job wherever the data are small
(seconds for torch, transformers and the weights on a laptop; minutes for a 33B model on a cluster's shared file
system), so one job per dataset would pay it, and queue for a GPU, once per dataset.

The price is the granularity of a re-run: a new dataset in the config re-runs the model's whole job. Within a
job nothing is lost: each dataset's extraction checkpoint is kept until every output is written, so a job that
fails on its third dataset (Snakemake then deletes all of its outputs) resumes the first two from their
checkpoints instead of recomputing them.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence

from brainalign.behaviour.surprisal import surprisal_file
from brainalign.errors import BrainalignError
from brainalign.extraction.activations import extract_to_shard
from brainalign.extraction.checkpoint import checkpoint_dir_for
from brainalign.models.session import ModelSession
from brainalign.options import BehaviourOptions, ExtractionOptions

log = logging.getLogger(__name__)


def run_model_job(spec: dict, model_dir, brain: Sequence[tuple[str, str]], reading: Sequence[tuple[str, str]],
                  extraction_options: ExtractionOptions | dict | None = None,
                  behaviour_options: BehaviourOptions | dict | None = None, *, progress: bool = True) -> None:
    """Write ``brain``'s shards and ``reading``'s surprisal tables, both lists of (prepared dataset folder, output
    path), from one :class:`~brainalign.models.session.ModelSession` (on the extraction options' device and
    matmul dtype)."""
    extraction_options = ExtractionOptions.from_dict(extraction_options)
    behaviour_options = BehaviourOptions.from_dict(behaviour_options)
    if not brain and not reading:
        raise BrainalignError(f"model {spec['name']}: the config lists no dataset for it to read")
    session = ModelSession(spec, model_dir, extraction_options.device, extraction_options.matmul_dtype)
    for dataset_dir, shard in brain:
        extract_to_shard(spec, session, dataset_dir, shard, extraction_options, keep_checkpoint=True, progress=progress)
    for dataset_dir, table in reading:
        surprisal_file(spec, session, dataset_dir, table, behaviour_options, progress=progress)
    session.release()
    for _, shard in brain:
        shutil.rmtree(checkpoint_dir_for(shard), ignore_errors=True)
    log.info("model %s: %d shard(s), %d surprisal table(s), loaded %d time(s)", spec["name"], len(brain), len(reading),
             session.n_loads)
