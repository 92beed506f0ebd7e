"""Write the miniature's Brain-Score NetCDF assemblies with Brain-Score's own writer (``write_netcdf``).

Runs in a separate environment, because brainscore-core pins numpy < 2 (the project's venv has numpy 2):

    python3 -m venv /tmp/bsl && /tmp/bsl/bin/pip install brainscore-language==2.3.0   # brings brainscore-core 2.5.0
    /tmp/bsl/bin/python tests/miniature/make_assemblies.py [OUT_DIR] [KEY ...]      # writes tests/miniature/data/

KEYs (default: all) name the assemblies to (re)write; the others keep their files and their ``planted.json``
records. NetCDF4/HDF5 files carry creation-time metadata, so rewriting one changes its bytes (not its content):
the committed Pereira and Blank files were written once and are not rewritten when the newer assemblies are added
(``... make_assemblies.py tests/miniature/data futrell2018_assembly fedorenko2016 tuckute2024_assembly``).

Outputs (committed): ``assy_Pereira2018_language.nc``, ``assy_Blank2014_fROI.nc``, ``assy_Futrell2018.nc``,
``assy_Fedorenko2016_language.nc``, ``assy_Tuckute2024_language.nc`` (the real files' names: ``assy_`` + the
identifier with ``.`` -> ``_``, as brainscore_language.utils.s3 names them), and ``planted.json`` (which neuroids
carry the planted signal, the package versions used, and for the newer three what Brain-Score's own loader reads
back from each file: ``loaded``, the expectation tests/test_brainscore_assemblies.py checks the adapters against).
The texts and responses come from :mod:`tests.support.miniature.designs`, so the texts match what the tiny
tokenizers are trained on. The coordinates are those of the real assemblies, as Brain-Score's packaging code
builds them:

* Pereira2018.language (brainscore_language/data/pereira2018/data_packaging.py): presentation
  ``experiment`` ('243sentences' / '384sentences'), ``stimulus_num``, ``sentence``, ``stimulus``,
  ``passage_index`` (1-based), ``passage_label``, ``passage_category``, ``stimulus_id`` ('<experiment>.<num>'),
  ``story`` ('<experiment>.<category>'); neuroid ``subject``, ``voxel_num``, ``atlas``, ``filter_strategy``,
  ``atlas_selection``, ``atlas_selection_lower``, ``roi``, ``indices_in_3d``, ``col_to_coord_{1,2,3}``,
  ``neuroid_id`` ('<subject>.<voxel_num>'). Subjects who did not run an experiment are NaN there (the real
  merged assembly has 10 subjects, 6 in 243 and 9 in 384).
* Blank2014.fROI (brainscore_language/data/blank2014/data_packaging.py, after ``average_subregions``):
  presentation ``stimulus_id`` ('<story>.<sentence_num>.<part>'), ``story``, ``stimulus`` (= ``stimulus_sentence``,
  the fragment with punctuation), ``meta_sentence`` (lower-case TextGrid words), ``sentence_number_in_story``,
  ``part_number_in_sentence``, ``timepoint_value``; neuroid ``subject_id``, ``fROI_area``, ``neuroid_id``
  ('<subject_id>.<fROI_area>'). Averaging over voxels by (fROI_area, subject_id) keeps only those two neuroid
  coordinates: the real file has no ``subject_UID`` and no ``sentence`` coordinate.
* Futrell2018 (brainscore_language/data/futrell2018/data_packaging.py, a ``BehavioralAssembly``): dims
  (presentation, subject); presentation ``word``, ``word_core`` (punctuation removed), ``story_id`` (item),
  ``word_id`` (zone), ``word_within_sentence_id``, ``sentence_id`` (both from its punctuation rule, see
  ``designs.brainscore_sentence_numbers``), ``stimulus_id`` (1..n over the corpus); subject ``subject_id``
  (WorkerId), ``correct``, ``WorkTimeInSeconds``. Words in (story, zone) order; NaN where a reader has no RT.
* Fedorenko2016.language (brainscore_language/data/fedorenko2016/data_packaging.py): presentation (one per word)
  ``stimulus_id`` (0..n-1), ``stimulus`` and ``word`` (the word), ``word_num`` (0-7), ``sentence_id`` (0..51);
  neuroid ``electrode``, ``neuroid_id`` (both 0..n-1), ``subject_UID`` (int 1-5).
* Tuckute2024.language (brainscore_language/data/tuckute2024/data_packaging.py): presentation ``stimulus_id``
  (the source's item_id), ``stimulus`` (the sentence), ``cond``, ``cond_approach``; one neuroid: ``neuroid_id``
  (1), ``subject_UID`` ('848-853-865-875-876'), ``roi`` ('lang_LH_netw').
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.miniature.designs import (  # noqa: E402
    TUCKUTE_TRAIN_SUBJECTS,
    blank_design,
    fedorenko_design,
    futrell_assembly_design,
    pereira_design,
    tuckute_assembly_design,
)

try:  # brainscore-core >= 2: brainio lives inside it
    from brainscore_core.supported_data_standards.brainio.assemblies import (
        AssemblyLoader,
        BehavioralAssembly,
        NeuroidAssembly,
        walk_coords,
    )
    from brainscore_core.supported_data_standards.brainio.packaging import write_netcdf
    WRITER = "brainscore_core.supported_data_standards.brainio.packaging.write_netcdf"
except ImportError:  # the standalone brainio package (brainscore-brainio)
    from brainio.assemblies import AssemblyLoader, BehavioralAssembly, NeuroidAssembly, walk_coords
    from brainio.packaging import write_netcdf
    WRITER = "brainio.packaging.write_netcdf"


def _versions() -> dict:
    versions = {}
    for name in ("brainscore-core", "brainscore-brainio", "xarray", "netCDF4", "numpy", "pandas"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def pereira_assembly():
    design = pereira_design()
    pres, neur = design["presentation"], design["neuroid"]
    n = len(neur)
    rng = np.random.default_rng(2018)
    coords = {
        "experiment": ("presentation", [r["experiment"] for r in pres]),
        "stimulus_num": ("presentation", [r["stimulus_num"] for r in pres]),
        "sentence": ("presentation", [r["sentence"] for r in pres]),
        "stimulus": ("presentation", [r["sentence"] for r in pres]),
        "passage_index": ("presentation", [r["passage_index"] for r in pres]),
        "passage_label": ("presentation", [r["passage_label"] for r in pres]),
        "passage_category": ("presentation", [r["passage_category"] for r in pres]),
        "stimulus_id": ("presentation", [f"{r['experiment']}.{r['stimulus_num']}" for r in pres]),
        "story": ("presentation", [f"{r['experiment']}.{r['passage_category']}" for r in pres]),
        "subject": ("neuroid", [v["subject"] for v in neur]),
        "voxel_num": ("neuroid", [v["voxel_num"] for v in neur]),
        "atlas": ("neuroid", ["language"] * n),
        "filter_strategy": ("neuroid", ["HminusE"] * n),
        "atlas_selection": ("neuroid", ["from90to100prcnt"] * n),
        "atlas_selection_lower": ("neuroid", [90] * n),
        "roi": ("neuroid", [["LH_PostTemp", "LH_AntTemp", "LH_IFG", "LH_MFG"][i % 4] for i in range(n)]),
        "indices_in_3d": ("neuroid", rng.integers(0, 300000, n)),
        "col_to_coord_1": ("neuroid", rng.integers(0, 79, n)),
        "col_to_coord_2": ("neuroid", rng.integers(0, 95, n)),
        "col_to_coord_3": ("neuroid", rng.integers(0, 68, n)),
        "neuroid_id": ("neuroid", [f"{v['subject']}.{v['voxel_num']}" for v in neur]),
    }
    return NeuroidAssembly(design["values"], coords=coords, dims=["presentation", "neuroid"]), design


def blank_assembly():
    design = blank_design()
    pres, neur = design["presentation"], design["neuroid"]
    meta = [" ".join(re.sub(r"[^\w' ]", "", r["stimulus"]).lower().split()) for r in pres]
    coords = {
        "stimulus_id": ("presentation", [r["stimulus_id"] for r in pres]),
        "story": ("presentation", [r["story"] for r in pres]),
        "timepoint_value": ("presentation", [r["timepoint_value"] for r in pres]),
        "meta_sentence": ("presentation", meta),
        "sentence_number_in_story": ("presentation", [r["sentence_number_in_story"] for r in pres]),
        "part_number_in_sentence": ("presentation", [r["part_number_in_sentence"] for r in pres]),
        "stimulus_sentence": ("presentation", [r["stimulus"] for r in pres]),
        "stimulus": ("presentation", [r["stimulus"] for r in pres]),
        "fROI_area": ("neuroid", [v["fROI_area"] for v in neur]),
        "subject_id": ("neuroid", [v["subject_id"] for v in neur]),
        "neuroid_id": ("neuroid", [f"{v['subject_id']}.{v['fROI_area']}" for v in neur]),
    }
    return NeuroidAssembly(design["values"], coords=coords, dims=["presentation", "neuroid"]), design


def futrell_assembly():
    design = futrell_assembly_design()
    words = design["words"]
    coords = {
        "word": ("presentation", words),
        "word_core": ("presentation", [re.sub(r"[^\w\s]", "", w) for w in words]),
        "story_id": ("presentation", design["story_id"]),
        "word_id": ("presentation", design["word_id"]),
        "word_within_sentence_id": ("presentation", design["word_within_sentence_id"]),
        "sentence_id": ("presentation", design["sentence_id"]),
        "stimulus_id": ("presentation", list(range(1, len(words) + 1))),
        "subject_id": ("subject", design["readers"]),
        "correct": ("subject", design["correct"]),
        "WorkTimeInSeconds": ("subject", design["work_time"]),
    }
    design["planted"] = {"rt_ms": "200 + 12 * characters + 40 * marker word + 15 * unigram surprisal + reader + noise",
                         "skipped": {design["readers"][-1]: "story 2"}}
    return BehavioralAssembly(design["values"], coords=coords, dims=("presentation", "subject")), design


def fedorenko_assembly():
    design = fedorenko_design()
    pres, neur = design["presentation"], design["neuroid"]
    coords = {
        "stimulus_id": ("presentation", list(range(len(pres)))),
        "stimulus": ("presentation", [r["word"] for r in pres]),
        "word": ("presentation", [r["word"] for r in pres]),
        "word_num": ("presentation", [r["word_num"] for r in pres]),
        "sentence_id": ("presentation", [r["sentence_id"] for r in pres]),
        "electrode": ("neuroid", [v["electrode"] for v in neur]),
        "neuroid_id": ("neuroid", [v["electrode"] for v in neur]),
        "subject_UID": ("neuroid", [v["subject_UID"] for v in neur]),
    }
    return NeuroidAssembly(design["values"], coords=coords, dims=("presentation", "neuroid")), design


def tuckute_assembly():
    design = tuckute_assembly_design()
    n = len(design["sentence"])
    coords = {
        "stimulus_id": ("presentation", design["item_id"]),
        "stimulus": ("presentation", design["sentence"]),
        "cond": ("presentation", ["B"] * n),
        "cond_approach": ("presentation", ["B"] * n),
        "neuroid_id": ("neuroid", [1]),
        "subject_UID": ("neuroid", ["-".join(str(s) for s in TUCKUTE_TRAIN_SUBJECTS)]),
        "roi": ("neuroid", ["lang_LH_netw"]),
    }
    return NeuroidAssembly(design["values"], coords=coords, dims=("presentation", "neuroid")), design


def _plain(values) -> list:
    """JSON-ready list: numpy scalars to Python, NaN to None."""
    out = []
    for v in np.asarray(values).tolist():
        out.append(None if isinstance(v, float) and np.isnan(v) else v)
    return out


def loaded_expectation(path: Path, key: str, design: dict) -> dict:
    """What Brain-Score reads back from ``path`` (``AssemblyLoader``, as ``load_from_s3`` does after its fetch):
    dims, coordinates, presentation and neuroid order, row and column sums of the values; for Futrell2018 also
    what its Futrell2018-pearsonr benchmark derives (the sentence-initial words it drops, the mean-over-readers
    target, its split-half ceiling, and the |r| of the design's unigram surprisal as the prediction)."""
    assembly = AssemblyLoader(cls=NeuroidAssembly, file_path=path).load().load()
    dims = list(assembly.dims)
    values = assembly.values.astype(float)
    out = {"dims": dims, "shape": list(assembly.shape),
           "coords": {dim: sorted(name for name, coord_dims, _ in walk_coords(assembly)
                                  if tuple(coord_dims) == (dim,) and name != dim) for dim in dims},
           "stimulus_id": _plain(assembly["stimulus_id"].values),
           "row_sums": _plain(np.nansum(values, axis=1)), "column_sums": _plain(np.nansum(values, axis=0)),
           "n_nan": int(np.isnan(values).sum())}
    second = dims[1]
    out[f"{second}_ids"] = _plain(assembly["subject_id" if second == "subject" else "neuroid_id"].values)
    if key == "futrell2018_assembly":
        from brainscore_language import load_metric
        from brainscore_language.benchmarks.futrell2018.benchmark import SplitHalvesConsistency
        from brainscore_language.utils import attach_presentation_meta

        metric = load_metric("pearsonr")
        initial = assembly["word_within_sentence_id"].values == 1
        out["initial_stimulus_ids"] = _plain(assembly["stimulus_id"].values[initial])
        targets = assembly[assembly["word_within_sentence_id"] != 1].mean("subject")
        out["target_stimulus_ids"] = _plain(targets["stimulus_id"].values)
        out["target"] = _plain(targets.values)
        out["ceiling"] = float(SplitHalvesConsistency(num_splits=10, split_coordinate="subject_id",
                                                      consistency_metric=metric)(assembly))
        predictions = BehavioralAssembly(np.asarray(design["surprisal"], dtype=float),
                                         coords={"stimulus_id": ("presentation", assembly["stimulus_id"].values)},
                                         dims=["presentation"])
        attach_presentation_meta(predictions, assembly["presentation"])
        predictions = predictions[predictions["word_within_sentence_id"] != 1]
        out["surprisal_abs_r"] = float(metric(predictions, targets))
    return out


BUILDERS = {  # key -> (file name, builder, record a Brain-Score read-back)
    "pereira2018": ("assy_Pereira2018_language.nc", pereira_assembly, False),
    "blank2014": ("assy_Blank2014_fROI.nc", blank_assembly, False),
    "futrell2018_assembly": ("assy_Futrell2018.nc", futrell_assembly, True),
    "fedorenko2016": ("assy_Fedorenko2016_language.nc", fedorenko_assembly, True),
    "tuckute2024_assembly": ("assy_Tuckute2024_language.nc", tuckute_assembly, True),
}


def main(out_dir: Path, keys: list[str] | None = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(keys or ()) - set(BUILDERS))
    if unknown:
        raise SystemExit(f"unknown assembly key(s) {unknown}; known: {', '.join(BUILDERS)}")
    planted_path = out_dir / "planted.json"
    record = json.loads(planted_path.read_text()) if planted_path.is_file() else {"datasets": {}}
    record.update(writer=WRITER, versions=_versions(),
                  command="/tmp/bsl/bin/python tests/miniature/make_assemblies.py [OUT_DIR] [KEY ...]")
    for key in keys or list(BUILDERS):
        filename, build, read_back = BUILDERS[key]
        assembly, design = build()
        sha1 = write_netcdf(assembly, out_dir / filename)
        entry = {"file": filename, "sha1": sha1, "shape": list(assembly.shape), "planted": design["planted"],
                 "feature": "marker_count (tests.support.miniature)"}
        if read_back:
            entry["loaded"] = loaded_expectation(out_dir / filename, key, design)
        record["datasets"][key] = entry
        print(f"wrote {out_dir / filename}: {assembly.shape}, sha1 {sha1}")
    tmp = planted_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(planted_path)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "data", sys.argv[2:] or None)
