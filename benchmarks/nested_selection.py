"""Layer selection on planted data: the best layer's bias, and the coverage of the best, nested and fixed-layer CIs.

Two kinds of planted studies (``--replicates`` each), written to ``results/nested_selection.md`` and ``.json``:

* **planted predictors** (every replicate in well under a second): sentences in passages (grouped 5-fold CV by
  passage, the bootstrap resampling whole passages, as for Pereira 2018), ``--neuroids`` responses
  ``y = s + e`` and ``--layers`` "layers" whose held-out predictions are ``s + b_l u_l`` (fixed, so each layer's
  population r, ``rho_l``, is known exactly: ``1 / sqrt((1 + b_l^2)(1 + var e))``); half of every component's variance
  is shared within a passage. Each layer's result is built with the package's own bootstrap
  (``encoding.bootstrap.fold_draws``, the draws every layer of a job shares) and its training-only score is its r on
  the fold's training sentences (what a protocol's inner score is: a score that never sees the test fold); the rows
  come from the score step's own code (``encoding.layer_metrics.protocol_rows``). Scenarios: ``equal`` (every layer
  ``rho``: best is biased upward, nested is not) and ``near-tie`` (three layers within 0.02 of the top and the rest
  lower: the nested choice flips between folds). Targets: a fixed layer's and the best layer's ``rho``; for the
  nested score, its conditional target (the mean over folds of the chosen layers' ``rho``: what the interval,
  which keeps each fold's training-made choice, is about) and its unconditional one (that mean's expectation over
  replicates: what a choice re-made on new training data would add).
* **ridge** (``--ridge-replicates``, a few seconds each): the real ``ridge-grouped`` protocol
  (``encoding.protocols.scoring.cross_validated_score``) on equal layers (the same features plus independent
  noise), every layer fitted: best minus a fixed layer and nested minus a fixed layer, i.e. the selection bias
  with real fitting (the population r of fitted ridge models is not known in closed form, so no coverage here).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nested_selection.py            # ~5 min here (results/nested_selection.md)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nested_selection.py --quick    # ~20 s
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from brainalign.bootstrap import unit_inflation
from brainalign.correlation import pearson_columns
from brainalign.encoding.bootstrap import encode_draws, fold_draws, fold_mean_interval
from brainalign.encoding.folds import fold_units, grouped_folds
from brainalign.encoding.layer_metrics import LayerProfile, layer_metric, protocol_rows
from brainalign.encoding.selection import fold_picks

HERE = Path(__file__).resolve().parent


def passage_noise(rng, n_passages: int, size: int, shape: tuple, shared: float = 0.5) -> np.ndarray:
    """Unit-variance noise whose ``shared`` part is the same for every sentence of a passage."""
    common = np.repeat(rng.standard_normal((n_passages, *shape)), size, axis=0)
    return np.sqrt(shared) * common + np.sqrt(1 - shared) * rng.standard_normal((n_passages * size, *shape))


def _median_r(a, b) -> float:
    return float(np.nanmedian(pearson_columns(a, b)))


def planted_replicate(rng, scales: np.ndarray, noise_sd: float, n_passages: int, size: int, n_neuroids: int, n_bootstrap: int,
                      seed: int) -> tuple[dict, list]:
    """One planted study: the tidy rows of its layers (best, nested, layer) and each fold's chosen layer."""
    groups = np.repeat(np.arange(n_passages), size)
    s = passage_noise(rng, n_passages, size, (n_neuroids,))
    y = s + noise_sd * passage_noise(rng, n_passages, size, (n_neuroids,))
    folds = grouped_folds(groups, 5, seed)
    units = fold_units(folds, groups)
    names = [f"l{i}" for i in range(len(scales))]
    by_layer = {}
    for name, scale in zip(names, scales):
        predicted = s + scale * passage_noise(rng, n_passages, size, (n_neuroids,))
        pairs = [(predicted[test], y[test]) for _, test in folds]
        fold_scores = [_median_r(p, a) for p, a in pairs]
        inner = [_median_r(predicted[train], y[train]) for train, _ in folds]
        draws, observed = fold_draws(pairs, n_bootstrap, seed, units=units)
        low, high = fold_mean_interval(draws, observed, unit_inflation(units))
        by_layer[name] = {"protocols": {"ridge-grouped": {
            "score": float(np.mean(fold_scores)), "fold_scores": fold_scores, "inner_scores": inner, "ci_low": low,
            "ci_high": high, "n": len(y), "fold_draws": encode_draws(draws), "bootstrap_inflation": unit_inflation(units)}}}
    profile = LayerProfile("m", "planted", names, by_layer, np.nan)
    rows = {}
    for row in protocol_rows(layer_metric("ridge-grouped"), profile):
        rows.setdefault(row["selection"], []).append(row)
    picks = fold_picks({name: by_layer[name]["protocols"]["ridge-grouped"]["inner_scores"] for name in names}, names)
    return rows, picks


def planted(scenario: str, replicates: int, n_layers: int, rho: float, n_neuroids: int, n_passages: int, size: int,
            n_bootstrap: int, seed: int) -> dict:
    """Bias, coverage and width of the fixed, best and nested rows over ``replicates`` planted studies."""
    noise_sd = 1.0
    if scenario == "equal":
        rhos = np.full(n_layers, rho)
    else:  # near-tie: three layers within 0.02 of the top, the rest 0.05-0.15 lower
        rhos = np.concatenate([[rho, rho - 0.01, rho - 0.02], np.linspace(rho - 0.05, rho - 0.15, n_layers - 3)])
    scales = np.sqrt(1.0 / (rhos ** 2 * (1 + noise_sd ** 2)) - 1)  # rho_l = 1 / sqrt((1 + b^2)(1 + var e))
    rng = np.random.default_rng(seed)
    index = {f"l{i}": i for i in range(n_layers)}
    out = {key: {"score": [], "low": [], "high": [], "target": [], "fixed": []} for key in ("fixed", "best", "nested")}
    flips = 0
    for replicate in range(replicates):
        rows, picks = planted_replicate(rng, scales, noise_sd, n_passages, size, n_neuroids, n_bootstrap, seed + replicate)
        flips += len(set(picks)) > 1
        chosen = {"fixed": rows["layer"][0], "best": rows["best"][0], "nested": rows["nested"][0]}
        targets = {"fixed": rhos[0], "best": rhos[index[chosen["best"]["layer"]]],
                   "nested": float(np.mean([rhos[index[p]] for p in picks]))}
        for key, row in chosen.items():
            out[key]["score"].append(row["raw_r"])
            out[key]["low"].append(row["ci_low"])
            out[key]["high"].append(row["ci_high"])
            out[key]["target"].append(targets[key])
            out[key]["fixed"].append(chosen["fixed"]["raw_r"])  # the same replicate's fixed layer: a paired difference
    summary = {"scenario": scenario, "replicates": replicates, "layers": n_layers, "rho": [float(r) for r in rhos],
               "neuroids": n_neuroids, "passages": n_passages, "sentences_per_passage": size, "n_bootstrap": n_bootstrap,
               "replicates_where_the_nested_choice_flips": flips}
    for key, values in out.items():
        score, low, high, target, fixed = (np.asarray(values[k], dtype=float) for k in ("score", "low", "high", "target", "fixed"))
        entry = {"mean_score": float(score.mean()), "bias_vs_own_target": float((score - target).mean()),
                 "minus_fixed": float((score - fixed).mean()), "minus_fixed_se": float((score - fixed).std(ddof=1) / np.sqrt(len(score))),
                 "bias_vs_top_rho": float(score.mean() - rhos.max()),
                 "coverage_own_target": float(np.mean((low <= target) & (target <= high))),
                 "coverage_top_rho": float(np.mean((low <= rhos.max()) & (rhos.max() <= high))),
                 "mean_width": float(np.mean(high - low)), "sd_of_score": float(score.std(ddof=1))}
        if key == "nested":  # the unconditional target: the chosen layers' rho averaged over replicates too
            expected = float(target.mean())
            entry["unconditional_target"] = expected
            entry["coverage_unconditional_target"] = float(np.mean((low <= expected) & (expected <= high)))
        summary[key] = entry
    return summary


def ridge(replicates: int, n_layers: int, n_bootstrap: int, seed: int) -> dict:
    """The real ridge-grouped protocol on equal layers: best - fixed and nested - fixed."""
    from brainalign.encoding.protocols.scoring import cross_validated_score

    rng = np.random.default_rng(seed)
    n_passages, size, n_features, n_neuroids = 40, 5, 16, 8
    groups = np.repeat(np.arange(n_passages), size)
    options = {"n_bootstrap": n_bootstrap, "feature_scaling": "zscore", "seed": seed}
    differences = {"best": [], "nested": []}
    coverage = {"best": [], "nested": [], "fixed": []}
    for replicate in range(replicates):
        latent = passage_noise(rng, n_passages, size, (n_features,))
        y = latent @ rng.standard_normal((n_features, n_neuroids)) / np.sqrt(n_features) * 0.6 + passage_noise(
            rng, n_passages, size, (n_neuroids,))
        names = [f"l{i}" for i in range(n_layers)]
        folds = grouped_folds(groups, 5, seed + replicate)
        by_layer = {name: {"protocols": {"ridge-grouped": cross_validated_score(
            latent + 0.7 * passage_noise(rng, n_passages, size, (n_features,)), y, groups, "ridge-grouped", options,
            folds=folds, units=groups)}} for name in names}
        rows = {row["selection"]: row for row in protocol_rows(layer_metric("ridge-grouped"),
                                                               LayerProfile("m", "ridge", names, by_layer, np.nan))}
        fixed = by_layer["l0"]["protocols"]["ridge-grouped"]["score"]
        differences["best"].append(rows["best"]["raw_r"] - fixed)
        differences["nested"].append(rows["nested"]["raw_r"] - fixed)
        for key in coverage:
            row = rows["layer"] if key == "fixed" else rows[key]
            coverage[key].append((row["ci_low"], row["ci_high"]))
    out = {"replicates": replicates, "layers": n_layers, "n_bootstrap": n_bootstrap}
    for key, values in differences.items():
        values = np.asarray(values)
        out[f"{key}_minus_fixed"] = {"mean": float(values.mean()), "se": float(values.std(ddof=1) / np.sqrt(len(values)))}
    out["mean_width"] = {key: float(np.mean([high - low for low, high in values])) for key, values in coverage.items()}
    return out


def markdown(results: dict) -> str:
    lines = ["# Layer selection: the best layer's bias and the coverage of its CI, against the nested choice's",
             "", f"`benchmarks/nested_selection.py` ({results['arguments']}), {results['seconds']:.0f} s. "
             "Coverage: the fraction of 95% CIs that contain the target (nominal 0.95; 0.93-0.97 expected with "
             "200-500 replicates).", ""]
    for summary in results["planted"]:
        lines += [f"## Planted predictors, {summary['scenario']} layers ({summary['layers']} layers, rho "
                  f"{summary['rho'][0]:.2f}{'' if summary['scenario'] == 'equal' else ' top'}, {summary['replicates']} "
                  f"replicates; the nested choice flips between folds in {summary['replicates_where_the_nested_choice_flips']})",
                  "", "| row | mean score | minus the fixed layer (se) | bias vs its target | bias vs top rho | coverage of its "
                  "target | coverage of top rho | mean CI width | sd of score |", "|---|---|---|---|---|---|---|---|---|"]
        for key, label in (("fixed", "fixed layer (l0)"), ("best", "best layer"), ("nested", "nested choice")):
            e = summary[key]
            lines.append(f"| {label} | {e['mean_score']:.4f} | {e['minus_fixed']:+.4f} ({e['minus_fixed_se']:.4f}) | "
                         f"{e['bias_vs_own_target']:+.4f} | {e['bias_vs_top_rho']:+.4f} | "
                         f"{e['coverage_own_target']:.3f} | {e['coverage_top_rho']:.3f} | {e['mean_width']:.4f} | "
                         f"{e['sd_of_score']:.4f} |")
        nested = summary["nested"]
        lines += ["", f"Nested: coverage of the unconditional target ({nested['unconditional_target']:.4f}, the chosen "
                  f"layers' rho averaged over replicates): {nested['coverage_unconditional_target']:.3f}.", ""]
    r = results["ridge"]
    lines += [f"## Real ridge-grouped fits, equal layers ({r['layers']} layers, {r['replicates']} replicates)", "",
              f"best - fixed layer: {r['best_minus_fixed']['mean']:+.4f} (se {r['best_minus_fixed']['se']:.4f}); "
              f"nested - fixed layer: {r['nested_minus_fixed']['mean']:+.4f} (se {r['nested_minus_fixed']['se']:.4f}). "
              f"Mean CI widths: fixed {r['mean_width']['fixed']:.4f}, best {r['mean_width']['best']:.4f}, "
              f"nested {r['mean_width']['nested']:.4f}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=400)
    parser.add_argument("--ridge-replicates", type=int, default=100)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--rho", type=float, default=0.3)
    parser.add_argument("--neuroids", type=int, default=20)
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="60 planted and 10 ridge replicates, 300 draws")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--name", default="nested_selection")
    args = parser.parse_args()
    if args.quick:
        args.replicates, args.ridge_replicates, args.n_bootstrap = 60, 10, 300
    start = time.time()
    results = {"arguments": f"--replicates {args.replicates} --ridge-replicates {args.ridge_replicates} --layers {args.layers} "
                            f"--rho {args.rho} --neuroids {args.neuroids} --n-bootstrap {args.n_bootstrap} --seed {args.seed}"}
    results["planted"] = [planted(scenario, args.replicates, args.layers, args.rho, args.neuroids, 80, 4, args.n_bootstrap, args.seed)
                          for scenario in ("equal", "near-tie")]
    results["ridge"] = ridge(args.ridge_replicates, min(args.layers, 8), min(args.n_bootstrap, 500), args.seed)
    results["seconds"] = time.time() - start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
