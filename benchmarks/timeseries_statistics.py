"""The time-series protocol's statistics, measured: what the noise ceiling, the gain's CI, the joint model's band
penalties and the Lanczos cutoff change, on the real Brennan 2016 shards of a finished run and on planted data.

Sections (``--sections``, any subset, in this order):

  * ``ceiling``: the leave-one-subject-out ISC ceiling on the raw responses and on the responses cleaned of each
    subject's head motion (what the baseline and joint scores use), median and per ROI.
  * ``gain``: for the best layer (largest joint r, from the run's scores) of each model: baseline, joint and gain
    with the CI of blocks of scans alone (the code before) and of subjects, then blocks (the two-level CI), and
    with the fixed band ratio vs a grid chosen on the inner folds (per layer; per neuroid, as a variant), each
    with the time of one layer's gain fit.
  * ``lanczos``: raw ridge-grouped r and the gain of a few layers under ``encoding.downsample: lanczos`` and
    ``lanczos-antialias``.
  * ``coverage``: planted 5-fold time series of S subjects x R ROIs (prediction = an AR(1) signal shared by all,
    response = w_s * signal + AR(1) noise, w_s ~ N(mu, tau^2)), the coverage of the population r by each CI.
  * ``bands``: planted two-band data (a few baseline columns, many feature columns carrying a low-rank signal), the
    gain under the fixed ratio and under the inner-CV choice, against the population gain.

Reads (never writes) ``--results`` (a finished run: results/activations/<model>/brennan2016.h5,
results/datasets/brennan2016, results/scores/<model>/brennan2016.csv); writes ``--out``/timeseries_statistics.json
and .md. Numbers and commands: docs/statistics.md, "Story fMRI".

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/timeseries_statistics.py --results /work/baseline/results \\
        --out /tmp/brainalign-timeseries-statistics          # ~15 min on 2 shared vCPUs
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

MODELS = ("smollm2-135m-instruct", "gemma-3-270m", "all-minilm-l6-v2",
          "smollm2-135m-untrained", "gemma-3-270m-untrained", "all-minilm-l6-v2-untrained")
LANCZOS_LAYERS = {"smollm2-135m-instruct": ["model.layers.14", "model.layers.26"],
                  "gemma-3-270m": ["model.layers.8", "model.layers.15"]}
GRID = [0.01, 0.1, 1.0, 10.0, 100.0]  # baseline band's prior variance relative to the features' (1: fixed)
SECTIONS = ("ceiling", "gain", "lanczos", "coverage", "bands")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="/work/baseline/results", help="a finished run's results folder (read only)")
    parser.add_argument("--out", default="/tmp/brainalign-timeseries-statistics", help="output folder")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--simulations", type=int, default=200, help="coverage: planted series per setting")
    parser.add_argument("--resamples", type=int, default=400, help="coverage: bootstrap resamples per series")
    parser.add_argument("--repeats", type=int, default=2, help="gain: timings, the fastest of N")
    return parser.parse_args(argv)


def encoding_options(**changes):
    from brainalign.options import EncodingOptions

    return EncodingOptions.from_dict({"protocols": ["ridge-grouped"], "similarity": False, **changes})


def triple(entry: dict) -> list:
    return [round(entry["score"], 4), round(entry["ci_low"], 4), round(entry["ci_high"], 4)]


# ----------------------------------------------------------------------------------------------- real shards
def ceiling_section(dataset) -> dict:
    from brainalign.encoding.ceilings import compute_ceiling

    cleaned = compute_ceiling(dataset, {"encoding": {"baseline": True}})
    raw = cleaned["raw_isc"]
    return {"cleaned": {"ceiling": cleaned["ceiling"], "ci": cleaned["ci"], "per_roi": cleaned["isc"]["per_neuroid"],
                        "group_mean": cleaned["isc"]["group_mean_ceiling"], "isc": cleaned["isc"]["isc"]},
            "raw": {"ceiling": raw["ceiling"], "ci": raw["ci"], "per_roi": raw["per_neuroid"],
                    "group_mean": raw["group_mean_ceiling"], "isc": raw["isc"]},
            "rois": list(dataset.neuroids), "confounds": cleaned["confounds"], "responses": cleaned["responses"]}


def best_layer(results: Path, model: str) -> str:
    import pandas as pd

    scores = pd.read_csv(results / "scores" / model / "brennan2016.csv")
    row = scores[(scores["metric"] == "joint_r") & (scores["selection"] == "best")]
    return str(row["layer"].iloc[0])


@contextlib.contextmanager
def per_neuroid_band_choice():
    """A variant not shipped: the band ratio chosen per neuroid (with its penalty), not per layer."""
    from brainalign.correlation import pearson_columns
    from brainalign.encoding import baseline as module
    from brainalign.encoding.backend import NUMPY
    from brainalign.encoding.protocols.registry import Fold
    from brainalign.encoding.protocols.ridge_grouped import ridge_inner_folds
    from brainalign.encoding.ridge import ridge_cv
    from brainalign.encoding.scaling import _standardise

    def fit_fold(k, x, y_clean, regressors, train, test, groups, alphas, options, seed, inner_blocks=None):
        fold = Fold(k, x, y_clean, train, test, train, test, groups, alphas, options, seed, NUMPY, inner_blocks=inner_blocks)
        inner = ridge_inner_folds(fold)
        b_train, b_test = _standardise(regressors[train], regressors[test])
        best, _, solver = ridge_cv(b_train, y_clean[train], alphas, inner)
        base_test = solver.predict_per_target(b_test, alphas, best)
        x_train, x_test = _standardise(x[train], x[test])
        weight = np.sqrt(x.shape[1] / regressors.shape[1])
        fits = [(np.sqrt(r) * weight, *ridge_cv(np.hstack([np.sqrt(r) * weight * b_train, x_train]), y_clean[train], alphas,
                                                inner, errors=True)) for r in module.band_ratios(options)]
        choice = np.vstack([f[4] for f in fits]).argmin(0)
        joint_test, pooled = np.empty((len(test), y_clean.shape[1])), np.empty((len(train), y_clean.shape[1]))
        for i, (scale, best, pool, solver, _) in enumerate(fits):
            columns = np.flatnonzero(choice == i)
            if len(columns):
                joint_test[:, columns] = solver.predict_per_target(np.hstack([scale * b_test, x_test]), alphas, best)[:, columns]
                pooled[:, columns] = pool[:, columns]
        ratio = float(np.median(np.asarray(module.band_ratios(options))[choice]))
        return base_test, joint_test, float(module._aggregate(pearson_columns(pooled, y_clean[train]))), ratio

    original = module._fit_fold
    module._fit_fold = fit_fold
    try:
        yield
    finally:
        module._fit_fold = original


def layer_inputs(dataset, features, options):
    from brainalign.encoding.baseline import baseline_design
    from brainalign.encoding.design import layer_design, responses_matrix

    x, groups, overrides = layer_design(features, dataset, options)
    y, names, _ = responses_matrix(dataset)
    return x, y, groups, overrides, baseline_design(dataset, names, options)


def timed_gain(x, y, baseline, groups, overrides, options, repeats: int):
    from brainalign.encoding.baseline import baseline_gain

    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = baseline_gain(x, y, baseline, groups, overrides, options)
        times.append(time.perf_counter() - start)
    return result, min(times)


def gain_section(dataset, results: Path, models, repeats: int) -> dict:
    from brainalign.extraction.shards import read_layer

    out = {}
    for model in models:
        layer = best_layer(results, model)
        features = read_layer(results / "activations" / model / "brennan2016.h5", layer)
        fixed_options = encoding_options()
        x, y, groups, overrides, baseline = layer_inputs(dataset, features, fixed_options)
        two_level, t_fixed = timed_gain(x, y, baseline, groups, overrides, fixed_options, repeats)
        blocks, t_blocks = timed_gain(x, y, dataclasses.replace(baseline, subjects=None), groups, overrides, fixed_options,
                                      repeats)
        grid_options = encoding_options(baseline_band_ratios=GRID)
        grid, t_grid = timed_gain(x, y, baseline, groups, overrides, grid_options, repeats)
        with per_neuroid_band_choice():
            per_neuroid, t_neuroid = timed_gain(x, y, baseline, groups, overrides, grid_options, 1)
        entry = {"layer": layer,
                 "blocks": {key: triple(blocks[key]) for key in ("baseline", "joint", "gain")},
                 "two_level": {key: triple(two_level[key]) for key in ("baseline", "joint", "gain")},
                 "ci_resamples": {"blocks": blocks["ci_resamples"], "two_level": two_level["ci_resamples"]},
                 "grid": {key: triple(grid[key]) for key in ("joint", "gain")}, "grid_ratios": grid["joint"]["band_ratios"],
                 "per_neuroid": {key: triple(per_neuroid[key]) for key in ("joint", "gain")},
                 "seconds": {"fixed": round(t_fixed, 2), "fixed, blocks CI": round(t_blocks, 2), "grid": round(t_grid, 2),
                             "per_neuroid": round(t_neuroid, 2)}}
        out[model] = entry
        print(model, json.dumps(entry), flush=True)
    return out


def lanczos_section(dataset, results: Path) -> dict:
    from brainalign.encoding.layer_fits import fit_layer
    from brainalign.encoding.layer_metrics import layer_metric
    from brainalign.extraction.shards import read_layer

    metrics = [layer_metric("ridge-grouped"), layer_metric("baseline-gain")]
    out = {}
    for model, layers in LANCZOS_LAYERS.items():
        for layer in layers:
            features = read_layer(results / "activations" / model / "brennan2016.h5", layer)
            row = {}
            for method in ("lanczos", "lanczos-antialias"):
                result = fit_layer(features, dataset, encoding_options(downsample=method), metrics)
                gain = result["baseline-gain"]
                row[method] = {"raw": triple(result["protocols"]["ridge-grouped"]),
                               **{key: triple(gain[key]) for key in ("baseline", "joint", "gain")}}
            out[f"{model} {layer}"] = row
            print(model, layer, json.dumps(row), flush=True)
    return out


# ----------------------------------------------------------------------------------------------- planted data
def _ar1(rng, n, phi, size=()):
    from tests.support.timeseries import ar1  # the tests' AR(1) noise (run from the repository root)

    return ar1(rng, n, phi, size)


def _nested_draws(pairs, units, subjects, n_bootstrap, seed) -> np.ndarray:
    """The alternative not shipped: subjects, then blocks drawn afresh inside each drawn subject (nested)."""
    from brainalign.bootstrap import cluster_members

    rng = np.random.default_rng(seed)
    labels = np.asarray(subjects).astype(str)
    members = cluster_members(labels, n_bootstrap, rng)
    n_subjects = len(np.unique(labels))
    width = members.shape[1] // n_subjects
    out = np.empty((n_bootstrap, len(pairs)))
    for k, ((a, b), unit) in enumerate(zip(pairs, units)):
        a, b = a - a.mean(0), b - b.mean(0)
        _, inverse = np.unique(unit, return_inverse=True)
        n_units = inverse.max() + 1
        onehot = (inverse[None, :] == np.arange(n_units)[:, None]).astype(float)
        moments = np.stack([np.repeat(onehot.sum(1)[:, None], a.shape[1], 1), onehot @ a, onehot @ b, onehot @ (a * a),
                            onehot @ (b * b), onehot @ (a * b)], -1)  # units x columns x 6
        draws = np.zeros((n_bootstrap, n_subjects, n_units))
        picks = rng.integers(0, n_units, (n_bootstrap, n_subjects, n_units))
        np.add.at(draws, (np.arange(n_bootstrap)[:, None, None], np.arange(n_subjects)[None, :, None], picks), 1.0)
        columns = members.reshape(n_bootstrap, n_subjects, width)
        stats = np.einsum("bsk,kbsrm->bsrm", draws, moments[:, columns, :])
        n, sa, sb, saa, sbb, sab = np.moveaxis(stats, -1, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (sab - sa * sb / n) / np.sqrt((saa - sa * sa / n) * (sbb - sb * sb / n))
        out[:, k] = np.median(r.reshape(n_bootstrap, -1), axis=1)
    return out.mean(1)


def coverage_section(simulations: int, resamples: int) -> dict:
    """Coverage of the population r (the median over people of each person's correlation) by each CI."""
    from brainalign.bootstrap import percentile_ci
    from brainalign.encoding.folds import block_folds, fold_units, scan_block_units
    from brainalign.encoding.gain import resampled_fold_scores

    n, phi = 360, 0.8
    folds = block_folds(n, 5, 0)
    units = fold_units(folds, scan_block_units(np.zeros(n, dtype=str), 20))
    settings = [(27, 6, 0.15, 0.1), (27, 6, 0.15, 0.0), (12, 2, 0.4, 0.2), (12, 2, 0.4, 0.0)]
    out = {}
    for n_subjects, rois, mu, tau in settings:
        rng = np.random.default_rng(0)
        truth = mu / np.sqrt(mu**2 + 1)
        subjects = np.repeat([f"s{s}" for s in range(n_subjects)], rois)
        hits, widths = {}, {}
        start = time.perf_counter()
        for _ in range(simulations):
            signal = _ar1(rng, n, phi, (1,))
            weights = np.repeat(mu + tau * rng.standard_normal(n_subjects), rois)
            response = weights[None, :] * signal + _ar1(rng, n, phi, (n_subjects * rois,))
            prediction = np.repeat(signal, n_subjects * rois, 1)
            pairs = [({"r": prediction[test]}, response[test]) for _, test in folds]
            seed = int(rng.integers(1 << 30))
            score = float(np.mean([np.median([np.corrcoef(p["r"][:, j], a[:, j])[0, 1] for j in range(a.shape[1])])
                                   for p, a in pairs]))
            draws = {}
            for name, labels in (("blocks of scans (before)", None), ("subjects, then blocks (crossed; shipped)", subjects)):
                resampled, inflation, _ = resampled_fold_scores(pairs, units, labels, resamples, seed, 20)
                values = resampled["r"].mean(1)
                draws[name] = values if inflation is None else score + inflation * (values - score)
            draws["subjects, then blocks within each (nested)"] = _nested_draws(
                [(p["r"], a) for p, a in pairs], units, subjects, resamples, seed)
            for name, values in draws.items():
                low, high = percentile_ci(values)
                hits[name] = hits.get(name, 0) + int(low <= truth <= high)
                widths.setdefault(name, []).append(high - low)
        key = f"S={n_subjects} x {rois} ROIs, mu={mu}, tau={tau}"
        out[key] = {name: {"coverage": hits[name] / simulations, "width": float(np.mean(widths[name]))} for name in hits}
        out[key]["truth"], out[key]["seconds"] = truth, round(time.perf_counter() - start, 1)
        print(key, json.dumps(out[key]), flush=True)
    return out


def bands_section(seeds: int = 8) -> dict:
    """Planted two-band data: n scans, k baseline columns, p features carrying a 3-dimensional latent signal."""
    from brainalign.encoding.baseline import Baseline, baseline_gain

    n, k, p = 300, 4, 2000
    settings = {"baseline carries nothing, features weak": (0.0, 0.2), "baseline carries nothing": (0.0, 0.4),
                "baseline and features both carry signal": (1.0, 0.5)}
    out = {}
    for label, (sb, sx) in settings.items():
        rows = {"fixed (ratio 1)": [], "chosen per layer (grid)": []}
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            b = rng.standard_normal((n, k))
            latent = rng.standard_normal((n, 3))
            x = 0.3 * latent @ rng.standard_normal((3, p)) + rng.standard_normal((n, p))
            unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
            signal = sb * b @ unit(rng.standard_normal(k)) + sx * latent @ unit(rng.standard_normal(3))
            y = signal[:, None] + rng.standard_normal((n, 6))
            baseline = Baseline(b, [f"b{i}" for i in range(k)], None, [], np.full(6, -1), np.zeros(n, str))
            for name, ratios in (("fixed (ratio 1)", [1.0]), ("chosen per layer (grid)", GRID)):
                options = encoding_options(baseline_band_ratios=ratios, n_bootstrap=0)
                result = baseline_gain(x, y, baseline, np.arange(n) // 10, {}, options)
                rows[name].append([result["baseline"]["score"], result["joint"]["score"], result["gain"]["score"]])
        truth_joint, truth_base = np.sqrt((sb**2 + sx**2) / (sb**2 + sx**2 + 1)), sb / np.sqrt(sb**2 + sx**2 + 1)
        out[label] = {name: {"baseline": float(np.mean(v, 0)[0]), "joint": float(np.mean(v, 0)[1]),
                             "gain": float(np.mean(v, 0)[2]), "gain_sd": float(np.std(np.asarray(v)[:, 2]))}
                      for name, v in rows.items()}
        out[label]["population_gain"] = float(truth_joint - truth_base)
        print(label, json.dumps(out[label]), flush=True)
    return out


# ----------------------------------------------------------------------------------------------- report
def markdown(report: dict) -> str:
    lines = [f"# Time-series statistics (benchmarks/timeseries_statistics.py, {report['date']})", "",
             f"Load average at start {report['load'][0]}, end {report.get('load_end', '?')}; one BLAS thread.", ""]
    if "ceiling" in report:
        c = report["ceiling"]
        lines += ["## Ceiling (Brennan 2016)", "", "| responses | ceiling [95% CI] | group mean | " + " | ".join(c["rois"]) + " |",
                  "|---|---|---|" + "---|" * len(c["rois"])]
        for key in ("cleaned", "raw"):
            v = c[key]
            lines.append(f"| {key} | {v['ceiling']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}] | {v['group_mean']:.3f} | "
                         + " | ".join(f"{x:.3f}" for x in v["per_roi"]) + " |")
        lines.append("")
    if "gain" in report:
        lines += ["## Gain, best layer (Brennan 2016)", "",
                  "| model | layer | gain, blocks CI | gain, two-level CI | joint, blocks | joint, two-level | "
                  "gain, band grid | ratios chosen | gain, per-neuroid grid | s: fixed (blocks CI) / grid / per-neuroid |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        fmt = lambda t: f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"  # noqa: E731
        for model, e in report["gain"].items():
            lines.append(f"| {model} | {e['layer']} | {fmt(e['blocks']['gain'])} | {fmt(e['two_level']['gain'])} | "
                         f"{fmt(e['blocks']['joint'])} | {fmt(e['two_level']['joint'])} | {fmt(e['grid']['gain'])} | "
                         f"{e['grid_ratios']} | {fmt(e['per_neuroid']['gain'])} | "
                         f"{e['seconds']['fixed']} ({e['seconds']['fixed, blocks CI']}) / "
                         f"{e['seconds']['grid']} / {e['seconds']['per_neuroid']} |")
        first = next(iter(report["gain"].values()))
        lines += ["", f"Baseline (every model): blocks {fmt(first['blocks']['baseline'])}, two-level "
                      f"{fmt(first['two_level']['baseline'])}.", ""]
    if "lanczos" in report:
        lines += ["## Lanczos cutoff (Brennan 2016)", "", "| layer | raw r, lanczos | raw r, antialias | gain, lanczos | gain, antialias |",
                  "|---|---|---|---|---|"]
        for layer, row in report["lanczos"].items():
            a, b = row["lanczos"], row["lanczos-antialias"]
            lines.append(f"| {layer} | {a['raw'][0]:.3f} | {b['raw'][0]:.3f} | {a['gain'][0]:.3f} [{a['gain'][1]:.3f}, "
                         f"{a['gain'][2]:.3f}] | {b['gain'][0]:.3f} [{b['gain'][1]:.3f}, {b['gain'][2]:.3f}] |")
        lines.append("")
    if "coverage" in report:
        lines += ["## Coverage of the population r (planted)", "", "| setting | CI | coverage | mean width |", "|---|---|---|---|"]
        for setting, values in report["coverage"].items():
            for name, v in values.items():
                if isinstance(v, dict):
                    lines.append(f"| {setting} | {name} | {v['coverage']:.3f} | {v['width']:.3f} |")
        lines.append("")
    if "bands" in report:
        lines += ["## Band ratio (planted two-band data)", "",
                  "| setting | joint model | baseline r | joint r | gain (sd) | population gain |",
                  "|---|---|---|---|---|---|"]
        for setting, values in report["bands"].items():
            for name, v in values.items():
                if isinstance(v, dict):
                    lines.append(f"| {setting} | {name} | {v['baseline']:.3f} | {v['joint']:.3f} | {v['gain']:.3f} "
                                 f"({v['gain_sd']:.3f}) | {values['population_gain']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    import datetime

    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = Path(args.results)
    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "load": list(os.getloadavg()), "grid": GRID}
    dataset = None
    if {"ceiling", "gain", "lanczos"} & set(args.sections):
        from brainalign.datasets.base import load_prepared

        dataset = load_prepared(results / "datasets" / "brennan2016")
    for section in args.sections:
        start = time.perf_counter()
        if section == "ceiling":
            report["ceiling"] = ceiling_section(dataset)
        elif section == "gain":
            report["gain"] = gain_section(dataset, results, args.models, args.repeats)
        elif section == "lanczos":
            report["lanczos"] = lanczos_section(dataset, results)
        elif section == "coverage":
            report["coverage"] = coverage_section(args.simulations, args.resamples)
        elif section == "bands":
            report["bands"] = bands_section()
        print(f"{section}: {time.perf_counter() - start:.0f} s", flush=True)
    report["load_end"] = list(os.getloadavg())
    (out / "timeseries_statistics.json").write_text(json.dumps(report, indent=1))
    (out / "timeseries_statistics.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
