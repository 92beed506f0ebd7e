"""The per-layer steps of the workflow: every layer metric of each layer against one prepared dataset (rule
fit_encoding: one job per model x dataset, or per part of its layers; one JSON per layer), and over all of a model's
layers the tidy score rows (rule score).

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

The steps take the options typed (:class:`brainalign.options.EncodingOptions`) or as a dict (:func:`fit_layer`
converts it once); each layer's result records them (:func:`recorded_options`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from brainalign.encoding.baseline import baseline_design, baseline_gain, gain_rows
from brainalign.encoding.design import layer_design, responses_matrix, word_level_design
from brainalign.encoding.protocols.registry import PROTOCOLS, default_protocols, get_protocol
from brainalign.encoding.protocols.scoring import cross_validated_score
from brainalign.encoding.selection import fold_picks, modal_layer, nested_fold_values, nested_interval
from brainalign.encoding.similarity import linear_cka, rsa
from brainalign.errors import BrainalignError
from brainalign.extraction.shards import check_stimulus_ids, read_layer
from brainalign.io import atomic_path, write_json, write_table
from brainalign.options import EncodingOptions

log = logging.getLogger("brainalign.encoding")  # the package's logger (log filters name it)


# ----------------------------------------------------------------------------------------------- registry
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
    best = layer_names[int(np.nanargmax(scores))]
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


def computed_layers(metric: LayerMetric, profile: LayerProfile) -> list[str]:
    """The layers (model order) whose result holds ``metric``: all of them, or with ``encoding.extras_layers:
    selected`` the layers :func:`selected_layers` chose for a metric other than the first protocol."""
    return [name for name in profile.layer_names if metric.has(profile.by_layer[name])]


def similarity_rows(metric: LayerMetric, profile: LayerProfile) -> list[dict]:
    """Each layer's value and the best layer's (no ceiling: these are not correlations with the responses)."""
    layer_names, by_layer = computed_layers(metric, profile), profile.by_layer
    values = [metric.stored(by_layer[name]) for name in layer_names]
    rows = [profile.row(metric.name, "", "layer", name, value, n=by_layer[name]["n_samples"])
            for name, value in zip(layer_names, values)]
    if layer_names != profile.layer_names:  # computed at the selected layers only (encoding.extras_layers)
        return rows
    best = layer_names[int(np.nanargmax(values))]
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
                                 units=layer.overrides.get("bootstrap_units"), inner_blocks=inner_blocks)


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


# ----------------------------------------------------------------------------------------------- steps
def recorded_options(options: EncodingOptions) -> dict:
    """The options a layer's result records (``result["options"]``, sorted by key): every encoding option but how
    the jobs are split (``layer_parts``), which does not change a layer's numbers."""
    return {key: value for key, value in sorted(options.as_dict().items()) if key != "layer_parts"}


def fit_layer(features: np.ndarray, dataset, options: EncodingOptions | dict | None = None,
              metrics: list[LayerMetric] | None = None, result: dict | None = None) -> dict:
    """Every selected layer metric (protocols, RSA, CKA) for one layer's features against a prepared dataset; or
    only ``metrics``, added to an earlier ``result`` of the same layer when one is given."""
    options = options if isinstance(options, EncodingOptions) else EncodingOptions.from_dict(options)
    features = np.asarray(features, dtype=np.float64)
    metrics = metrics or selected_metrics(options)
    x, groups, overrides = layer_design(features, dataset, options)
    y, names, excluded = responses_matrix(dataset)
    if result is None:
        result = {"n_samples": int(len(x)), "n_features": int(x.shape[1]), "n_neuroids": len(names), "neuroids": names,
                  "excluded_neuroids": excluded, "protocols": {}, "options": recorded_options(options),
                  **{k: v for k, v in overrides.items() if k not in ("blocks", "bootstrap_units")}}
        result["distinct_feature_rows"] = distinct = int(len(np.unique(x, axis=0)))
        if distinct < max(10, len(x) // 10):
            log.warning("only %d distinct feature rows among %d samples (e.g. a token-embedding layer read out at the same "
                        "final token of every stimulus): its scores rest on near-ties between penalties, read them as chance",
                        distinct, len(x))
    word_level = any(metric.name in PROTOCOLS and PROTOCOLS[metric.name].word_level for metric in metrics)
    baseline = (baseline_design(dataset, names, options)
                if dataset.meta["kind"] == "timeseries" and any(m.name == "baseline-gain" for m in metrics) else None)
    layer = LayerInputs(x, y, groups, overrides, options, word_level_design(features, dataset, names) if word_level else None,
                        baseline)
    for metric in metrics:
        value = metric.compute(layer)
        if value is None:
            continue
        if metric.section:
            result.setdefault(metric.section, {})[metric.name] = value
        else:
            result[metric.name] = value
    return result


def fit_layer_file(shard_path, layer: str, dataset_dir, out_path, options: EncodingOptions | dict | None = None) -> dict:
    """One layer of one shard against one prepared dataset -> JSON (what :func:`fit_layers_file` does per layer)."""
    from brainalign.datasets.base import load_prepared

    dataset = load_prepared(dataset_dir)
    check_stimulus_ids(shard_path, dataset.stimuli["stimulus_id"].astype(str).tolist(), dataset_dir)
    return _fit_and_write(read_layer(shard_path, layer), layer, dataset, out_path, options)


def _fit_and_write(features, layer: str, dataset, out_path, options, metrics=None) -> dict:
    result = fit_layer(features, dataset, options) if metrics is None else fit_layer(features, dataset, options, metrics)
    result["layer"] = layer
    write_json(result, out_path)
    scores = {p: round(v["score"], 4) for p, v in result["protocols"].items()}
    log.info("layer %s: %s", layer, scores)
    return result


def layer_file_name(layer: str) -> str:
    """A layer's result file inside its part folder (module paths are valid file names)."""
    return f"{layer}.json"


def layers_of_part(layer_names: list[str], part: int, n_parts: int) -> list[str]:
    """The layers job ``part`` of ``n_parts`` fits: every n_parts-th layer from ``part`` on, so deep and shallow layers
    (which cost the same) spread evenly over the jobs."""
    if not 0 <= part < n_parts:
        raise BrainalignError(f"encoding part {part} is not one of 0..{n_parts - 1} (encoding.layer_parts: {n_parts})")
    return list(layer_names)[part::n_parts]


PARTIAL_FINGERPRINT = ".fingerprint"  # in part{k}.partial/: what its kept layers were computed from (not *.json: not a layer)


def partial_fingerprint(shard_path, dataset_dir, options: EncodingOptions, part: int, n_parts: int) -> dict:
    """What an encoding job's kept layers depend on: the shard (its attributes: model, revision, dtype, matmul
    dtype, readout, ...; and its size and modification time, which change whenever it is rewritten), the prepared
    dataset's files, the options each layer records, the split into parts and the code version."""
    from brainalign import __version__
    from brainalign.extraction.shards import read_attributes
    from brainalign.fingerprint import file_identity, folder_identity, plain

    return plain({"shard": {**read_attributes(shard_path), **file_identity(shard_path)}, "dataset": folder_identity(dataset_dir),
                  "options": recorded_options(options), "part": [part, n_parts], "code_version": __version__})


def _open_partial(partial: Path, fingerprint: dict) -> None:
    """Create ``partial`` for a job with ``fingerprint``; a folder kept from a run with other inputs (or from a version
    that recorded none) is discarded first, with a log line naming what differs."""
    import shutil

    from brainalign.fingerprint import differing, read_fingerprint

    marker = partial / PARTIAL_FINGERPRINT
    if partial.is_dir():
        stored = read_fingerprint(marker)
        if stored != fingerprint and any(partial.glob("*.json")):
            log.warning("%s: kept from an earlier, interrupted run with other inputs (%s); discarding it and fitting every "
                        "layer afresh", partial, f"{', '.join(differing(stored, fingerprint))} differ" if stored else "no fingerprint")
        if stored != fingerprint:
            shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        with atomic_path(marker, suffix=".tmp") as tmp:  # never a *.json beside the layers, even while being written
            tmp.write_text(json.dumps(fingerprint, indent=1, sort_keys=True) + "\n")


def fit_layers_file(shard_path, dataset_dir, out_dir, options: EncodingOptions | dict | None = None, part: int = 0,
                    n_parts: int = 1, progress: bool = True) -> list[str]:
    """Step of rule fit_encoding: every layer of one shard (or one part of them) against one prepared dataset, one
    JSON per layer in ``out_dir``, in one process: the dataset, the imports and the shard's file are opened once,
    not once per layer.

    Resumable: finished layers are written to ``<out_dir>.partial/`` and kept when a killed job is re-run with the
    same inputs: the folder records their fingerprint (:func:`partial_fingerprint`: the shard, the dataset, the
    options, the code version) and is discarded, with a log line, when they differ; each layer's JSON records the
    options too. The folder becomes ``out_dir`` when every layer is there.
    """
    import shutil

    from brainalign.datasets.base import load_prepared
    from brainalign.extraction.shards import read_layer_names

    options = options if isinstance(options, EncodingOptions) else EncodingOptions.from_dict(options)
    out_dir = Path(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")
    dataset = load_prepared(dataset_dir)
    check_stimulus_ids(shard_path, dataset.stimuli["stimulus_id"].astype(str).tolist(), dataset_dir)
    layers = layers_of_part(read_layer_names(shard_path), part, n_parts)
    _open_partial(partial, partial_fingerprint(shard_path, dataset_dir, options, part, n_parts))
    recorded = json.loads(json.dumps(recorded_options(options), default=str))
    todo = []
    for layer in layers:
        done = partial / layer_file_name(layer)
        if done.is_file():
            try:
                if json.loads(done.read_text()).get("options") == recorded:
                    log.info("layer %s: kept from an earlier, interrupted run", layer)
                    continue
            except json.JSONDecodeError:
                pass
        todo.append(layer)
    from brainalign.progress import progress_bar

    metrics = selected_metrics(options)
    everywhere = metrics[:1] + [metric for metric in metrics[1:] if metric.every_layer]
    extras = [metric for metric in metrics if metric not in everywhere]
    extras_later = options.extras_layers == "selected" and n_parts == 1 and bool(extras)
    for layer in progress_bar(todo, desc=f"{Path(shard_path).stem} layers", unit="layer", disable=not progress):
        _fit_and_write(read_layer(shard_path, layer), layer, dataset, partial / layer_file_name(layer), options,
                       everywhere if extras_later else None)
    if extras_later:
        _add_extras_at_selected_layers(shard_path, dataset, partial, layers, options, metrics[0], extras)
    (partial / PARTIAL_FINGERPRINT).unlink(missing_ok=True)  # the finished folder holds the layers' JSONs only
    if out_dir.exists():
        shutil.rmtree(out_dir)
    partial.rename(out_dir)
    return layers


def selected_layers(by_layer: dict[str, dict], layer_names: list[str], metric: LayerMetric) -> list[str]:
    """The layers a report reads of ``metric`` (a protocol): its best layer and, in each outer fold, the layer with
    the best training-only score (the nested choice); in model order."""
    chosen = set()
    results = [metric.stored(by_layer[name]) for name in layer_names]
    for values in [[r["score"] for r in results]] + [list(scores) for scores in zip(*(r["inner_scores"] for r in results))]:
        values = np.asarray(values, dtype=float)
        if np.isfinite(values).any():
            chosen.add(layer_names[int(np.nanargmax(values))])
    return [name for name in layer_names if name in chosen]


def _add_extras_at_selected_layers(shard_path, dataset, folder: Path, layers: list[str], options: EncodingOptions,
                                   first: LayerMetric, extras: list[LayerMetric]) -> None:
    """``encoding.extras_layers: selected``: the ``extras`` (the metrics after the first protocol but those needed
    at every layer: the other protocols, RSA, CKA) only at the ``first`` protocol's best and nested layers, which
    is where the report reads them. A layer that already holds a metric (a resumed job) is not refitted."""
    by_layer = {layer: json.loads((folder / layer_file_name(layer)).read_text()) for layer in layers}
    for layer in selected_layers(by_layer, layers, first):
        result = by_layer[layer]
        missing = [metric for metric in extras if not metric.has(result)]
        if missing:
            fit_layer(read_layer(shard_path, layer), dataset, options, missing, result)
            result["extras_at"] = f"selected by {first.name}"
            write_json(result, folder / layer_file_name(layer))
            log.info("layer %s: %s added (a selected layer)", layer, ", ".join(metric.name for metric in missing))


def read_layer_results(folders) -> dict[str, dict]:
    """Layer name -> its stored result, from the part folders of one model x dataset."""
    by_layer = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("*.json")):
            result = json.loads(path.read_text())
            by_layer[result["layer"]] = result
    return by_layer


def score_layers_file(layer_folders: list, ceiling_path, out_csv, model: str, dataset: str, layer_names: list,
                      options: dict | None = None):
    """Step of rule score: every stored metric's rows (for a protocol: the layer profile, the best layer and the
    nested, training-chosen, layer), ceiling-normalised where a ceiling exists, as tidy rows. ``layer_folders``
    are the part folders of rule fit_encoding; ``layer_names`` the shard's layers in model order."""
    from brainalign.study.tables import tidy_frame

    by_layer = read_layer_results(layer_folders)
    missing = [name for name in layer_names if name not in by_layer]
    if missing:
        raise BrainalignError(f"score {model}/{dataset}: no encoding result for layers {missing[:3]}")
    ceiling = json.loads(Path(ceiling_path).read_text()).get("ceiling")
    ceiling = float(ceiling) if ceiling else np.nan  # none (or 0): no normalisation
    profile = LayerProfile(model, dataset, list(layer_names), by_layer, ceiling)
    rows = []
    for metric in stored_metrics(*(by_layer[name] for name in layer_names)):
        rows.extend(metric.rows(metric, profile))
    table = tidy_frame(rows)
    write_table(table, out_csv)
    return table
