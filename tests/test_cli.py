"""`brainalign analyse` on a hand-made table, as a user with another study's numbers would run it."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from tests.test_stats import MODELS, scores_table


def test_analyse_command_writes_the_documented_tables(tmp_path):
    scores, models = tmp_path / "scores.csv", tmp_path / "models.csv"
    scores_table().assign(extra="kept").to_csv(scores, index=False)
    MODELS.to_csv(models, index=False)
    result = subprocess.run([sys.executable, "-m", "brainalign.cli", "analyse", str(scores), "--models", str(models),
                             "--out", str(tmp_path / "out"), "--label", "instruction-tuned vs vanilla"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    effect = pd.read_csv(tmp_path / "out" / "instruction_effect.csv")
    assert list(effect.columns) == ["group", "measure", "kind", "n_pairs", "n_improved", "mean_base", "mean_derived",
                                    "mean_absolute_change", "absolute_ci_low", "absolute_ci_high", "mean_relative_change",
                                    "ci_low", "ci_high", "p_perm"]
    assert list(effect["measure"]) == ["d1", "d2", "brain_average"] and set(effect["group"]) == {"all"}
    correlations = pd.read_csv(tmp_path / "out" / "property_correlations.csv")
    assert list(correlations.columns) == ["group", "measure", "kind", "property", "r", "p", "p_fdr", "spearman_rho", "n"]
    assert (tmp_path / "out" / "figures" / "pair_effect.png").stat().st_size > 10_000


def test_analyse_command_reports_a_missing_column_in_one_line(tmp_path):
    bad = tmp_path / "scores.csv"
    pd.DataFrame({"model": ["a"], "dataset": ["d"]}).to_csv(bad, index=False)
    MODELS.to_csv(tmp_path / "models.csv", index=False)
    result = subprocess.run([sys.executable, "-m", "brainalign.cli", "analyse", str(bad), "--models", str(tmp_path / "models.csv"),
                             "--out", str(tmp_path / "o")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"brainalign: error: {bad}: missing required columns ['score'] (need model,dataset,score)"
