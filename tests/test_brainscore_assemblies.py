"""Brain-Score Language 2.3.0's own assemblies as datasets: ``futrell2018_assembly`` (the paper's Futrell 2018),
``fedorenko2016`` and ``tuckute2024_assembly``.

The fixtures (tests/miniature/data/assy_*.nc) were written by Brain-Score's own ``write_netcdf`` with the
coordinates of its packaging code, and ``planted.json`` records what Brain-Score's own loader (and, for Futrell,
its Futrell2018-pearsonr code) read back from each file (tests/miniature/make_assemblies.py). Each test downloads
the file from the miniature's loopback server through the real fetch code (sha1 checked, as brainio checks it),
prepares it with the adapter, and compares with that record: coordinates, order, values, the sentence-initial
words Brain-Score drops, its mean-over-readers target, ceiling and score.
"""

from __future__ import annotations

import glob
import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from brainalign.behaviour.scoring import behaviour_score_file, brainscore_rt_ceiling
from brainalign.datasets import fetch_dataset, get_adapter, load_prepared, prepare_dataset
from brainalign.datasets.brainscore_assembly import BUCKET_URL, assembly_filename
from brainalign.datasets.naturalstories import sentence_numbers
from brainalign.datasets.netcdf import read_assembly
from brainalign.errors import BrainalignError
from tests.support import miniature as mini
from tests.support.miniature.designs import FEDORENKO_PLANTED, FEDORENKO_SUBJECTS

ADAPTERS = ("futrell2018_assembly", "fedorenko2016", "tuckute2024_assembly")
IDENTIFIERS = {"futrell2018_assembly": "Futrell2018", "fedorenko2016": "Fedorenko2016.language",
               "tuckute2024_assembly": "Tuckute2024.language"}
SECOND_DIM = {"futrell2018_assembly": "subject", "fedorenko2016": "neuroid", "tuckute2024_assembly": "neuroid"}
PLANTED = json.loads((mini.FIXTURES / "planted.json").read_text())


def record(adapter: str) -> dict:
    return PLANTED["datasets"][adapter]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The three fixtures in the miniature's raw-file layout, behind its loopback server."""
    root = tmp_path_factory.mktemp("bsl-assemblies")
    mini.write_raw_files(root / "data", set(ADAPTERS))
    with mini.MiniatureServer(root) as server:
        yield root, server


def spec_for(adapter: str, server, checksum: str | None = None) -> dict:
    """A config entry that downloads the fixture from the server; the fixture's own sha1 (from planted.json)
    replaces the real file's, so the sha1 check runs as for the real file."""
    filename = get_adapter(adapter).REMOTE_FILES[0][0]
    return {"name": adapter, "adapter": adapter, "base_url": f"{server.url}/data/{mini.RAW_FOLDERS[adapter]}",
            "options": {"checksums": {filename: checksum or f"sha1:{record(adapter)['sha1']}"}}}


@pytest.fixture(scope="module")
def prepared(served, tmp_path_factory):
    """adapter -> the prepared dataset, fetched over HTTP and prepared once."""
    _, server = served
    out = {}
    for adapter in ADAPTERS:
        work = tmp_path_factory.mktemp(adapter)
        fetch_dataset(spec_for(adapter, server), work / "raw")
        fetched = json.loads((work / "raw" / "fetch.json").read_text())
        assert all(f["verified"] for f in fetched["files"]), fetched
        prepare_dataset(spec_for(adapter, server), work / "raw", work / "prepared")
        out[adapter] = load_prepared(work / "prepared")
    return out


# ------------------------------------------------------------------------------------------------ sources
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_remote_file_is_brainscores_s3_file(adapter):
    filename, url, checksum, size = get_adapter(adapter).REMOTE_FILES[0]
    identifier = IDENTIFIERS[adapter]
    assert filename == "assy_" + identifier.replace(".", "_") + ".nc" == assembly_filename(identifier)
    assert url == f"https://brainscore-storage.s3.amazonaws.com/brainscore-language/{filename}" == f"{BUCKET_URL}/{filename}"
    assert re.fullmatch(r"sha1:[0-9a-f]{40}", checksum) and size is None
    assert (mini.FIXTURES / filename).is_file() and record(adapter)["file"] == filename


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_sha1_is_the_one_brainscore_language_registers(adapter):
    """Cross-check with the installed brainscore_language source (skipped where it is not installed)."""
    name = {"futrell2018_assembly": "futrell2018", "fedorenko2016": "fedorenko2016",
            "tuckute2024_assembly": "tuckute2024"}[adapter]
    sources = glob.glob(f"/tmp/bsl/lib/python3*/site-packages/brainscore_language/data/{name}/__init__.py")
    if not sources:
        pytest.skip("brainscore_language not installed in /tmp/bsl")
    text = Path(sources[0]).read_text()
    identifier, sha1 = re.search(r'identifier="([^"]+)",\s*sha1="([0-9a-f]{40})"', text).groups()
    assert identifier == IDENTIFIERS[adapter]
    assert get_adapter(adapter).REMOTE_FILES[0][2] == f"sha1:{sha1}"


# ------------------------------------------------------------------------------------------------ Brain-Score's reading
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_coordinates_and_values_are_those_brainscore_reads(adapter, prepared):
    loaded = record(adapter)["loaded"]
    second = SECOND_DIM[adapter]
    values, pres, other = read_assembly(mini.FIXTURES / record(adapter)["file"], ("presentation", second))
    assert loaded["dims"] == ["presentation", second]
    assert sorted(pres.columns) == loaded["coords"]["presentation"] and sorted(other.columns) == loaded["coords"][second]
    ds = prepared[adapter]
    assert ds.stimuli["stimulus_id"].tolist() == [str(v) for v in loaded["stimulus_id"]]
    ids = [str(v) for v in loaded[f"{second}_ids"]]
    if adapter == "futrell2018_assembly":  # readers x words x rt
        grid = ds.responses[:, :, 0].T.astype(float)
        assert ds.subjects == ids and ds.neuroids == ["rt"]
    elif adapter == "fedorenko2016":  # pooled electrodes "<subject_UID>.<neuroid_id>"
        grid = ds.responses[0].astype(float)
        assert ds.subjects == ["pooled"] and [n.split(".", 1)[1] for n in ds.neuroids] == ids
    else:  # one averaged response, named by its roi
        grid = ds.responses[0].astype(float)
        assert ds.subjects == ["average"] and ds.neuroids == ["lang_LH_netw"]
    assert list(grid.shape) == loaded["shape"] and int(np.isnan(grid).sum()) == loaded["n_nan"]
    np.testing.assert_allclose(np.nansum(grid, axis=1), loaded["row_sums"], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(np.nansum(grid, axis=0), loaded["column_sums"], rtol=1e-5, atol=1e-4)


def test_futrell_keeps_brainscores_sentences_and_drops_exactly_its_initial_words(prepared):
    ds, loaded = prepared["futrell2018_assembly"], record("futrell2018_assembly")["loaded"]
    stimuli = ds.stimuli
    initial = stimuli["word_in_sentence"].to_numpy() == 1  # what the brainscore-2023 protocol drops
    assert stimuli.loc[initial, "stimulus_id"].tolist() == [str(v) for v in loaded["initial_stimulus_ids"]]
    assert stimuli.loc[~initial, "stimulus_id"].tolist() == [str(v) for v in loaded["target_stimulus_ids"]]
    design = mini.futrell_assembly_design()
    assert stimuli["sentence_id"].tolist() == design["sentence_id"]
    assert stimuli["word_within_sentence_id"].tolist() == stimuli["word_in_sentence"].tolist()
    assert ds.meta["n_sentences"] == len(set(design["sentence_id"])) and ds.meta["published_ceiling"] == 0.858
    # a punctuation rule (the realigned-TSV adapter's) starts more sentences on the same words: the fixture tells
    # Brain-Score's rule apart from it, so keeping the file's coordinates is what makes the drop exact
    _, punctuation_within = sentence_numbers(stimuli["text"], stimuli["group"])
    assert (punctuation_within == 1).sum() > initial.sum()
    # Brain-Score's target: the mean over readers (missing RTs skipped) of the words it keeps
    rts = ds.responses[:, :, 0].astype(float)
    np.testing.assert_allclose(np.nanmean(rts, axis=0)[~initial], loaded["target"], rtol=1e-9)
    # its split-half ceiling, in the file's subject order
    assert brainscore_rt_ceiling(rts, seed=0) == pytest.approx(loaded["ceiling"], abs=1e-9)
    # context: one group per story, words in the file's order
    assert stimuli["group"].tolist() == [f"story{s:02d}" for s in design["story_id"]]
    assert stimuli["text"].tolist() == design["words"]


def test_the_fixtures_sentence_rule_gives_brainscores_481_sentences_on_the_real_corpus(resources_data):
    """The fixture's coordinates follow Brain-Score's packaging rule (designs.brainscore_sentence_numbers); on the real
    all_stories.tok it finds the 481 sentences Brain-Score's own data test asserts, every one of them also a sentence
    start for the punctuation rule of the realigned-TSV adapter, which starts 25 more (506)."""
    from brainalign.datasets.naturalstories import read_tok, reading_stimuli

    tok = read_tok(resources_data / "naturalstories" / "all_stories.tok")
    sentence, within = mini.brainscore_sentence_numbers(tok["word"].tolist())
    assert len(set(sentence)) == 481 and sentence == sorted(sentence)
    punctuation = reading_stimuli(tok)
    assert punctuation["sentence_id"].nunique() == 506
    brainscore_initial = np.asarray(within) == 1
    punctuation_initial = punctuation["word_in_sentence"].to_numpy() == 1
    assert not (brainscore_initial & ~punctuation_initial).any()
    assert (punctuation_initial & ~brainscore_initial).sum() == 25


def test_futrell_behaviour_stage_reproduces_brainscores_score(prepared, tmp_path):
    """The behaviour stage, unchanged, on the prepared assembly with the design's unigram surprisal as the model's:
    its brainscore-2023 row equals Brain-Score's Futrell2018-pearsonr |r| computed on the same file."""
    ds, loaded = prepared["futrell2018_assembly"], record("futrell2018_assembly")["loaded"]
    from brainalign.datasets.base import write_prepared

    write_prepared(ds, tmp_path / "data")
    bits = np.asarray(mini.futrell_assembly_design()["surprisal"], dtype=float)
    table = ds.stimuli[["stimulus_id", "group", "text"]].assign(surprisal_bits=bits, n_tokens=1)
    table.to_csv(tmp_path / "s.tsv", sep="\t", index=False)
    (tmp_path / "s.json").write_text(json.dumps({"applicable": True, "reading": "causal", "perplexity": 10.0,
                                                 "n_tokens": len(bits)}))
    frame = behaviour_score_file(tmp_path / "s.tsv", tmp_path / "data", tmp_path / "b.csv", "unigram",
                                 "futrell2018", {"n_bootstrap": 0})
    row = frame[(frame["metric"] == "surprisal_r") & (frame["protocol"] == "brainscore-2023")].iloc[0]
    assert row["raw_r"] == pytest.approx(loaded["surprisal_abs_r"], abs=1e-9)
    assert row["n"] == len(loaded["target"]) and row["ceiling"] == pytest.approx(0.858)


def test_fedorenko_words_are_read_in_their_sentence_and_folds_keep_sentences(prepared):
    ds = prepared["fedorenko2016"]
    design = mini.fedorenko_design()
    stimuli = ds.stimuli
    assert ds.meta["split_coord"] == "sentence_id" and ds.meta["context"] == "group" and ds.meta["kind"] == "sentence"
    assert stimuli["text"].tolist() == [r["word"] for r in design["presentation"]]
    assert stimuli["sentence_id"].tolist() == [r["sentence_id"] for r in design["presentation"]]
    assert stimuli.groupby("group")["sentence_id"].nunique().eq(1).all()  # one sentence per context group
    assert stimuli.groupby("sentence_id")["group"].nunique().eq(1).all()
    assert stimuli["position"].tolist() == [r["word_num"] for r in design["presentation"]]
    assert ds.neuroid_subjects == [str(v["subject_UID"]) for v in design["neuroid"]]
    assert stimuli["brainscore_order"].tolist() == list(range(len(stimuli)))  # the file is in sentence order


def test_fedorenko_gives_brainscores_grouped_splits(prepared):
    """The contract with the brainscore protocols: meta split_coord names the stimuli column their grouped K-fold
    keeps together, and the split reads the sentence ids and the file order from the prepared data."""
    from brainalign.encoding.protocols.brainscore_splits import brainscore_split, group_kfold

    ds = prepared["fedorenko2016"]
    split = brainscore_split(ds, len(ds.stimuli))
    assert split.problem is None and split.coord == "sentence_id"
    assert split.groups.tolist() == ds.stimuli["sentence_id"].tolist()
    for train, test in group_kfold(split, "brainscore-ridge"):
        assert not set(split.groups[train]) & set(split.groups[test])


def test_tuckute_keeps_brainscores_stimulus_ids_one_sentence_each(prepared):
    ds = prepared["tuckute2024_assembly"]
    design = mini.tuckute_assembly_design()
    assert ds.stimuli["stimulus_id"].tolist() == [str(i) for i in design["item_id"]]
    assert ds.stimuli["text"].tolist() == design["sentence"]
    assert (ds.stimuli["group"] == ds.stimuli["stimulus_id"]).all() and ds.meta["context"] == "sentence"
    assert set(ds.stimuli["condition"]) == {"baseline"} and ds.meta["group_averaged"]
    assert ds.meta["averaged_subjects"] == ["848-853-865-875-876"]


# ------------------------------------------------------------------------------------------------ planted signal
def test_planted_signal_survives(prepared):
    futrell = prepared["futrell2018_assembly"]
    words = futrell.stimuli["text"].str.lower().str.strip(".,")
    marker = words.isin(mini.MARKERS).to_numpy(float)
    mean_rt = np.nanmean(futrell.responses[:, :, 0], axis=0)
    residual = mean_rt - 12 * words.str.len().to_numpy()  # the length effect is planted too
    assert np.corrcoef(marker, residual)[0, 1] > 0.3

    fedorenko = prepared["fedorenko2016"]
    feature = mini.fedorenko_design()["feature"]
    planted = {str(e) for e in record("fedorenko2016")["planted"]}
    r = np.array([np.corrcoef(feature, fedorenko.responses[0, :, j])[0, 1] for j in range(len(fedorenko.neuroids))])
    is_planted = np.array([n.split(".", 1)[1] in planted for n in fedorenko.neuroids])
    assert is_planted.sum() == FEDORENKO_PLANTED * len(FEDORENKO_SUBJECTS)
    assert r[is_planted].min() > 0.4 and np.abs(r[~is_planted]).max() < 0.3

    tuckute = prepared["tuckute2024_assembly"]
    feature = [mini.marker_count(t) for t in tuckute.stimuli["text"]]
    assert np.corrcoef(feature, tuckute.responses[0, :, 0])[0, 1] > 0.7


# ------------------------------------------------------------------------------------------------ bad files
def _one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_wrong_sha1_is_a_one_line_error_and_leaves_no_file(served, tmp_path):
    _, server = served
    spec = spec_for("futrell2018_assembly", server)
    del spec["options"]  # the real file's sha1, which the fixture does not have
    with pytest.raises(BrainalignError) as excinfo:
        fetch_dataset(spec, tmp_path / "raw")
    message = _one_line_error(excinfo)
    assert "assy_Futrell2018.nc" in message and "sha1 mismatch" in message and "381ccc8038fbdb31235b5f3e1d350f359b5e287f" in message
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("adapter, dim, coordinate", [("futrell2018_assembly", "presentation", "word_within_sentence_id"),
                                                      ("futrell2018_assembly", "subject", "subject_id"),
                                                      ("fedorenko2016", "presentation", "sentence_id"),
                                                      ("fedorenko2016", "neuroid", "subject_UID"),
                                                      ("tuckute2024_assembly", "presentation", "stimulus_id")])
def test_missing_coordinate_is_a_one_line_error(adapter, dim, coordinate, tmp_path):
    filename = record(adapter)["file"]
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / filename).write_bytes((mini.FIXTURES / filename).read_bytes())
    with h5py.File(raw / filename, "a") as handle:
        del handle[coordinate]
    with pytest.raises(BrainalignError) as excinfo:
        get_adapter(adapter).prepare(raw, tmp_path / "out", {})
    message = _one_line_error(excinfo)
    assert filename in message and f"{dim} coordinates lack ['{coordinate}']" in message


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_file_that_is_not_netcdf_is_a_one_line_error(adapter, tmp_path):
    filename = record(adapter)["file"]
    (tmp_path / filename).write_text("<Error><Code>AccessDenied</Code></Error>\n")
    with pytest.raises(BrainalignError) as excinfo:
        get_adapter(adapter).prepare(tmp_path, tmp_path / "out", {})
    message = _one_line_error(excinfo)
    assert filename in message and "not a readable NetCDF4/HDF5 file" in message


def test_repeated_ids_and_non_integer_positions_are_one_line_errors(tmp_path):
    filename = record("futrell2018_assembly")["file"]
    for coordinate, value, expected in (("stimulus_id", 1, "coordinate stimulus_id repeats"),
                                        ("word_within_sentence_id", 0, "word_within_sentence_id below 1")):
        raw = tmp_path / coordinate
        raw.mkdir()
        (raw / filename).write_bytes((mini.FIXTURES / filename).read_bytes())
        with h5py.File(raw / filename, "a") as handle:
            data = handle[coordinate][()]
            data[:] = value
            handle[coordinate][...] = data
        with pytest.raises(BrainalignError) as excinfo:
            get_adapter("futrell2018_assembly").prepare(raw, tmp_path / f"out-{coordinate}", {})
        assert expected in _one_line_error(excinfo)


def test_fixture_texts_come_from_the_designs():
    """The committed files hold what the designs say, so the tiny tokenizers' corpus words are the fixtures'."""
    _, pres, _ = read_assembly(mini.FIXTURES / "assy_Futrell2018.nc", ("presentation", "subject"))
    assert pres["word"].tolist() == mini.futrell_assembly_design()["words"]
    values, pres, _ = read_assembly(mini.FIXTURES / "assy_Fedorenko2016_language.nc")
    assert pres["stimulus"].tolist() == [r["word"] for r in mini.fedorenko_design()["presentation"]]
    np.testing.assert_allclose(values, mini.fedorenko_design()["values"], rtol=1e-6)
    values, pres, _ = read_assembly(mini.FIXTURES / "assy_Tuckute2024_language.nc")
    assert pres["stimulus"].tolist() == mini.tuckute_assembly_design()["sentence"]
    np.testing.assert_allclose(values, mini.tuckute_assembly_design()["values"], rtol=1e-6)
