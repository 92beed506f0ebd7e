"""Brain-Score Language 2.3.0's own metrics on one problem: the reference side of tests/test_brainscore_protocols.py.

Runs in Brain-Score Language's environment, not brainalign's (it pins numpy < 2):

    /tmp/bsl/bin/python tests/support/bsl_protocols.py problem.npz out.json

``problem.npz``: ``x`` (stimuli x features), ``y`` (stimuli x neuroids), ``story`` (each stimulus's group),
``subject`` (each neuroid's subject), ``splits`` (the grouped K-fold's split count), and optionally ``ceiling``
(1: also Brain-Score's ExtrapolationCeiling of ``y`` with ``ridge_pearsonr`` on the grouped K-fold; needs >= 3
subjects). Both sides become NeuroidAssemblies (presentation x neuroid, coords stimulus_id, story, neuroid_id,
subject), in the order given, as Brain-Score's benchmarks build them, and each metric is called with the
benchmark's cross-validation arguments. Writes {name: score}, ``ceiling`` the extrapolated ceiling and
``ceiling_per_neuroid`` its per-neuroid ceilings ({neuroid_id: value}, NaN where a bootstrap fit failed).

    /tmp/bsl/bin/python tests/support/bsl_protocols.py --assembly spec.json out.json

runs one metric and its ExtrapolationCeiling on an assembly file as a benchmark loads it (:func:`main_assembly`).
"""

from __future__ import annotations

import json
import logging
import sys

import numpy as np


def assembly(values, story, prefix, subject=None):
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly

    n, k = values.shape
    coords = {"stimulus_id": ("presentation", [f"s{i:04d}" for i in range(n)]),
              "story": ("presentation", list(story)),
              "neuroid_id": ("neuroid", [f"{prefix}{i:04d}" for i in range(k)]),
              "subject": ("neuroid", list(subject) if subject is not None else [prefix] * k)}
    return NeuroidAssembly(values, coords=coords, dims=["presentation", "neuroid"])


def main(problem: str, out: str) -> None:
    import torch

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    from brainscore_language import load_metric

    data = np.load(problem, allow_pickle=False)
    story = data["story"].astype(str)
    source = assembly(data["x"].astype(np.float64), story, "f")
    target = assembly(data["y"].astype(np.float64), story, "n", data["subject"].astype(str))
    grouped = dict(split_coord="story", kfold="group", random_state=1234, splits=int(data["splits"]))
    shuffle = dict(splits=10, train_size=0.9, kfold=False, random_state=1)
    results = {
        "brainscore-ridge": load_metric("ridge_pearsonr", crossvalidation_kwargs=grouped),
        "brainscore-linear-shuffle": load_metric("linear_pearsonr", crossvalidation_kwargs=shuffle),
        "brainscore-ridge-shuffle": load_metric("ridge_pearsonr"),  # Tuckute2024-ridge: the defaults
        "brainscore-rdm": load_metric("rdm"),
        "brainscore-cka": load_metric("cka"),
    }
    scores = {name: float(metric(source, target).item()) for name, metric in results.items()}
    if "ceiling" in data.files and int(data["ceiling"]):
        from brainscore_language.benchmarks.blank2014.ceiling import ExtrapolationCeiling

        ceiling = ExtrapolationCeiling(subject_column="subject")(assembly=target, metric=results["brainscore-ridge"])
        scores["ceiling"] = float(ceiling.item())
        neuroids = ceiling.attrs["raw"]  # per-neuroid extrapolated ceilings (NaN where a bootstrap fit failed)
        scores["ceiling_per_neuroid"] = {str(name): float(value) for name, value in
                                         zip(neuroids["neuroid_id"].values, np.asarray(neuroids.values).ravel())}
    with open(out, "w") as handle:
        json.dump(scores, handle)




def main_assembly(spec_path: str, out: str) -> None:
    """Brain-Score's metric and ExtrapolationCeiling on an assembly file as its benchmark loads it.

    ``spec.json``: {"assembly": <.nc>, "features": <.npz with x, rows in the file's presentation order>,
    "metric": "ridge_pearsonr" | "linear_pearsonr", "crossvalidation_kwargs": {...}, "subject_column": ... (optional:
    no ceiling without), "select": {coord: value} (optional: presentations kept, then neuroids with a NaN dropped)}.
    Writes {"score": raw score, "ceiling": extrapolation ceiling}."""
    import torch
    import xarray as xr

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
    from brainscore_language import load_metric
    from brainscore_language.benchmarks.blank2014.ceiling import ExtrapolationCeiling

    spec = json.loads(open(spec_path).read())
    data = xr.open_dataset(spec["assembly"])["data"]
    for coord, value in (spec.get("select") or {}).items():  # e.g. Pereira2018's experiment, then dropna('neuroid')
        data = data.isel(presentation=np.flatnonzero(data[coord].values == value))
        data = data.isel(neuroid=np.flatnonzero(~np.isnan(data.values).any(axis=0)))
    target = NeuroidAssembly(data.values.astype(np.float64), coords={name: (coord.dims[0], coord.values)
                                                                     for name, coord in data.coords.items()},
                             dims=["presentation", "neuroid"])
    x = np.load(spec["features"])["x"].astype(np.float64)
    presentation = {name: ("presentation", coord.values) for name, coord in data.coords.items() if coord.dims == ("presentation",)}
    source = NeuroidAssembly(x, coords={**presentation, "neuroid_id": ("neuroid", [f"f{i}" for i in range(x.shape[1])]),
                                        "feature": ("neuroid", np.arange(x.shape[1]))}, dims=["presentation", "neuroid"])
    metric = load_metric(spec["metric"], crossvalidation_kwargs=spec["crossvalidation_kwargs"])
    result = {"score": float(metric(source, target).item())}
    if spec.get("subject_column"):
        ceiling = ExtrapolationCeiling(subject_column=spec["subject_column"])(assembly=target, metric=metric)
        result["ceiling"] = float(ceiling.item())
    with open(out, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    if sys.argv[1] == "--assembly":
        main_assembly(*sys.argv[2:4])
    else:
        main(*sys.argv[1:3])
