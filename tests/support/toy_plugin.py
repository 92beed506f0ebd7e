"""A plugin that follows every recipe of docs/DESIGN.md ("Recipes") from outside the package: a dataset adapter,
a model source with its own config key, an encoding protocol, a layer metric and a figure. A config lists it
under ``plugins: [tests.support.toy_plugin]``; tests/test_recipes.py runs the workflow end to end with it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from brainalign.correlation import pearson_columns
from brainalign.datasets.registry import register_adapter
from brainalign.encoding.bootstrap import _median
from brainalign.encoding.layer_metrics import LayerInputs, register_layer_metric
from brainalign.encoding.ols import ols_fit_predict
from brainalign.encoding.protocols.registry import register_protocol
from brainalign.models.registry import register_source
from brainalign.models.sources import FolderSource
from brainalign.study.figures.registry import FigureInputs, register_figure
from tests.support import toy_dataset
from tests.support.toy_names import TOY_CAPTION

register_adapter(toy_dataset)


@register_source
class ToyFolderSource(FolderSource):
    """A transformers folder named by the source's own key, ``toy_folder``."""

    name = "toy_folder"
    required_keys = ("toy_folder",)
    schema_properties = {"toy_folder": {"type": "string", "minLength": 1, "description": "a transformers folder"}}
    model_id_key = "toy_folder"

    def fetch(self, spec: dict, dest: Path) -> dict:
        folder = Path(spec["toy_folder"]).resolve()
        for item in folder.iterdir():
            os.symlink(item, dest / item.name)
        return {"toy_folder": str(folder)}


@register_protocol("toy-ols")
def toy_ols(fold):
    """Ordinary least squares on the protocol's grouped folds."""
    x, y, train, test = fold.x, fold.y, fold.train, fold.test
    fitted = ols_fit_predict(x[train], y[train], x[train])
    return ols_fit_predict(x[train], y[train], x[test]), y[test], _median(pearson_columns(fitted, y[train]))


@register_layer_metric("toy-spread")
def toy_spread(layer: LayerInputs) -> float:
    """The layer's mean feature standard deviation (a stand-in for any per-layer number)."""
    return float(np.mean(np.std(layer.x, axis=0)))


@register_figure("toy_figure", caption=TOY_CAPTION, order=99)
def toy_figure(study: FigureInputs):
    import matplotlib.pyplot as plt

    layers = study.tidy[study.tidy["selection"] == "layer"].groupby("model")["layer"].nunique()
    if layers.empty:
        return None
    fig, ax = plt.subplots(figsize=(3.4, 2.0), layout="constrained")
    ax.bar(range(len(layers)), layers.to_numpy())
    ax.set_xticks(range(len(layers)), layers.index, fontsize=6)
    ax.set_ylabel("layers")
    return fig, layers.rename("layers").reset_index()
