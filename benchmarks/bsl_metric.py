"""Brain-Score Language's own regression metrics on one problem, for bench_encoding.py section (e).

Runs in Brain-Score Language's environment, not brainalign's (``brainscore-language`` pins numpy < 2):

    python3 -m venv /tmp/bsl && /tmp/bsl/bin/pip install brainscore-language
    /tmp/bsl/bin/python benchmarks/bsl_metric.py problem.npz          # prints one JSON line
    /tmp/bsl/bin/python benchmarks/bsl_metric.py problem.npz ridge_pearsonr   # only the metrics named (comma list)

``problem.npz`` holds ``x`` (stimuli x features) and ``y`` (stimuli x neuroids). Both become NeuroidAssemblies
(dims presentation x neuroid, coords stimulus_id and neuroid_id), as Brain-Score's benchmarks build them, and each
metric (``ridge_pearsonr``: RidgeGCV over alphas 1e-3..1e3 on the raw features; ``linear_pearsonr``: OLS) is
called on them directly with its default cross-validation (10 ShuffleSplits 90/10, random_state 1; Pearson r per
neuroid, median over neuroids, mean over splits). Prints {metric: {"score", "seconds"}}.
"""

from __future__ import annotations

import json
import logging
import sys
import time

import numpy as np


def assembly(values: np.ndarray, prefix: str):
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly

    n, k = values.shape
    # two coordinates per dimension, as Brain-Score's own assemblies have: a lone one would become the dimension's
    # index and its name would be lost
    return NeuroidAssembly(values, coords={"stimulus_id": ("presentation", np.arange(n)),
                                           "stimulus_num": ("presentation", np.arange(n)),
                                           "neuroid_id": ("neuroid", [f"{prefix}{i}" for i in range(k)]),
                                           "neuroid_num": ("neuroid", np.arange(k))},
                           dims=["presentation", "neuroid"])


def main(path: str, metrics: str = "ridge_pearsonr,linear_pearsonr") -> None:
    import torch

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    from brainscore_language import load_metric

    data = np.load(path)
    source, target = assembly(data["x"].astype(np.float64), "f"), assembly(data["y"].astype(np.float64), "n")
    out = {}
    for name in metrics.split(","):
        metric = load_metric(name)
        start = time.perf_counter()
        score = metric(source, target)
        seconds = time.perf_counter() - start
        out[name] = {"score": float(score.values), "seconds": round(seconds, 3)}
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:3])
