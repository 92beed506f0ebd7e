"""Resumable extraction: a run killed midway resumes from its checkpoint, never leaves a finished-looking corrupt
shard, and writes the same bytes as an uninterrupted run; foreign or broken checkpoints are not trusted."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

import brainalign.extraction.activations as activations
from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.extraction.activations import extract_arrays, extract_to_shard
from brainalign.extraction.checkpoint import checkpoint_dir_for

REPO_ROOT = Path(__file__).resolve().parents[1]
WORDS = "the quick brown fox jumps over the lazy dog she didn't say million naive cafe-goers quoted words and numbers".split()
N_STIMULI, BATCH = 20, 2
N_BATCHES = N_STIMULI // BATCH
OPTIONS = {"batch_size": BATCH, "device": "cpu", "checkpoint_every": 1}


def _sentences(n):
    """Sentences of different lengths (so the length sort reorders them), deterministic."""
    rng = np.random.default_rng(1)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 12)))).capitalize() + "." for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_spec(tiny_gpt2_dir):
    return {"name": "tiny", "source": "local", "path": str(tiny_gpt2_dir), "kind": "decoder", "prepend_text": "<|endoftext|>"}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    stimuli = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(N_STIMULI)], "text": _sentences(N_STIMULI),
                            "group": [f"s{i}" for i in range(N_STIMULI)], "position": range(N_STIMULI)})
    responses = np.random.default_rng(0).standard_normal((1, N_STIMULI, 1)).astype(np.float32)
    meta = {"name": "toy", "kind": "sentence", "description": "", "source": "", "licence": "", "provenance": "",
            "context": "sentence", "group_averaged": True}
    folder = tmp_path_factory.mktemp("resume") / "ds"
    write_prepared(PreparedDataset(stimuli, responses, ["average"], ["lang"], meta=meta), folder)
    return folder


@pytest.fixture(scope="module")
def reference(tiny_spec, tiny_gpt2_dir, dataset_dir, tmp_path_factory):
    """An uninterrupted run (checkpointing on, as by default): its layers and what it leaves behind."""
    out = tmp_path_factory.mktemp("reference") / "shard.h5"
    extract_to_shard(tiny_spec, tiny_gpt2_dir, dataset_dir, out, OPTIONS, progress=False)
    return out, _layers(out), sorted(p.name for p in out.parent.iterdir())


def _layers(path) -> dict:
    with h5py.File(path) as handle:
        return {name: handle["layers"][name][:] for name in json.loads(handle.attrs["layer_names"])}


def _assert_same_bytes(a: dict, b: dict):
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape
        assert a[name].tobytes() == b[name].tobytes(), name


class _CountingForward:
    """Wraps activations._forward: counts passes and, optionally, fails after ``fail_after`` of them."""

    def __init__(self, monkeypatch, fail_after=None):
        self.calls, self.fail_after, self.original = 0, fail_after, activations._forward
        monkeypatch.setattr(activations, "_forward", self)

    def __call__(self, *args, **kwargs):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls += 1
        return self.original(*args, **kwargs)


def _parts(out) -> list[Path]:
    return sorted(checkpoint_dir_for(out).glob("*/part-*.npz"))


# the child runs the real extract_to_shard; its _forward hangs before batch STOP+1, after STOP batches were
# checkpointed, so the SIGKILL lands mid-run at a known point (no sleeps, no races)
CHILD = textwrap.dedent("""
    import json, sys, time
    import torch
    torch.set_num_threads(int(sys.argv[5]))
    import brainalign.extraction.activations as activations

    STOP = int(sys.argv[6])
    original, calls = activations._forward, [0]

    def forward(*args, **kwargs):
        if calls[0] >= STOP:
            print("hanging", flush=True)
            time.sleep(3600)
        calls[0] += 1
        return original(*args, **kwargs)

    activations._forward = forward
    activations.extract_to_shard(json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[7]), progress=False)
""")


def test_killed_run_resumes_to_identical_shard(tiny_spec, tiny_gpt2_dir, dataset_dir, reference, tmp_path, monkeypatch, caplog):
    import torch

    stop = 3
    out = tmp_path / "shard.h5"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    child = subprocess.Popen([sys.executable, str(script), json.dumps(tiny_spec), str(tiny_gpt2_dir), str(dataset_dir), str(out),
                              str(torch.get_num_threads()), str(stop), json.dumps(OPTIONS)], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while len(_parts(out)) < stop:
            assert child.poll() is None, child.stdout.read().decode()
            assert time.monotonic() < deadline, "the child never checkpointed"
            time.sleep(0.02)
        time.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    assert not out.exists()  # no finished-looking shard
    assert len(_parts(out)) == stop

    forward = _CountingForward(monkeypatch)
    caplog.set_level(logging.INFO, logger="brainalign")
    extract_to_shard(tiny_spec, tiny_gpt2_dir, dataset_dir, out, OPTIONS, progress=False)
    assert f"resuming: {stop * BATCH} of {N_STIMULI} windows done" in caplog.text
    assert forward.calls == N_BATCHES - stop  # finished batches are not recomputed
    _assert_same_bytes(_layers(out), reference[1])
    assert not checkpoint_dir_for(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child.py", "shard.h5"]  # no temporary shard either


def test_successful_run_leaves_no_checkpoint(reference, tiny_spec, tiny_gpt2_dir, dataset_dir, tmp_path):
    out, layers, left = reference
    assert left == ["shard.h5"]
    # checkpointing does not change a number
    extract_to_shard(tiny_spec, tiny_gpt2_dir, dataset_dir, tmp_path / "plain.h5", dict(OPTIONS, checkpoint=False), progress=False)
    _assert_same_bytes(_layers(tmp_path / "plain.h5"), layers)
    # a temporary shard left by a run killed while writing is cleaned up
    (tmp_path / ".shard.h5.abc123.h5").write_bytes(b"half an HDF5 file")
    extract_to_shard(tiny_spec, tiny_gpt2_dir, dataset_dir, tmp_path / "shard.h5", OPTIONS, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.h5", "shard.h5"]


def _crash_midway(spec, model_dir, dataset_dir, out, monkeypatch, options, after=2):
    crash = _CountingForward(monkeypatch, fail_after=after)
    with pytest.raises(RuntimeError, match="simulated crash"):
        extract_to_shard(spec, model_dir, dataset_dir, out, options, progress=False)
    monkeypatch.setattr(activations, "_forward", crash.original)
    assert not out.exists() and len(_parts(out)) == after


def test_checkpoint_from_other_settings_is_discarded(tiny_spec, tiny_gpt2_dir, dataset_dir, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="brainalign")
    out = tmp_path / "shard.h5"
    # another readout: a checkpoint of last-token vectors must not feed a mean-readout shard
    _crash_midway(tiny_spec, tiny_gpt2_dir, dataset_dir, out, monkeypatch, OPTIONS)
    forward = _CountingForward(monkeypatch)
    extract_to_shard(tiny_spec, tiny_gpt2_dir, dataset_dir, out, dict(OPTIONS, readout="mean"), progress=False)
    assert "other settings (readout differ); discarding it" in caplog.text and "resuming" not in caplog.text
    assert forward.calls == N_BATCHES
    extract_to_shard(tiny_spec, tiny_gpt2_dir, dataset_dir, tmp_path / "mean.h5", dict(OPTIONS, readout="mean", checkpoint=False),
                     progress=False)
    _assert_same_bytes(_layers(out), _layers(tmp_path / "mean.h5"))

    # another code version (edited fingerprint) and another batch size: both discarded
    for change, options in (("code_version", OPTIONS), ("batch_size", dict(OPTIONS, batch_size=3))):
        monkeypatch.setattr(activations, "_forward", forward.original)
        out.unlink()
        _crash_midway(tiny_spec, tiny_gpt2_dir, dataset_dir, out, monkeypatch, OPTIONS)
        if change == "code_version":
            fingerprint = next(checkpoint_dir_for(out).glob("*/fingerprint.json"))
            fingerprint.write_text(json.dumps(dict(json.loads(fingerprint.read_text()), code_version="0.0.0")))
        caplog.clear()
        forward = _CountingForward(monkeypatch)
        extract_to_shard(tiny_spec, tiny_gpt2_dir, dataset_dir, out, options, progress=False)
        assert f"({change}" in caplog.text and "discarding it" in caplog.text and "resuming" not in caplog.text
        assert forward.calls == -(-N_STIMULI // options["batch_size"])


def test_unreadable_part_is_recomputed(tiny_spec, tiny_gpt2_dir, dataset_dir, reference, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="brainalign")
    out = tmp_path / "shard.h5"
    _crash_midway(tiny_spec, tiny_gpt2_dir, dataset_dir, out, monkeypatch, OPTIONS, after=3)
    broken = _parts(out)[1]
    broken.write_bytes(broken.read_bytes()[:50])
    forward = _CountingForward(monkeypatch)
    extract_to_shard(tiny_spec, tiny_gpt2_dir, dataset_dir, out, OPTIONS, progress=False)
    assert "is unusable" in caplog.text and f"resuming: {2 * BATCH} of {N_STIMULI} windows done" in caplog.text
    assert forward.calls == N_BATCHES - 2
    _assert_same_bytes(_layers(out), reference[1])


def test_story_windows_resume(tiny_gpt2_dir, tiny_spec, tmp_path, monkeypatch, caplog):
    """Per-word (window mode): finished story windows are kept, pending ones flushed when the run fails."""
    from brainalign.models.session import load_model

    caplog.set_level(logging.INFO, logger="brainalign")
    loaded = load_model(tiny_spec, tiny_gpt2_dir, device="cpu")
    words = ("Alice was beginning to get very tired of sitting by her sister on the bank . " * 6).split()
    stimuli = pd.DataFrame({"stimulus_id": [f"w{i}" for i in range(len(words))], "text": words,
                            "group": ["a"] * 50 + ["b"] * (len(words) - 50), "position": range(len(words))})
    meta = {"kind": "timeseries"}
    base = {"max_context_tokens": 24, "min_context_tokens": 8}
    _, expected = extract_arrays(loaded, tiny_spec, stimuli, meta, base, progress=False)
    options = dict(base, checkpoint_every=0, checkpoint_seconds=1e9)  # flush only at exit
    crash = _CountingForward(monkeypatch, fail_after=3)
    with pytest.raises(RuntimeError):
        extract_arrays(loaded, tiny_spec, stimuli, meta, options, progress=False, checkpoint_dir=tmp_path / "ckpt")
    monkeypatch.setattr(activations, "_forward", crash.original)
    assert len(list((tmp_path / "ckpt").glob("part-*.npz"))) == 1  # the three finished windows, flushed on the way out
    forward = _CountingForward(monkeypatch)
    names, resumed = extract_arrays(loaded, tiny_spec, stimuli, meta, options, progress=False, checkpoint_dir=tmp_path / "ckpt")
    assert "resuming: 3 of" in caplog.text and "story windows done" in caplog.text
    total = int(caplog.text.split("resuming: 3 of ")[1].split()[0])
    assert total > 6 and forward.calls == total - 3
    _assert_same_bytes(resumed, expected)


def test_float32_retry_releases_the_half_precision_model_first(tiny_spec, tiny_gpt2_dir, dataset_dir, tmp_path, monkeypatch):
    """A float16 model whose activations are not finite is reloaded in float32 inside the same job; the float16
    copy must be gone (no reference left, CUDA cache emptied) before the float32 one loads, or the job needs
    both at once."""
    import gc
    import weakref

    import brainalign.models.session as session

    loads, alive_at_reload = [], []
    original_load, original_extract = session.load_model, activations.extract_arrays

    def load(spec, model_dir, device=None, dtype=None, matmul_dtype="float32"):
        if loads:
            gc.collect()
            alive_at_reload.extend(ref() is not None for ref in loads)
        loaded = original_load(spec, model_dir, device=device, dtype=dtype, matmul_dtype=matmul_dtype)
        loads.append(weakref.ref(loaded.model))
        return loaded

    def extract(loaded, spec, *args, **kwargs):
        names, arrays = original_extract(loaded, spec, *args, **kwargs)
        if loaded.info["dtype"] != "float32":
            arrays[names[-1]][0, 0] = np.nan  # a float16 overflow
        return names, arrays

    monkeypatch.setattr(session, "load_model", load)
    monkeypatch.setattr(activations, "extract_arrays", extract)
    out = tmp_path / "shard.h5"
    extract_to_shard(dict(tiny_spec, dtype="float16"), tiny_gpt2_dir, dataset_dir, out, dict(OPTIONS, checkpoint=False), progress=False)
    assert len(loads) == 2 and alive_at_reload == [False]
    with h5py.File(out) as handle:
        assert handle.attrs["dtype"] == "float32"


def test_non_causal_word_windows_resume(tmp_path, monkeypatch, caplog):
    """Window mode for an encoder: one window per word, batched; finished batches are kept and a resumed run gives
    the same bytes."""
    import torch
    from transformers import BertConfig, BertModel

    from brainalign.models.session import load_model
    from tests.support.tokenizers import byte_level_tokenizer

    caplog.set_level(logging.INFO, logger="brainalign")
    tokenizer = byte_level_tokenizer()
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=128)).save_pretrained(tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    spec = {"name": "tiny-bert", "source": "local", "path": str(tmp_path / "bert"), "kind": "encoder"}
    loaded = load_model(spec, tmp_path / "bert", device="cpu")
    words = ("Alice was beginning to get very tired of sitting by her sister on the bank . " * 3).split()
    stimuli = pd.DataFrame({"stimulus_id": [f"w{i}" for i in range(len(words))], "text": words,
                            "group": ["a"] * 20 + ["b"] * (len(words) - 20), "position": range(len(words))})
    meta = {"kind": "timeseries"}
    base = {"max_context_tokens": 16, "min_context_tokens": 4, "batch_size": 4}
    _, expected = extract_arrays(loaded, spec, stimuli, meta, base, progress=False)
    options = dict(base, checkpoint_every=1)
    crash = _CountingForward(monkeypatch, fail_after=3)
    with pytest.raises(RuntimeError):
        extract_arrays(loaded, spec, stimuli, meta, options, progress=False, checkpoint_dir=tmp_path / "ckpt")
    monkeypatch.setattr(activations, "_forward", crash.original)
    forward = _CountingForward(monkeypatch)
    _, resumed = extract_arrays(loaded, spec, stimuli, meta, options, progress=False, checkpoint_dir=tmp_path / "ckpt")
    assert f"resuming: 12 of {len(words)} word windows done (3 of {-(-len(words) // 4)} batches)" in caplog.text
    assert forward.calls == -(-len(words) // 4) - 3
    _assert_same_bytes(resumed, expected)
