"""A prepared dataset damaged after prepare_dataset wrote it (a truncated or hand-edited stimuli.tsv or meta.json)
is one line naming the file and the command that rebuilds it, never a JSON or pandas traceback."""

from __future__ import annotations

import json

import pytest

from brainalign.datasets.base import META_FILE, STIMULI_FILE, load_prepared
from brainalign.errors import BrainalignError
from tests.support import toy_dataset


@pytest.fixture
def prepared(tmp_path):
    raw = tmp_path / "raw"
    toy_dataset.write_raw(raw)
    out = tmp_path / "results" / "datasets" / "toy"
    toy_dataset.prepare(raw, out, {})
    assert len(load_prepared(out).stimuli) == 40
    return out


def _truncate(path, keep: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


DAMAGES = {
    "meta truncated": (META_FILE, lambda p: _truncate(p), "not valid JSON"),
    "meta not an object": (META_FILE, lambda p: p.write_text(json.dumps(["name", "kind"])), "expected a JSON object"),
    "meta key removed": (META_FILE, lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items()
                                                                     if k != "kind"})), "meta lacks key"),
    "meta not UTF-8": (META_FILE, lambda p: p.write_bytes(b"\xff\xfe{\x00"), "not valid JSON"),
    "stimuli truncated": (STIMULI_FILE, lambda p: _truncate(p), "samples"),
    "stimuli emptied": (STIMULI_FILE, lambda p: p.write_text(""), "not a readable stimuli table"),
    "stimuli column dropped": (STIMULI_FILE, lambda p: p.write_text(
        "\n".join("\t".join(line.split("\t")[1:]) for line in p.read_text().splitlines()) + "\n"), "lacks column"),
    "stimuli ragged": (STIMULI_FILE, lambda p: p.write_text(p.read_text() + "a\tb\tc\td\te\tf\tg\th\n"),
                       "not a readable stimuli table"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_prepared_dataset_is_one_line_with_its_rebuild(prepared, damage):
    name, harm, says = DAMAGES[damage]
    harm(prepared / name)
    with pytest.raises(BrainalignError) as error:
        load_prepared(prepared)
    message = str(error.value)
    assert "\n" not in message and says in message, message
    assert str(prepared) in message and f"snakemake --cores 2 {prepared} --forcerun prepare_dataset" in message
