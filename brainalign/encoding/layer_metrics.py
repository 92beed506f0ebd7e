"""The layer-metric registry: what the per-layer fitting job computes of each layer (encoding.layer_fits, rule
fit_encoding) and the tidy rows each metric's per-layer results become (encoding.layer_scores, rule score).

Layer metrics are a registry, :data:`LAYER_METRICS`: how a metric is computed from the layer's design and how
its per-layer results become rows. Two kinds, one row builder each:
  * the encoding protocols (every registered one, :data:`encoding.protocols.registry.PROTOCOLS`): stored under
    ``result["protocols"][name]``, chosen and ordered by ``options.protocols``; rows ``linear`` / protocol for
    each layer, the best layer and the nested layer choice, normalised by the noise ceiling;
  * the similarity metrics (``rsa``, ``cka``): stored under ``result[name]``, switched off together by
    ``options.similarity: false``; rows for each layer and the best layer, not normalised.

Adding a metric is one registered function plus its config entry (``encoding.similarity`` turns it off, or name
another boolean option as its ``switch``: a key of brainalign/schemas/config.schema.yaml and a field of EncodingOptions)::

    @register_layer_metric("procrustes")
    def procrustes(layer: LayerInputs) -> float:
        return float(orthogonal_procrustes_r(layer.x, layer.y))  # stored as result["procrustes"]

Adding a protocol (``encoding.protocols.registry.register_protocol``) makes it a layer metric with no more code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from brainalign.encoding.baseline import baseline_gain
from brainalign.encoding.gain import gain_rows
from brainalign.encoding.protocols.registry import PROTOCOLS, default_protocols, get_protocol
from brainalign.encoding.protocols.scoring import cross_validated_score
from brainalign.encoding.selection import fold_picks, modal_layer, nested_fold_values, nested_interval
from brainalign.encoding.similarity import linear_cka, rsa
from brainalign.options import EncodingOptions

log = logging.getLogger("brainalign.encoding.layer_metrics")


@dataclass(frozen=True)
class LayerInputs:
    """One layer's regression problem, what every layer metric is computed from (see encoding.design)."""

    x: np.ndarray           # the layer's design: samples x features (time series: scans x delayed features)
    y: np.ndarray           # the usable responses: samples x neuroids
    groups: Any             # CV groups per sample, or None (a single-run time series: blocks of scans)
    overrides: dict         # what the design fixed (``delays``; ``blocks`` for a single run)
    options: EncodingOptions  # the encoding options
    words: Any = None       # the word-level input (encoding.design.WordLevel) when a selected protocol needs it
    baseline: Any = None    # a time series' baseline regressors (encoding.baseline.Baseline), else None
    nested: bool = True     # False: computed at selected layers only, where no nested choice reads the inner scores


@dataclass
class LayerProfile:
    """Every layer's stored result for one model x dataset, and what each tidy row repeats."""

    model: str
    dataset: str
    layer_names: list       # model order: layer i is at relative depth i / (n - 1)
    by_layer: dict          # layer name -> its fit_layer result
    ceiling: float          # the dataset's noise ceiling (NaN where none)

    def __post_init__(self):
        n = len(self.layer_names)
        self.index = {name: i for i, name in enumerate(self.layer_names)}
        self.depth = {name: (i / (n - 1) if n > 1 else 0.0) for i, name in enumerate(self.layer_names)}

    def row(self, metric: str, protocol: str, selection: str, layer: str, raw, ceiling=np.nan, ci=(np.nan, np.nan),
            n=np.nan) -> dict:
        from brainalign.study.tables import tidy_row  # pandas: only the score step pays its import

        return tidy_row(self.model, self.dataset, "brain", metric, protocol, raw, selection=selection, layer=layer,
                        layer_index=self.index[layer], layer_depth=self.depth[layer], ceiling=ceiling, ci=ci, n=n)


@dataclass(frozen=True)
class LayerMetric:
    """A registered layer metric: ``compute(LayerInputs)`` -> the JSON-able result of one layer, stored under
    ``result["protocols"][name]`` (``section="protocols"``: a protocol, selected by ``options.protocols``) or
    ``result[name]`` (``section=None``: selected unless its ``switch`` option is false); ``rows(metric,
    LayerProfile)`` -> its tidy rows over all layers."""

    name: str
    compute: Callable
    rows: Callable
    section: str | None = None
    switch: str | None = None
    every_layer: bool = False  # a headline of its own (the time-series gain): never left to encoding.extras_layers

    def stored(self, result: dict):
        return result[self.section][self.name] if self.section else result[self.name]

    def has(self, result: dict) -> bool:
        return self.name in (result.get(self.section, {}) if self.section else result)


def protocol_rows(metric: LayerMetric, profile: LayerProfile) -> list[dict]:
    """Each layer's score, the best layer's, and the nested estimate: in each outer fold the layer with the best
    training-only score, its test score (mean over folds; the row names the layer chosen most often), with the
    bootstrap interval of that estimator itself (encoding.selection.nested_interval: the chosen layers' draws
    combined fold by fold; the training folds' choices are part of it, not re-made in each resample)."""
    layer_names, ceiling = computed_layers(metric, profile), profile.ceiling
    rows, scores = [], []
    for name in layer_names:
        p = metric.stored(profile.by_layer[name])
        scores.append(p["score"])
        rows.append(profile.row("linear", metric.name, "layer", name, p["score"], ceiling, (p["ci_low"], p["ci_high"]), p["n"]))
    if layer_names != profile.layer_names:  # an extra computed at the selected layers only: no best or nested of its own
        return rows
    best = best_layer(layer_names, scores, metric.name)
    if best is None:
        return rows
    p = metric.stored(profile.by_layer[best])
    rows.append(profile.row("linear", metric.name, "best", best, p["score"], ceiling, (p["ci_low"], p["ci_high"]), p["n"]))
    stored = {name: metric.stored(profile.by_layer[name]) for name in layer_names}
    picks = fold_picks({name: stored[name]["inner_scores"] for name in layer_names}, layer_names)
    test_scores = nested_fold_values(picks, {name: stored[name]["fold_scores"] for name in layer_names})
    ci = nested_interval(picks, test_scores, {name: stored[name].get("fold_draws") for name in layer_names},
                         p.get("bootstrap_inflation"))
    rows.append(profile.row("linear", metric.name, "nested", modal_layer(picks, layer_names), float(np.nanmean(test_scores)),
                            ceiling, ci, n=p["n"]))
    return rows


def best_layer(layer_names: list[str], scores, metric_name: str) -> str | None:
    """The layer with the highest score; None (with a warning) when no layer has a number: a metric undefined on
    this dataset (e.g. Brain-Score's RDM of a single neuroid) leaves its per-layer NaN rows and no best or nested
    row, rather than stopping every other metric's rows of the model."""
    scores = np.asarray(scores, dtype=float)
    if np.isnan(scores).all():
        log.warning("%s: NaN at every layer; no best or nested row", metric_name)
        return None
    return layer_names[int(np.nanargmax(scores))]


def computed_layers(metric: LayerMetric, profile: LayerProfile) -> list[str]:
    """The layers (model order) whose result holds ``metric``: all of them, or with ``encoding.extras_layers:
    selected`` the layers :func:`encoding.layer_fits.selected_layers` chose for a metric other than the first protocol."""
    return [name for name in profile.layer_names if metric.has(profile.by_layer[name])]


def similarity_rows(metric: LayerMetric, profile: LayerProfile) -> list[dict]:
    """Each layer's value and the best layer's (no ceiling: these are not correlations with the responses)."""
    layer_names, by_layer = computed_layers(metric, profile), profile.by_layer
    values = [metric.stored(by_layer[name]) for name in layer_names]
    rows = [profile.row(metric.name, "", "layer", name, value, n=by_layer[name]["n_samples"])
            for name, value in zip(layer_names, values)]
    if layer_names != profile.layer_names:  # computed at the selected layers only (encoding.extras_layers)
        return rows
    best = best_layer(layer_names, values, metric.name)
    if best is None:
        return rows
    rows.append(profile.row(metric.name, "", "best", best, metric.stored(by_layer[best]), n=by_layer[best]["n_samples"]))
    return rows


LAYER_METRICS: dict[str, LayerMetric] = {}  # name -> metric; rows follow this order after the protocols


def register_layer_metric(name: str, *, rows: Callable = similarity_rows, section: str | None = None,
                          switch: str | None = "similarity", every_layer: bool = False):
    """Decorator: register ``compute(LayerInputs)`` as layer metric ``name`` (defaults: a similarity metric)."""

    def decorator(compute: Callable) -> Callable:
        LAYER_METRICS[name] = LayerMetric(name, compute, rows, section, switch, every_layer)
        return compute

    return decorator


def _score_protocol(name: str, layer: LayerInputs) -> dict:
    """One protocol's cross-validated score of the layer, on the folds the layer's design asks of it."""
    folds, inner_blocks = get_protocol(name).layer_folds(len(layer.x), layer.overrides, layer.options)
    return cross_validated_score(layer.x, layer.y, layer.groups, name, layer.options, folds=folds, words=layer.words,
                                 units=layer.overrides.get("bootstrap_units"), inner_blocks=inner_blocks, nested=layer.nested)


def protocol_metric(name: str) -> LayerMetric:
    """A protocol as a layer metric (registered or not: scoring an unknown one names the known ones)."""
    return LayerMetric(name, partial(_score_protocol, name), protocol_rows, section="protocols")


for _name in PROTOCOLS:
    LAYER_METRICS[_name] = protocol_metric(_name)


def layer_metric(name: str) -> LayerMetric:
    """The registered metric of this name; a protocol registered later (or an unknown one) as a protocol."""
    return LAYER_METRICS.get(name) or protocol_metric(name)


@register_layer_metric("rsa")
def _rsa(layer: LayerInputs) -> float:
    return rsa(layer.x, layer.y)


@register_layer_metric("cka")
def _cka(layer: LayerInputs) -> float:
    return linear_cka(layer.x, layer.y)


@register_layer_metric("baseline-gain", rows=gain_rows, switch="baseline", every_layer=True)
def _baseline_gain(layer: LayerInputs) -> dict | None:
    """Time series only (None elsewhere: not stored): baseline, joint and gain (encoding.baseline)."""
    return None if layer.baseline is None else baseline_gain(layer.x, layer.y, layer.baseline, layer.groups, layer.overrides,
                                                             layer.options)


def selected_metrics(options: EncodingOptions) -> list[LayerMetric]:
    """What fit_layer computes: the protocols ``options.protocols`` names (empty: every registered one not opt-in)
    in that order, then every other registered metric whose switch (a boolean option) is not off."""
    protocols = [layer_metric(name) for name in options.protocols or default_protocols()]
    others = [m for m in LAYER_METRICS.values() if m.section is None and (m.switch is None or getattr(options, m.switch))]
    return protocols + others


def stored_metrics(*results: dict) -> list[LayerMetric]:
    """The metrics the layer results hold (any of them), in row order: the protocols as stored, then the other
    registered ones."""
    protocols = list(dict.fromkeys(name for result in results for name in result["protocols"]))
    return ([layer_metric(name) for name in protocols]
            + [m for m in LAYER_METRICS.values() if m.section is None and any(m.name in result for result in results)])
