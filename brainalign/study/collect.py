"""Rule collect_scores: gather every per-model score file into the study-wide tables.

The tidy table (columns, reading and checks: ``brainalign.study.tables``) is the single source for the analysis,
the figures and the summary page, and it is the documented format (docs/DESIGN.md) that lets users analyse
published numbers with the same code.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from brainalign.config import models_table
from brainalign.io import write_table
from brainalign.study.headline import Headline, headline_scores
from brainalign.study.tables import read_tidy


def collect_scores(score_paths, config: dict, tidy_out, headline_out, models_out, properties_csv=None,
                   headline_options: Mapping | Headline | None = None) -> pd.DataFrame:
    """Write the study-wide tidy table, the one-row-per-model-x-dataset headline table (the rows the config's
    ``analysis.headline`` names) and the models table (from the config's ``models`` and, if given, a properties
    CSV keyed by ``model``)."""
    tidy = read_tidy(score_paths)
    write_table(tidy, tidy_out)
    write_table(headline_scores(tidy, headline_options), headline_out)
    write_table(models_table(config, properties_csv), models_out)
    return tidy
