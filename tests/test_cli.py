"""`brainalign analyse` on a hand-made table, as a user with another study's numbers would run it."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from tests.support.tables import HAND_MODELS, hand_scores_table


def test_analyse_command_writes_the_documented_tables(tmp_path):
    scores, models = tmp_path / "scores.csv", tmp_path / "models.csv"
    hand_scores_table().assign(extra="kept").to_csv(scores, index=False)
    HAND_MODELS.to_csv(models, index=False)
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
    HAND_MODELS.to_csv(tmp_path / "models.csv", index=False)
    result = subprocess.run([sys.executable, "-m", "brainalign.cli", "analyse", str(bad), "--models", str(tmp_path / "models.csv"),
                             "--out", str(tmp_path / "o")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"brainalign: error: {bad}: missing required columns ['score'] (need model,dataset,score)"


def test_flags_given_override_the_config_and_the_schema_fills_the_rest(tmp_path):
    """Options come from the config's analysis block, then the flags given; property correlations over the
    instruction-tuned models (the config's subset) use 3 models, over all of them 6."""
    config = tmp_path / "config.yaml"
    config.write_text("models: [{name: a, source: hub, hf_id: org/a, kind: decoder}]\n"
                      "datasets: [{name: d1, adapter: pereira2018}]\n"
                      "analysis: {subset: instruction_tuned}\n")
    scores, models = tmp_path / "scores.csv", tmp_path / "models.csv"
    hand_scores_table().to_csv(scores, index=False)
    HAND_MODELS.to_csv(models, index=False)
    sizes = {}
    for name, flags in (("config", []), ("flag", ["--subset", "all"])):
        result = subprocess.run([sys.executable, "-m", "brainalign.cli", "analyse", str(scores), "--models", str(models),
                                 "--config", str(config), "--out", str(tmp_path / name), "--no-figures", *flags],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        correlations = pd.read_csv(tmp_path / name / "property_correlations.csv")
        sizes[name] = set(correlations.loc[correlations["property"] == "log10_n_params", "n"])
    assert sizes == {"config": {3}, "flag": {6}}
