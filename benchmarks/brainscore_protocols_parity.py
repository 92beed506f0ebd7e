"""Parity of the brainscore-* protocols and the brainscore-extrapolation ceiling with Brain-Score Language 2.3.0's
own metrics and ExtrapolationCeiling (opt-in, not in CI: needs Brain-Score's environment at /tmp/bsl).

    .venv/bin/python benchmarks/brainscore_protocols_parity.py [out.md]   # default benchmarks/results/brainscore_protocols_parity.md

Two parts, both scored by each side on the same numbers:
  * synthetic problems (random features, responses = planted linear signal + noise, stories as groups): every
    protocol against Brain-Score's metric called on NeuroidAssemblies built from the same arrays
    (tests/support/bsl_protocols.py), and the ceiling of the small one;
  * the miniature's assemblies (tests/miniature/data: Brain-Score's file format, written by its own writer), read
    by this workflow's adapters and by Brain-Score as its benchmarks load them, with random features in the file's
    presentation order: the raw metric and the ceiling each benchmark computes. The miniature's Pereira and Blank
    have fewer stories than Brain-Score's grouped K-fold has splits (10, 8), so only their shuffle metric runs, and
    its Blank has 2 subjects, too few for the extrapolation ceiling (Brain-Score's code fails; ours says so).
Differences come from the float32 storage of prepared responses (Brain-Score keeps the file's float64).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BSL = Path("/tmp/bsl/bin/python")
SCRIPT = REPO / "tests" / "support" / "bsl_protocols.py"
RAW = REPO / "tests" / "miniature" / "data"
GROUPED = {"split_coord": None, "kfold": "group", "random_state": 1234}
SHUFFLE = {"splits": 10, "train_size": 0.9, "kfold": False, "random_state": 1}


def bsl(args: list[str]) -> tuple[dict, float]:
    start = time.perf_counter()
    done = subprocess.run([str(BSL), str(SCRIPT), *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"Brain-Score's side failed ({' '.join(args)}):\n{done.stderr[-3000:]}")
    return json.loads(Path(args[-1]).read_text()), time.perf_counter() - start


def synthetic(folder: Path, rows: list) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from test_brainscore_protocols import NAMES, ours, problem

    from brainalign.encoding.brainscore_ceiling import brainscore_extrapolation_ceiling
    from brainalign.encoding.protocols.brainscore_splits import BrainscoreSplit, group_kfold

    for seed, sizes in ((7, dict(k=3, subjects=3, n_groups=10)), (11, dict(n=150, p=300, k=40, subjects=4, n_groups=15))):
        x, y, story, subject = problem(seed=seed, **sizes)
        with_ceiling = int(seed == 7)
        np.savez(folder / "p.npz", x=x, y=y, story=story, subject=subject, splits=5, ceiling=with_ceiling)
        theirs, their_seconds = bsl([str(folder / "p.npz"), str(folder / "p.json")])
        start = time.perf_counter()
        mine = ours(x, y, story)
        if with_ceiling:
            folds = group_kfold(BrainscoreSplit("t", "story", story, 5), "t")
            mine["ceiling"] = brainscore_extrapolation_ceiling(y, subject, "brainscore-ridge", folds)["ceiling"]
        seconds = time.perf_counter() - start
        label = f"synthetic {x.shape[0]} stimuli x {x.shape[1]} features x {y.shape[1]} neuroids"
        for name in [*NAMES, *(["ceiling"] if with_ceiling else [])]:
            what = "ceiling (brainscore-ridge)" if name == "ceiling" else name
            rows.append((label, what, mine[name], theirs[name], seconds, their_seconds))


def assemblies(folder: Path, rows: list) -> None:
    from brainalign.datasets import blank2014, fedorenko2016, pereira2018
    from brainalign.datasets.base import load_prepared
    from brainalign.encoding.ceilings import compute_ceiling
    from brainalign.encoding.layer_fits import fit_layer

    cases = [(fedorenko2016, {}, "brainscore-ridge", "ridge_pearsonr", {**GROUPED, "split_coord": "sentence_id"}, "subject_UID", None),
             (fedorenko2016, {}, "brainscore-linear-shuffle", "linear_pearsonr", SHUFFLE, "subject_UID", None),
             (blank2014, {}, "brainscore-linear-shuffle", "linear_pearsonr", SHUFFLE, None, None),  # 2 subjects: no ceiling
             (pereira2018, {"experiment": "243"}, "brainscore-linear-shuffle", "linear_pearsonr", SHUFFLE, None,
              {"experiment": "243sentences"})]
    for module, options, protocol, metric, cv, subject_column, select in cases:
        out = folder / f"{module.NAME}_{protocol}"
        module.prepare(RAW, out, options)
        dataset = load_prepared(out)
        order = dataset.stimuli["brainscore_order"].to_numpy()
        x_file = np.random.RandomState(0).randn(len(order), 20)  # the file's presentation order
        np.savez(folder / "x.npz", x=x_file)
        spec = {"assembly": str(RAW / module.FILE), "features": str(folder / "x.npz"), "metric": metric,
                "crossvalidation_kwargs": cv, "subject_column": subject_column, "select": select}
        (folder / "spec.json").write_text(json.dumps(spec))
        theirs, their_seconds = bsl(["--assembly", str(folder / "spec.json"), str(folder / "a.json")])
        start = time.perf_counter()
        score = fit_layer(x_file[order], dataset, {"protocols": [protocol], "n_bootstrap": 0, "similarity": False,
                                                   "baseline": False})["protocols"][protocol]["score"]
        ceiling = (compute_ceiling(dataset, {"method": "brainscore-extrapolation", "metric": protocol})["ceiling"]
                   if subject_column else None)
        seconds = time.perf_counter() - start
        label = f"miniature {module.NAME}" + (f" {options['experiment']}" if options else "")
        rows.append((label, protocol, score, theirs["score"], seconds, their_seconds))
        if subject_column:
            rows.append((label, f"ceiling ({protocol})", ceiling, theirs["ceiling"], float("nan"), float("nan")))


def main(out: str | None = None) -> None:
    if not BSL.exists():
        sys.exit(f"{BSL} missing: python3 -m venv /tmp/bsl && /tmp/bsl/bin/pip install brainscore-language==2.3.0")
    out = Path(out or REPO / "benchmarks" / "results" / "brainscore_protocols_parity.md")
    rows: list = []
    with tempfile.TemporaryDirectory() as tmp:
        synthetic(Path(tmp), rows)
        assemblies(Path(tmp), rows)
    lines = ["# brainscore-* protocols vs Brain-Score Language 2.3.0's own metrics", "",
             "`.venv/bin/python benchmarks/brainscore_protocols_parity.py` (Brain-Score in /tmp/bsl). Seconds: each side's "
             "wall time for the row's problem (Brain-Score's includes its imports; a ceiling row's time is in the row above).", "",
             "| problem | protocol | brainalign | Brain-Score | abs. difference | s (brainalign) | s (Brain-Score) |",
             "|---|---|---|---|---|---|---|"]
    for label, name, mine, theirs, seconds, their_seconds in rows:
        lines.append(f"| {label} | {name} | {mine:.10f} | {theirs:.10f} | {abs(mine - theirs):.1e} | {seconds:.1f} | "
                     f"{their_seconds:.1f} |")
    text = "\n".join(lines) + "\n"
    from brainalign.io import atomic_path

    with atomic_path(out) as tmp_path:
        Path(tmp_path).write_text(text)
    print(text)


if __name__ == "__main__":
    main(*sys.argv[1:2])
