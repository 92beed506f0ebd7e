"""Brain-Score Language's language-model benchmarks through the whole workflow under Snakemake (fetch from a local
folder with its CHECKSUMS, prepare, lm_readout, lm_score, collect_scores, analyse, summary), on a run with no brain
or reading dataset: the accuracy rows reach the tidy table with their intervals and the summary page shows them."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml

from brainalign.behaviour.accuracy_intervals import wilson_interval
from brainalign.datasets.fetch import write_manifest
from tests.support.miniature import lm_files
from tests.support.workflow import snakemake


def _local_folder(folder):
    write_manifest(folder)
    return str(folder)


@pytest.mark.slow
def test_language_benchmarks_run_end_to_end_and_reach_the_summary(tmp_path, tiny_gpt2_dir):
    lm_files.write_syntaxgym(tmp_path / "data" / "syntaxgym")
    wikitext = lm_files.write_wikitext(tmp_path / "data" / "wikitext")
    suites = list(lm_files.mini_suites())
    config = {"seed": 0, "results_dir": "results",
              "models": [{"name": "tiny-gpt2", "source": "local", "path": str(tiny_gpt2_dir), "kind": "decoder",
                          "family": "GPT2", "n_params": 1000}],
              "datasets": [{"name": "syntaxgym", "adapter": "syntaxgym", "options": {"suites": suites},
                            "local_dir": _local_folder(tmp_path / "data" / "syntaxgym")},
                           {"name": "wikitext", "adapter": "wikitext", "options": {"n_rows": wikitext["rows"]},
                            "local_dir": _local_folder(tmp_path / "data" / "wikitext")}]}
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    run = tmp_path / "run"
    snakemake(run, "--cores", "2", configfile=config_path)

    tidy = pd.read_csv(run / "results" / "analysis" / "scores.csv")
    rows = tidy[tidy["dataset"] == "syntaxgym"].set_index("metric")
    assert set(rows.index) == {"accuracy"} | {f"accuracy_{s}" for s in suites}
    for suite in suites:
        row = rows.loc[f"accuracy_{suite}"]
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_interval(round(row["raw_r"] * row["n"]), int(row["n"])))
    assert rows.loc["accuracy", "ci_low"] <= rows.loc["accuracy", "raw_r"] <= rows.loc["accuracy", "ci_high"]
    wiki = tidy[tidy["dataset"] == "wikitext"]
    assert wiki["metric"].tolist() == ["accuracy"] and wiki["n"].iloc[0] > 0

    page = (run / "results" / "summary.html").read_text()
    section = page[page.index("<section id='language'>"):page.index("<section id='layer-selection'>")]
    assert "Language-model benchmarks (Brain-Score Language)" in section
    assert re.search(r"<td>tiny-gpt2</td><td>syntaxgym</td><td>[0-9.]+ \[[0-9.]+, [0-9.]+\]</td><td>3 suites</td>", section)
    assert f"<td>{int(wiki['n'].iloc[0])} contexts</td>" in section and "syntaxgym-suites" in section
    assert "<thead><tr></tr></thead>" not in page and "<tbody></tbody>" not in page  # no empty tables: a line says why
    assert "No model pairs in this configuration, so no pair effects." in page
    assert "are accuracies." in page  # the tidy table's note names the accuracy rows
    reading = page[page.index("<section id='reading'>"):page.index("<section id='language'>")]
    assert "syntaxgym" not in reading and "wikitext" not in reading

    again = snakemake(run, "--cores", "2", "-n", configfile=config_path)
    assert "Nothing to be done" in again.stdout + again.stderr
