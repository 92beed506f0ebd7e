"""Faults a user's disk, cluster and hands produce, injected into intermediate files: each ends in a one-line
error that names the file and the command that fixes it, never in a traceback or a silently different score."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from brainalign.datasets.base import PreparedDataset, load_prepared, write_prepared
from brainalign.errors import BrainalignError
from brainalign.extraction.shards import read_attributes, read_layer, read_layer_names, write_shard

REPO = Path(__file__).resolve().parents[1]


def _shard(path, values=None):
    values = np.arange(12, dtype=np.float32).reshape(4, 3) if values is None else values
    write_shard(path, ["layer.0", "layer.1"], {"layer.0": values, "layer.1": values + 1}, ["a", "b", "c", "d"],
                {"model": "m"})
    return path


def _truncate(path, keep: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_a_truncated_shard_is_one_line_naming_it_and_the_rebuild_command(tmp_path):
    shard = _shard(tmp_path / "results" / "activations" / "m" / "d.h5")
    _truncate(shard)
    for read in (read_layer_names, read_attributes, lambda path: read_layer(path, "layer.0")):
        with pytest.raises(BrainalignError) as error:
            read(shard)
        message = str(error.value)
        assert "\n" not in message and str(shard) in message and "truncated or corrupt" in message
        assert f"snakemake --cores 2 {shard} --forcerun run_model" in message


def test_a_non_finite_layer_is_refused_naming_shard_layer_and_command(tmp_path):
    values = np.ones((4, 3), dtype=np.float32)
    shard = _shard(tmp_path / "d.h5", values)
    assert np.array_equal(read_layer(shard, "layer.0"), values)  # clean data passes
    with h5py.File(shard, "r+") as handle:
        handle["layers"]["layer.1"][1, 2] = np.nan
    with pytest.raises(BrainalignError, match=r"layer 'layer.1' holds 1 non-finite values.*--forcerun run_model"):
        read_layer(shard, "layer.1")
    assert np.array_equal(read_layer(shard, "layer.0"), values)


def _prepared(out_dir):
    stimuli = pd.DataFrame({"stimulus_id": ["s0", "s1", "s2"], "text": ["a b", "c d", "e f"], "group": ["g", "g", "h"],
                            "position": [0, 1, 0]})
    responses = np.arange(6, dtype=np.float32).reshape(1, 3, 2)
    meta = {"name": "toy", "kind": "sentence", "description": "", "source": "", "licence": "", "provenance": "",
            "context": "sentence", "group_averaged": True}
    write_prepared(PreparedDataset(stimuli, responses, ["average"], ["n0", "n1"], meta=meta), out_dir)
    return out_dir


def test_a_truncated_prepared_dataset_names_the_prepare_rule(tmp_path):
    folder = _prepared(tmp_path / "results" / "datasets" / "toy")
    assert load_prepared(folder).responses.shape == (1, 3, 2)
    _truncate(folder / "data.h5", 0.3)
    with pytest.raises(BrainalignError) as error:
        load_prepared(folder)
    # the command names the rule's output, the folder: Snakemake has no rule for a file inside a folder output
    assert str(error.value).startswith(f"{folder / 'data.h5'}: unreadable (")
    assert str(error.value).endswith(f"rebuild it with `snakemake --cores 2 {folder} --forcerun prepare_dataset`")


def test_a_missing_prepared_file_names_the_command(tmp_path):
    folder = _prepared(tmp_path / "toy")
    (folder / "meta.json").unlink()
    with pytest.raises(BrainalignError, match=r"meta.json: missing.*snakemake --cores 2 .*toy --forcerun prepare_dataset"):
        load_prepared(folder)


# ----------------------------------------------------------------------------------------------- resumable partial results
# Every partial result a killed job leaves (an encoding job's finished layers, an extraction's finished batches)
# records the fingerprint of its inputs and is discarded, with a log line, when a re-run's inputs differ.

ENCODING_OPTIONS = {"n_bootstrap": 10, "seed": 0, "protocols": ["ridge-grouped"], "similarity": False}
TOY_LAYERS = ["embed", "layers.0", "layers.1", "layers.2"]


def _toy_encoding_inputs(folder, scale: float = 1.0, noise_seed: int = 3):
    """A prepared sentence dataset and a shard of 4 layers carrying its signal (``scale`` and ``noise_seed`` make
    another shard of the same stimuli: another extraction of the same model)."""
    rng = np.random.default_rng(3)
    n = 40
    stimuli = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)], "text": ["w"] * n,
                            "group": [f"p{i // 4}" for i in range(n)], "position": np.arange(n) % 4})
    signal = rng.standard_normal((n, 5))
    responses = (signal @ rng.standard_normal((5, 2)) + rng.standard_normal((n, 2)))[None].astype(np.float32)
    meta = {"name": "toy", "kind": "sentence", "description": "", "source": "", "licence": "", "provenance": "",
            "context": "sentence", "group_averaged": True}
    if not (folder / "ds").exists():
        write_prepared(PreparedDataset(stimuli, responses, ["average"], ["a", "b"], meta=meta), folder / "ds")
    noise = np.random.default_rng(noise_seed)
    arrays = {name: (scale * signal * (k + 1) + noise.standard_normal((n, 5))).astype(np.float32) for k, name in enumerate(TOY_LAYERS)}
    write_shard(folder / "shard.h5", TOY_LAYERS, arrays, stimuli["stimulus_id"].tolist(),
                {"model": "toy", "matmul_dtype": "float32" if scale == 1.0 else "bfloat16"})
    return folder / "shard.h5", folder / "ds"


def _killed_encoding_job(shard, dataset, out, monkeypatch, options=ENCODING_OPTIONS, after: int = 2):
    """Run fit_layers_file until it is killed after ``after`` layers; its partial folder stays behind."""
    import brainalign.encoding.layer_fits as layers_module
    from brainalign.encoding.layer_fits import fit_layers_file

    real, fitted = layers_module.fit_layer, []

    def killed(*args, **kwargs):
        if len(fitted) == after:
            raise KeyboardInterrupt
        fitted.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(layers_module, "fit_layer", killed)
    with pytest.raises(KeyboardInterrupt):
        fit_layers_file(shard, dataset, out, options, progress=False)
    monkeypatch.setattr(layers_module, "fit_layer", real)
    partial = out.with_name(out.name + ".partial")
    assert len(list(partial.glob("*.json"))) == after and not out.exists()
    return partial


def _layer_files(folder) -> dict:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _refits(monkeypatch) -> list:
    import brainalign.encoding.layer_fits as layers_module

    real, calls = layers_module.fit_layer, []
    monkeypatch.setattr(layers_module, "fit_layer", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_an_encoding_partial_from_another_shard_is_discarded_with_a_log_line(tmp_path, monkeypatch, caplog):
    """A job killed after two layers, then the shard re-extracted (another matmul dtype: other numbers, same
    stimuli and layers): the kept layers belong to the old shard and must not reach the scores."""
    from brainalign.encoding.layer_fits import fit_layers_file

    caplog.set_level(logging.INFO, logger="brainalign")
    shard, dataset = _toy_encoding_inputs(tmp_path)
    partial = _killed_encoding_job(shard, dataset, tmp_path / "part0", monkeypatch)
    _toy_encoding_inputs(tmp_path, scale=0.5, noise_seed=4)  # the shard rebuilt with other settings
    refits = _refits(monkeypatch)
    fit_layers_file(shard, dataset, tmp_path / "part0", ENCODING_OPTIONS, progress=False)
    assert f"{partial}: kept from an earlier, interrupted run with other inputs (shard differ); discarding it" in caplog.text
    assert "kept from an earlier, interrupted run\n" not in caplog.text and len(refits) == len(TOY_LAYERS)
    fit_layers_file(shard, dataset, tmp_path / "fresh", ENCODING_OPTIONS, progress=False)
    assert _layer_files(tmp_path / "part0") == _layer_files(tmp_path / "fresh")
    assert sorted(p.name for p in (tmp_path / "part0").iterdir()) == [f"{layer}.json" for layer in sorted(TOY_LAYERS)]


@pytest.mark.parametrize("change", ["dataset", "code_version", "same"])
def test_an_encoding_partial_is_kept_only_for_the_same_dataset_and_code(tmp_path, monkeypatch, caplog, change):
    import brainalign
    from brainalign.encoding.layer_fits import fit_layers_file

    caplog.set_level(logging.INFO, logger="brainalign")
    shard, dataset = _toy_encoding_inputs(tmp_path)
    fit_layers_file(shard, dataset, tmp_path / "reference", ENCODING_OPTIONS, progress=False)
    _killed_encoding_job(shard, dataset, tmp_path / "part0", monkeypatch)
    if change == "dataset":  # the dataset re-prepared (e.g. another subset option, same stimuli)
        prepared = load_prepared(dataset)
        write_prepared(PreparedDataset(prepared.stimuli, prepared.responses * 2, prepared.subjects, prepared.neuroids,
                                       meta=prepared.meta), dataset)
    elif change == "code_version":
        monkeypatch.setattr(brainalign, "__version__", "0.0.1")
    refits = _refits(monkeypatch)
    fit_layers_file(shard, dataset, tmp_path / "part0", ENCODING_OPTIONS, progress=False)
    if change == "same":
        assert len(refits) == len(TOY_LAYERS) - 2 and "discarding" not in caplog.text
        assert _layer_files(tmp_path / "part0") == _layer_files(tmp_path / "reference")
    else:
        assert f"other inputs ({change} differ); discarding it" in caplog.text and len(refits) == len(TOY_LAYERS)


def test_a_partial_of_an_older_version_without_fingerprint_is_discarded(tmp_path, monkeypatch, caplog):
    from brainalign.encoding.layer_fits import PARTIAL_FINGERPRINT, fit_layers_file

    caplog.set_level(logging.INFO, logger="brainalign")
    shard, dataset = _toy_encoding_inputs(tmp_path)
    partial = _killed_encoding_job(shard, dataset, tmp_path / "part0", monkeypatch)
    (partial / PARTIAL_FINGERPRINT).unlink()
    refits = _refits(monkeypatch)
    fit_layers_file(shard, dataset, tmp_path / "part0", ENCODING_OPTIONS, progress=False)
    assert "other inputs (no fingerprint); discarding it" in caplog.text and len(refits) == len(TOY_LAYERS)


def test_an_extraction_checkpoint_from_other_weights_in_the_same_folder_is_discarded(tmp_path, tiny_gpt2_dir, monkeypatch, caplog):
    """A `local` model's folder whose weights were replaced (same config entry, same provenance): its checkpoint
    holds the old weights' activations and must not be mixed into the new shard."""
    import shutil

    import torch
    from transformers import GPT2LMHeadModel

    import brainalign.extraction.activations as activations
    from brainalign.extraction.activations import extract_to_shard

    caplog.set_level(logging.INFO, logger="brainalign")
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_gpt2_dir, model_dir)
    spec = {"name": "tiny", "source": "local", "path": str(model_dir), "kind": "decoder", "prepend_text": "<|endoftext|>"}
    dataset = _prepared(tmp_path / "ds")
    options = {"batch_size": 1, "device": "cpu", "checkpoint_every": 1}
    out = tmp_path / "shard.h5"
    real, calls = activations._forward, []

    def crash(*args, **kwargs):
        if len(calls) == 2:
            raise RuntimeError("killed")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(activations, "_forward", crash)
    with pytest.raises(RuntimeError, match="killed"):
        extract_to_shard(spec, model_dir, dataset, out, options, progress=False)
    monkeypatch.setattr(activations, "_forward", real)
    model = GPT2LMHeadModel.from_pretrained(model_dir)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1.5)
    model.save_pretrained(model_dir)  # new weights, same file names and config
    extract_to_shard(spec, model_dir, dataset, out, options, progress=False)
    assert "other settings (model_folder differ); discarding it" in caplog.text and "resuming" not in caplog.text
    extract_to_shard(spec, model_dir, dataset, tmp_path / "fresh.h5", dict(options, checkpoint=False), progress=False)
    for layer in read_layer_names(out):
        assert read_layer(out, layer).tobytes() == read_layer(tmp_path / "fresh.h5", layer).tobytes()


def test_the_extraction_fingerprint_covers_model_data_options_and_code():
    """What a checkpoint is keyed on: every input that can change a number (a T5's reading mode included)."""
    from types import SimpleNamespace

    from brainalign.extraction.checkpoint import open_checkpoint
    from brainalign.options import ExtractionOptions

    loaded = SimpleNamespace(device="cpu", info={"model_id": "org/t5", "revision": "abc", "source": "hub", "quantization": "",
                                                 "dtype": "float32", "matmul_dtype": "bfloat16", "provenance": {"hf_id": "org/t5"}})
    spec = {"name": "t5", "kind": "encoder-decoder", "t5_mode": "paper"}
    options = ExtractionOptions.from_dict({})
    checkpoint = open_checkpoint("unused", loaded, spec, ["encoder.block.0"], [[1, 2]], options, context_mode="sentence",
                                 readout="last", fingerprint={"dataset": "d", "model_folder": {"model.safetensors": [10, 1]}})
    keys = set(checkpoint.fingerprint)
    assert {"model", "model_id", "revision", "source", "dtype", "matmul_dtype", "provenance", "model_folder", "t5_mode", "dataset",
            "work", "batch_size", "readout", "context_mode", "layer_names", "code_version", "torch", "transformers"} <= keys
    other = open_checkpoint("unused", loaded, dict(spec, t5_mode="principled"), ["encoder.block.0"], [[1, 2]], options,
                            context_mode="sentence", readout="last", fingerprint={"dataset": "d"})
    assert other.fingerprint["t5_mode"] != checkpoint.fingerprint["t5_mode"]


# ----------------------------------------------------------------------------------------------- brainalign analyse
# The paper's own tables (17 headline pairs): each fault used to take the pairs from 17 to 16 with exit 0, or end in a
# pandas traceback; now one line naming the file, line, model and field, or with --drop-invalid a warning per entry.

PAPER_SCORES = REPO / "resources" / "data" / "paper_scores" / "paper_headline.csv"
PAPER_MODELS = REPO / "resources" / "data" / "model_properties" / "model_properties.csv"


def _paper_tables(tmp_path, scores_edit=None, models_edit=None):
    scores, models = tmp_path / "scores.csv", tmp_path / "models.csv"
    text = PAPER_SCORES.read_text()
    scores.write_text(scores_edit(text) if scores_edit else text)
    text = PAPER_MODELS.read_text()
    models.write_text(models_edit(text) if models_edit else text)
    return scores, models


def _line_of(path, start: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(start))


FLAN_XL_PEREIRA = "flan-t5-xl,pereira2018,0.314,brain"
TABLE_FAULTS = {
    "nan score": (lambda t: t.replace(FLAN_XL_PEREIRA, "flan-t5-xl,pereira2018,NaN,brain"), None, "scores", "flan-t5-xl,pereira2018",
                  "(model flan-t5-xl, dataset pereira2018): score is empty or NaN; expected a finite number"),
    "empty score": (lambda t: t.replace(FLAN_XL_PEREIRA, "flan-t5-xl,pereira2018,,brain"), None, "scores", "flan-t5-xl,pereira2018",
                    "(model flan-t5-xl, dataset pereira2018): score is empty or NaN; expected a finite number"),
    "decimal comma": (lambda t: t.replace(FLAN_XL_PEREIRA, 'flan-t5-xl,pereira2018,"0,314",brain'), None, "scores",
                      "flan-t5-xl,pereira2018", "(model flan-t5-xl, dataset pereira2018): score '0,314' is not a number (a decimal "
                                                "comma? write 0.314)"),
    "misspelt model": (lambda t: t.replace("\nflan-t5-xl,", "\nflan-t5-xll,"), None, "scores", "flan-t5-xll,pereira2018",
                       "(dataset pereira2018): model 'flan-t5-xll' is not in the models table {models} (did you mean 'flan-t5-xl'?) "
                       "(and 3 more invalid entries)"),
    "unknown base": (None, lambda t: t.replace("flan-t5-xl,T5,1,t5-xl,", "flan-t5-xl,T5,1,t5-xll,"), "models", "flan-t5-xl,",
                     "(model flan-t5-xl): vanilla_base_model 't5-xll' is not a model of this table (did you mean 't5-xl'?)"),
    "property decimal comma": (None, lambda t: t.replace("flan-t5-xl,T5,1,t5-xl,3000000000,48,0.65,0.493,",
                                                         'flan-t5-xl,T5,1,t5-xl,3000000000,48,0.65,"0,493",'), "models", "flan-t5-xl,",
                               "(model flan-t5-xl): mmlu_overall '0,493' is not a number (a decimal comma? write 0.493)"),
}


@pytest.mark.parametrize("fault", list(TABLE_FAULTS))
def test_a_bad_analysis_table_is_one_line_naming_file_line_model_and_field(tmp_path, fault):
    from brainalign.study.analysis import read_inputs
    from brainalign.study.table_checks import TableError

    scores_edit, models_edit, which, start, expected = TABLE_FAULTS[fault]
    scores, models = _paper_tables(tmp_path, scores_edit, models_edit)
    assert scores.read_text() != PAPER_SCORES.read_text() or models.read_text() != PAPER_MODELS.read_text()
    path = scores if which == "scores" else models
    with pytest.raises(TableError) as error:
        read_inputs(scores, models)
    assert str(error.value) == f"{path} line {_line_of(path, start)} " + expected.format(models=models)
    assert error.value.droppable


def test_an_unquoted_decimal_comma_is_one_line_not_a_silently_shifted_table(tmp_path):
    """0,314 unquoted splits the row into one field too many: pandas reads that silently (as an index column when
    every row has it), so the file is checked line by line first."""
    from brainalign.study.analysis import read_inputs
    from brainalign.study.table_checks import TableError

    scores, models = _paper_tables(tmp_path, lambda t: t.replace(FLAN_XL_PEREIRA, "flan-t5-xl,pereira2018,0,314,brain"))
    with pytest.raises(TableError) as error:
        read_inputs(scores, models)
    line = _line_of(scores, "flan-t5-xl,pereira2018")
    assert str(error.value) == (f"{scores} line {line}: 5 fields where the header has 4; a decimal comma in an unquoted number? "
                                "write 0.5, not 0,5")
    everywhere = tmp_path / "all.csv"  # every row with a comma: pandas alone would shift the columns without a word
    everywhere.write_text("model,dataset,score\na,d,0,1\nb,d,0,2\n")
    with pytest.raises(TableError, match=r"all\.csv line 2: 4 fields where the header has 3"):
        read_inputs(everywhere, models)


def _analyse_cli(scores, models, out, *flags):
    return subprocess.run([sys.executable, "-m", "brainalign.cli", "analyse", str(scores), "--models", str(models),
                           "--config", str(REPO / "config" / "paper.yaml"), "--out", str(out), "--no-figures", *flags],
                          capture_output=True, text=True, cwd=REPO)


def _headline_pairs(out) -> int:
    effect = pd.read_csv(out / "instruction_effect.csv")
    return int(effect.loc[(effect["group"] == "headline") & (effect["measure"] == "brain_average"), "n_pairs"].iloc[0])


def test_analyse_stops_at_a_nan_score_or_drops_it_naming_the_pair(tmp_path):
    """The command line: exit 2 and one error line; with --drop-invalid exit 0, 16 of the 17 headline pairs and a
    warning naming the pair that lost its score."""
    scores, models = _paper_tables(tmp_path, TABLE_FAULTS["nan score"][0])
    clean = _analyse_cli(PAPER_SCORES, PAPER_MODELS, tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    assert _headline_pairs(tmp_path / "clean") == 17
    stopped = _analyse_cli(scores, models, tmp_path / "stopped")
    errors = [line for line in stopped.stderr.splitlines() if "error" in line]
    line = _line_of(scores, "flan-t5-xl,pereira2018")
    assert stopped.returncode == 2 and errors == [
        f"brainalign: error: {scores} line {line} (model flan-t5-xl, dataset pereira2018): score is empty or NaN; expected a finite "
        "number (--drop-invalid leaves such entries out, with a warning)"]
    assert "Traceback" not in stopped.stderr and not (tmp_path / "stopped").exists()
    dropped = _analyse_cli(scores, models, tmp_path / "dropped", "--drop-invalid")
    assert dropped.returncode == 0, dropped.stderr
    assert (f"brainalign: warning: {scores} line {line} (model flan-t5-xl, dataset pereira2018): score is empty or NaN; expected a "
            "finite number: left out (--drop-invalid); pairs without a pereira2018 score (left out of it and of any average over "
            "it): t5-xl -> flan-t5-xl") in dropped.stderr.splitlines()
    assert _headline_pairs(tmp_path / "dropped") == 16


def test_drop_invalid_names_every_pair_an_unknown_base_or_a_missing_model_takes_out(tmp_path, caplog):
    from brainalign.study.analysis import read_inputs

    caplog.set_level(logging.WARNING, logger="brainalign")
    scores, models = _paper_tables(tmp_path, lambda t: t.replace("\nflan-t5-xl,", "\nflan-t5-xll,"),
                                   lambda t: t.replace("flan-alpaca-xl,T5,1,t5-xl,", "flan-alpaca-xl,T5,1,t5-xll,"))
    kept, table = read_inputs(scores, models, drop_invalid=True)
    assert "flan-t5-xll" not in set(kept["model"]) and len(kept) == 132 - 4
    messages = [record.getMessage() for record in caplog.records]
    assert sum("model 'flan-t5-xll' is not in the models table" in m for m in messages) == 4
    assert any("vanilla_base_model 't5-xll' is not a model of this table (did you mean 't5-xl'?): left out (--drop-invalid); "
               "pair t5-xll -> flan-alpaca-xl left out" in m for m in messages)
    assert f"pair t5-xl -> flan-t5-xl is left out: flan-t5-xl has no score in {scores}" in messages


def test_the_paper_tables_pass_unchanged():
    from brainalign.study.analysis import read_inputs

    scores, models = read_inputs(PAPER_SCORES, PAPER_MODELS)
    assert len(scores) == 132 and len(models) == 33 and scores["score"].dtype == float


# ----------------------------------------------------------------------------------------------- config load
def _config_with_dataset(local_dir) -> dict:
    return {"models": [{"name": "m", "source": "hub", "hf_id": "org/m", "kind": "decoder"}],
            "datasets": [{"name": "tuckute2024", "adapter": "tuckute2024", "local_dir": str(local_dir)}]}


def test_a_local_dir_that_does_not_exist_is_found_at_config_load(tmp_path, monkeypatch):
    from brainalign.config import ConfigError, load_and_check

    repo = tmp_path / "repo"
    (repo / "resources" / "data" / "tuckute2024").mkdir(parents=True)
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # relative: the working directory first, then the base dir (the workflow passes the Snakefile's folder)
    load_and_check(_config_with_dataset("resources/data/tuckute2024"), base_dir=repo)
    load_and_check(_config_with_dataset(repo / "resources" / "data" / "tuckute2024"), base_dir=repo)
    with pytest.raises(ConfigError) as error:
        load_and_check(_config_with_dataset("resources/data/tuckute2042"), base_dir=repo)
    assert str(error.value) == ("config.datasets[0].local_dir: folder 'resources/data/tuckute2042' of dataset 'tuckute2024' does not "
                                f"exist (looked for {elsewhere}/resources/data/tuckute2042 and {repo}/resources/data/tuckute2042)")
    with pytest.raises(ConfigError, match=rf"^config.datasets\[0\].local_dir: folder '{tmp_path}/gone' .*\(looked for {tmp_path}/gone\)$"):
        load_and_check(_config_with_dataset(tmp_path / "gone"), base_dir=repo)


def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path):
    from brainalign.cli import analysis_options
    from brainalign.config import ConfigError, load_config_file

    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 0\nmodels:\n  - name: a\n   source: hub\n")
    with pytest.raises(ConfigError) as error:
        load_config_file(bad)
    assert str(error.value).startswith(f"{bad}: line 4, column 4: YAML syntax error: expected <block end>, but found")
    with pytest.raises(ConfigError, match=rf"^{bad}: line 4, column 4: YAML syntax error"):
        analysis_options(bad)  # brainalign analyse --config


def _check_config(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "brainalign.cli", "check-config", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def test_check_config_loads_and_checks_a_config_as_the_workflow_does(tmp_path):
    """`brainalign check-config`: what Snakemake's own --configfile loading cannot say (the YAML line), and every
    check the workflow makes at load, on the files merged as --configfile merges them."""
    ok = _check_config("config/config.yaml")
    assert ok.returncode == 0 and ok.stdout.strip() == "config/config.yaml: valid (6 models, 5 datasets)", ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: a\n   source: hub\n")
    result = _check_config("config/config.yaml", bad)
    assert result.returncode == 2
    assert result.stderr.startswith(f"brainalign: error: {bad}: line 3, column 4: YAML syntax error:") and result.stderr.count("\n") == 1
    moved = tmp_path / "moved.yaml"
    moved.write_text("datasets:\n  - {name: tuckute2024, adapter: tuckute2024, local_dir: resources/data/tuckute2042}\n")
    result = _check_config("config/config.yaml", moved)
    assert result.returncode == 2 and result.stderr.strip() == (
        f"brainalign: error: config/config.yaml + {moved}: config.datasets[0].local_dir: folder 'resources/data/tuckute2042' of "
        f"dataset 'tuckute2024' does not exist (looked for {REPO}/resources/data/tuckute2042)")
    # from elsewhere, the Snakefile's folder as the base dir finds the relative local_dir, as the workflow does
    assert _check_config(REPO / "config" / "config.yaml", "--base-dir", REPO, cwd=tmp_path).returncode == 0


def test_the_workflow_stops_at_load_on_a_local_dir_that_does_not_exist(tmp_path):
    moved = tmp_path / "moved.yaml"
    moved.write_text("datasets:\n  - {name: tuckute2024, adapter: tuckute2024, local_dir: resources/data/tuckute2042}\n")
    result = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                             "-n", "--configfile", str(REPO / "config" / "config.yaml"), str(moved)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode != 0
    assert ("brainalign: config.datasets[0].local_dir: folder 'resources/data/tuckute2042' of dataset 'tuckute2024' does not exist "
            f"(looked for {tmp_path}/resources/data/tuckute2042 and {REPO}/resources/data/tuckute2042)") in result.stderr


# ----------------------------------------------------------------------------------------------- in a finished run
# Each fault is injected into a copy of one finished run of the reduced default (tests/conftest.py's small_run, shared
# with tests/test_workflow.py); the test checks the one-line error (the file and the command that fixes it), runs that
# command exactly as the error gives it, and checks that the score file comes back byte-identical to the unfaulted run.

MODEL, DATASET = "all-minilm-l6-v2", "tuckute2024"  # the cheapest chain of the reduced default (a 22M encoder, 7 layers)
SHARD = f"results/activations/{MODEL}/{DATASET}.h5"
SCORES = f"results/scores/{MODEL}/{DATASET}.csv"
PART = f"results/encoding/{MODEL}/{DATASET}/part0"


@pytest.fixture
def faulted_run(small_run, tmp_path):
    """A copy of the finished run (Snakemake sees it as finished) and its config."""
    from tests.support.workflow import copy_run

    workdir, config = small_run
    run = copy_run(workdir, tmp_path / "run")
    planned = snakemake_in(run, config, "-n", "--cores", "2", SCORES)
    assert "Nothing to be done" in planned.stdout + planned.stderr  # the copy is as finished as the run
    return run, config, workdir


def snakemake_in(workdir, config, *args, check=True):
    from tests.support.workflow import snakemake

    return snakemake(workdir, *args, configfile=config, check=check)


def _one_line_error(result, path: str) -> str:
    """The command the failed run's one-line error names for ``path`` (checked: every error line names the file and
    gives the same command; the job's log has no traceback)."""
    import re

    assert result.returncode != 0
    lines = {line.split(" ERROR ", 1)[-1] for line in (result.stdout + result.stderr).splitlines() if "brainalign: error in rule" in line}
    assert lines, result.stderr[-3000:]
    commands = set()
    for line in lines:
        assert f": {path}" in line, line
        commands.update(re.findall(r"`(snakemake [^`]+)`", line))
        log = re.search(r"; log: (\S+):", line).group(1)
        assert "Traceback" not in (Path(result.args[result.args.index("--directory") + 1]) / log).read_text()
    assert len(commands) == 1, lines
    return commands.pop()


def _apply_fix(workdir, config, command: str):
    import shlex

    words = shlex.split(command)
    assert words[0] == "snakemake"
    return snakemake_in(workdir, config, *words[1:])


def _same_scores(run, reference):
    assert (run / SCORES).read_bytes() == (reference / SCORES).read_bytes()


@pytest.mark.slow
def test_a_truncated_shard_in_a_finished_run_names_its_rebuild_and_recovers(faulted_run):
    run, config, reference = faulted_run
    data = (run / SHARD).read_bytes()
    (run / SHARD).write_bytes(data[: len(data) // 2])  # a disk that filled up, a copy cut short
    failed = snakemake_in(run, config, "--cores", "2", SCORES, check=False)
    command = _one_line_error(failed, f"{SHARD}: unreadable (")
    assert command == f"snakemake --cores 2 {SHARD} --forcerun run_model"
    _apply_fix(run, config, command)
    snakemake_in(run, config, "--cores", "2", SCORES)
    _same_scores(run, reference)


@pytest.mark.slow
def test_a_nan_in_a_shard_names_its_rebuild_and_recovers(faulted_run):
    run, config, reference = faulted_run
    with h5py.File(run / SHARD, "r+") as handle:
        handle["layers"]["encoder.layer.3"][5, 7] = np.nan
    failed = snakemake_in(run, config, "--cores", "2", SCORES, check=False)
    command = _one_line_error(failed, f"{SHARD}: layer 'encoder.layer.3' holds 1 non-finite values (NaN or Inf)")
    assert command == f"snakemake --cores 2 {SHARD} --forcerun run_model"
    # the failed job kept the layers it had fitted before the NaN one: made from the damaged shard
    assert len(list((run / f"{PART}.partial").glob("*.json"))) == 4  # the embeddings and encoder.layer.0-2
    _apply_fix(run, config, command)
    snakemake_in(run, config, "--cores", "2", SCORES)
    assert "(shard differ); discarding it" in (run / f"logs/fit_encoding/{MODEL}/{DATASET}/part0.log").read_text()
    _same_scores(run, reference)


@pytest.mark.slow
def test_an_encoding_partial_made_from_another_shard_is_discarded_and_the_scores_recover(faulted_run, monkeypatch):
    """An encoding job killed after two layers, then the shard changed under it (re-extracted: here with the run's own
    settings again, a new file with the run's bytes): the re-run discards the kept layers, made from the shard as it
    was, with a log line, instead of scoring them."""
    import shutil

    from brainalign.options import EncodingOptions

    run, config, reference = faulted_run
    options = EncodingOptions.from_dict(json.loads(next((run / PART).glob("*.json")).read_text())["options"])
    (run / SHARD).unlink()
    shutil.copy2(reference / SHARD, run / SHARD)
    with h5py.File(run / SHARD, "r+") as handle:  # the shard as another extraction made it (bfloat16 products)
        handle.attrs["matmul_dtype"] = "bfloat16"
        for layer in handle["layers"].values():
            layer[...] = layer[...] * 0.5 + 0.1
    shutil.rmtree(run / PART)  # Snakemake removes a killed job's output; its .partial folder stays
    _killed_encoding_job(run / SHARD, run / "results/datasets" / DATASET, run / PART, monkeypatch, options)
    (run / SHARD).unlink()
    shutil.copyfile(reference / SHARD, run / SHARD)  # re-extracted: a new file (Snakemake sees it newer) with the run's bytes
    snakemake_in(run, config, "--cores", "2", SCORES)
    log = (run / f"logs/fit_encoding/{MODEL}/{DATASET}/part0.log").read_text()
    assert f"{PART}.partial: kept from an earlier, interrupted run with other inputs (shard differ); discarding it" in log
    _same_scores(run, reference)


@pytest.mark.slow
def test_a_corrupt_prepared_dataset_names_its_rebuild_and_recovers(faulted_run):
    """A prepared dataset damaged in a finished run (Snakemake cannot see it: the folder's stamp is unchanged) stops
    the next job that reads it (here the README's re-read command) with the command that rebuilds the folder."""
    run, config, reference = faulted_run
    data = run / "results/datasets" / DATASET / "data.h5"
    data.write_bytes(data.read_bytes()[:2000])
    failed = snakemake_in(run, config, "--cores", "2", SCORES, "--forcerun", "run_model", check=False)
    command = _one_line_error(failed, f"results/datasets/{DATASET}/data.h5: unreadable (")
    assert command == f"snakemake --cores 2 results/datasets/{DATASET} --forcerun prepare_dataset"
    _apply_fix(run, config, command)
    snakemake_in(run, config, "--cores", "2", SCORES)
    for name in ("data.h5", "stimuli.tsv", "meta.json"):
        assert (data.parent / name).read_bytes() == (reference / "results/datasets" / DATASET / name).read_bytes()
    _same_scores(run, reference)
