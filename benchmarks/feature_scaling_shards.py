"""Feature scaling on real shards: ridge-grouped under each ``encoding.feature_scaling`` on a few layers of the
default run's three pretrained models (SmolLM2-135M-Instruct, Gemma-3-270m, all-MiniLM-L6-v2) against Tuckute 2024
and Pereira 2018, with each dataset's default encoding options; the layers' anisotropy beside the scores.

The shards are made with the package's own steps (fetch + prepare the datasets, prepare the models, then
``activations.extract_to_shard`` with the layers below), into ``--work`` (kept: a second run only measures).
Results: benchmarks/results/feature_scaling_shards.md and .json. See docs/feature_scaling.md.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/feature_scaling_shards.py     # ~10 min on 2 shared vCPUs
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

# a few layers per model, shallow to deep (blocks; the embedding layer is left out: its last-token rows repeat)
LAYERS = {"smollm2-135m-instruct": ("model.layers", [4, 12, 20, 28]), "gemma-3-270m": ("model.layers", [3, 8, 12, 16]),
          "all-minilm-l6-v2": ("encoder.layer", [1, 3, 5])}
DATASETS = ("tuckute2024", "pereira2018")
SCALINGS = ("zscore", "center", "auto")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/brainalign-feature-scaling", help="datasets, models and shards go here")
    parser.add_argument("--models", nargs="+", default=list(LAYERS), help="models of config/config.yaml (default: all three)")
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results"), help="output folder")
    parser.add_argument("--name", default="feature_scaling_shards", help="file stem of the results")
    return parser.parse_args(argv)


def make_shards(config, work: Path, models) -> None:
    """Prepared datasets, prepared models and few-layer shards under ``work`` (what is there already is kept)."""
    import torch

    from brainalign.config import dataset_specs, model_specs
    from brainalign.datasets import fetch_dataset, prepare_dataset
    from brainalign.extraction.activations import extract_to_shard
    from brainalign.models.session import prepare_model
    from brainalign.options import extraction_options

    torch.set_num_threads(1)
    datasets, specs = dataset_specs(config), model_specs(config)
    os.chdir(REPO_ROOT)  # the datasets' local_dir is relative to the repository
    for name in DATASETS:
        if not (work / "datasets" / name).exists():
            fetch_dataset(datasets[name], work / "raw" / name)
            prepare_dataset(datasets[name], work / "raw" / name, work / "datasets" / name)
    for model in models:
        spec = dict(specs[model])
        if not (work / "models" / model).exists():
            prepare_model(spec, work / "models" / model)
        blocks, indices = LAYERS[model]
        spec["layers"] = [f"{blocks}.{i}" for i in indices]
        options = {**extraction_options(config, model), "device": "cpu", "threads": 1}
        for name in DATASETS:
            shard = work / "activations" / model / f"{name}.h5"
            if not shard.exists():
                start = time.perf_counter()
                extract_to_shard(spec, work / "models" / model, work / "datasets" / name, shard, options)
                print(f"extracted {model} x {name} ({time.perf_counter() - start:.0f} s)", flush=True)


def anisotropy(x: np.ndarray) -> dict:
    """The first principal component's share of the variance, and the largest feature SD over the median."""
    centred = x - x.mean(0)
    variances = np.linalg.svd(centred, compute_uv=False) ** 2
    sd = x.std(0)
    return {"pc1_share": float(variances[0] / variances.sum()), "max_sd_over_median": float(sd.max() / np.median(sd))}


def measure(config, work: Path, models) -> list[dict]:
    from brainalign.datasets.base import load_prepared
    from brainalign.encoding.layer_fits import fit_layer
    from brainalign.extraction.shards import read_layer, read_layer_names
    from brainalign.options import dataset_encoding_options

    rows = []
    for model in models:
        for name in DATASETS:
            shard = work / "activations" / model / f"{name}.h5"
            dataset = load_prepared(work / "datasets" / name)
            base = dataset_encoding_options(config, name)
            for layer in read_layer_names(shard):
                x = read_layer(shard, layer).astype(np.float64)
                row = {"model": model, "dataset": name, "layer": layer, **anisotropy(x)}
                for scaling in SCALINGS:
                    options = {**base, "protocols": ["ridge-grouped"], "similarity": False, "n_bootstrap": 0,
                               "feature_scaling": scaling}
                    start = time.perf_counter()
                    result = fit_layer(x, dataset, options)["protocols"]["ridge-grouped"]
                    row[scaling] = {"score": result["score"], "seconds": time.perf_counter() - start,
                                    "centred_fraction": result["centred_fraction"]}
                print(f"{model} {name} {layer}: " + ", ".join(f"{s} {row[s]['score']:.4f}" for s in SCALINGS), flush=True)
                rows.append(row)
    return rows


def markdown(rows: list[dict], info: dict) -> str:
    lines = ["# Feature scaling on real shards (ridge-grouped)", "",
             f"`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/feature_scaling_shards.py {' '.join(sys.argv[1:])}`".replace(" `", "`"),
             "", "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + ".", "",
             "Each dataset's default encoding options (5 x 5 grouped folds, 10 alphas 1e-2..1e7, seed 0), no CI. Both "
             "datasets have one (group-averaged) neuroid, so the score is that neuroid's r, mean over the 5 outer folds; "
             "`auto`'s choice is per fold (the column: in how many folds it kept centring).", "",
             "| model | dataset | layer | PC1 share | max SD / median SD | zscore | center | auto | auto - zscore | auto: folds centred | "
             "seconds z / c / auto |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        centred = int(round(sum(row["auto"]["centred_fraction"])))
        lines.append(f"| {row['model']} | {row['dataset']} | {row['layer']} | {row['pc1_share']:.2f} | {row['max_sd_over_median']:.1f} | "
                     f"{row['zscore']['score']:.4f} | {row['center']['score']:.4f} | {row['auto']['score']:.4f} | "
                     f"{row['auto']['score'] - row['zscore']['score']:+.4f} | {centred}/{len(row['auto']['centred_fraction'])} | "
                     + " / ".join(f"{row[s]['seconds']:.1f}" for s in SCALINGS) + " |")
    lines += ["", "Best layer of the measured ones (the default run's `best` row, here over these layers only):", "",
              "| model | dataset | zscore (layer) | center (layer) | auto (layer) | auto - zscore |", "|---|---|---|---|---|---|"]
    for model in dict.fromkeys(row["model"] for row in rows):
        for name in DATASETS:
            mine = [row for row in rows if row["model"] == model and row["dataset"] == name]
            best = {s: max(mine, key=lambda row, s=s: row[s]["score"]) for s in SCALINGS}
            lines.append(f"| {model} | {name} | " + " | ".join(f"{best[s][s]['score']:.4f} ({best[s]['layer']})" for s in SCALINGS)
                         + f" | {best['auto']['auto']['score'] - best['zscore']['zscore']['score']:+.4f} |")
    differences = {s: [row[s]["score"] - row["zscore"]["score"] for row in rows] for s in ("center", "auto")}
    lines += ["", "Over all " + str(len(rows)) + " layers, score minus the z-scored score: " + "; ".join(
        f"{s}: mean {np.mean(d):+.4f}, min {np.min(d):+.4f}, max {np.max(d):+.4f}" for s, d in differences.items()) + ".", ""]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    import yaml
    from threadpoolctl import threadpool_limits

    from brainalign.config import load_and_check

    threadpool_limits(1)
    config = load_and_check(yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text()))
    work = Path(args.work)
    make_shards(config, work, args.models)
    start = time.perf_counter()
    rows = measure(config, work, args.models)
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpus_usable": len(os.sched_getaffinity(0)),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"), "load_average_at_end": round(os.getloadavg()[0], 2),
            "measure_wall_s": round(time.perf_counter() - start, 1)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=1) + "\n")
    (out / f"{args.name}.md").write_text(markdown(rows, info))
    print(f"wrote {out / args.name}.md and .json")


if __name__ == "__main__":
    main()
