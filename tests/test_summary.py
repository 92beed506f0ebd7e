"""The summary page a researcher opens first: findings before tables, the headline figure, pair effects with CIs and
p-values, the caveats the run detected (tables, diagnostics and logs), captions, provenance, and the full tidy table
last, collapsed, sortable and filterable, with nothing fetched from the network.

``test_page_works_in_a_real_browser`` renders the page with Debian's Chromium (headless): a screenshot that is not
blank, the headline section present, every embedded figure decoded, the table's filter and sort working, and no
console or page errors. It is skipped, saying why, only where no Chromium is installed (``make install`` installs
it when it runs as root)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainalign.study.analysis import analyse
from brainalign.study.figures import make_figures
from brainalign.study.headline import headline_scores
from brainalign.study.summary_page import write_summary_html
from tests.support.tables import tidy_table, write_study_inputs

LABEL = "trained vs untrained (random init, same architecture)"
WARNING = "only 6 distinct feature rows among 300 samples: read them as chance"


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """A page from a small study built with the package's own steps (tables, analysis, figures, summary)."""
    root = tmp_path_factory.mktemp("study")
    results = root / "results"
    (results / "analysis").mkdir(parents=True)
    _, models = write_study_inputs(root)
    tidy = tidy_table()
    tidy["ci_low"], tidy["ci_high"] = tidy["raw_r"] - 0.05, tidy["raw_r"] + 0.05
    leaky = tidy[(tidy["dataset"] == "d2") & (tidy["selection"] == "best")].assign(protocol="brainscore-2023", raw_r=0.49)
    near_zero = tidy.iloc[[0]].assign(raw_r=0.01, layer="l0-flat")
    tidy = pd.concat([tidy, leaky, near_zero], ignore_index=True)
    tidy.to_csv(results / "analysis" / "scores.csv", index=False)
    headline_scores(tidy).to_csv(results / "analysis" / "headline_scores.csv", index=False)
    analyse(results / "analysis" / "headline_scores.csv", models, results / "analysis", label=LABEL, figures=False)
    make_figures(results / "analysis" / "scores.csv", models, results / "figures", label=LABEL)
    (results / "datasets" / "d2").mkdir(parents=True)
    (results / "datasets" / "d2" / "meta.json").write_text(json.dumps({"name": "d2", "kind": "timeseries"}))
    (results / "behaviour" / "m1").mkdir(parents=True)
    (results / "behaviour" / "m1" / "ns.json").write_text(json.dumps({"measures": {"rt_mean": {"best_lag": "1"}}}))
    (root / "logs" / "fit_encoding").mkdir(parents=True)
    log = f"2026-01-01 00:00:00,000 INFO start\n2026-01-01 00:00:01,000 WARNING {WARNING}\n"
    (root / "logs" / "fit_encoding" / "m1.log").write_text(log)
    out = root / "results" / "summary.html"
    write_summary_html(results / "analysis" / "scores.csv", results / "analysis" / "headline_scores.csv", models,
                       results / "analysis" / "instruction_effect.csv", results / "analysis" / "property_correlations.csv",
                       results / "figures", out, LABEL, config_files=["config/small.yaml"])
    return out


def test_findings_come_first_and_the_tidy_table_last(page):
    text = page.read_text()
    order = [text.index(marker) for marker in ("id='findings'", "id='fig-headline'", "id='pair-effects'", "id='caveats'",
                                               "id='figures'", "id='models'", "<details>", "id='tidy'")]
    assert order == sorted(order)
    findings = text[text.index("id='findings'"):text.index("id='pair-effects'")]
    # m1 (trained) over its untrained control on d1 and d2: both up
    assert "Training raises brain alignment on 2/2 datasets" in findings
    assert "brain average (brain): +0.200 r" in findings and "sign-flip over 1 pair" in findings
    # which layer the brain scores are: the headline's nested choice (the default), said before the numbers
    assert "Brain scores are each model&#x27;s nested layer choice" in findings


def test_the_page_shows_how_far_the_best_layer_exceeds_the_nested_choice(page):
    """Per model x dataset, the best layer beside the nested choice and best - nested (the selection bias), with a
    line saying what it is; the pair effects and the tidy table say which choice the headline is."""
    text = page.read_text()
    assert text.index("id='pair-effects'") < text.index("id='layer-selection'") < text.index("id='caveats'")
    section = text[text.index("id='layer-selection'"):text.index("id='caveats'")]
    assert "how far the best layer exceeds the nested choice" in section and "selection bias" in section
    rows = re.findall(r"<tr><td>(d\d)</td><td>([^<]+)</td>.*?<td class='num'>([^<]+)</td></tr>", section)
    assert len(rows) == 6 and {value for *_, value in rows} == {"+0.010"}  # the support table's best l4 vs nested l3
    pairs = text[text.index("id='pair-effects'"):text.index("id='timeseries'")]
    assert "Brain scores: each model's nested layer choice" in pairs
    assert "the headline is the nested layer choice" in text[text.index("<details>"):]
    effect = pd.read_csv(page.parent / "analysis" / "instruction_effect.csv")  # the analysis says it too
    assert dict(zip(effect["measure"], effect["selection"].fillna(""))) == {"d1": "nested", "d2": "nested",
                                                                           "brain_average": "nested", "ns": ""}


def test_a_best_layer_headline_is_a_caveat_with_its_measured_bias():
    """config/paper.yaml's best-layer headline: the caveats say it is biased upward, by how much here, and how to
    choose the nested layer instead; a nested headline adds no such caveat."""
    from brainalign.study.caveats import caveats

    tidy = tidy_table()
    effect = pd.DataFrame(columns=["n_pairs"])
    best = [item for item in caveats(tidy, headline_scores(tidy, {"brain_selection": "best"}), effect) if "best layer" in item]
    assert len(best) == 1 and "biased upward" in best[0] and "+0.010 r on median" in best[0]
    assert "brain_selection: nested" in best[0]
    assert not [item for item in caveats(tidy, headline_scores(tidy), effect) if "best layer" in item]


def test_caveats_come_from_the_tables_the_diagnostics_and_the_logs(page):
    text = page.read_text()
    caveats = text[text.index("id='caveats'"):text.index("id='figures'")]
    assert "l0-flat" in caveats and "near chance" in caveats                # |r| < 0.05 on a layer
    assert "d2 is a time series" in caveats and "brainscore-2023" in caveats  # the leaky protocol on a time series
    assert "lag 1" in caveats                                              # the reading-time lag diagnostic
    assert WARNING in caveats and "fit_encoding/m1.log" in caveats         # a log's warning, with where it is
    assert "cannot go below 1" in caveats                                  # one pair: no small p-value possible


def test_page_is_self_contained_and_names_its_sources(page):
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", text), "the page must not fetch anything"
    assert text.count("data:image/png;base64,") == 5
    assert "config/small.yaml" in text and "commit " in text and "numpy " in text and "pandas " in text
    captions = json.loads((page.parent / "figures" / "captions.json").read_text())
    for caption in captions.values():
        assert caption.replace("'", "&#x27;") in text


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


# Injected before the page's own scripts: records page errors, failed loads and console.error calls, then (on load)
# decodes every image, exercises the table's filter and sort, and writes what it saw into the DOM for --dump-dom.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message || (e.target && e.target.src) || e)); }, true);
window.addEventListener('unhandledrejection', function (e) { window.__errors.push('unhandled rejection: ' + e.reason); });
var __consoleError = console.error;
console.error = function () { window.__errors.push(Array.prototype.join.call(arguments, ' ')); __consoleError.apply(console, arguments); };
window.addEventListener('load', function () {
  var images = Array.prototype.map.call(document.images, function (img) {
    return {alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight}; });
  var table = document.getElementById('tidy'), filter = document.getElementById('filter'), visible = -1, sorted = null;
  if (table && filter) {
    filter.value = 'm1-untrained'; filter.dispatchEvent(new Event('input'));
    visible = Array.prototype.filter.call(table.tBodies[0].rows, function (r) { return r.style.display !== 'none'; }).length;
    filter.value = ''; filter.dispatchEvent(new Event('input'));
    var headers = Array.prototype.map.call(table.tHead.rows[0].cells, function (c) { return c.textContent; });
    var col = headers.indexOf('raw_r');
    table.tHead.rows[0].cells[col].click();
    var values = Array.prototype.map.call(table.tBodies[0].rows, function (r) { return parseFloat(r.cells[col].textContent); });
    sorted = values.every(function (v, i) { return i === 0 || isNaN(v) || isNaN(values[i - 1]) || v >= values[i - 1]; });
  }
  var out = document.createElement('pre'); out.id = 'browser-check';
  out.textContent = JSON.stringify({errors: window.__errors, images: images, findings: !!document.getElementById('findings'),
                                    visible: visible, sorted: sorted});
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed (apt-get install -y chromium; `make install` does it as root)")
def test_page_works_in_a_real_browser(page, tmp_path):
    browser = chromium()
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--enable-logging=stderr", "--v=0", "--window-size=1100,2400"]
    dom = subprocess.run(flags + ["--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120)
    match = re.search(r"<pre id=\"browser-check\">(.*?)</pre>", dom.stdout, re.S)
    assert match, f"the page's load handler did not run:\n{dom.stderr[-3000:]}"
    check = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert check["errors"] == [], check["errors"]
    assert not re.search(r"CONSOLE.*(Uncaught|Error)", dom.stderr), dom.stderr[-3000:]
    assert check["findings"]
    assert len(check["images"]) == 5 and all(i["complete"] and i["width"] > 100 and i["height"] > 100 for i in check["images"])
    n_rows = len(pd.read_csv(page.parent / "analysis" / "scores.csv"))
    assert 0 < check["visible"] < n_rows and check["sorted"] is True

    screenshot = tmp_path / "summary.png"
    shot = subprocess.run(flags + [f"--screenshot={screenshot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert screenshot.exists() and screenshot.stat().st_size > 20_000, shot.stderr[-3000:]
    from PIL import Image

    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=float)
    assert pixels.shape == (2400, 1100) and pixels.std() > 10  # drawn: text and figures, not a blank page
    assert not re.search(r"CONSOLE.*(Uncaught|Error)", shot.stderr), shot.stderr[-3000:]
