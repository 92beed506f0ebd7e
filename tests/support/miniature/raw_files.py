"""The synthetic raw files, in each dataset's real raw format, that the miniature's server hands to the fetch code.

Pereira 2018 and Blank 2014 (and Brain-Score's Futrell2018, Fedorenko2016.language and Tuckute2024.language
assemblies, :data:`ASSEMBLY_FIXTURES`): the Brain-Score NetCDF assemblies committed in ``tests/miniature/data/``
(written by ``tests/miniature/make_assemblies.py`` with Brain-Score's own ``write_netcdf``). Wehbe 2014 (CMU ``subject_N.mat``
+ the BLS ROI file) and Futrell 2018 (``all_stories.tok`` + ``processed_RTs.tsv``): generated here, deterministically.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from brainalign.io import file_hash
from tests.support.miniature.designs import WEHBE_SUBJECTS, futrell_design, wehbe_design
from tests.support.miniature.paths import FIXTURES

ALL_STORIES_TOK_SIZE = 119005  # the size futrell2018.REMOTE_FILES pins for all_stories.tok (see pad_to_size)


def pad_to_size(path: Path, size: int) -> None:
    """Append blank lines until ``path`` is ``size`` bytes.

    WORKAROUND: fetch.py checks the size pinned in an adapter's REMOTE_FILES even when ``options.checksums`` pins
    another checksum, and futrell2018 pins all_stories.tok at 119,005 bytes. The tab-separated readers skip blank
    lines (pandas ``skip_blank_lines``), so the padded file reads exactly as the unpadded one.
    """
    have = path.stat().st_size
    if have > size:
        raise ValueError(f"{path}: {have} bytes, more than the {size} to pad to")
    with open(path, "ab") as handle:
        handle.write(b"\n" * (size - have))


def write_futrell(out_dir: Path) -> dict:
    """``all_stories.tok`` (padded, see :func:`pad_to_size`) and ``processed_RTs.tsv`` in the naturalstories format."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    design = futrell_design()
    lines = ["word\tzone\titem"] + [f"{t['word']}\t{t['zone']}\t{t['item']}" for t in design["tok"]]
    (out_dir / "all_stories.tok").write_text("\n".join(lines) + "\n")
    pad_to_size(out_dir / "all_stories.tok", ALL_STORIES_TOK_SIZE)
    by_item = {}
    for r in design["rts"]:
        by_item.setdefault((r["item"], r["zone"]), []).append(r["RT"])
    header = ["WorkerId", "WorkTimeInSeconds", "correct", "item", "zone", "RT", "word", "nItem", "meanItemRT",
              "sdItemRT", "gmeanItemRT", "gsdItemRT"]
    lines = ["\t".join(header)]
    for r in design["rts"]:
        values = np.array(by_item[(r["item"], r["zone"])], dtype=float)
        logs = np.log(values)
        lines.append("\t".join(str(v) for v in [
            r["WorkerId"], 1200, 6, r["item"], r["zone"], r["RT"], r["word"], len(values), f"{values.mean():.4f}",
            f"{values.std(ddof=1):.4f}", f"{np.exp(logs.mean()):.4f}", f"{np.exp(logs.std(ddof=1)):.4f}"]))
    (out_dir / "processed_RTs.tsv").write_text("\n".join(lines) + "\n")
    return {"readers": design["readers"], "n_words": len(design["tok"])}


def write_wehbe(out_dir: Path) -> dict:
    """``subject_{1..8}.mat`` (data, time, words: the CMU format) and ``HP_subj_roi_inds.npy`` (BLS format)."""
    from scipy.io import savemat

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    design = wehbe_design()
    words = np.zeros((1, len(design["words"])), dtype=[("text", object), ("start", object)])
    for i, (word, onset) in enumerate(zip(design["words"], design["onsets"])):
        words[0, i] = (np.array([word]), np.array([[onset]]))
    time = np.stack([design["times"], design["runs"]], axis=1).astype(float)
    for number, letter in enumerate(WEHBE_SUBJECTS, 1):
        savemat(out_dir / f"subject_{number}.mat", {"data": design["subjects"][letter], "time": time, "words": words},
                do_compression=True)
    np.save(out_dir / "HP_subj_roi_inds.npy", design["roi"], allow_pickle=True)
    return {"planted": design["planted"]}


RAW_FOLDERS = {"pereira2018": "pereira2018", "blank2014": "blank2014", "wehbe2014": "wehbe2014",
               "futrell2018": "futrell2018", "futrell2018_assembly": "futrell2018_assembly",
               "fedorenko2016": "fedorenko2016", "tuckute2024_assembly": "tuckute2024_assembly"}
# Brain-Score Language assemblies beyond the paper's two: adapter -> the committed fixture (the real file's name),
# whose planted.json record is keyed by the adapter name
ASSEMBLY_FIXTURES = {"futrell2018_assembly": "assy_Futrell2018.nc", "fedorenko2016": "assy_Fedorenko2016_language.nc",
                     "tuckute2024_assembly": "assy_Tuckute2024_language.nc"}


def write_raw_files(data_dir: Path, adapters: set[str]) -> dict:
    """Each adapter's synthetic raw files into ``data_dir/<adapter>/``; returns planted-neuroid lists."""
    planted = json.loads((FIXTURES / "planted.json").read_text())
    info = {}
    for adapter in sorted(adapters):
        folder = Path(data_dir) / RAW_FOLDERS[adapter]
        folder.mkdir(parents=True, exist_ok=True)
        if adapter == "pereira2018":
            shutil.copyfile(FIXTURES / "assy_Pereira2018_language.nc", folder / "assy_Pereira2018_language.nc")
            info[adapter] = {"planted": planted["datasets"]["pereira2018"]["planted"]}
        elif adapter == "blank2014":
            shutil.copyfile(FIXTURES / "assy_Blank2014_fROI.nc", folder / "assy_Blank2014_fROI.nc")
            info[adapter] = {"planted": planted["datasets"]["blank2014"]["planted"]}
        elif adapter == "wehbe2014":
            info[adapter] = write_wehbe(folder)
        elif adapter == "futrell2018":
            info[adapter] = write_futrell(folder)
        elif adapter in ASSEMBLY_FIXTURES:
            shutil.copyfile(FIXTURES / ASSEMBLY_FIXTURES[adapter], folder / ASSEMBLY_FIXTURES[adapter])
            planted_entry = planted["datasets"][adapter]["planted"]
            info[adapter] = {"planted": planted_entry if isinstance(planted_entry, list) else []}
        else:
            raise ValueError(f"adapter {adapter}: the miniature has no synthetic files for it")
    return info


def dataset_checksums(data_dir: Path, config: dict) -> dict:
    """dataset name -> {filename: "sha256:<hex>"} for every REMOTE_FILES entry of its adapter."""
    from brainalign.datasets import get_adapter

    out = {}
    for dataset in config["datasets"]:
        adapter = get_adapter(dataset["adapter"])
        folder = Path(data_dir) / RAW_FOLDERS[dataset["adapter"]]
        out[dataset["name"]] = {name: "sha256:" + file_hash(folder / name) for name, *_ in adapter.REMOTE_FILES}
    return out
