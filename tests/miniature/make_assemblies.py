"""Write the miniature's two Brain-Score NetCDF assemblies with Brain-Score's own writer (``write_netcdf``).

Runs in a separate environment, because brainscore-core pins numpy < 2 (the project's venv has numpy 2):

    python3 -m venv /tmp/bsvenv && /tmp/bsvenv/bin/pip install brainscore-core==2.5.0
    /tmp/bsvenv/bin/python tests/miniature/make_assemblies.py            # writes tests/miniature/data/

Outputs (committed): ``assy_Pereira2018_language.nc``, ``assy_Blank2014_fROI.nc`` (the real files' names), and
``planted.json`` (which neuroids carry the planted signal, plus the package versions used). The sentences,
fragments and responses come from :mod:`tests.support.miniature.designs` (``pereira_design``, ``blank_design``), so the
texts match what the tiny tokenizers are trained on. The coordinates are those of the real assemblies, as
Brain-Score's packaging code builds them:

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

from tests.support.miniature.designs import blank_design, pereira_design  # noqa: E402

try:  # brainscore-core >= 2: brainio lives inside it
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
    from brainscore_core.supported_data_standards.brainio.packaging import write_netcdf
    WRITER = "brainscore_core.supported_data_standards.brainio.packaging.write_netcdf"
except ImportError:  # the standalone brainio package (brainscore-brainio)
    from brainio.assemblies import NeuroidAssembly
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


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"writer": WRITER, "versions": _versions(), "command": "/tmp/bsvenv/bin/python tests/miniature/make_assemblies.py",
              "datasets": {}}
    for filename, build, key in (("assy_Pereira2018_language.nc", pereira_assembly, "pereira2018"),
                                 ("assy_Blank2014_fROI.nc", blank_assembly, "blank2014")):
        assembly, design = build()
        sha1 = write_netcdf(assembly, out_dir / filename)
        record["datasets"][key] = {"file": filename, "sha1": sha1, "shape": list(assembly.shape),
                                   "planted": design["planted"], "feature": "marker_count (tests.support.miniature)"}
        print(f"wrote {out_dir / filename}: {assembly.shape}, sha1 {sha1}")
    (out_dir / "planted.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "data")
