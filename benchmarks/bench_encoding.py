"""Benchmark: brainalign's encoding stage against the libraries it replaces, side by side in one process.

  (a) paper protocol (Brain-Score 2023): OLS with intercept, ShuffleSplit(n_splits=10, test_size=0.1,
      random_state=1), Pearson r per neuroid, median over neuroids, mean over splits, on a Pereira-sized problem
      (384 stimuli x 4096 features x N neuroids). Ours: ``cross_validated_score(protocol="brainscore-2023")``
      (which also computes the nested training-only score: 3 extra fits per split). Reference: sklearn
      LinearRegression + ShuffleSplit + scipy.stats.pearsonr called per neuroid (the Brain-Score way), on all
      neuroids (full mode: ~4 min of the total; --reference-neuroids K times it on K and scales linearly).
  (b) ridge with a penalty per target, 2000 train x 1024 features x 1 and x 1000 targets, predictions for 500
      held-out samples, each reference against ours on identical folds and alphas. sklearn
      RidgeCV(alpha_per_target=True) only supports its efficient leave-one-out (GCV) mode, so it is timed against
      our ``ridge_loo`` (exact leave-one-out from one decomposition, which the final fit reuses); our default
      ``ridge_cv`` (5-fold inner CV, pooled squared error) + refit runs on the same KFold(5) folds as himalaya
      RidgeCV and, with one target (where one penalty is the per-target penalty), sklearn RidgeCV(cv=folds).
  (c) layer sweep: 48 layers of 2000 x 768 against 1000 targets, ridge-grouped protocol (5 outer x 5 inner
      grouped folds), total time; the cost of the default 1,000-resample bootstrap CI measured on one layer.
  (d) the 1,000-resample bootstrap CI alone on test folds shaped like (a) and (c): ours (count-weighted
      correlations, batched) vs the per-resample loop brainalign used before.
  (e) feature scaling on anisotropic features (docs/feature_scaling.md): power-law feature variances (1/k), three
      outlier dimensions, the signal in the high-variance directions, in the low-variance ones, or half the targets
      each; recovered r beside the time for ridge-grouped under each ``encoding.feature_scaling``, sklearn RidgeCV
      (leave-one-out, a penalty per target) on centred and on z-scored features on the same outer folds, and
      Brain-Score Language's own ``ridge_pearsonr`` and ``linear_pearsonr`` metrics on NeuroidAssemblies (run in
      its own environment, ``--bsl-python``, through benchmarks/bsl_metric.py). Its usual output file:
      ``--sections e --name feature_scaling``.

Synthetic data: features share a 32-dimensional latent with the responses; each target's planted correlation
rho ~ U(0.1, 0.5); stored as float32 (what the pipeline reads), handed to the references as float64 copies of
the same values. One BLAS/torch thread by default (see /work/shared/notes/benchmarking.md): ratios measured side
by side are what to read, absolute times move +-10% from run to run.

Usage (results in benchmarks/results/encoding.md and .json):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_encoding.py            # full, ~12 min on 2 shared vCPUs
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_encoding.py --quick    # ~1.5 min
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_encoding.py --backend torch --device cuda --name encoding-cuda
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_encoding.py --sections e --name feature_scaling   # ~3 min
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

ALPHAS = tuple(10.0 ** np.arange(-2, 8))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (2000 neuroids in (a), 3 layers in (c))")
    parser.add_argument("--backend", choices=["numpy", "torch"], default="numpy", help="back end of ours")
    parser.add_argument("--device", default="auto", help="torch device for --backend torch (default auto: cuda if available)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats per method; the median is reported")
    parser.add_argument("--reference-neuroids", type=int, default=None,
                        help="(a): run the reference on only this many neuroids and scale its time linearly (default: "
                             "all; linear scaling underestimates it, see benchmarks/README.md)")
    parser.add_argument("--sections", default="abcd", help="which of a, b, c, d, e to run (e: feature scaling)")
    parser.add_argument("--bsl-python", default="/tmp/bsl/bin/python",
                        help="(e): the Python of an environment with brainscore-language installed (skipped if absent)")
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results"), help="output folder")
    parser.add_argument("--name", default="encoding", help="file stem of the results (<out>/<name>.md, .json)")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------------------------- helpers
def synchronize(device):
    if device is not None and str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn, repeats, device=None):
    """(result of the last call, median seconds over ``repeats`` calls)."""
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        result = fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def make_data(n, p, targets, seed, latent=32):
    """Features and responses sharing a latent; per-target planted correlation rho ~ U(0.1, 0.5); float32."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, latent))
    x = z @ rng.standard_normal((latent, p)) / np.sqrt(latent) + rng.standard_normal((n, p))
    signal = z @ rng.standard_normal((latent, targets))
    signal = (signal - signal.mean(0)) / signal.std(0)
    rho = rng.uniform(0.1, 0.5, targets)
    y = rho * signal + np.sqrt(1 - rho**2) * rng.standard_normal((n, targets))
    return x.astype(np.float32), y.astype(np.float32)


def ours_options(args, **extra):
    options = {"backend": args.backend, "dtype": "float32", **extra}
    if args.backend == "torch":
        options["device"] = args.device
    return options


def machine_info(args, device):
    import scipy
    import sklearn
    import threadpoolctl

    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "python": platform.python_version(),
            "os": platform.platform(), "cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
            "cpu_model": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                               if line.startswith("model name")), platform.processor())
            if Path("/proc/cpuinfo").exists() else platform.processor(),
            "numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"), "threads": args.threads,
            "blas": [f"{p['internal_api']} {p.get('version')} ({p.get('architecture')}, {p['num_threads']} threads)"
                     for p in threadpoolctl.threadpool_info()],
            "backend": args.backend, "device": str(device) if device else "cpu (numpy)",
            "load_average_at_start": round(os.getloadavg()[0], 2)}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        info["torch"] = "not installed"
    try:
        import himalaya

        info["himalaya"] = himalaya.__version__
    except ImportError:
        info["himalaya"] = "not installed"
    return info


# ----------------------------------------------------------------------------------------------- (a) paper
def paper_reference(x, y):
    """Brain-Score 2023 as its code does it: LinearRegression per split, scipy pearsonr per neuroid."""
    from scipy.stats import pearsonr
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import ShuffleSplit

    split_scores, neuroid_r = [], []
    for train, test in ShuffleSplit(n_splits=10, test_size=0.1, random_state=1).split(x):
        predicted = LinearRegression().fit(x[train], y[train]).predict(x[test])
        r = np.array([pearsonr(predicted[:, j], y[test][:, j]).statistic for j in range(y.shape[1])])
        neuroid_r.append(r)
        split_scores.append(np.median(r))
    return float(np.mean(split_scores)), np.mean(neuroid_r, axis=0)


def section_a(args, device):
    from brainalign.encoding.protocols.scoring import cross_validated_score

    n, p = 384, 4096
    neuroids = 2000 if args.quick else 20000
    n_ref = args.reference_neuroids or neuroids
    n_ref = min(n_ref, neuroids)
    x, y = make_data(n, p, neuroids, seed=1)
    print(f"(a) paper protocol {n} x {p} x {neuroids}", flush=True)
    ours, t_ours = timed(lambda: cross_validated_score(x, y, protocol="brainscore-2023",
                                                       options=ours_options(args, n_bootstrap=0)), args.repeats, device)
    print(f"    ours {t_ours:.1f} s, score {ours['score']:.6f}", flush=True)
    peak_mb = None
    if args.backend == "numpy":  # numpy reports its buffers to tracemalloc; torch's allocator does not
        import tracemalloc

        tracemalloc.start()
        cross_validated_score(x, y, protocol="brainscore-2023", options=ours_options(args, n_bootstrap=0))
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"    ours: peak memory beyond the inputs {peak_mb:.0f} MB (inputs {(x.nbytes + y.nbytes) / 2**20:.0f} MB)", flush=True)
    x64, y64 = x.astype(np.float64), y[:, :n_ref].astype(np.float64)
    (ref_score, ref_r), t_ref = timed(lambda: paper_reference(x64, y64), args.repeats)
    print(f"    reference on {n_ref} neuroids {t_ref:.1f} s, score {ref_score:.6f}", flush=True)
    row = {"problem": f"{n} x {p} x {neuroids}", "ours_s": t_ours, "ours_score": ours["score"], "reference_neuroids": n_ref,
           "ours_peak_mb_beyond_inputs": peak_mb, "inputs_mb": (x.nbytes + y.nbytes) / 2**20,
           "reference_s_measured": t_ref, "reference_score": ref_score}
    # agreement on the same neuroids: per-neuroid r (mean over splits) from our full run, and the protocol score
    # from our run on the reference's subset
    row["max_abs_diff_neuroid_r"] = float(np.nanmax(np.abs(np.asarray(ours["neuroid_r"][:n_ref]) - ref_r)))
    if n_ref == neuroids:
        row["abs_diff_score"] = abs(ours["score"] - ref_score)
        row["reference_s"] = t_ref
        row["reference_scaled"] = False
    else:
        subset, t_subset = timed(lambda: cross_validated_score(x, y[:, :n_ref], protocol="brainscore-2023",
                                                               options=ours_options(args, n_bootstrap=0)), 1, device)
        row["abs_diff_score"] = abs(subset["score"] - ref_score)
        row["ours_s_on_reference_subset"] = t_subset
        row["reference_s"] = t_ref * neuroids / n_ref  # linear in neuroids: overstates the per-split SVD part
        row["reference_scaled"] = True
        row["ratio_same_neuroids"] = t_ref / t_subset
    row["ratio"] = row["reference_s"] / t_ours
    row["agree_1e-6"] = bool(row["abs_diff_score"] < 1e-6 and row["max_abs_diff_neuroid_r"] < 1e-6)
    print(f"    ratio reference/ours {row['ratio']:.1f}x, |d score| {row['abs_diff_score']:.1e}, "
          f"max |d r| {row['max_abs_diff_neuroid_r']:.1e}", flush=True)
    return row


# ----------------------------------------------------------------------------------------------- (b) ridge
def _agreement(predicted, reference, alphas, reference_alphas, y_test):
    from brainalign.correlation import pearson_columns

    ours = float(np.median(pearson_columns(predicted, y_test)))
    theirs = float(np.median(pearson_columns(reference, y_test)))
    same = np.isclose(alphas, reference_alphas, rtol=1e-9)
    return {"same_alpha_fraction": float(np.mean(same)),
            "max_abs_diff_prediction_same_alpha": float(np.max(np.abs(predicted - reference)[:, same])) if same.any() else None,
            "max_abs_diff_prediction": float(np.max(np.abs(predicted - reference))),
            "test_score": theirs, "abs_diff_test_score": abs(ours - theirs)}


def section_b(args, device):
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold

    from brainalign.correlation import pearson_columns
    from brainalign.encoding.ridge import ridge_cv, ridge_loo

    alphas = np.asarray(ALPHAS)
    n_train, n_test, p = 2000, 500, 1024
    rows = []
    for targets in (1, 1000):
        x_all, y_all = make_data(n_train + n_test, p, targets, seed=2)
        x, y = x_all[:n_train].astype(np.float64), y_all[:n_train].astype(np.float64)
        x_test, y_test = x_all[n_train:].astype(np.float64), y_all[n_train:].astype(np.float64)
        folds = list(KFold(5).split(x))
        print(f"(b) ridge per-target alpha {n_train} x {p} x {targets}", flush=True)

        if args.backend == "torch":
            from brainalign.encoding.backend import backend_ops

            ops = backend_ops(args.backend, args.device)
            data = [ops.asarray(a) for a in (x, y, x_test)]
        else:
            data = [x, y, x_test]

        def host(a):
            return np.asarray(a if isinstance(a, np.ndarray) else a.cpu().numpy())

        def ours():
            tx, ty, tx_test = data
            best, _, solver = ridge_cv(tx, ty, alphas, folds)
            predicted = solver.predict_per_target(tx_test, alphas, best)
            return best, host(predicted)

        def ours_loo():
            tx, ty, tx_test = data
            best, _, solver = ridge_loo(tx, ty, alphas)
            return best, host(solver.predict_per_target(tx_test, alphas, best))

        (best, predicted), t_ours = timed(ours, args.repeats, device)
        (best_loo, predicted_loo), t_ours_loo = timed(ours_loo, args.repeats, device)
        row = {"problem": f"{n_train} x {p} x {targets}", "ours_s": t_ours, "ours_loo_s": t_ours_loo,
               "ours_test_score": float(np.median(pearson_columns(predicted, y_test)))}

        def sklearn_ridge():
            model = RidgeCV(alphas=alphas, alpha_per_target=True).fit(x, y)
            return np.atleast_1d(model.alpha_), model.predict(x_test).reshape(len(x_test), -1)

        (sk_alpha, sk_predicted), t_sk = timed(sklearn_ridge, args.repeats)
        row.update(sklearn_s=t_sk, sklearn_ratio=t_sk / t_ours_loo,
                   sklearn=_agreement(predicted_loo, sk_predicted, alphas[best_loo], sk_alpha, y_test))
        print(f"    ours LOO {t_ours_loo:.2f} s; sklearn RidgeCV (LOO) {t_sk:.2f} s = {t_sk / t_ours_loo:.1f}x", flush=True)
        if targets == 1:  # one target: the penalty per target IS the penalty, so sklearn can run the same 5 folds

            def sklearn_folds():
                # equal folds (400 each): mean of the fold MSEs = pooled squared error / n, ours's criterion
                model = RidgeCV(alphas=alphas, cv=folds, scoring="neg_mean_squared_error").fit(x, y[:, 0])
                return np.atleast_1d(model.alpha_), model.predict(x_test).reshape(len(x_test), -1)

            (skf_alpha, skf_predicted), t_skf = timed(sklearn_folds, args.repeats)
            row.update(sklearn_folds_s=t_skf, sklearn_folds_ratio=t_skf / t_ours,
                       sklearn_folds=_agreement(predicted, skf_predicted, alphas[best], skf_alpha, y_test))
            print(f"    ours 5-fold {t_ours:.2f} s; sklearn RidgeCV (same folds) {t_skf:.2f} s = {t_skf / t_ours:.1f}x", flush=True)
        try:
            import himalaya
            from himalaya.backend import set_backend
            from himalaya.ridge import RidgeCV as HimalayaRidgeCV
        except ImportError as error:
            row["himalaya"] = f"not run: {error}"
        else:
            name = "numpy" if args.backend == "numpy" else ("torch_cuda" if str(device).startswith("cuda") else "torch")
            backend = set_backend(name, on_error="raise")

            def himalaya_ridge():
                model = HimalayaRidgeCV(alphas=alphas, fit_intercept=True, cv=folds).fit(x, y)
                return backend.to_numpy(model.best_alphas_), backend.to_numpy(model.predict(x_test)).reshape(len(x_test), -1)

            (hi_alpha, hi_predicted), t_hi = timed(himalaya_ridge, args.repeats, device)
            row.update(himalaya_s=t_hi, himalaya_ratio=t_hi / t_ours, himalaya_backend=f"{name} {himalaya.__version__}",
                       himalaya=_agreement(predicted, hi_predicted, alphas[best], hi_alpha, y_test))
            print(f"    ours 5-fold {t_ours:.2f} s; himalaya RidgeCV (same folds) {t_hi:.2f} s = {t_hi / t_ours:.1f}x", flush=True)
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------- (c) sweep
def section_c(args, device):
    from brainalign.encoding.protocols.scoring import cross_validated_score

    n, p, targets = 2000, 768, 1000
    n_layers = 3 if args.quick else 48  # every layer of a 48-layer model (GPT-2 XL, LLaMA-33B-sized depth)
    rng = np.random.default_rng(3)
    z = rng.standard_normal((n, 32))
    signal = z @ rng.standard_normal((32, targets))
    signal = (signal - signal.mean(0)) / signal.std(0)
    rho = rng.uniform(0.1, 0.5, targets)
    y = (rho * signal + np.sqrt(1 - rho**2) * rng.standard_normal((n, targets))).astype(np.float32)
    groups = np.arange(n) // 4  # passages of 4 sentences
    print(f"(c) layer sweep {n_layers} layers of {n} x {p} against {targets} targets", flush=True)
    per_layer, scores = [], []
    for layer in range(n_layers):
        weight = np.sin(np.pi * (layer + 0.5) / n_layers)  # the latent peaks mid-depth
        x = (weight * z @ rng.standard_normal((32, p)) / np.sqrt(32) + rng.standard_normal((n, p))).astype(np.float32)
        result, seconds = timed(lambda: cross_validated_score(x, y, groups, "ridge-grouped", ours_options(args, n_bootstrap=0)),
                                1, device)
        per_layer.append(seconds)
        scores.append(result["score"])
        print(f"    layer {layer}: {seconds:.1f} s, score {result['score']:.4f}", flush=True)
    with_ci, t_ci = timed(lambda: cross_validated_score(x, y, groups, "ridge-grouped", ours_options(args, n_bootstrap=1000)),
                          1, device)
    print(f"    total {sum(per_layer):.1f} s; one layer with the 1,000-resample CI {t_ci:.1f} s", flush=True)
    return {"problem": f"{n_layers} layers x {n} x {p} x {targets}", "layers": n_layers, "total_s": sum(per_layer),
            "per_layer_s": per_layer, "scores": scores, "one_layer_with_bootstrap_s": t_ci,
            "bootstrap_s": t_ci - per_layer[-1]}


# ----------------------------------------------------------------------------------------------- (d) bootstrap
def bootstrap_loop(pairs, n_bootstrap, seed):
    """The per-resample bootstrap (brainalign before the count-weighted one): copy the resampled rows, correlate."""
    from brainalign.correlation import pearson_columns
    from brainalign.encoding.bootstrap import _median

    rng = np.random.default_rng(seed)
    values = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        scores = []
        for predicted, actual in pairs:
            index = rng.integers(0, len(actual), len(actual))
            scores.append(_median(pearson_columns(predicted[index], actual[index])))
        values[b] = np.nanmean(scores)
    return tuple(float(v) for v in np.nanpercentile(values, [2.5, 97.5]))


def section_d(args, device):
    """The 1,000-resample CI on test folds shaped like (a) and (c): ours vs the per-resample loop (numpy)."""
    from brainalign.encoding.backend import backend_ops
    from brainalign.encoding.bootstrap import _bootstrap

    ops = backend_ops(args.backend, args.device)
    shapes = [("(a) 10 splits x 39 x 2000" if args.quick else "(a) 10 splits x 39 x 20000", 10, 39, 2000 if args.quick else 20000),
              ("(c) 5 folds x 400 x 1000", 5, 400, 1000)]
    rows = []
    for label, folds, n, targets in shapes:
        rng = np.random.default_rng(4)
        pairs = []
        for _ in range(folds):
            predicted = rng.standard_normal((n, targets))
            pairs.append((predicted, (0.3 * predicted + rng.standard_normal((n, targets))).astype(np.float32)))
        print(f"(d) bootstrap CI, 1000 resamples, {label}", flush=True)
        on_backend = [tuple(ops.asarray(a) for a in pair) for pair in pairs]
        ours, t_ours = timed(lambda: _bootstrap(on_backend, 1000, 0), args.repeats, device)
        loop, t_loop = timed(lambda: bootstrap_loop(pairs, 1000, 0), 1)
        rows.append({"problem": label, "ours_s": t_ours, "loop_s": t_loop, "ratio": t_loop / t_ours,
                     "max_abs_diff_ci": float(np.max(np.abs(np.subtract(ours, loop))))})
        print(f"    ours {t_ours:.2f} s, loop {t_loop:.2f} s = {t_loop / t_ours:.1f}x, "
              f"|d CI| {rows[-1]['max_abs_diff_ci']:.1e}", flush=True)
    return rows


# ----------------------------------------------------------------------------------------------- report
# ----------------------------------------------------------------------------------------------- (e)
def planted_anisotropic(n, p, targets, seed, signal, n_outliers=3):
    """Features with variance 1/k and ``n_outliers`` signal-free dimensions with SD 3 (~50x the median SD); each
    target's signal from the top directions with weights falling as 1/k (``high``), from the lowest-variance half
    weighted by 1/SD (``low``), or half the targets each (``mixed``); rho ~ U(0.1, 0.5); groups of 10 samples.
    The generator of tests/test_feature_scaling.py (planted_anisotropic), plus ``mixed``."""
    rng = np.random.default_rng(seed)
    k = np.arange(1, p + 1)
    sd = k**-0.5
    x = rng.standard_normal((n, p)) * sd
    outliers = rng.choice(np.arange(p // 4, p), n_outliers, replace=False)
    x[:, outliers] *= 3.0 / sd[outliers]
    high = rng.standard_normal((p, targets)) / k[:, None]
    low = rng.standard_normal((p, targets)) * (k[:, None] > p // 2) / sd[:, None]
    weights = {"high": high, "low": low, "mixed": np.where(np.arange(targets) < targets // 2, high, low)}[signal]
    weights[outliers] = 0
    planted = x @ weights
    planted = (planted - planted.mean(0)) / planted.std(0)
    rho = rng.uniform(0.1, 0.5, targets)
    y = rho * planted + np.sqrt(1 - rho**2) * rng.standard_normal((n, targets))
    return x.astype(np.float32), y.astype(np.float32), np.arange(n) // 10, rho


def sklearn_loo(x, y, groups, scaling, seed=0):
    """sklearn RidgeCV (leave-one-out, a penalty per target, 1e-4..1e8) on centred or z-scored training features,
    on ridge-grouped's outer folds: median r, mean over folds."""
    from sklearn.linear_model import RidgeCV

    from brainalign.correlation import pearson_columns
    from brainalign.encoding.folds import grouped_folds

    scores = []
    for train, test in grouped_folds(groups, 5, seed):
        x_train, x_test, y_train = (a.astype(np.float64) for a in (x[train], x[test], y[train]))
        mean, sd = x_train.mean(0), (x_train.std(0) if scaling == "zscore" else 1.0)
        model = RidgeCV(alphas=10.0 ** np.arange(-4, 9), alpha_per_target=True)
        model.fit((x_train - mean) / sd, (y_train - y_train.mean(0)) / y_train.std(0))
        scores.append(np.median(pearson_columns(model.predict((x_test - mean) / sd), y[test].astype(np.float64))))
    return float(np.mean(scores))


def brainscore_metrics(args, x, y):
    """Brain-Score Language's ridge_pearsonr and linear_pearsonr on these data, in its own environment."""
    import subprocess
    import tempfile

    if not Path(args.bsl_python).exists():
        return {"skipped": f"no {args.bsl_python} (python3 -m venv /tmp/bsl && /tmp/bsl/bin/pip install brainscore-language)"}
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "problem.npz", x=x, y=y)
        done = subprocess.run([args.bsl_python, str(REPO_ROOT / "benchmarks" / "bsl_metric.py"), str(Path(tmp) / "problem.npz")],
                              capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    if done.returncode != 0:
        return {"skipped": "bsl_metric.py failed: " + done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def section_e(args, device):
    from brainalign.encoding.protocols.scoring import cross_validated_score

    n, p, targets = (1000, 384, 50) if args.quick else (2000, 576, 200)
    rows = []
    for signal in ("high", "low", "mixed"):
        x, y, groups, rho = planted_anisotropic(n, p, targets, seed=0, signal=signal)
        print(f"(e) feature scaling, signal {signal}: {n} x {p} x {targets}", flush=True)
        row = {"signal": signal, "problem": f"{n} x {p} x {targets}", "planted_median": float(np.median(rho)), "methods": {}}
        for scaling, choice in (("zscore", "target"), ("center", "target"), ("auto", "target"), ("auto", "layer")):
            options = ours_options(args, n_bootstrap=0, feature_scaling=scaling, feature_scaling_choice=choice)
            result, seconds = timed(lambda: cross_validated_score(x, y, groups, options=options), args.repeats, device)
            name = f"ours {scaling}" + (f" ({choice})" if scaling == "auto" else "")
            row["methods"][name] = {"score": result["score"], "seconds": seconds,
                                    "centred_fraction": float(np.mean(result["centred_fraction"]))}
        for scaling in ("center", "zscore"):
            score, seconds = timed(lambda: sklearn_loo(x, y, groups, scaling), args.repeats)
            row["methods"][f"sklearn RidgeCV LOO, {scaling}"] = {"score": score, "seconds": seconds}
        for name, value in brainscore_metrics(args, x, y).items():
            row["methods"][f"Brain-Score {name}" if name != "skipped" else "Brain-Score"] = value
        rows.append(row)
    return rows


def _e(value):
    return "-" if value is None else f"{value:.1e}"


def markdown(info, results, args):
    lines = [f"# Encoding benchmark ({'quick' if args.quick else 'full'} mode)", "",
        f"`{' '.join(['OMP_NUM_THREADS=' + info['OMP_NUM_THREADS'], '.venv/bin/python', 'benchmarks/bench_encoding.py'] + sys.argv[1:])}`",
             "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("blas", "date")) + f"; {info['date']}.",
             "BLAS: " + "; ".join(info["blas"]) + ". The load average is the whole machine's (other jobs share its "
             "two vCPUs): absolute times are inflated by it, ratios of methods run side by side much less.", "",
             f"Ours: back end `{info['backend']}` on {info['device']}; inputs stored as float32 (the pipeline's default), "
             "decompositions in float64. Times are medians of "
             f"{args.repeats} run(s), one process, methods side by side; ratio = their time / ours.", ""]
    if "a" in results:
        a = results["a"]
        scaled = (f"reference timed on the first {a['reference_neuroids']} neuroids ({a['reference_s_measured']:.1f} s) and "
                  f"scaled linearly to all (ratio on those same neuroids: {a['ratio_same_neuroids']:.1f}x); linear scaling "
                  "UNDERestimates the reference (measured on 2 vCPUs: 142 s scaled from 5000 neuroids, 228 s run on all "
                  "20000); the score is compared on that subset (ours run on "
                  "it too), the per-neuroid r (mean over splits) from our full run") if a["reference_scaled"] else \
            "reference on all neuroids; score and per-neuroid r (mean over splits) compared on all of them"
        lines += ["## (a) Paper protocol (Brain-Score 2023: OLS, 10 ShuffleSplits 90/10, Pearson per neuroid, median, mean)", "",
                  "| problem | ours (s) | sklearn LinearRegression + scipy pearsonr (s) | ratio | score ours | score reference "
                  "| abs diff score | max abs diff r per neuroid |",
                  "|---|---|---|---|---|---|---|---|",
                  f"| {a['problem']} | {a['ours_s']:.1f} | {a['reference_s']:.1f}{' (scaled)' if a['reference_scaled'] else ''} | "
                  f"{a['ratio']:.1f}x | {a['ours_score']:.6f} | {a['reference_score']:.6f} | {a['abs_diff_score']:.1e} | "
                  f"{a['max_abs_diff_neuroid_r']:.1e} |", "",
                  f"- {scaled}.",
                  "- Ours also computes the nested training-only score (3 more OLS fits per split), which the reference does not.",
                  (f"- Peak memory of ours beyond its inputs ({a['inputs_mb']:.0f} MB): {a['ours_peak_mb_beyond_inputs']:.0f} MB "
                   "(tracemalloc, which sees every numpy buffer; target < 4 GB)." if a.get("ours_peak_mb_beyond_inputs") is not None
                   else "- Peak memory: measured with the numpy back end only."), ""]
    if "b" in results:
        def cells(row, name):
            agreement = row.get(name)
            if not isinstance(agreement, dict):
                return [agreement or "not run (more than one target: sklearn's cv= picks one penalty for all)", "-", "-", "-", "-"]
            ours_s = row["ours_loo_s"] if name == "sklearn" else row["ours_s"]
            return [f"{row[name + '_s']:.2f}", f"{row[name + '_s'] / ours_s:.1f}x", f"{agreement['same_alpha_fraction']:.3f}",
                    _e(agreement["max_abs_diff_prediction_same_alpha"]), f"{agreement['abs_diff_test_score']:.1e}"]

        lines += ["## (b) Ridge with a penalty per target (10 alphas 1e-2..1e7), 500 held-out samples", "",
                  "The default protocol: 5-fold inner CV (pooled squared error) + refit, against the references on the "
                  "same 5 folds and alphas.", "",
                  "| problem | ours (s) | reference | reference (s) | ratio | same alpha "
                  "| max abs diff prediction where the alpha is the same | abs diff test score |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in results["b"]:
            for name, label in (("sklearn_folds", "sklearn RidgeCV(cv=folds)"), ("himalaya", "himalaya RidgeCV(cv=folds)")):
                lines.append("| " + " | ".join([row["problem"], f"{row['ours_s']:.2f}", label] + cells(row, name)) + " |")
        lines += ["", "Leave-one-out (encoding option `inner_cv: loo`): exact leave-one-out residuals from one "
                  "eigendecomposition, which the final fit reuses, against sklearn's `RidgeCV(alpha_per_target=True)` "
                  "(which exists only in this mode, cv=None).", "",
                  "| problem | ours (s) | reference | reference (s) | ratio | same alpha "
                  "| max abs diff prediction where the alpha is the same | abs diff test score |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in results["b"]:
            lines.append("| " + " | ".join([row["problem"], f"{row['ours_loo_s']:.2f}", "sklearn RidgeCV(alpha_per_target=True)"]
                                           + cells(row, "sklearn")) + " |")
        lines += ["", "- Ours, 5-fold: each fold is one tridiagonal reduction (LAPACK dsytrd) of a Gram matrix cut from "
                  "cross-products shared by all folds, every penalty solved from it in O(features) per target; the refit "
                  "is a Cholesky factor per chosen penalty when there are at most two. Both sides get the same float64 "
                  "inputs. sklearn RidgeCV(cv=folds) refits sklearn Ridge per fold and penalty (GridSearchCV) and scores "
                  "by mean fold MSE (= pooled squared error here: equal folds).",
                  f"- himalaya back end: {results['b'][0].get('himalaya_backend', 'not run')}.", ""]
    if "c" in results:
        c = results["c"]
        lines += ["## (c) Layer sweep (ridge-grouped: 5 outer x 5 inner grouped folds, default feature scaling)", "",
                  "| problem | total (s) | per layer (s) | bootstrap CI, 1,000 resamples, per layer (s) |", "|---|---|---|---|",
                  f"| {c['problem']} | {c['total_s']:.1f} | {np.mean(c['per_layer_s']):.2f} (min {min(c['per_layer_s']):.2f}, "
                  f"max {max(c['per_layer_s']):.2f}) | {c['bootstrap_s']:.2f} |", "",
                  "- Scores by layer: " + ", ".join(f"{s:.3f}" for s in c["scores"]) + " (planted signal peaks mid-depth).", ""]
    if "d" in results:
        lines += ["## (d) Bootstrap CI of the score (1,000 resamples of each test fold's stimuli)", "",
                  "| test folds | ours (s) | per-resample loop (s) | ratio | max abs diff CI |", "|---|---|---|---|---|"]
        lines += [f"| {row['problem']} | {row['ours_s']:.2f} | {row['loop_s']:.2f} | {row['ratio']:.1f}x | {row['max_abs_diff_ci']:.1e} |"
                  for row in results["d"]]
        lines += ["", "- Ours: each resample's r as a count-weighted correlation, five matrix products per batch of "
                  "resamples; the loop (brainalign's earlier code, numpy) copies the resampled rows and correlates them, "
                  "resample by resample. Same draws; the CIs differ only by the float32 rounding the loop does when it "
                  "centres float32 responses.", ""]
    if "e" in results:
        lines += ["## (e) Feature scaling on anisotropic features (recovered r beside the time)", "",
                  "Features: variance 1/k (k = 1..p) and 3 signal-free outlier dimensions with SD 3 (~50x the median); "
                  "signal in the high-variance directions (weights 1/k), in the low-variance half (weights 1/SD), or half "
                  "the targets each; planted rho ~ U(0.1, 0.5). Ours: ridge-grouped (5 x 5 grouped folds, 10 alphas "
                  "1e-2..1e7) under each `encoding.feature_scaling`; sklearn on the same outer folds (13 alphas "
                  "1e-4..1e8); Brain-Score Language's metrics with their own 10 ShuffleSplits (samples are independent "
                  "here, so ungrouped splits leak nothing).", "",
                  "| signal | problem | planted median r | method | recovered r | seconds | neuroids fitted centred |",
                  "|---|---|---|---|---|---|---|"]
        for row in results["e"]:
            for name, m in row["methods"].items():
                if "score" not in m:
                    lines.append(f"| {row['signal']} | {row['problem']} | {row['planted_median']:.3f} | {name} | "
                                 f"{m.get('skipped', m)} | - | - |")
                    continue
                fraction = f"{m['centred_fraction']:.2f}" if "centred_fraction" in m else "-"
                lines.append(f"| {row['signal']} | {row['problem']} | {row['planted_median']:.3f} | {name} | {m['score']:.4f} | "
                             f"{m['seconds']:.2f} | {fraction} |")
        lines += ["", "- Brain-Score's `ridge_pearsonr` is RidgeGCV over alphas 1e-3..1e3 on the raw (centred, unscaled) "
                  "features; `linear_pearsonr` is OLS.", ""]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    device = None
    if args.backend == "torch":
        import torch

        torch.set_num_threads(args.threads)
        from brainalign.encoding.backend import backend_ops

        device = backend_ops("torch", args.device).device
        args.device = str(device)
        from brainalign.encoding.protocols.scoring import cross_validated_score

        warm = make_data(64, 32, 4, seed=0)  # CUDA context, cuBLAS/cuSOLVER handles: not part of any timing
        cross_validated_score(*warm, np.arange(64) // 4, options=ours_options(args, n_bootstrap=0))
    info = machine_info(args, device)
    start = time.perf_counter()
    results = {}
    if "a" in args.sections:
        results["a"] = section_a(args, device)
    if "b" in args.sections:
        results["b"] = section_b(args, device)
    if "c" in args.sections:
        results["c"] = section_c(args, device)
    if "d" in args.sections:
        results["d"] = section_d(args, device)
    if "e" in args.sections:
        results["e"] = section_e(args, device)
    info["benchmark_wall_s"] = round(time.perf_counter() - start, 1)
    info["load_average_at_end"] = round(os.getloadavg()[0], 2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps({"mode": "quick" if args.quick else "full", "machine": info,
                                                        "results": results}, indent=1) + "\n")
    (out / f"{args.name}.md").write_text(markdown(info, results, args))
    print(f"wrote {out / args.name}.md and .json ({info['benchmark_wall_s']} s)")
    if "a" in results and not results["a"]["agree_1e-6"]:
        raise SystemExit("(a): ours and the reference disagree by more than 1e-6")


if __name__ == "__main__":
    main()
