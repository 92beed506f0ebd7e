"""The paper in miniature: the study of ``config/paper.yaml`` run end to end, offline, in minutes.

Everything the real run needs from the internet is replaced by a small local stand-in, and nothing else is:

* **Datasets**: synthetic raw files in each dataset's *real* raw format, served over HTTP from 127.0.0.1 so the
  project's own fetch code downloads them (``base_url``) and the real adapters prepare them:
  Pereira 2018 and Blank 2014 as Brain-Score NetCDF assemblies written by Brain-Score's own ``write_netcdf``
  (committed in ``tests/miniature/data/``, made by ``tests/miniature/make_assemblies.py``), Wehbe 2014 as the CMU
  ``subject_N.mat`` files + the BLS ROI file, Futrell 2018 as Brain-Score's ``Futrell2018`` NetCDF assembly (the
  paper config's adapter ``futrell2018_assembly``; also ``all_stories.tok`` + ``processed_RTs.tsv`` generated here
  for the ``futrell2018`` adapter), and Brain-Score's ``Fedorenko2016.language`` and ``Tuckute2024.language``
  assemblies (not in the paper config; served for their adapters' tests).
* **Models**: each of the config's models is a tiny random-weight model of the same transformers class with a
  small tokenizer of the same class (T5 v1.1 gated-gelu / LLaMA / GPT-2, and Gemma if a config lists it),
  weights seeded by the model's name. They are served by a minimal Hugging Face Hub stand-in (``HF_ENDPOINT``
  on 127.0.0.1) under their real ``hf_id`` and ``revision``, so the ``hub`` source's real
  ``snapshot_download`` runs unchanged; the same files are also laid out as a Hugging Face cache (``HF_HOME``).
* **Config**: :func:`make_miniature_config` derives the config from the paper's and changes only what must
  change (:data:`CHANGES`, documented in docs/miniature.md).

The planted signal: every text unit has a *marker count*, the number of words from :data:`MARKERS` it contains
(a deterministic feature of the text that any model which represents its input words carries). Some neuroids of
every fMRI dataset respond to it (linearly, plus noise); the others are pure noise. Reading times depend on word
length, marker words and unigram surprisal. ``planted.json`` in the fixtures lists which neuroids carry signal.

Run ``python -m tests.support.miniature OUT_DIR`` (from the repository root) to build everything into OUT_DIR and
print the commands to run.

Modules, one concept each: :mod:`.corpus` (sentence generator, planted feature, seeds), :mod:`.designs` (the four
fixture designs), :mod:`.raw_files` (their files in the real raw formats), :mod:`.tiny_models` (tiny models and
tokenizers), :mod:`.hub_cache` (Hugging Face cache layout), :mod:`.server` (loopback HTTP server: datasets + Hub
stand-in), :mod:`.config` (the derived config), :mod:`.build` (everything into one folder), :mod:`.cli` (the command
line), :mod:`.paths` (repository files it reads). This package re-exports their public names.
"""

from __future__ import annotations

from tests.support.miniature.build import build_miniature, build_models, configure, snakemake_command
from tests.support.miniature.config import (
    CHANGES,
    FLOAT32,
    change_pattern,
    config_differences,
    load_paper_config,
    make_miniature_config,
    write_config,
)
from tests.support.miniature.corpus import (
    ADJECTIVES,
    MARKERS,
    NOUNS,
    OPENERS,
    PREPOSITIONS,
    SEED,
    VERBS,
    make_sentence,
    marker_count,
    seeded_rng,
    unigram_surprisal,
    zscore,
)
from tests.support.miniature.designs import (
    BLANK_FROIS,
    BLANK_PLANTED_FROIS,
    BLANK_STORIES,
    BLANK_SUBJECTS,
    FUTRELL_READERS,
    FUTRELL_SENTENCES,
    FUTRELL_STORIES,
    NOISE,
    PEREIRA_CATEGORIES,
    PEREIRA_PASSAGES,
    PEREIRA_PLANTED,
    PEREIRA_SUBJECTS,
    PEREIRA_VOXELS,
    WEHBE_HRF,
    WEHBE_LEAD_TRS,
    WEHBE_ROI,
    WEHBE_RUNS,
    WEHBE_SUBJECTS,
    WEHBE_TRS_PER_RUN,
    WEHBE_VOXELS,
    WEHBE_WORD_TRS,
    all_texts,
    blank_design,
    brainscore_sentence_numbers,
    fedorenko_design,
    futrell_assembly_design,
    futrell_design,
    pereira_design,
    tuckute_assembly_design,
    wehbe_design,
)
from tests.support.miniature.hub_cache import COMMIT_HEX, add_to_hub_cache, repo_folder, resolve_revision
from tests.support.miniature.paths import FIXTURES, PAPER_CONFIG, REPO_ROOT
from tests.support.miniature.raw_files import (
    ALL_STORIES_TOK_SIZE,
    ASSEMBLY_FIXTURES,
    RAW_FOLDERS,
    dataset_checksums,
    pad_to_size,
    write_futrell,
    write_raw_files,
    write_wehbe,
)
from tests.support.miniature.server import MiniatureServer, client_environment
from tests.support.miniature.tiny_models import (
    HIDDEN,
    INIT_STD,
    MODEL_CLASSES,
    T5_EXTRA_IDS,
    architecture_for,
    build_tokenizer,
    model_seed,
    save_tiny_model,
)

__all__ = [
    "ADJECTIVES", "ALL_STORIES_TOK_SIZE", "BLANK_FROIS", "BLANK_PLANTED_FROIS", "BLANK_STORIES", "BLANK_SUBJECTS",
    "CHANGES", "COMMIT_HEX", "FIXTURES", "FLOAT32", "FUTRELL_READERS", "FUTRELL_SENTENCES", "FUTRELL_STORIES", "HIDDEN",
    "INIT_STD", "MARKERS", "MODEL_CLASSES", "NOISE", "NOUNS", "OPENERS", "PAPER_CONFIG", "PEREIRA_CATEGORIES",
    "PEREIRA_PASSAGES", "PEREIRA_PLANTED", "PEREIRA_SUBJECTS", "PEREIRA_VOXELS", "PREPOSITIONS", "RAW_FOLDERS",
    "REPO_ROOT", "SEED", "T5_EXTRA_IDS", "VERBS", "WEHBE_HRF", "WEHBE_LEAD_TRS", "WEHBE_ROI", "WEHBE_RUNS",
    "WEHBE_SUBJECTS", "WEHBE_TRS_PER_RUN", "WEHBE_VOXELS", "WEHBE_WORD_TRS", "MiniatureServer", "add_to_hub_cache",
    "all_texts", "architecture_for", "blank_design", "build_miniature", "build_models", "build_tokenizer",
    "change_pattern", "client_environment", "config_differences", "configure", "dataset_checksums", "futrell_design",
    "load_paper_config", "make_miniature_config", "make_sentence", "marker_count", "model_seed", "pad_to_size",
    "pereira_design", "repo_folder", "resolve_revision", "save_tiny_model", "seeded_rng", "snakemake_command",
    "unigram_surprisal", "wehbe_design", "write_config", "write_futrell", "write_raw_files", "write_wehbe", "zscore",
    "ASSEMBLY_FIXTURES", "brainscore_sentence_numbers", "fedorenko_design", "futrell_assembly_design",
    "tuckute_assembly_design",
]
