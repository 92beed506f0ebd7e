"""Benchmark: encoding at voxel scale, side by side in one process (issue 32).

A whole-brain-shaped problem: 384 stimuli x 4,096 features with a power-law spectrum (feature variances 1/k) x
10,000 voxels (quick: 2,000), each voxel's signal a mix of 64 directions of the high-variance features, planted
r ~ U(0.1, 0.5); Brain-Score's 10 ShuffleSplits 90/10 (random_state 1) over stimuli for every method.

  (1) ridge with exact leave-one-out penalties: ours (``ridge-grouped``, ``inner_cv: loo``, ``feature_scaling``
      auto / zscore / center) against a plain exact-LOO ridge (numpy: centred features, one eigendecomposition of
      the kernel per split, every penalty's leave-one-out residuals, a penalty per voxel), sklearn
      ``RidgeCV(alpha_per_target=True)`` on centred features, and Brain-Score Language's own ``ridge_pearsonr``
      (in its own environment, through benchmarks/bsl_metric.py);
  (2) the paper protocol (``brainscore-2023``: OLS, minimum-norm), ours without and with the nested-selection
      inner fits, against sklearn ``LinearRegression`` + vectorised Pearson r and Brain-Score's ``linear_pearsonr``;
      its arithmetic floor: the FLOPs of one kernel solve per split with the responses, at this CPU's GFLOPS
      measured with one big numpy matrix product;
  (3) peak memory beyond the inputs (tracemalloc, which sees every numpy buffer) of (1) auto and (2) at 10,000 and
      100,000 voxels (quick: 2,000 and 20,000);
  (4) the same workloads on the torch back end (CPU here; ``--device cuda`` on a GPU).

One BLAS / torch thread (/work/shared/notes/benchmarking.md): read the ratios, measured side by side.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_voxel.py            # full: ~8 min on an idle machine here
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_voxel.py --quick    # ~1 min
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

ALPHAS = tuple(10.0 ** np.arange(-2, 8))  # the project's default grid, for every ridge here


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 voxels (memory: 2,000 and 20,000), no sklearn ridge / BSL linear")
    parser.add_argument("--voxels", type=int, default=None, help="voxels of (1), (2), (4) (default 10,000; quick 2,000)")
    parser.add_argument("--device", default="cpu", help="torch device of (4)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3,
                        help="(1): the plain ridge and ours (auto) timed this many times each, alternating; medians")
    parser.add_argument("--skip", default="", help="comma list of: sklearn-ridge, sklearn-ols, bsl, memory, torch")
    parser.add_argument("--bsl-python", default="/tmp/bsl/bin/python")
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results"))
    parser.add_argument("--name", default="voxel_scale")
    return parser.parse_args(argv)


def planted_power_law(n, p, voxels, seed=0, rank=64):
    """Features with variances 1/k (a language model's anisotropy, no outliers); each voxel's signal a random mix
    of ``rank`` projections of the features weighted by 1/k (so it rides on the high-variance directions);
    planted r ~ U(0.1, 0.5); float32 as the pipeline stores activations. The signal is built through the rank-64
    projection, so 100,000 voxels cost no 4,096 x 100,000 product."""
    rng = np.random.default_rng(seed)
    k = np.arange(1, p + 1)
    x = rng.standard_normal((n, p)) * k**-0.5
    directions = x @ (rng.standard_normal((p, rank)) / k[:, None])
    signal = directions @ rng.standard_normal((rank, voxels))
    signal = (signal - signal.mean(0)) / signal.std(0)
    rho = rng.uniform(0.1, 0.5, voxels)
    y = rho * signal + np.sqrt(1 - rho**2) * rng.standard_normal((n, voxels))
    return x.astype(np.float32), y.astype(np.float32), rho


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def measured_gflops(size=3000):
    """This CPU's float64 matrix-product speed on one thread: the best of three size^3 products."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    best = min(timed(lambda: a @ b)[1] for _ in range(3))
    return 2 * size**3 / best / 1e9


# ----------------------------------------------------------------------------------------------- references
def plain_loo_ridge(x, y, folds, alphas=ALPHAS):
    """The plain exact-LOO ridge: per split, centred features, one eigendecomposition of the n x n kernel, U'Y, and
    for every penalty the leave-one-out residuals (y - U diag(d) U'y) / (1 - h); a penalty per voxel; Pearson r
    per voxel on the test stimuli, median, mean over splits. Returns (score, per-voxel r averaged over splits)."""
    from brainalign.correlation import pearson_columns

    x, y = x.astype(np.float64), y.astype(np.float64)
    scores, rs = [], []
    for train, test in folds:
        x_mean, y_mean = x[train].mean(0), y[train].mean(0)
        xc, yc = x[train] - x_mean, y[train] - y_mean
        evals, u = np.linalg.eigh(xc @ xc.T)
        keep = evals > 1e-14 * evals.max()
        s2, u = evals[keep], u[:, keep]
        q = u.T @ yc
        n = len(train)
        best_sse, best = np.full(y.shape[1], np.inf), np.zeros(y.shape[1], dtype=int)
        u2 = u**2
        for a, alpha in enumerate(alphas):
            d = s2 / (s2 + alpha)
            residual = (yc - u @ (d[:, None] * q)) / (1.0 - 1.0 / n - u2 @ d)[:, None]
            sse = (residual**2).sum(0)
            better = sse < best_sse
            best_sse[better], best[better] = sse[better], a
        mapped = ((x[test] - x_mean) @ xc.T) @ u
        predicted = np.empty((len(test), y.shape[1]))
        for a in np.unique(best):
            columns = best == a
            predicted[:, columns] = (mapped / (s2 + alphas[a])) @ q[:, columns] + y_mean[columns]
        r = pearson_columns(predicted, y[test])
        rs.append(r)
        scores.append(float(np.median(r)))
    return float(np.mean(scores)), np.mean(rs, axis=0)


def sklearn_ridge(x, y, folds, alphas=ALPHAS):
    """sklearn RidgeCV (leave-one-out, a penalty per voxel) on centred features, same splits."""
    from sklearn.linear_model import RidgeCV

    from brainalign.correlation import pearson_columns

    x, y = x.astype(np.float64), y.astype(np.float64)
    scores = []
    for train, test in folds:
        model = RidgeCV(alphas=alphas, alpha_per_target=True).fit(x[train], y[train])
        scores.append(float(np.median(pearson_columns(model.predict(x[test]), y[test]))))
    return float(np.mean(scores))


def sklearn_ols(x, y, folds):
    """Brain-Score 2023's regression with sklearn: LinearRegression per split, Pearson r vectorised."""
    from sklearn.linear_model import LinearRegression

    from brainalign.correlation import pearson_columns

    x, y = x.astype(np.float64), y.astype(np.float64)
    scores, rs = [], []
    for train, test in folds:
        r = pearson_columns(LinearRegression().fit(x[train], y[train]).predict(x[test]), y[test])
        rs.append(r)
        scores.append(float(np.median(r)))
    return float(np.mean(scores)), np.mean(rs, axis=0)


def brainscore(args, x, y, metrics):
    """Brain-Score Language's own metrics in its environment (bsl_metric.py): {metric: {score, seconds}}."""
    import subprocess
    import tempfile

    if not Path(args.bsl_python).exists():
        return {"skipped": f"no {args.bsl_python}"}
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "problem.npz", x=x, y=y)
        done = subprocess.run([args.bsl_python, str(REPO_ROOT / "benchmarks" / "bsl_metric.py"),
                               str(Path(tmp) / "problem.npz"), ",".join(metrics)], capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    if done.returncode != 0:
        return {"skipped": "bsl_metric.py failed: " + (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------- ours
def ours(x, y, folds, protocol, backend="numpy", device="cpu", nested=True, **options):
    from brainalign.encoding.protocols.scoring import cross_validated_score

    options = {"n_bootstrap": 0, "backend": backend, "dtype": "float32", **options}
    if backend == "torch":
        options["device"] = device
    return cross_validated_score(x, y, None, protocol, options, folds=folds if protocol == "ridge-grouped" else None,
                                 nested=nested)


def sweep_agreement(x, y, folds, alphas=ALPHAS):
    """ridge-grouped auto's float32 penalty sweep against a float64 one (brainalign.encoding.loo.SWEEP_DTYPE) on the
    protocol's own inputs (responses z-scored, both scalings of the features), split by split: how many voxels'
    chosen (scaling, penalty) differ, and by how much their exact float64 leave-one-out errors differ (the chosen
    fit's errors are float64 in both)."""
    from brainalign.encoding import loo
    from brainalign.encoding.scaling import _standardise, scale_features

    differ, scaling_differ, gaps, voxels, rechecked = 0, 0, [], 0, []
    near_ties = loo._near_ties

    def counted(errors, choice):
        ties = near_ties(errors, choice)
        rechecked.append(len(ties))
        return ties

    for train, test in folds:
        y_train, _ = _standardise(y[train], y[test])
        designs = [scale_features(x[train], x[test], name) for name in ("zscore", "center")]
        loo._near_ties = counted
        try:
            fast = loo.loo_scalings(designs, y_train, ALPHAS)
        finally:
            loo._near_ties = near_ties
        saved, loo.SWEEP_DTYPE = loo.SWEEP_DTYPE, np.float64
        try:
            exact = loo.loo_scalings(designs, y_train, ALPHAS)
        finally:
            loo.SWEEP_DTYPE = saved
        mask = (fast[2] != exact[2]) | (fast[3] != exact[3])
        differ += int(mask.sum())
        scaling_differ += int((fast[2] != exact[2]).sum())
        gaps += list(fast[4][mask] / exact[4][mask] - 1)
        voxels += len(mask)
    return {"voxel_splits": voxels, "sweep_rtol": loo.SWEEP_RTOL, "rechecked_in_float64": int(sum(rechecked)),
            "choices_differ": differ, "scaling_choices_differ": scaling_differ,
            "max_relative_excess_error": float(max(gaps)) if gaps else 0.0,
            "min_relative_excess_error": float(min(gaps)) if gaps else 0.0}


def peak_beyond_inputs(fn):
    """(result, peak bytes traced while fn runs: everything it allocates beyond the inputs that already exist)."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def paper_floor(n, p, voxels, n_splits=10, n_test=39):
    """FLOPs of the paper protocol's arithmetic floor: per split one kernel solve with the responses (the centred
    training kernel n^2 p, its Cholesky n^3/3, the solve K^-1 Y 2 n^2 v, the test cross-kernel 2 t n p and the
    predictions 2 t n v), and the least that any OLS fit needs, the predictions as one product of the responses
    with a (t x n) map (ours: n^2 p for the kernel of all rows, the map's solve 2 n^2 t, the product 2 t n v)."""
    n_train = n - n_test
    solve = n_train**2 * p + n_train**3 / 3 + 2 * n_train**2 * voxels + 2 * n_test * n_train * p + 2 * n_test * n_train * voxels
    least = n**2 * p + n_train**3 / 3 + 2 * n_train**2 * n_test + 2 * n_test * n_train * voxels
    return n_splits * solve, n_splits * least


# ----------------------------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    from bench_encoding import machine_info

    from brainalign.encoding.folds import shuffle_splits

    skip = set(filter(None, args.skip.split(",")))
    if args.quick:
        skip |= {"sklearn-ridge", "bsl-linear"}
    voxels = args.voxels or (2000 if args.quick else 10000)
    info = machine_info(SimpleNamespace(threads=args.threads, backend="numpy"), None)
    info["arguments"] = " ".join(sys.argv[1:] if argv is None else argv)
    n, p = 384, 4096
    x, y, rho = planted_power_law(n, p, voxels)
    folds = shuffle_splits(n)
    results = {"info": info, "problem": f"{n} x {p} x {voxels}", "planted_median_r": float(np.median(rho))}
    print(f"{n} x {p} (power law) x {voxels} voxels, 10 ShuffleSplits; load {info['load_average_at_start']}", flush=True)
    results["gflops"] = gflops = measured_gflops()
    print(f"numpy matmul: {gflops:.1f} GFLOPS", flush=True)

    # (1) ridge, leave-one-out
    ridge = results["ridge"] = {}
    plain_times, auto_times = [], []
    for _ in range(args.repeats):  # alternating, so a change of the machine's load hits both alike
        (plain_score, plain_r), seconds = timed(lambda: plain_loo_ridge(x, y, folds))
        plain_times.append(seconds)
        auto, seconds = timed(lambda: ours(x, y, folds, "ridge-grouped", inner_cv="loo", feature_scaling="auto"))
        auto_times.append(seconds)
        print(f"(1) plain {plain_times[-1]:.2f} s, ours auto {auto_times[-1]:.2f} s", flush=True)
    ridge["plain exact-LOO ridge (numpy)"] = {"score": plain_score, "seconds": float(np.median(plain_times)),
                                              "seconds_each": plain_times}
    ridge["ours ridge-grouped loo auto"] = {"score": auto["score"], "seconds": float(np.median(auto_times)),
                                            "seconds_each": auto_times,
                                            "centred_fraction": float(np.mean(auto["centred_fraction"])),
                                            "ratio_each": [a / b for a, b in zip(auto_times, plain_times)]}
    from brainalign.encoding import loo

    saved, loo.SWEEP_DTYPE = loo.SWEEP_DTYPE, np.float64
    try:
        result, seconds = timed(lambda: ours(x, y, folds, "ridge-grouped", inner_cv="loo", feature_scaling="auto"))
    finally:
        loo.SWEEP_DTYPE = saved
    ridge["ours ridge-grouped loo auto, float64 sweep"] = {"score": result["score"], "seconds": seconds,
                                                          "abs_diff_score_vs_float32_sweep": abs(result["score"] - auto["score"]),
                                                          "max_abs_diff_r_vs_float32_sweep": float(np.max(np.abs(
                                                              np.asarray(result["neuroid_r"]) - np.asarray(auto["neuroid_r"]))))}
    print(f"(1) ours auto, float64 sweep: {seconds:.2f} s, r {result['score']:.6f} (float32 sweep {auto['score']:.6f})", flush=True)
    results["sweep_agreement"] = sweep_agreement(x, y, folds)
    print("(1) float32 vs float64 sweep:", results["sweep_agreement"], flush=True)
    for scaling in ("zscore", "center"):
        result, seconds = timed(lambda: ours(x, y, folds, "ridge-grouped", inner_cv="loo", feature_scaling=scaling))
        ridge[f"ours ridge-grouped loo {scaling}"] = {"score": result["score"], "seconds": seconds}
        print(f"(1) ours {scaling}: {seconds:.2f} s, r {result['score']:.4f}", flush=True)
    if "sklearn-ridge" not in skip:
        score, seconds = timed(lambda: sklearn_ridge(x, y, folds))
        ridge["sklearn RidgeCV(alpha_per_target) LOO, centred"] = {"score": score, "seconds": seconds}
        print(f"(1) sklearn: {seconds:.2f} s", flush=True)
    bsl_metrics = [m for m, key in (("ridge_pearsonr", "bsl"), ("linear_pearsonr", "bsl-linear")) if key not in skip and "bsl" not in skip]

    # (2) paper protocol
    paper = results["paper"] = {}
    for nested in (False, True):
        result, seconds = timed(lambda: ours(x, y, None, "brainscore-2023", nested=nested))
        paper[f"ours brainscore-2023{' + nested inner fits' if nested else ''}"] = {"score": result["score"], "seconds": seconds,
                                                                                   "neuroid_r": result["neuroid_r"]}
        print(f"(2) ours nested={nested}: {seconds:.2f} s", flush=True)
    if "sklearn-ols" not in skip:
        (score, reference_r), seconds = timed(lambda: sklearn_ols(x, y, folds))
        paper["sklearn LinearRegression + vectorised r"] = {"score": score, "seconds": seconds}
        for row in [v for k, v in paper.items() if k.startswith("ours")]:
            row["abs_diff_score_vs_sklearn"] = abs(row["score"] - score)
            row["max_abs_diff_r_vs_sklearn"] = float(np.max(np.abs(np.asarray(row["neuroid_r"]) - reference_r)))
        print(f"(2) sklearn: {seconds:.2f} s", flush=True)
    for row in paper.values():
        row.pop("neuroid_r", None)
    solve_flops, least_flops = paper_floor(n, p, voxels)
    results["paper_floor"] = {"kernel_solve_gflop": solve_flops / 1e9, "kernel_solve_seconds": solve_flops / 1e9 / gflops,
                              "least_gflop": least_flops / 1e9, "least_seconds": least_flops / 1e9 / gflops}

    # Brain-Score Language in its own environment (one subprocess for its metrics)
    if bsl_metrics:
        for name, value in brainscore(args, x, y, bsl_metrics).items():
            (ridge if name == "ridge_pearsonr" else paper if name == "linear_pearsonr" else ridge)[f"Brain-Score {name}"] = value
        print("Brain-Score:", {k: v for k, v in {**ridge, **paper}.items() if k.startswith("Brain")}, flush=True)

    # (3) memory
    if "memory" not in skip:
        memory = results["memory"] = []
        for count in ((2000, 20000) if args.quick else (10000, 100000)):
            xm, ym, _ = (x, y, None) if count == voxels else planted_power_law(n, p, count, seed=1)
            row = {"voxels": count, "inputs_mb": (xm.nbytes + ym.nbytes) / 2**20}
            for name, fn in (("ridge-grouped loo auto", lambda: ours(xm, ym, folds, "ridge-grouped", inner_cv="loo")),
                             ("brainscore-2023", lambda: ours(xm, ym, None, "brainscore-2023", nested=False)),
                             ("brainscore-2023 + nested inner fits", lambda: ours(xm, ym, None, "brainscore-2023"))):
                start = time.perf_counter()
                _, peak = peak_beyond_inputs(fn)
                row[name] = {"peak_mb": peak / 2**20, "seconds": time.perf_counter() - start}
                print(f"(3) {count} voxels, {name}: peak {peak / 2**20:.0f} MB", flush=True)
            memory.append(row)
            del xm, ym

    # (4) torch back end
    if "torch" not in skip and torch is not None:
        backend = results["torch"] = {"device": args.device}
        numpy_auto = ridge["ours ridge-grouped loo auto"]["score"]
        result, seconds = timed(lambda: ours(x, y, folds, "ridge-grouped", backend="torch", device=args.device, inner_cv="loo"))
        backend["ridge-grouped loo auto"] = {"seconds": seconds, "score": result["score"],
                                             "abs_diff_vs_numpy": abs(result["score"] - numpy_auto)}
        for nested in (False, True):
            label = "brainscore-2023" + (" + nested inner fits" if nested else "")
            result, seconds = timed(lambda: ours(x, y, None, "brainscore-2023", backend="torch", device=args.device, nested=nested))
            backend[label] = {"seconds": seconds, "score": result["score"],
                              "abs_diff_vs_numpy": abs(result["score"] - paper["ours " + label]["score"])}
        print("(4) torch:", backend, flush=True)

    info["load_average_at_end"] = round(os.getloadavg()[0], 2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.name + ("_quick" if args.quick else "")
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    (out / f"{stem}.md").write_text(markdown(results, args) + "\n")
    print(f"wrote {out / stem}.md / .json")


def _agreement_line(results, ridge) -> str:
    """The float32 sweep's choices and score against the float64 sweep's, in words."""
    agreement, row = results.get("sweep_agreement"), ridge.get("ours ridge-grouped loo auto, float64 sweep")
    if not agreement or not row:
        return "- float32 vs float64 sweep: not measured."
    return (f"- float32 vs float64 sweep, over the {agreement['voxel_splits']:,} (voxel, split) fits: "
            f"{agreement['rechecked_in_float64']:,} had a rival within {2 * agreement['sweep_rtol']:.0e} of their best "
            "error and were re-ranked in "
            f"float64; {agreement['choices_differ']} chosen (scaling, penalty) differ from the float64 sweep's "
            f"({agreement['scaling_choices_differ']} of them in the scaling"
            + (f"; the float32 choice's exact error exceeds the float64 choice's by {agreement['min_relative_excess_error']:.1e}"
               f" to {agreement['max_relative_excess_error']:.1e}, relative" if agreement["choices_differ"] else "")
            + f"); score difference {row['abs_diff_score_vs_float32_sweep']:.1e}, "
            f"largest per-voxel r difference {row['max_abs_diff_r_vs_float32_sweep']:.1e}.")


def markdown(results, args) -> str:
    info = results["info"]
    ridge, paper = results["ridge"], results["paper"]
    plain = ridge["plain exact-LOO ridge (numpy)"]
    lines = [f"# Encoding at voxel scale ({'quick' if args.quick else 'full'} mode)", "",
             f"`OMP_NUM_THREADS={args.threads} .venv/bin/python benchmarks/bench_voxel.py {info.get('arguments', '')}`", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("blas",)) + ".",
             f"Load average (1 min) at start {info['load_average_at_start']}, at end {info['load_average_at_end']} "
             "(the machine's 2 vCPUs are shared: absolute times move with it, ratios of methods run side by side much less).",
             "", f"Problem: {results['problem']} voxels, power-law feature variances 1/k, planted median r "
             f"{results['planted_median_r']:.3f}; Brain-Score's 10 ShuffleSplits 90/10 (random_state 1) for every method; "
             f"one thread; this CPU's float64 matrix product: {results['gflops']:.1f} GFLOPS.", "",
             "## (1) Ridge, a penalty per voxel by exact leave-one-out (10 alphas 1e-2..1e7)", "",
             "| method | seconds | / plain LOO ridge | score (median r, mean over splits) | / plain's score |", "|---|---|---|---|---|"]
    for name, row in ridge.items():
        if "seconds" not in row:
            lines.append(f"| {name} | {row.get('skipped', '-')} | | | |")
            continue
        lines.append(f"| {name} | {row['seconds']:.2f} | {row['seconds'] / plain['seconds']:.2f}x | {row['score']:.4f} | "
                     f"{row['score'] / plain['score']:.3f} |")
    auto = ridge["ours ridge-grouped loo auto"]
    lines += ["", "- plain exact-LOO ridge: centred raw features, one eigendecomposition of the 345 x 345 kernel per split, "
              "every penalty's leave-one-out residuals formed (a 345 x 344 x voxels product per penalty). It and ours "
              f"(auto) were timed {len(plain['seconds_each'])} times each, alternating, medians shown: plain "
              f"{', '.join(f'{s:.2f}' for s in plain['seconds_each'])} s; ours {', '.join(f'{s:.2f}' for s in auto['seconds_each'])} s; "
              f"ratio per pair {', '.join(f'{r:.2f}' for r in auto['ratio_each'])}.",
              "- ours zscore / center: one scaling, fitted by `ridge_loo` as before (bit for bit the earlier protocol); "
              "auto: both scalings' errors from one float32 sweep each (`brainalign.encoding.loo`), residuals, errors "
              "and predictions formed in float64 only for the scaling and penalty each voxel keeps; `float64 sweep`: "
              "the same with the sweep in float64 (`loo.SWEEP_DTYPE`).",
              _agreement_line(results, ridge),
              "- ours: responses z-scored on the training stimuli, features z-scored / centred with one common scale / both "
              "(auto: the scaling with the smaller leave-one-out error per voxel); Brain-Score's ridge_pearsonr: its "
              "RidgeGCV (alphas 1e-3..1e3) on the raw features, in its own environment, timed inside that process.", "",
              "## (2) The paper protocol (brainscore-2023: OLS, minimum-norm)", "",
              "| method | seconds | sklearn / this | score | abs diff score vs sklearn | max abs diff r per voxel |",
              "|---|---|---|---|---|---|"]
    reference = paper.get("sklearn LinearRegression + vectorised r")
    for name, row in paper.items():
        if "seconds" not in row:
            lines.append(f"| {name} | {row.get('skipped', '-')} | | | | |")
            continue
        ratio = f"{reference['seconds'] / row['seconds']:.1f}x" if reference else "-"
        lines.append(f"| {name} | {row['seconds']:.2f} | {ratio} | {row['score']:.6f} | "
                     f"{row.get('abs_diff_score_vs_sklearn', float('nan')):.1e} | "
                     f"{row.get('max_abs_diff_r_vs_sklearn', float('nan')):.1e} |")
    floor = results["paper_floor"]
    plain_paper = paper["ours brainscore-2023"]["seconds"]
    lines += ["", f"- Arithmetic floor, one kernel solve per split with the responses (centred kernel n^2 p, Cholesky n^3/3, "
              f"K^-1 Y 2 n^2 v, test cross-kernel and predictions): {floor['kernel_solve_gflop']:.1f} GFLOP over the 10 splits = "
              f"{floor['kernel_solve_seconds']:.2f} s at {results['gflops']:.1f} GFLOPS; ours without the nested inner fits: "
              f"{plain_paper:.2f} s = {plain_paper / floor['kernel_solve_seconds']:.2f}x that floor.",
              f"- Ours solves the kernel for the 39 test rows' cross-kernel instead of for every voxel's responses, then one "
              f"(39 x 345) x (345 x voxels) product: {floor['least_gflop']:.1f} GFLOP = {floor['least_seconds']:.2f} s at that "
              f"speed ({plain_paper / floor['least_seconds']:.1f}x that; the rest is memory traffic: reading the responses, "
              "the correlations).",
              "- `+ nested inner fits`: also the 3 inner fits per split whose training-only score the nested layer choice "
              "reads; the workflow asks for them only where a nested row of this protocol is built (with "
              "`encoding.extras_layers: selected`, the default config, brainscore-2023 is computed at the selected layers "
              "only and gets no nested row, so they are skipped there)."]
    if "memory" in results:
        lines += ["", "## (3) Peak memory beyond the inputs (tracemalloc), numpy back end", "",
                  "| voxels | inputs (MB) | ridge-grouped loo auto: peak MB (s) | brainscore-2023: peak MB (s) "
                  "| + nested inner fits: peak MB (s) |",
                  "|---|---|---|---|---|"]
        for row in results["memory"]:
            cells = [f"{row[k]['peak_mb']:.0f} ({row[k]['seconds']:.1f})" for k in
                     ("ridge-grouped loo auto", "brainscore-2023", "brainscore-2023 + nested inner fits")]
            lines.append(f"| {row['voxels']:,} | {row['inputs_mb']:.0f} | " + " | ".join(cells) + " |")
        lines += ["", "- ridge-grouped's leave-one-out sweep takes the voxels in chunks of at most 64 MB per "
                  "(344 x chunk) float64 block (brainalign.encoding.loo.TARGET_CHUNK_BYTES); what grows with the voxels "
                  "is the float64 copy of the responses, the pooled leave-one-out predictions and the test predictions."]
    if "torch" in results:
        backend = results["torch"]
        lines += ["", f"## (4) torch back end ({backend['device']}), same data and splits", "",
                  "| workload | seconds | numpy seconds | abs diff score vs numpy |", "|---|---|---|---|"]
        numpy_seconds = {"ridge-grouped loo auto": ridge["ours ridge-grouped loo auto"]["seconds"],
                         "brainscore-2023": paper["ours brainscore-2023"]["seconds"],
                         "brainscore-2023 + nested inner fits": paper["ours brainscore-2023 + nested inner fits"]["seconds"]}
        for name, row in backend.items():
            if name == "device":
                continue
            lines.append(f"| {name} | {row['seconds']:.2f} | {numpy_seconds[name]:.2f} | {row['abs_diff_vs_numpy']:.1e} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
