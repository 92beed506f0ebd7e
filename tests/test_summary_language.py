"""Brain-Score Language's benchmarks (SyntaxGym, Wikitext) on the summary page: their accuracy rows are behaviour rows
of the tidy table, but they have no reading times, so they get a table of their own (accuracy with its CI and what it
averages, and the per-suite table collapsed) instead of empty rows in the reading table; a run without them gets no
such section."""

from __future__ import annotations

import pandas as pd
import pytest

from brainalign.study.analysis import analyse
from brainalign.study.headline import headline_scores
from brainalign.study.sections import language_benchmark_table, reading_behaviour_table, syntaxgym_suite_table
from brainalign.study.summary_page import write_summary_html
from brainalign.study.tables import tidy_frame, tidy_row
from tests.support.tables import tidy_table, write_study_inputs

LABEL = "trained vs untrained (random init, same architecture)"
PROTOCOL = "brainscore-2023"
HEADING = "Language-model benchmarks (Brain-Score Language)"


def language_tidy() -> pd.DataFrame:
    """Reading rows of ``dec`` and ``enc`` on ``ns``; SyntaxGym (two suites and their mean, one suite without a CI)
    and Wikitext rows of the decoder ``dec`` and its untrained control ``dec-untrained``; the encoder ``enc`` has none,
    as Brain-Score reads only causal language models."""
    rows = []
    for model in ("dec", "enc"):
        rows += [tidy_row(model, "ns", "behaviour", "surprisal_r", "default", 0.31, ci=(0.25, 0.37), n=500),
                 tidy_row(model, "ns", "behaviour", "delta_loglik", "reading-regression", 0.0123, ci=(0.005, 0.02),
                          n=500)]
    for model, (agr, npi, wiki) in {"dec": (0.9, 0.6, 0.25), "dec-untrained": (0.5, 0.1, 0.0)}.items():
        rows += [tidy_row(model, "SyntaxGym2020", "behaviour", "accuracy_agr", PROTOCOL, agr, ceiling=1.0,
                          ci=(agr - 0.1, min(agr + 0.05, 1.0)), n=24),
                 tidy_row(model, "SyntaxGym2020", "behaviour", "accuracy_npi", PROTOCOL, npi, ceiling=1.0, n=38),
                 tidy_row(model, "SyntaxGym2020", "behaviour", "accuracy", PROTOCOL, (agr + npi) / 2, ceiling=1.0,
                          ci=((agr + npi) / 2 - 0.08, (agr + npi) / 2 + 0.07), n=2),
                 tidy_row(model, "Wikitext-accuracy", "behaviour", "accuracy", PROTOCOL, wiki,
                          ci=(max(wiki - 0.02, 0.0), wiki + 0.02), n=1234)]
    return tidy_frame(rows)


def test_the_reading_table_leaves_the_language_benchmarks_out():
    """A (model, dataset) with only accuracy rows gets no reading row; the reading dataset keeps its rows."""
    table, warnings = reading_behaviour_table(language_tidy(), untrained=("dec-untrained",))
    assert list(zip(table["model"], table["dataset"])) == [("dec", "ns"), ("enc", "ns")]
    assert table["r (default)"].tolist() == ["0.310 [0.250, 0.370]"] * 2
    assert table["delta log-lik (nats/obs)"].tolist() == ["0.0123 [0.0050, 0.0200]"] * 2
    assert warnings == []
    only_language = language_tidy().query("dataset != 'ns'")
    assert reading_behaviour_table(only_language)[0].empty


def test_the_language_table_shows_accuracy_with_its_ci_and_what_n_counts():
    table = language_benchmark_table(language_tidy(), untrained=("dec-untrained",))
    assert table.columns.tolist() == ["model", "dataset", "accuracy [95% CI]", "n"]
    assert table.to_dict("records") == [
        {"model": "dec", "dataset": "SyntaxGym2020", "accuracy [95% CI]": "0.750 [0.670, 0.820]", "n": "2 suites"},
        {"model": "dec", "dataset": "Wikitext-accuracy", "accuracy [95% CI]": "0.250 [0.230, 0.270]",
         "n": "1,234 contexts"},
        {"model": "dec-untrained (untrained)", "dataset": "SyntaxGym2020", "accuracy [95% CI]": "0.300 [0.220, 0.370]",
         "n": "2 suites"},
        {"model": "dec-untrained (untrained)", "dataset": "Wikitext-accuracy",
         "accuracy [95% CI]": "0.000 [0.000, 0.020]", "n": "1,234 contexts"},
    ]


def test_the_language_table_shows_an_accuracy_without_a_ci_and_a_single_count():
    """CIs may be missing (score files written before them): the value alone; one suite is '1 suite'."""
    tidy = tidy_frame([tidy_row("dec", "syntaxgym-agr", "behaviour", "accuracy_agr", PROTOCOL, 0.5, ceiling=1.0, n=24),
                       tidy_row("dec", "syntaxgym-agr", "behaviour", "accuracy", PROTOCOL, 0.5, ceiling=1.0, n=1)])
    assert language_benchmark_table(tidy).to_dict("records") == [
        {"model": "dec", "dataset": "syntaxgym-agr", "accuracy [95% CI]": "0.500", "n": "1 suite"}]


def test_the_suite_table_lists_each_suite_with_each_models_accuracy():
    table = syntaxgym_suite_table(language_tidy(), untrained=("dec-untrained",))
    assert table.columns.tolist() == ["dataset", "suite", "items", "dec", "dec-untrained (untrained)"]
    assert table.to_dict("records") == [
        {"dataset": "SyntaxGym2020", "suite": "agr", "items": "24", "dec": "0.900 [0.800, 0.950]",
         "dec-untrained (untrained)": "0.500 [0.400, 0.550]"},
        {"dataset": "SyntaxGym2020", "suite": "npi", "items": "38", "dec": "0.600",
         "dec-untrained (untrained)": "0.100"},
    ]


def test_without_language_rows_both_tables_are_empty():
    reading_only = language_tidy().query("dataset == 'ns'")
    assert language_benchmark_table(reading_only).empty and syntaxgym_suite_table(reading_only).empty
    wikitext_only = language_tidy().query("dataset == 'Wikitext-accuracy'")
    assert len(language_benchmark_table(wikitext_only)) == 2 and syntaxgym_suite_table(wikitext_only).empty


def summary_page(root, extra: pd.DataFrame) -> str:
    """The page of the summary tests' small study (tests/support/tables.py) with ``extra`` tidy rows added, built
    from the package's own analysis (figures left out: they do not touch the sections)."""
    results = root / "results"
    analysis = results / "analysis"
    analysis.mkdir(parents=True)
    (results / "figures").mkdir()
    _, models = write_study_inputs(root)
    tidy = pd.concat([tidy_table(), extra], ignore_index=True) if len(extra) else tidy_table()
    tidy.to_csv(analysis / "scores.csv", index=False)
    headline_scores(tidy).to_csv(analysis / "headline_scores.csv", index=False)
    analyse(analysis / "headline_scores.csv", models, analysis, label=LABEL, figures=False)
    out = results / "summary.html"
    write_summary_html(analysis / "scores.csv", analysis / "headline_scores.csv", models,
                       analysis / "instruction_effect.csv", analysis / "property_correlations.csv", results / "figures",
                       out, LABEL, config_files=["config/small.yaml"])
    return out.read_text()


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> tuple[str, str]:
    """(the page with language-benchmark rows for m1 and its untrained control, the page without them)."""
    rows = language_tidy().query("dataset != 'ns'")
    rows = rows.assign(model=rows["model"].map({"dec": "m1", "dec-untrained": "m1-untrained"}))
    return (summary_page(tmp_path_factory.mktemp("with"), rows),
            summary_page(tmp_path_factory.mktemp("without"), tidy_frame([])))


def test_the_page_has_a_language_section_after_reading_only_with_such_rows(pages):
    with_rows, without = pages
    order = [with_rows.index(marker) for marker in ("id='reading'", "id='language'", "id='layer-selection'")]
    assert order == sorted(order)
    section = with_rows[with_rows.index("id='language'"):with_rows.index("id='layer-selection'")]
    assert HEADING in section and "SyntaxGym2020" in section and "encoder" in section
    assert "<td>m1</td><td>Wikitext-accuracy</td><td>0.250 [0.230, 0.270]</td><td>1,234 contexts</td>" in section
    untrained = "<td>m1-untrained (untrained)</td><td>SyntaxGym2020</td><td>0.300 [0.220, 0.370]</td><td>2 suites</td>"
    assert untrained in section
    suites = section[section.index("<details id='syntaxgym-suites'>"):section.index("</details>")]
    assert "2 suites" in suites and "<td>agr</td>" in suites and "<td>npi</td>" in suites
    # the reading table keeps ns and gains no empty rows for the benchmarks
    reading = with_rows[with_rows.index("id='reading'"):with_rows.index("id='language'")]
    assert "<td>ns</td>" in reading and "SyntaxGym2020" not in reading and "Wikitext" not in reading
    # the tidy table's collapsed block is still the page's one bare <details>
    assert with_rows.count("<details>") == 1
    assert "id='language'" not in without and HEADING not in without and "syntaxgym-suites" not in without
    assert "id='reading'" in without and "<td>ns</td>" in without


def test_the_language_rows_change_nothing_else_on_the_page(pages):
    """Everything before the reading section's end is the same with and without the benchmark rows (the findings
    and pair effects read brain and reading scores only)."""
    with_rows, without = pages
    cut = "id='language'"
    before = with_rows[:with_rows.index(cut)]
    assert without.startswith(before.rsplit("</section>", 1)[0])
    after = with_rows[with_rows.index("id='layer-selection'"):with_rows.index("id='all-scores'")]
    assert after == without[without.index("id='layer-selection'"):without.index("id='all-scores'")]
