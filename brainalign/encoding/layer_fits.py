"""The fitting job of the workflow (rule fit_encoding): every layer metric (encoding.layer_metrics) of each layer
against one prepared dataset; one job per model x dataset, or per part of its layers; one JSON per layer, kept
when a killed job is re-run with the same inputs (:func:`partial_fingerprint`).

The step takes the options typed (:class:`brainalign.options.EncodingOptions`) or as a dict (:func:`fit_layer`
converts it once); each layer's result records them (:func:`recorded_options`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from brainalign.encoding.baseline import baseline_design
from brainalign.encoding.design import layer_design, responses_matrix, word_level_design
from brainalign.encoding.layer_metrics import LayerInputs, LayerMetric, selected_metrics
from brainalign.encoding.protocols.registry import PROTOCOLS
from brainalign.errors import BrainalignError
from brainalign.extraction.shards import check_stimulus_ids, read_layer
from brainalign.io import atomic_path, write_json
from brainalign.options import EncodingOptions

log = logging.getLogger("brainalign.encoding")  # the package's logger (log filters name it)


def recorded_options(options: EncodingOptions) -> dict:
    """The options a layer's result records (``result["options"]``, sorted by key): every encoding option but how
    the jobs are split (``layer_parts``), which does not change a layer's numbers."""
    return {key: value for key, value in sorted(options.as_dict().items()) if key != "layer_parts"}


def fit_layer(features: np.ndarray, dataset, options: EncodingOptions | dict | None = None,
              metrics: list[LayerMetric] | None = None, result: dict | None = None, nested: bool = True) -> dict:
    """Every selected layer metric (protocols, RSA, CKA) for one layer's features against a prepared dataset; or
    only ``metrics``, added to an earlier ``result`` of the same layer when one is given. ``nested``: False where
    the metrics are computed at selected layers only (``encoding.extras_layers: selected``), so no nested layer
    choice reads their training-only scores and a protocol may skip the fits that only those need."""
    options = options if isinstance(options, EncodingOptions) else EncodingOptions.from_dict(options)
    features = np.asarray(features, dtype=np.float64)
    metrics = metrics or selected_metrics(options)
    x, groups, overrides = layer_design(features, dataset, options)
    y, names, excluded = responses_matrix(dataset)
    if result is None:
        result = {"n_samples": int(len(x)), "n_features": int(x.shape[1]), "n_neuroids": len(names), "neuroids": names,
                  "excluded_neuroids": excluded, "protocols": {}, "options": recorded_options(options),
                  **{k: v for k, v in overrides.items() if k not in ("blocks", "bootstrap_units", "brainscore_split")}}
        result["distinct_feature_rows"] = distinct = int(len(np.unique(x, axis=0)))
        if distinct < max(10, len(x) // 10):
            log.warning("only %d distinct feature rows among %d samples (e.g. a token-embedding layer read out at the same "
                        "final token of every stimulus): its scores rest on near-ties between penalties, read them as chance",
                        distinct, len(x))
    word_level = any(metric.name in PROTOCOLS and PROTOCOLS[metric.name].word_level for metric in metrics)
    baseline = (baseline_design(dataset, names, options)
                if dataset.meta["kind"] == "timeseries" and any(m.name == "baseline-gain" for m in metrics) else None)
    layer = LayerInputs(x, y, groups, overrides, options, word_level_design(features, dataset, names) if word_level else None,
                        baseline, nested)
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
            fit_layer(read_layer(shard_path, layer), dataset, options, missing, result, nested=False)
            result["extras_at"] = f"selected by {first.name}"
            write_json(result, folder / layer_file_name(layer))
            log.info("layer %s: %s added (a selected layer)", layer, ", ".join(metric.name for metric in missing))
