"""The nested layer choice (brainalign.encoding.selection): its score and its 95% CI are those of the nested estimator
itself (each outer fold's held-out predictions from the layer chosen on that fold's training data, resampled by
passages as every CI), not the best layer's or a fixed layer's; the time-series gain's nested row likewise; and on
planted data with equal layers, best is biased upward while nested is not (docs/statistics.md, "Layer selection")."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.encoding.bootstrap import _bootstrap, decode_draws, encode_draws
from brainalign.encoding.folds import fold_units, grouped_folds
from brainalign.encoding.layer_metrics import LayerProfile, layer_metric, protocol_rows
from brainalign.encoding.protocols.scoring import cross_validated_score
from brainalign.encoding.selection import fold_picks, modal_layer, nested_draws, nested_interval
from brainalign.options import EncodingOptions

OPTIONS = {"n_bootstrap": 300, "feature_scaling": "zscore", "seed": 0, "protocols": ["ridge-grouped"], "similarity": False}


def _tied_layers(n_layers=6, n_passages=48, size=5, seed=1):
    """Sentences in passages; every layer is the same planted signal plus its own noise (equal true r: the layers
    tie, so which one a fold's training data prefers is chance and flips between folds)."""
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"p{i:02d}" for i in range(n_passages)], size)
    n = n_passages * size
    signal = rng.standard_normal((n, 6))
    y = signal @ rng.standard_normal((6, 4)) * 0.5 + np.repeat(rng.standard_normal((n_passages, 4)), size, axis=0) \
        + rng.standard_normal((n, 4))
    layers = {f"l{i}": signal + 1.2 * rng.standard_normal((n, 6)) for i in range(n_layers)}
    return layers, y, groups, signal


def _profile(results: dict) -> LayerProfile:
    return LayerProfile("m", "d", list(results), {name: {"protocols": {"ridge-grouped": r}} for name, r in results.items()}, np.nan)


def test_the_nested_ci_is_the_bootstrap_of_the_nested_estimator():
    """Layers tie and the choice flips between folds: the nested score is the mean over folds of the chosen layers'
    held-out scores, and its CI equals a bootstrap, by passages, of those held-out predictions pooled fold by fold
    (computed here from scratch with the protocol's own fit); it contains the nested score and is not the best
    layer's CI."""
    from brainalign.encoding.backend import NUMPY
    from brainalign.encoding.protocols.registry import Fold, get_protocol
    from brainalign.encoding.ridge import DEFAULT_ALPHAS

    layers, y, groups, _ = _tied_layers()
    folds = grouped_folds(groups, 5, 0)
    results = {name: cross_validated_score(x, y, groups, "ridge-grouped", OPTIONS, folds=folds, units=groups)
               for name, x in layers.items()}
    rows = {row["selection"]: row for row in protocol_rows(layer_metric("ridge-grouped"), _profile(results))}
    names = list(layers)
    picks = fold_picks({name: results[name]["inner_scores"] for name in names}, names)
    assert len(set(picks)) > 1, picks  # the choice flips between folds
    nested = rows["nested"]
    assert nested["layer"] == modal_layer(picks, names)
    assert nested["raw_r"] == pytest.approx(np.mean([results[pick]["fold_scores"][k] for k, pick in enumerate(picks)]))
    # the nested estimator from scratch: each fold's held-out predictions from the layer its training data chose
    options = EncodingOptions.from_dict(OPTIONS)
    pairs = []
    for k, ((train, test), pick) in enumerate(zip(folds, picks)):
        x = np.asarray(layers[pick], dtype=np.float32)
        fold = Fold(k, x, y.astype(np.float32), train, test, train, test, np.asarray(groups), np.asarray(DEFAULT_ALPHAS),
                    options, 0, NUMPY)
        predicted, actual, *_ = get_protocol("ridge-grouped").fit_fold(fold)
        pairs.append((predicted, actual))
    expected = _bootstrap(pairs, OPTIONS["n_bootstrap"], 0, units=fold_units(folds, groups))
    assert (nested["ci_low"], nested["ci_high"]) == pytest.approx(expected, abs=2e-6)  # float32 storage of the draws
    assert nested["ci_low"] < nested["raw_r"] < nested["ci_high"]
    best = rows["best"]
    assert (best["ci_low"], best["ci_high"]) == (results[best["layer"]]["ci_low"], results[best["layer"]]["ci_high"])
    assert abs(best["ci_low"] - nested["ci_low"]) > 1e-3 and best["raw_r"] > nested["raw_r"]
    # no fixed layer's CI is the nested one
    assert all(abs(results[name]["ci_low"] - nested["ci_low"]) > 1e-4 for name in names)


def test_a_layer_chosen_in_every_fold_gives_exactly_its_own_score_and_ci():
    """When one layer wins every fold's training-only comparison, the nested row is that layer: same score and, up to
    the float32 storage of the draws, the same CI (the same resamples, stretched the same way)."""
    layers, y, groups, signal = _tied_layers(n_layers=3)
    layers["l1"] = signal + 0.1 * np.random.default_rng(5).standard_normal(signal.shape)  # l1: far less noise than l0, l2
    folds = grouped_folds(groups, 5, 0)
    results = {name: cross_validated_score(x, y, groups, "ridge-grouped", OPTIONS, folds=folds, units=groups)
               for name, x in layers.items()}
    rows = {row["selection"]: row for row in protocol_rows(layer_metric("ridge-grouped"), _profile(results))}
    picks = fold_picks({name: results[name]["inner_scores"] for name in layers}, list(layers))
    assert set(picks) == {"l1"} and rows["nested"]["layer"] == rows["best"]["layer"] == "l1"
    assert rows["nested"]["raw_r"] == pytest.approx(rows["best"]["raw_r"], abs=1e-12)
    assert (rows["nested"]["ci_low"], rows["nested"]["ci_high"]) == pytest.approx((rows["best"]["ci_low"], rows["best"]["ci_high"]),
                                                                                  abs=2e-6)


def test_nested_draws_combine_the_chosen_layers_fold_by_fold():
    """The plumbing on hand-made draws: column k of the nested draws is fold k's chosen layer's column k; no draws (a
    result without a bootstrap) or draws of another shape (not one job's resamples) give no CI."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.3, 0.05, (200, 3)), rng.normal(0.2, 0.05, (200, 3))
    encoded = {"a": encode_draws(a), "b": encode_draws(b)}
    np.testing.assert_allclose(decode_draws(encoded["a"]), a, rtol=1e-6)  # float32
    picks = ["a", "b", "a"]
    combined = nested_draws(picks, encoded)
    np.testing.assert_allclose(combined, np.column_stack([a[:, 0], b[:, 1], a[:, 2]]), rtol=1e-6)
    low, high = nested_interval(picks, [0.3, 0.2, 0.3], encoded, None)
    expected = np.percentile(combined.mean(axis=1), [2.5, 97.5])
    assert (low, high) == pytest.approx(tuple(expected))
    stretched = nested_interval(picks, [0.3, 0.2, 0.3], encoded, 2.0)  # whole units: stretched around the nested score
    centre = np.mean([0.3, 0.2, 0.3])
    assert stretched == pytest.approx(tuple(centre + 2.0 * (expected - centre)))
    assert np.isnan(nested_interval(picks, [0.3, 0.2, 0.3], {"a": encoded["a"], "b": None}, None)).all()
    assert np.isnan(nested_interval(picks, [0.3, 0.2, 0.3], {"a": encoded["a"], "b": encode_draws(b[:100])}, None)).all()
    assert nested_draws([None, None, None], encoded) is None
    assert fold_picks({"a": [np.nan, 0.2], "b": [np.nan, 0.3]}, ["a", "b"]) == [None, "b"]  # a fold no layer scored


def test_the_time_series_gain_has_a_nested_row_with_its_own_ci():
    """Brennan-like planted story: the gain's nested row (the headline of a time series when the selection is
    nested) has a block-bootstrap CI of the nested estimator: the chosen layers' baseline and joint draws, the same
    resamples, combined fold by fold; with one layer chosen in every fold it equals that layer's rows."""
    from brainalign.encoding.gain import gain_rows
    from brainalign.encoding.layer_fits import fit_layer
    from brainalign.encoding.layer_metrics import LAYER_METRICS
    from tests.test_baseline import FAST, planted_story

    dataset, values = planted_story(n_scans=240, n_subjects=2)
    rng = np.random.default_rng(2)
    features = {f"l{i}": np.column_stack([values + 1.5 * rng.standard_normal(len(values)), rng.standard_normal((len(values), 2))])
                for i in range(3)}
    options = {**FAST, "n_bootstrap": 100}
    by_layer = {name: fit_layer(x, dataset, options) for name, x in features.items()}
    metric = LAYER_METRICS["baseline-gain"]
    profile = LayerProfile("m", "planted", list(features), by_layer, 0.5)
    rows = {(row["selection"], row["metric"]): row for row in gain_rows(metric, profile)}
    nested_gain = rows[("nested", "gain_r")]
    assert np.isfinite(nested_gain["ci_low"]) and nested_gain["ci_low"] < nested_gain["raw_r"] < nested_gain["ci_high"]
    stored = {name: result["baseline-gain"] for name, result in by_layer.items()}
    picks = fold_picks({name: stored[name]["joint"]["inner_scores"] for name in stored}, list(stored))
    joint = nested_draws(picks, {name: stored[name]["joint"]["fold_draws"] for name in stored})
    base = nested_draws(picks, {name: stored[name]["baseline"]["fold_draws"] for name in stored})
    inflation = stored["l0"]["bootstrap_inflation"]  # None where the draws are not stretched

    def stretched(values, centre):
        return values if inflation is None else centre + inflation * (values - centre)

    score = {key: np.mean([stored[p][key]["fold_scores"][k] for k, p in enumerate(picks)]) for key in ("baseline", "joint")}
    draws = {"baseline": stretched(base.mean(1), score["baseline"]), "joint": stretched(joint.mean(1), score["joint"])}
    assert nested_gain["raw_r"] == pytest.approx(score["joint"] - score["baseline"])
    assert (nested_gain["ci_low"], nested_gain["ci_high"]) == pytest.approx(
        tuple(np.percentile(draws["joint"] - draws["baseline"], [2.5, 97.5])), abs=1e-9)
    # one layer alone: its nested rows are its own
    alone = LayerProfile("m", "planted", ["l0"], {"l0": by_layer["l0"]}, 0.5)
    single = {(row["selection"], row["metric"]): row for row in gain_rows(metric, alone)}
    for name in ("baseline_r", "joint_r", "gain_r", "variance_added"):
        assert single[("nested", name)]["raw_r"] == pytest.approx(single[("best", name)]["raw_r"], abs=1e-12)
        assert (single[("nested", name)]["ci_low"], single[("nested", name)]["ci_high"]) == pytest.approx(
            (single[("best", name)]["ci_low"], single[("best", name)]["ci_high"]), abs=2e-6)


def test_on_equal_layers_best_is_biased_upward_and_nested_is_not():
    """A small version of benchmarks/nested_selection.py (planted predictors, 10 layers of equal true r, 40
    replicates): best exceeds a fixed layer by far more than its standard error, nested does not, and the nested CI
    covers the true r about as often as a fixed layer's CI does, more often than the best layer's."""
    from benchmarks.nested_selection import planted

    summary = planted("equal", 40, 10, 0.3, 12, 60, 4, 200, 3)
    best, nested, fixed = summary["best"], summary["nested"], summary["fixed"]
    assert best["minus_fixed"] > 0.015 and best["minus_fixed"] > 5 * best["minus_fixed_se"]
    assert abs(nested["minus_fixed"]) < 3 * nested["minus_fixed_se"] + 0.002
    assert nested["coverage_own_target"] >= 0.9 and fixed["coverage_own_target"] >= 0.9
    assert best["coverage_own_target"] < nested["coverage_own_target"]
    assert summary["replicates_where_the_nested_choice_flips"] > 30


def test_a_metric_nan_at_every_layer_leaves_its_layer_rows_and_no_best(caplog):
    """A protocol undefined on a dataset (Brain-Score's RDM of a single neuroid is NaN for any model) gives NaN
    layer rows and a warning, not an exception that would stop the model's other rows; one finite layer is its best."""
    layers, y, groups, _ = _tied_layers(n_layers=2)
    folds = grouped_folds(groups, 5, 0)
    results = {name: cross_validated_score(x, y, groups, "ridge-grouped", OPTIONS, folds=folds, units=groups)
               for name, x in layers.items()}
    for result in results.values():
        result["score"] = float("nan")
    with caplog.at_level("WARNING", logger="brainalign.encoding.layer_metrics"):
        rows = protocol_rows(layer_metric("ridge-grouped"), _profile(results))
    assert [row["selection"] for row in rows] == ["layer", "layer"]
    assert all(np.isnan(row["raw_r"]) for row in rows)
    assert "NaN at every layer" in caplog.text
    results["l1"]["score"] = 0.25
    rows = {row["selection"]: row for row in protocol_rows(layer_metric("ridge-grouped"), _profile(results))}
    assert rows["best"]["layer"] == "l1" and rows["best"]["raw_r"] == 0.25
