"""The model job (rule run_model): one load per model for every dataset it reads, the same outputs as reading each
dataset on its own, and a failed job that resumes the datasets it finished from their checkpoints."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

import brainalign.extraction.activations as activations
import brainalign.models.session as session
from brainalign.behaviour.surprisal import surprisal_file
from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.errors import BrainalignError
from brainalign.extraction.activations import extract_to_shard
from brainalign.extraction.checkpoint import checkpoint_dir_for
from brainalign.extraction.model_job import run_model_job

OPTIONS = {"batch_size": 2, "device": "cpu", "checkpoint_every": 1}
BEHAVIOUR = {"max_context_tokens": 32, "min_context_tokens": 8}


def _dataset(folder, sentences, name):
    stimuli = pd.DataFrame({"stimulus_id": [f"{name}{i}" for i in range(len(sentences))], "text": sentences,
                            "group": ["story"] * len(sentences), "position": range(len(sentences))})
    responses = np.random.default_rng(0).standard_normal((1, len(sentences), 1)).astype(np.float32)
    meta = {"name": name, "kind": "sentence", "description": "", "source": "", "licence": "", "provenance": "",
            "context": "sentence", "group_averaged": True}
    write_prepared(PreparedDataset(stimuli, responses, ["average"], ["lang"], meta=meta), folder)
    return folder


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("model_job")
    first = _dataset(root / "first", ["The cat sat.", "A dog ran home today.", "Birds sing.", "It rained all day long."], "first")
    second = _dataset(root / "second", ["She read a book.", "They left early.", "Snow fell on the hills at night."], "second")
    return first, second


@pytest.fixture(scope="module")
def spec(tiny_gpt2_dir):
    return {"name": "tiny", "source": "local", "path": str(tiny_gpt2_dir), "kind": "decoder", "prepend_text": "<|endoftext|>"}


def _layers(path):
    with h5py.File(path) as handle:
        return {name: handle["layers"][name][()] for name in handle["layers"]}


class _CountingLoads:
    def __init__(self, monkeypatch):
        self.calls, self.original = 0, session.load_model
        monkeypatch.setattr(session, "load_model", self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.original(*args, **kwargs)


def test_one_load_for_every_dataset_and_the_same_outputs_as_one_job_per_dataset(spec, tiny_gpt2_dir, datasets, tmp_path, monkeypatch):
    first, second = datasets
    # reference: each dataset read by its own call, the model loaded by each
    for dataset in datasets:
        extract_to_shard(spec, tiny_gpt2_dir, dataset, tmp_path / "alone" / f"{dataset.name}.h5", OPTIONS, progress=False)
    surprisal_file(spec, tiny_gpt2_dir, second, tmp_path / "alone" / "second.tsv", BEHAVIOUR, progress=False)
    loads = _CountingLoads(monkeypatch)
    out = tmp_path / "job"
    run_model_job(spec, tiny_gpt2_dir, [(first, out / "first.h5"), (second, out / "second.h5")], [(second, out / "second.tsv")],
                  OPTIONS, BEHAVIOUR, progress=False)
    assert loads.calls == 1
    for name in ("first", "second"):
        alone, joint = _layers(tmp_path / "alone" / f"{name}.h5"), _layers(out / f"{name}.h5")
        assert alone.keys() == joint.keys() and all(np.array_equal(alone[k], joint[k]) for k in alone)
        assert not checkpoint_dir_for(out / f"{name}.h5").exists()  # removed once every output is written
    assert (out / "second.tsv").read_bytes() == (tmp_path / "alone" / "second.tsv").read_bytes()


def test_a_failed_job_resumes_finished_datasets_from_their_checkpoints(spec, tiny_gpt2_dir, datasets, tmp_path, monkeypatch):
    first, second = datasets
    out = tmp_path / "job"
    brain = [(first, out / "first.h5"), (second, out / "second.h5")]
    original = activations.extract_arrays

    def fails_on_second(loaded, spec, stimuli, meta, options, **kwargs):
        if meta["name"] == "second":
            raise RuntimeError("simulated out-of-memory on the second dataset")
        return original(loaded, spec, stimuli, meta, options, **kwargs)

    monkeypatch.setattr(activations, "extract_arrays", fails_on_second)
    with pytest.raises(RuntimeError):
        run_model_job(spec, tiny_gpt2_dir, brain, [], OPTIONS, progress=False)
    assert checkpoint_dir_for(out / "first.h5").exists()  # kept: the job did not finish
    (out / "first.h5").unlink()  # Snakemake deletes a failed job's outputs
    monkeypatch.setattr(activations, "extract_arrays", original)
    forwards = []
    original_forward = activations._forward
    monkeypatch.setattr(activations, "_forward", lambda *a, **k: forwards.append(1) or original_forward(*a, **k))
    run_model_job(spec, tiny_gpt2_dir, brain, [], OPTIONS, progress=False)
    # only the second dataset's 2 batches (3 stimuli, batch size 2) are computed: the first's 2 come from its checkpoint
    assert len(forwards) == 2, len(forwards)
    fresh = tmp_path / "fresh.h5"
    extract_to_shard(spec, tiny_gpt2_dir, first, fresh, OPTIONS, progress=False)
    resumed, expected = _layers(out / "first.h5"), _layers(fresh)
    assert all(np.array_equal(resumed[k], expected[k]) for k in expected)


def test_a_model_without_a_surprisal_reading_writes_why_without_loading_for_it(tiny_gpt2_dir, datasets, tmp_path, monkeypatch):
    encoder_like = {"name": "t5ish", "source": "local", "path": str(tiny_gpt2_dir), "kind": "encoder-decoder", "t5_mode": "principled"}
    loads = _CountingLoads(monkeypatch)
    run_model_job(encoder_like, tiny_gpt2_dir, [], [(datasets[1], tmp_path / "second.tsv")], OPTIONS, BEHAVIOUR, progress=False)
    assert loads.calls == 0
    table = pd.read_csv(tmp_path / "second.tsv", sep="\t")
    assert table["surprisal_bits"].isna().all()
    assert '"applicable": false' in (tmp_path / "second.json").read_text()


def test_a_model_with_nothing_to_read_is_an_error(spec, tiny_gpt2_dir):
    with pytest.raises(BrainalignError, match="no dataset"):
        run_model_job(spec, tiny_gpt2_dir, [], [], OPTIONS, progress=False)
