"""The scoring step of the workflow (rule score): over all of a model's layers, the tidy score rows of every layer
metric the layers' results hold (encoding.layer_metrics: for a protocol the layer profile, the best layer and the
nested layer choice), normalised by the noise ceiling where one exists.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from brainalign.encoding.layer_metrics import LayerProfile, stored_metrics
from brainalign.errors import BrainalignError
from brainalign.io import write_table


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
