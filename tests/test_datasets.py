"""Prepared format, prepare_dataset validation, and the paper adapters on small STRUCTURAL fixtures built here in
the real on-disk layout (random numbers, not data)."""

from __future__ import annotations

import types

import h5py
import numpy as np
import pandas as pd
import pytest

from brainalign.datasets import ADAPTERS, load_prepared, prepare_dataset
from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.errors import BrainalignError

RNG = np.random.default_rng(0)


def _sentence_ds(n=6, neuroids=3, subjects=("a", "b")):
    stimuli = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)], "text": [f"Sentence {i}." for i in range(n)],
                            "group": ["g0"] * 3 + ["g1"] * (n - 3), "position": [0, 1, 2] + list(range(n - 3))})
    meta = {"name": "toy", "kind": "sentence", "description": "toy", "source": "test", "licence": "none",
            "provenance": "test", "context": "group", "group_averaged": False}
    responses = RNG.normal(size=(len(subjects), n, neuroids)).astype(np.float32)
    return PreparedDataset(stimuli, responses, list(subjects), [f"n{j}" for j in range(neuroids)], meta=meta)


@pytest.fixture
def toy_adapter(monkeypatch):
    """Registers adapter 'toy' whose prepare writes whatever dataset the test puts in ``module.ds``."""
    module = types.SimpleNamespace(NAME="toy", KIND="sentence", REMOTE_FILES=[])
    module.prepare = lambda raw, out, options: write_prepared(module.ds, out)
    monkeypatch.setitem(ADAPTERS, "toy", module)
    return module


def test_roundtrip_and_deterministic_bytes(tmp_path):
    ds = _sentence_ds()
    ds.stimuli["text"] = ["NA", "null", "", "x", "y", "z"][:1] + ds.stimuli["text"].tolist()[1:]
    write_prepared(ds, tmp_path / "a")
    write_prepared(ds, tmp_path / "b")
    for name in ("stimuli.tsv", "data.h5", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    back = load_prepared(tmp_path / "a")
    assert back.stimuli["text"].iloc[0] == "NA"  # a word "NA" must not become a missing value
    np.testing.assert_array_equal(back.responses, ds.responses)
    assert back.responses.dtype == np.float32 and back.subjects == ["a", "b"] and back.sample_times is None


def test_nan_and_constant_neuroids_excluded_and_recorded(tmp_path, toy_adapter):
    ds = _sentence_ds(neuroids=4)
    ds.responses[1, 2, 1] = np.nan
    ds.responses[0, :, 2] = 5.0
    toy_adapter.ds = ds
    prepare_dataset({"name": "toy", "adapter": "toy"}, tmp_path, tmp_path / "out")
    out = load_prepared(tmp_path / "out")
    assert out.neuroids == ["n0", "n3"] and out.responses.shape == (2, 6, 2)
    reasons = {e["neuroid"]: e["reason"] for e in out.meta["exclusions"]}
    assert reasons["n1"].startswith("NaN in 1 of 12 values (subjects b)") and "constant" in reasons["n2"]


def test_all_neuroids_bad_is_an_error(tmp_path, toy_adapter):
    ds = _sentence_ds(neuroids=1)
    ds.responses[:] = 0
    toy_adapter.ds = ds
    with pytest.raises(BrainalignError, match="every neuroid is NaN or constant"):
        prepare_dataset({"name": "toy", "adapter": "toy"}, tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("problem, message", [
    ("dup_ids", "stimulus_id not unique"),
    ("rows", "responses have 5 samples but stimuli.tsv has 6 rows"),
    ("kind", "meta kind is 'fmri'"),
    ("inf", "infinite values"),
])
def test_invalid_datasets_rejected(tmp_path, toy_adapter, problem, message):
    ds = _sentence_ds()
    if problem == "dup_ids":
        ds.stimuli.loc[1, "stimulus_id"] = "s0"
    elif problem == "rows":
        ds.responses = ds.responses[:, :5]
    elif problem == "kind":
        ds.meta["kind"] = "fmri"
    else:
        ds.responses[0, 0, 0] = np.inf
    toy_adapter.ds = ds
    with pytest.raises(BrainalignError, match=message):
        prepare_dataset({"name": "toy", "adapter": "toy"}, tmp_path, tmp_path / "out")


def test_load_prepared_missing_file(tmp_path):
    write_prepared(_sentence_ds(), tmp_path / "d")
    (tmp_path / "d" / "data.h5").unlink()
    with pytest.raises(BrainalignError, match="data.h5: missing"):
        load_prepared(tmp_path / "d")


# ---- paper adapters on structural fixtures in the real on-disk layout --------------------------------------------

def _write_assembly(path, values, presentation: dict, neuroid: dict):
    """A NetCDF4-style HDF5 file like xarray writes: 2-D data variable + 1-D coordinate variables."""
    with h5py.File(path, "w") as h5:
        h5.create_dataset("__xarray_dataarray_variable__", data=values)
        for name, column in {**presentation, **neuroid}.items():
            column = np.asarray(column)
            if column.dtype.kind in "UO":
                h5.create_dataset(name, data=column.astype(object), dtype=h5py.string_dtype())
            else:
                h5.create_dataset(name, data=column)


def test_pereira2018_assembly(tmp_path):
    from brainalign.datasets import pereira2018

    experiments = ["243sentences"] * 6 + ["384sentences"] * 4
    presentation = {"stimulus_id": [f"{e}.{i}" for e, i in zip(experiments, [0, 1, 2, 3, 4, 5, 0, 1, 2, 3])],
                    "sentence": [f"Sentence {i}." for i in range(10)], "experiment": experiments,
                    "passage_index": [2, 2, 1, 1, 1, 3, 1, 1, 2, 2], "passage_label": ["p"] * 10}
    subjects = ["018"] * 3 + ["426"] * 2 + ["018"]
    neuroid = {"subject": subjects, "voxel_num": [10, 11, 12, 5, 6, 13], "atlas": ["language"] * 5 + ["auditory"]}
    values = RNG.normal(size=(10, 6))
    values[:6, 3:5] = np.nan  # subject 426 only ran experiment 384
    _write_assembly(tmp_path / pereira2018.FILE, values, presentation, neuroid)
    spec = {"name": "p243", "adapter": "pereira2018", "options": {"experiment": 243}}
    prepare_dataset(spec, tmp_path, tmp_path / "out")
    ds = load_prepared(tmp_path / "out")
    assert ds.subjects == ["pooled"] and ds.neuroids == ["018.10", "018.11", "018.12"]
    assert ds.neuroid_subjects == ["018"] * 3
    assert ds.stimuli["stimulus_id"].tolist() == [f"243sentences.{i}" for i in (2, 3, 4, 0, 1, 5)]
    assert ds.stimuli["group"].tolist()[:4] == ["243sentences.passage1"] * 3 + ["243sentences.passage2"]
    np.testing.assert_allclose(ds.responses[0, 0], values[2, :3], rtol=1e-6)
    assert ds.meta["exclusions"][0]["subject"] == "426" and ds.meta["published_ceiling"] == pytest.approx(0.35378928)
    with pytest.raises(BrainalignError, match="options: .experiment. is a required property"):
        prepare_dataset({**spec, "options": {}}, tmp_path, tmp_path / "out2")


def test_blank2014_assembly(tmp_path):
    from brainalign.datasets import blank2014

    stories = ["Boar"] * 3 + ["Aqua"] * 2
    presentation = {"stimulus_id": [f"f{i}" for i in range(5)], "sentence": ["If you", "were to", "journey", "Aqua a", "b c"],
                    "story": stories}
    subj = [s for s in ("061", "085") for _ in range(2)]
    neuroid = {"subject_UID": subj, "fROI_area": ["LH_IFG", "LH_AntTemp"] * 2}
    values = RNG.normal(size=(5, 4))
    _write_assembly(tmp_path / blank2014.FILE, values, presentation, neuroid)
    prepare_dataset({"name": "blank2014", "adapter": "blank2014"}, tmp_path, tmp_path / "out")
    ds = load_prepared(tmp_path / "out")
    assert ds.responses.shape == (2, 5, 2) and ds.neuroids == ["LH_AntTemp", "LH_IFG"] and ds.subjects == ["061", "085"]
    assert ds.stimuli["group"].tolist() == ["Aqua", "Aqua", "Boar", "Boar", "Boar"]
    assert ds.stimuli["text"].iloc[2] == "If you"
    np.testing.assert_allclose(ds.responses[1, 2], [values[0, 3], values[0, 2]], rtol=1e-6)
    assert ds.sample_times.tolist() == [0, 2, 0, 2, 4] and (ds.stimuli["onset"].to_numpy() == ds.sample_times).all()


def test_blank2014_stimulus_texts_exist(shared_data):
    """The real Blank2014 stimulus file (text side): 8 Natural Stories."""
    stories = np.load(shared_data / "blank2014_stimuli" / "story_data_dict.npz", allow_pickle=True)
    assert len(stories.files) >= 8


def test_futrell2018_processed_rts(tmp_path, resources_data):
    tok = pd.read_csv(resources_data / "naturalstories" / "all_stories.tok", sep="\t", keep_default_na=False, quoting=3)
    tok.to_csv(tmp_path / "all_stories.tok", sep="\t", index=False)
    rows = tok.iloc[[0, 1, 5, 200]]
    rts = pd.DataFrame({"WorkerId": ["A2", "A2", "A1", "A1"], "WorkTimeInSeconds": 1, "correct": 6,
                        "item": rows["item"].to_numpy(), "zone": rows["zone"].to_numpy(), "RT": [300, 310, 280, 500],
                        "word": rows["word"].to_numpy()})
    rts.to_csv(tmp_path / "processed_RTs.tsv", sep="\t", index=False)
    prepare_dataset({"name": "futrell2018", "adapter": "futrell2018"}, tmp_path, tmp_path / "out")
    ds = load_prepared(tmp_path / "out")
    assert ds.responses.shape == (2, 10256, 1) and ds.subjects == ["A1", "A2"]
    assert ds.responses[1, 0, 0] == 300 and ds.responses[0, 200, 0] == 500 and np.isnan(ds.responses[0, 0, 0])
    assert int(np.isfinite(ds.responses).sum()) == 4
    rts.loc[0, "word"] = "Wrong"
    rts.to_csv(tmp_path / "processed_RTs.tsv", sep="\t", index=False)
    with pytest.raises(BrainalignError, match="word 'Wrong' at item 1 zone 1 differs"):
        prepare_dataset({"name": "futrell2018", "adapter": "futrell2018"}, tmp_path, tmp_path / "out2")


def test_wehbe2014_mat_files(tmp_path):
    from scipy.io import savemat

    from brainalign.datasets import wehbe2014

    n_tr, n_vox = 8, 5
    time = np.column_stack([np.arange(n_tr) * 2.0 + 20, [1] * 4 + [2] * 4])
    words = np.zeros((1, 6), dtype=[("text", "O"), ("start", "O")])
    for i, w in enumerate(["Harry", "had", "never", "+", "believed", "he"]):
        words[0, i] = (np.array([w]), np.array([[20.0 + 0.5 * i + (8 if i > 3 else 0)]]))
    roi = {}
    for number, letter in enumerate(wehbe2014.SUBJECTS, 1):
        savemat(tmp_path / f"subject_{number}.mat", {"data": RNG.normal(size=(n_tr, n_vox)) + number, "time": time, "words": words})
        roi[letter] = {"all": np.array([0, 3])}
    np.save(tmp_path / wehbe2014.ROI_FILE, roi, allow_pickle=True)
    prepare_dataset({"name": "wehbe2014", "adapter": "wehbe2014"}, tmp_path, tmp_path / "out")
    ds = load_prepared(tmp_path / "out")
    assert ds.responses.shape == (1, n_tr, 16) and ds.neuroids[:2] == ["F.0", "F.3"] and ds.neuroid_subjects[-1] == "N"
    assert ds.stimuli["text"].tolist() == ["Harry", "had", "never", "+", "believed", "he"]
    assert ds.stimuli["onset"].iloc[4] == 30.0 and ds.stimuli["offset"].iloc[4] == 30.5
    assert ds.stimuli["run"].tolist() == [1, 1, 1, 1, 2, 2] and ds.sample_groups.tolist() == ["run1"] * 4 + ["run2"] * 4
    # each word's group is its scans' run (sample_groups), position counts within the run
    assert ds.stimuli["group"].tolist() == ["run1"] * 4 + ["run2"] * 2 and ds.stimuli["position"].tolist() == [0, 1, 2, 3, 0, 1]
    assert ds.sample_times.tolist() == time[:, 0].tolist()


def test_every_adapter_is_registered_under_its_module_name():
    from brainalign.datasets import get_adapter

    for name in list(ADAPTERS):
        adapter = get_adapter(name)
        assert adapter.NAME == name and callable(adapter.prepare)
