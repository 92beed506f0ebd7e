"""The study's analysis step (rule analyse and ``brainalign analyse``): read a headline table (``model,dataset,
score``, one row per model x dataset) and a models table, run the statistics of ``brainalign.stats`` and write
``instruction_effect.csv`` and ``property_correlations.csv`` (and, optionally, the pair and property figures).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from brainalign.errors import BrainalignError
from brainalign.io import write_table
from brainalign.stats import pair_effect, property_correlations
from brainalign.tables import check_headline, check_models

log = logging.getLogger("brainalign.analysis")

DEFAULT_N_PERMUTATIONS = 10000  # config.schema.yaml analysis.n_permutations default


def read_inputs(scores_csv, models_csv) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The headline table and the models table, checked (one-line errors naming the file)."""
    for path in (scores_csv, models_csv):
        if not Path(path).is_file():
            raise BrainalignError(f"{path}: file not found")
    scores = check_headline(pd.read_csv(scores_csv), scores_csv)
    models = check_models(pd.read_csv(models_csv), models_csv)
    return scores, models


def analyse(scores_csv, models_csv, out_dir, label: str | None = None, subset: str = "instruction_tuned", seed: int = 0,
            figures: bool = True, n_permutations: int = DEFAULT_N_PERMUTATIONS) -> dict:
    """Write instruction_effect.csv and property_correlations.csv (and figures) into ``out_dir``."""
    scores, models = read_inputs(scores_csv, models_csv)
    out_dir = Path(out_dir)
    effect = pair_effect(scores, models, seed=seed, n_permutations=n_permutations)
    correlations = property_correlations(scores, models, subset)
    write_table(effect, out_dir / "instruction_effect.csv")
    write_table(correlations, out_dir / "property_correlations.csv")
    paths = []
    if figures:
        from brainalign.plots import pair_slopes, property_scatter  # matplotlib only when figures are asked for

        paths += pair_slopes(scores, models, out_dir / "figures", label)
        paths += property_scatter(scores, models, out_dir / "figures", subset)
    log.info("pairs: %d; correlations: %d rows (%s)", int(effect["n_pairs"].max() if len(effect) else 0), len(correlations), label or "")
    return {"effect": effect, "correlations": correlations, "figures": paths}
