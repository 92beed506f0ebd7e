"""One encoding job per model x dataset (or per part of its layers) gives exactly the per-layer results that one job
per layer gives, resumes a killed job from its finished layers, and splits layers evenly over parts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.encoding.layer_fits import fit_layer_file, fit_layers_file, layers_of_part
from brainalign.encoding.layer_scores import score_layers_file
from brainalign.errors import BrainalignError
from brainalign.extraction.shards import write_shard

OPTIONS = {"n_bootstrap": 20, "seed": 0, "protocols": ["ridge-grouped", "brainscore-2023"]}
LAYERS = ["model.embed", "model.layers.0", "model.layers.1", "model.layers.2", "model.layers.3"]


@pytest.fixture
def shard_and_dataset(tmp_path):
    rng = np.random.default_rng(3)
    n = 60
    stimuli = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)], "text": ["w"] * n,
                            "group": [f"p{i // 4}" for i in range(n)], "position": np.arange(n) % 4})
    signal = rng.standard_normal((n, 6))
    responses = (signal @ rng.standard_normal((6, 3)) + rng.standard_normal((n, 3)))[None].astype(np.float32)
    write_prepared(PreparedDataset(stimuli, responses, ["average"], ["a", "b", "c"],
                                   meta={"name": "toy", "kind": "sentence", "description": "", "source": "", "licence": "",
                                         "provenance": "", "context": "sentence", "group_averaged": True}), tmp_path / "ds")
    arrays = {name: (signal * k + rng.standard_normal((n, 6))).astype(np.float32) for k, name in enumerate(LAYERS)}
    write_shard(tmp_path / "shard.h5", LAYERS, arrays, stimuli["stimulus_id"].tolist(), {"model": "toy"})
    return tmp_path / "shard.h5", tmp_path / "ds"


def test_one_job_equals_one_job_per_layer(shard_and_dataset, tmp_path):
    shard, dataset = shard_and_dataset
    fit_layers_file(shard, dataset, tmp_path / "part0", OPTIONS, progress=False)
    for layer in LAYERS:
        alone = fit_layer_file(shard, layer, dataset, tmp_path / f"{layer}.alone.json", OPTIONS)
        together = json.loads((tmp_path / "part0" / f"{layer}.json").read_text())
        assert together == json.loads(json.dumps(alone))
    assert not (tmp_path / "part0.partial").exists()


def test_parts_cover_every_layer_once_and_score_the_same(shard_and_dataset, tmp_path):
    shard, dataset = shard_and_dataset
    assert layers_of_part(LAYERS, 0, 2) == LAYERS[0::2] and layers_of_part(LAYERS, 1, 2) == LAYERS[1::2]
    with pytest.raises(BrainalignError, match="part 2 is not one of 0..1"):
        layers_of_part(LAYERS, 2, 2)
    ceiling = tmp_path / "ceiling.json"
    ceiling.write_text(json.dumps({"ceiling": 0.5}))
    fit_layers_file(shard, dataset, tmp_path / "one" / "part0", OPTIONS, progress=False)
    for part in (0, 1):
        fit_layers_file(shard, dataset, tmp_path / "two" / f"part{part}", OPTIONS, part=part, n_parts=2, progress=False)
    one = score_layers_file([tmp_path / "one" / "part0"], ceiling, tmp_path / "one.csv", "m", "toy", LAYERS)
    two = score_layers_file([tmp_path / "two" / "part0", tmp_path / "two" / "part1"], ceiling, tmp_path / "two.csv", "m", "toy",
                            LAYERS)
    pd.testing.assert_frame_equal(one, two)
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()
    # every part resamples with the same draws, so the nested choice's CI (the chosen layers' draws combined fold by
    # fold, across parts) is the one-job CI, and it exists for every protocol
    nested = one[one["selection"] == "nested"]
    assert set(nested["protocol"]) == {"ridge-grouped", "brainscore-2023"} and nested[["ci_low", "ci_high"]].notna().all().all()


def test_a_killed_job_resumes_from_its_finished_layers(shard_and_dataset, tmp_path, monkeypatch):
    import brainalign.encoding.layer_fits as layers_module

    shard, dataset = shard_and_dataset
    reference = tmp_path / "reference"
    fit_layers_file(shard, dataset, reference, OPTIONS, progress=False)
    fitted, real = [], layers_module.fit_layer

    def dies_at_the_third_layer(features, data, options):
        if len(fitted) == 2:
            raise KeyboardInterrupt  # the job is killed
        fitted.append(1)
        return real(features, data, options)

    monkeypatch.setattr(layers_module, "fit_layer", dies_at_the_third_layer)
    with pytest.raises(KeyboardInterrupt):
        fit_layers_file(shard, dataset, tmp_path / "part0", OPTIONS, progress=False)
    assert len(list((tmp_path / "part0.partial").glob("*.json"))) == 2 and not (tmp_path / "part0").exists()
    refits = []
    monkeypatch.setattr(layers_module, "fit_layer", lambda *a: refits.append(1) or real(*a))
    fit_layers_file(shard, dataset, tmp_path / "part0", OPTIONS, progress=False)
    assert len(refits) == len(LAYERS) - 2  # the two finished layers were kept
    for layer in LAYERS:
        assert (tmp_path / "part0" / f"{layer}.json").read_bytes() == (reference / f"{layer}.json").read_bytes()
    # other options: nothing kept
    (tmp_path / "part0").rename(tmp_path / "part0.partial")
    refits.clear()
    fit_layers_file(shard, dataset, tmp_path / "part0", {**OPTIONS, "seed": 1}, progress=False)
    assert len(refits) == len(LAYERS)


def test_extras_at_selected_layers_equal_the_full_run_there(shard_and_dataset, tmp_path):
    """encoding.extras_layers: selected: the first protocol at every layer as before; the second protocol, RSA and
    CKA only at its best and nested layers, with the values the full run gives there; their rows are those layers'."""
    from brainalign.encoding.layer_fits import selected_layers
    from brainalign.encoding.layer_metrics import layer_metric

    shard, dataset = shard_and_dataset
    ceiling = tmp_path / "ceiling.json"
    ceiling.write_text(json.dumps({"ceiling": 0.5}))
    fit_layers_file(shard, dataset, tmp_path / "all", OPTIONS, progress=False)
    selected_options = {**OPTIONS, "extras_layers": "selected"}
    fit_layers_file(shard, dataset, tmp_path / "selected", selected_options, progress=False)
    full = {layer: json.loads((tmp_path / "all" / f"{layer}.json").read_text()) for layer in LAYERS}
    fast = {layer: json.loads((tmp_path / "selected" / f"{layer}.json").read_text()) for layer in LAYERS}
    chosen = selected_layers(full, LAYERS, layer_metric("ridge-grouped"))
    # the best layer and each outer fold's training-chosen layer, from the full run's numbers
    best = LAYERS[int(np.argmax([full[layer]["protocols"]["ridge-grouped"]["score"] for layer in LAYERS]))]
    nested = {LAYERS[int(np.argmax([full[layer]["protocols"]["ridge-grouped"]["inner_scores"][k] for layer in LAYERS]))]
              for k in range(OPTIONS.get("n_folds", 5))}
    assert set(chosen) == {best} | nested and 0 < len(chosen) < len(LAYERS)
    for layer in LAYERS:
        assert fast[layer]["protocols"]["ridge-grouped"] == full[layer]["protocols"]["ridge-grouped"]
        if layer in chosen:
            # no nested row reads an extra's training-only scores: its inner fits are skipped there (NaN)
            extra, reference = dict(fast[layer]["protocols"]["brainscore-2023"]), dict(full[layer]["protocols"]["brainscore-2023"])
            assert np.isnan(extra.pop("inner_scores")).all() and np.isfinite(reference.pop("inner_scores")).all()
            assert extra == reference
            assert fast[layer]["rsa"] == full[layer]["rsa"] and fast[layer]["cka"] == full[layer]["cka"]
        else:
            assert set(fast[layer]["protocols"]) == {"ridge-grouped"} and "rsa" not in fast[layer] and "cka" not in fast[layer]
    rows = score_layers_file([tmp_path / "selected"], ceiling, tmp_path / "selected.csv", "m", "toy", LAYERS)
    reference = score_layers_file([tmp_path / "all"], ceiling, tmp_path / "all.csv", "m", "toy", LAYERS)
    first = rows[rows["protocol"] == "ridge-grouped"].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, reference[reference["protocol"] == "ridge-grouped"].reset_index(drop=True))
    extras = rows[rows["protocol"] != "ridge-grouped"]
    assert set(extras["selection"]) == {"layer"} and set(extras["layer"]) == set(chosen)
    assert sorted(extras["metric"].unique()) == ["cka", "linear", "rsa"]


def test_extras_at_selected_layers_need_the_headline_protocol_first(tmp_path):
    from brainalign.config import ConfigError, check_semantics

    config = {"models": [], "datasets": [{"name": "d", "adapter": "tuckute2024"}],
              "encoding": {"extras_layers": "selected", "protocols": ["ridge-grouped", "brainscore-2023"]},
              "analysis": {"headline": {"brain_protocol": "brainscore-2023"}}}
    with pytest.raises(ConfigError, match="extras_layers: selected needs the headline protocol 'brainscore-2023' first"):
        check_semantics(config)
    config["encoding"]["protocols"] = ["brainscore-2023", "ridge-grouped"]
    check_semantics(config)
