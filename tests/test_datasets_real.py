"""Every offline adapter on the real shipped files (resources/data): shapes, ids, a few known values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import gamma

from brainalign.datasets import fetch_dataset, load_prepared, prepare_dataset


@pytest.fixture(scope="module")
def prepared(resources_data, tmp_path_factory):
    """Fetch (local copy, checksums verified) + prepare each default dataset once."""
    root = tmp_path_factory.mktemp("real")

    def run(name, adapter):
        spec = {"name": name, "adapter": adapter, "local_dir": str(resources_data / name)}
        fetch_dataset(spec, root / "raw" / name)
        prepare_dataset(spec, root / "raw" / name, root / "ds" / name)
        return load_prepared(root / "ds" / name)

    return run


def test_tuckute2024(prepared):
    ds = prepared("tuckute2024", "tuckute2024")
    assert ds.responses.shape == (1, 2000, 1) and ds.subjects == ["average"] and ds.kind == "sentence"
    assert ds.stimuli["condition"].value_counts().to_dict() == {"baseline": 1000, "drive": 500, "suppress": 500}
    assert (ds.stimuli["group"] == ds.stimuli["stimulus_id"]).all() and ds.meta["context"] == "sentence"
    first = ds.stimuli.iloc[0]
    assert first["text"] == '"I think it\'s overblown," he said.' and first["condition"] == "baseline"
    assert ds.responses[0, 0, 0] == pytest.approx(0.1843253782985243)
    assert ds.responses[0, 1, 0] == pytest.approx(0.3728182468563318)


def test_pereira2018_averaged_every_sentence_gets_a_passage(prepared):
    ds = prepared("pereira2018", "pereira2018_averaged")
    st = ds.stimuli
    assert ds.responses.shape == (1, 627, 1)
    assert st["experiment"].value_counts().to_dict() == {384: 384, 243: 243}
    assert st.groupby("experiment")["group"].nunique().to_dict() == {243: 72, 384: 96}
    assert st["group"].notna().all() and st["stimulus_id"].is_unique
    assert ds.meta["n_reworded"] == 52
    assert st.groupby("group")["position"].apply(lambda p: list(p) == list(range(len(p)))).all()
    row = st.index[st["text"].str.startswith("A banana is a long fruit")][0]
    assert ds.responses[0, row, 0] == pytest.approx(0.45079163)
    # reworded sentences landed in the right passage (dereferenced subject)
    he = st[st["text"] == "He hammers and bends hot iron on an anvil to change its shape."].iloc[0]
    assert he["text_stimulus_set"].startswith("A blacksmith hammers") and he["passage_label"].lower() == "blacksmith"


def test_brennan2016_timeseries(prepared, resources_data):
    ds = prepared("brennan2016", "brennan2016")
    assert ds.kind == "timeseries" and ds.meta["tr"] == 2.0
    assert ds.responses.shape == (27, 362, 6) and "s33" not in ds.subjects and ds.subjects[0] == "s18"
    assert ds.meta["exclusions"][0]["subject"] == "s33"
    assert ds.neuroids == ["LATL", "RATL", "LPTL", "LIPL", "LPreM", "LIFG"]
    assert len(ds.stimuli) == 2127 and ds.stimuli["text"].iloc[0] == "Alice"
    assert ds.stimuli["onset"].iloc[0] == pytest.approx(20.05891632653599)
    assert not ds.stimuli["text"].isin(["sp", ""]).any()
    assert ds.sample_times[0] == 20.0 and ds.sample_times[-1] == 20.0 + 2 * 361
    assert ds.responses[0, 0, 0] == pytest.approx(72.152703)
    data = resources_data / "brennan2016" / "alice_data_shared"
    rp = np.loadtxt(data / "s18-rp_epiRTwm2_scan_0004__003.txt")
    assert ds.nuisance.shape == (27, 362, 8)
    np.testing.assert_allclose(ds.nuisance[0, :, :6], rp[10:], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ds.nuisance[0, :, 7], np.loadtxt(data / "s18-rate.txt"), rtol=1e-6, atol=1e-12)


def test_brennan2016_scan_times_match_authors_rate_regressor(prepared, resources_data):
    """A word-rate regressor rebuilt from the TextGrid, convolved with a canonical HRF and sampled at the prepared
    scan times, must match the authors' s18-rate.txt better than at any other whole-second offset."""
    ds = prepared("brennan2016", "brennan2016")
    dt = 0.05
    clock = np.arange(0, 800, dt)
    impulses = np.zeros_like(clock)
    np.add.at(impulses, (ds.stimuli["onset"].to_numpy() / dt).astype(int), 1)
    h = np.arange(0, 32, dt)
    regressor = np.convolve(impulses, gamma.pdf(h, 6) - gamma.pdf(h, 16) / 6)[: len(clock)]
    rate = np.loadtxt(resources_data / "brennan2016" / "alice_data_shared" / "s18-rate.txt")
    r = {shift: np.corrcoef(regressor[((ds.sample_times + shift) / dt).astype(int)], rate)[0, 1] for shift in range(-6, 7)}
    assert max(r, key=r.get) == 0 and r[0] > 0.98


def test_naturalstories_reading(prepared):
    ds = prepared("naturalstories", "naturalstories")
    st = ds.stimuli
    assert ds.kind == "reading" and ds.responses.shape == (1, 10256, 2) and ds.neuroids == ["rt_mean", "rt_gmean"]
    assert st["group"].nunique() == 10 and st["text"].iloc[0] == "If" and st["text"].iloc[9] == "England,"
    assert (st.groupby("sentence_id")["word_in_sentence"].min() == 1).all()
    assert st["word_in_sentence"].iloc[0] == 1 and not np.isnan(ds.responses).any()
    row = st.index[(st["item"] == 9) & (st["zone"] == 344)][0]
    assert st["text"].iloc[row] == "'Admiral"
    assert ds.responses[0, row].tolist() == pytest.approx([426.0921052631579, 395.07569043707156])


def test_frank2013_reading(prepared):
    ds = prepared("frank2013", "frank2013")
    assert ds.responses.shape == (43, 1931, 3) and ds.neuroids == ["first_fixation", "first_pass", "go_past"]
    assert ds.stimuli["group"].nunique() == 205 and ds.stimuli["text"].iloc[0] == "Anne"
    assert ds.responses[0, 0].tolist() == [216.0, 348.0, 348.0] and ds.responses[0, 2].tolist() == [144.0, 144.0, 208.0]
    assert np.nanmin(ds.responses) > 0  # 0 = not fixated became NaN
    assert 0.2 < np.isnan(ds.responses).mean() < 0.5


def test_subset_option_keeps_the_first_groups(tmp_path, resources_data):
    """`options: {subset: N}` (quick runs on real data) keeps whole groups and their responses."""
    from brainalign.datasets import fetch_dataset, load_prepared, prepare_dataset

    spec = {"name": "ns", "adapter": "naturalstories", "local_dir": str(resources_data / "naturalstories"), "options": {"subset": 2}}
    fetch_dataset(spec, tmp_path / "raw")
    prepare_dataset(spec, tmp_path / "raw", tmp_path / "prepared")
    full_spec = dict(spec, options={})
    prepare_dataset(full_spec, tmp_path / "raw", tmp_path / "full")
    small, full = load_prepared(tmp_path / "prepared"), load_prepared(tmp_path / "full")
    assert small.stimuli["group"].nunique() == 2
    n = len(small.stimuli)
    assert n < len(full.stimuli)
    assert small.stimuli["stimulus_id"].tolist() == full.stimuli["stimulus_id"].tolist()[:n]
    np.testing.assert_array_equal(small.responses, full.responses[:, :n])
