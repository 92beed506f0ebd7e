"""Choosing a layer: the nested layer choice and its bootstrap interval, from the layers' stored results.

A model has 7-31 layers; the *best* layer (the largest cross-validated score) is chosen on the same test folds
that score it, so its score is the maximum of L noisy estimates: biased upward, and its CI (that layer's own)
ignores the choice. The *nested* estimate (Cawley & Talbot 2010) chooses, in each outer fold, the layer with the
largest training-only (inner) score, and scores that layer on the fold's held-out data; the nested score is the
mean over folds, as every protocol's score is (docs/statistics.md, "Layer selection": measured bias and coverage).

Its interval is a bootstrap of that estimator itself (:func:`nested_interval`): every layer of a model x dataset
is resampled with the same draws (same folds, same seed: :func:`brainalign.encoding.bootstrap.fold_draws`), so
draw b of the nested score is the mean over folds k of the chosen layer's draw b on fold k: one resample of the test
units (passages, blocks of scans), scored by the nested estimator, stretched by the same small-K factor as any
layer's CI. What it conditions on: each fold's choice is part of the estimator and is made from training data
only, which the bootstrap does not resample, so the choice is not re-made inside a resample. The interval covers the
held-out performance of the layers the training folds chose (given those choices); it does not add the variability
of which layer other training data would pick. Re-making the choice in each resample would need each fold's inner
(training-only) predictions resampled with the same units, which the layer results do not keep.

Used by the score step's rows of every protocol (:func:`brainalign.encoding.layer_metrics.protocol_rows`) and of the
time-series gain (:func:`brainalign.encoding.gain.gain_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from brainalign.encoding.bootstrap import decode_draws, fold_mean_interval


def fold_picks(inner_by_layer: Mapping[str, Sequence[float]], layer_names: Sequence[str]) -> list[str | None]:
    """In each outer fold, the layer (of ``layer_names``, model order) with the largest training-only score
    (``inner_by_layer[layer][k]``); a tie goes to the shallower layer; None where no layer has a finite score."""
    n_folds = len(inner_by_layer[layer_names[0]])
    picks = []
    for k in range(n_folds):
        values = np.asarray([inner_by_layer[name][k] for name in layer_names], dtype=float)
        picks.append(layer_names[int(np.nanargmax(values))] if np.isfinite(values).any() else None)
    return picks


def modal_layer(picks: Sequence[str | None], layer_names: Sequence[str]) -> str:
    """The layer chosen in most folds (a tie: the shallower), which the nested row names."""
    index = {name: i for i, name in enumerate(layer_names)}
    chosen = [pick for pick in picks if pick is not None] or [layer_names[0]]
    return max(set(chosen), key=lambda name: (chosen.count(name), -index[name]))


def nested_fold_values(picks: Sequence[str | None], values_by_layer: Mapping[str, Sequence[float]]) -> list[float]:
    """Fold k's value of the layer chosen in fold k (NaN where none was chosen)."""
    return [float(values_by_layer[pick][k]) if pick is not None else float("nan") for k, pick in enumerate(picks)]


def nested_draws(picks: Sequence[str | None], encoded_by_layer: Mapping[str, list | None]) -> np.ndarray | None:
    """(resamples x folds) draws of the nested estimator: column k is the chosen layer's draws on fold k
    (``encoded_by_layer[layer]``: its stored ``fold_draws``). None when a chosen layer has none (results without
    a bootstrap, ``n_bootstrap: 0``) or the layers' draws differ in shape (not one job's resamples)."""
    chosen = {pick for pick in picks if pick is not None}
    if not chosen or any(not encoded_by_layer.get(pick) for pick in chosen):
        return None
    decoded = {pick: decode_draws(encoded_by_layer[pick]) for pick in chosen}
    shapes = {matrix.shape for matrix in decoded.values()}
    if len(shapes) != 1 or next(iter(shapes))[1] != len(picks):
        return None
    n_draws = next(iter(shapes))[0]
    return np.column_stack([decoded[pick][:, k] if pick is not None else np.full(n_draws, np.nan)
                            for k, pick in enumerate(picks)])


def nested_interval(picks: Sequence[str | None], fold_values: Sequence[float], encoded_by_layer: Mapping[str, list | None],
                    inflation: float | None) -> tuple[float, float]:
    """95% bootstrap interval of the nested score (mean over folds of ``fold_values``, the chosen layers' held-out
    scores): the chosen layers' draws combined fold by fold (:func:`nested_draws`), stretched by ``inflation``
    around the nested score where whole units were resampled, exactly as a single layer's CI is; (NaN, NaN)
    without draws. See the module docstring for what it conditions on."""
    draws = nested_draws(picks, encoded_by_layer)
    if draws is None or not len(draws):
        return float("nan"), float("nan")
    return fold_mean_interval(draws, fold_values, inflation)
