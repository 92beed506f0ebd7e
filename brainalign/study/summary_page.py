"""Rule summary: one self-contained HTML page (figures embedded, nothing fetched) that a reader understands in two
minutes without the workflow.

What a reader needs first: the comparison's result (``findings``), the headline figure, the pair effects, the
time-series, reading, language-model benchmark and layer-selection (best vs nested) tables (``sections``; the
language benchmarks only where the run scored them), what to distrust (``caveats``:
what the run itself detected); then the other figures (in the figure registry's order, with its captions), the
models and, collapsed, the full tidy table (sortable and filterable). It names the config file(s), the commit and
the software versions it came from.
"""

from __future__ import annotations

import base64
import html
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.io import atomic_path, software_versions
from brainalign.study.caveats import caveats
from brainalign.study.comparisons import untrained_models
from brainalign.study.figures import ROLE_COLOURS, ROLE_LABELS, figure_captions, page_order
from brainalign.study.findings import effect_table, findings
from brainalign.study.headline import headline_selection, selection_words
from brainalign.study.sections import (
    language_benchmark_table,
    language_rows,
    reading_behaviour_table,
    selection_bias_table,
    syntaxgym_suite_table,
    timeseries_gain_table,
)

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1000px;margin:1.5em auto;padding:0 1em;
line-height:1.45;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
.provenance{color:#555;font-size:.85em}.finding{font-size:1.1em}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
th{background:#f4f4f4}th.sortable{cursor:pointer}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}figure img{max-width:100%;height:auto}figcaption{font-size:.9em;color:#444}
.caveats li{margin:.3em 0}details summary{cursor:pointer;font-weight:bold}input#filter{margin:.5em 0;width:20em}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin:0 .25em 0 .6em}
"""

# Sort by clicking a header (numbers as numbers), filter rows by a substring: no library, nothing fetched.
TABLE_SCRIPT = """
(function(){
  var table=document.getElementById('tidy'), body=table.tBodies[0], filter=document.getElementById('filter');
  var rows=Array.prototype.slice.call(body.rows), shown=document.getElementById('shown');
  filter.addEventListener('input',function(){
    var q=filter.value.toLowerCase(), n=0;
    rows.forEach(function(r){var hit=r.textContent.toLowerCase().indexOf(q)>=0;r.style.display=hit?'':'none';if(hit)n++;});
    shown.textContent=n;
  });
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
    th.className='sortable';th.title='click to sort';
    th.addEventListener('click',function(){
      var up=th.getAttribute('data-dir')!=='up';th.setAttribute('data-dir',up?'up':'down');
      rows.sort(function(a,b){
        var x=a.cells[i].textContent,y=b.cells[i].textContent,nx=parseFloat(x),ny=parseFloat(y);
        var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return up?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
})();
"""


def table_html(frame: pd.DataFrame, float_format: str = "{:.3f}", table_id: str | None = None) -> str:
    """A table as HTML: numbers right-aligned (floats with ``float_format``, NaN empty), text escaped."""
    def cell(value):
        if isinstance(value, (float, np.floating)):
            return "<td class='num'></td>" if pd.isna(value) else f"<td class='num'>{float_format.format(value)}</td>"
        if isinstance(value, (int, np.integer)):
            return f"<td class='num'>{value}</td>"
        return f"<td>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in frame.itertuples(index=False))
    ident = f" id='{table_id}'" if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def provenance(config_files=None) -> dict:
    """Where the page came from: the config file(s), the commit of the code (with '+ local changes' when the
    working tree differs) and the software versions."""
    root = Path(__file__).resolve().parents[2]
    commit = "unknown (not a git checkout)"
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode == 0:
            commit = head.stdout.strip()
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10)
            if dirty.stdout.strip():
                commit += " + local changes"
    except (OSError, subprocess.SubprocessError):
        pass
    files = [str(f) for f in (config_files or [])] or ["config/config.yaml (default)"]
    return {"config": files, "commit": commit, "versions": software_versions()}


def figure_html(path: Path, caption: str, dpi: int = 200) -> str:
    """The PNG embedded, shown at 1.5 times its physical size (``dpi`` as saved; 144 CSS px per inch) so its 8 pt
    text reads at the page's own text size and every figure at the same scale, never wider than the page."""
    raw = path.read_bytes()
    width = int.from_bytes(raw[16:20], "big") if raw[:8] == b"\x89PNG\r\n\x1a\n" else 0
    size = f" style='width:{round(width * 144 / dpi)}px'" if width else ""
    data = base64.b64encode(raw).decode()
    return (f"<figure id='fig-{html.escape(path.stem)}'><img{size} alt='{html.escape(path.stem)}' "
            f"src='data:image/png;base64,{data}'><figcaption><b>{html.escape(path.stem)}.</b> {html.escape(caption)}"
            "</figcaption></figure>")


def _timeseries_section(tidy: pd.DataFrame, models: pd.DataFrame, selection: str) -> list[str]:
    selection = selection if selection in ("best", "nested") else None  # unknown or mixed: the headline's default
    table = timeseries_gain_table(tidy, models, selection)
    if table.empty:
        return []
    layer = ("Layer: the best by joint score (chosen on the folds that score it)" if selection == "best" else
             "Layer: the nested choice (each fold's layer chosen on training folds by its joint score; the layer "
             "chosen most often is named, and its raw r shown)")
    return ["<h2>Story fMRI: what each model adds over a word-rate and nuisance baseline</h2>",
            "<p>Every feature that changes with each word, an untrained network's included, tracks how many words arrive "
            "per scan, and motion follows the stimulus too. So each time-series dataset is scored three ways: the "
            "baseline (word rate from the stimulus timing and the dataset's stimulus-level nuisance regressors; each "
            "subject's head motion regressed out of the responses), the joint model (baseline + the layer's features, "
            "one banded ridge), and the <b>gain</b> = joint r - baseline r, the headline for time series. Raw r "
            f"(the features alone, ridge-grouped) stays for reference. {layer}. The baseline, joint and gain CIs "
            "resample subjects, then blocks of contiguous scans shared by the drawn subjects: they reach the population "
            "of listeners and of stretches of story; the raw r's CI resamples blocks of scans only (given these "
            "subjects). The ceiling (leave-one-subject-out ISC, Spearman-Brown corrected; "
            "computed on the motion-cleaned responses the scores use; docs/timeseries.md) normalises the raw and joint r "
            "in the full table. Untrained controls follow their "
            "trained models.</p>", table_html(table)]


def _selection_section(tidy: pd.DataFrame, headline: pd.DataFrame) -> list[str]:
    table = selection_bias_table(tidy, headline)
    if table.empty:
        return []
    return ["<h2>Layer selection: how far the best layer exceeds the nested choice</h2>",
            "<p>The best layer is chosen on the same folds that score it, so with many layers its score is the largest "
            "of many noisy estimates (biased upward); the nested choice picks each fold's layer on its training folds "
            "only, and its CI includes that choice. Best - nested estimates the selection bias of each headline "
            f"(this page's headline: the {html.escape(selection_words(headline_selection(headline)) or 'layer choice the config names')}"
            ").</p>", table_html(table, float_format="{:+.3f}")]


def _reading_section(tidy: pd.DataFrame, untrained) -> list[str]:
    table, warnings = reading_behaviour_table(tidy, untrained)
    if table.empty:
        return []
    parts = ["<h2>Reading behaviour: the paper's r and delta log-likelihood</h2>",
             "<p>The paper's protocol correlates surprisal with reading times, which rewards a surprisal that only tracks "
             "word length or frequency. The reading-regression protocol reports the held-out log-likelihood that "
             "surprisal (of the word and the previous ones: spillover) adds to a baseline of length, log frequency and "
             "position (mixed model per reader where the data have readers, OLS on means otherwise); ~0 means nothing "
             "beyond length and frequency. Every reader reads the same words, so the 95% CIs resample readers and "
             "sentences together (crossed), or stories then sentences on mean reading times, and the coefficients use "
             "errors clustered by reader and sentence: they reach new readers and new text (docs/statistics.md).</p>"]
    parts += [f"<p style='color:#b00'><b>Warning:</b> {html.escape(w)}</p>" for w in warnings]
    return parts + [table_html(table)]


def _language_section(tidy: pd.DataFrame, untrained) -> list[str]:
    """Brain-Score Language's benchmarks in their own section (opened here, closed by the next one), so a run
    without them gets nothing, not even an empty section."""
    table = language_benchmark_table(tidy, untrained)
    if table.empty:
        return []
    parts = ["</section><section id='language'>",
             "<h2>Language-model benchmarks (Brain-Score Language)</h2>",
             "<p>These score the language model itself, with no brain or reading data: SyntaxGym counts the fraction "
             "of a suite's items whose every prediction about region surprisals holds (e.g. the ungrammatical "
             "continuation more surprising than the grammatical one), averaged over the suites as Brain-Score's "
             "SyntaxGym2020; Wikitext counts the fraction of next words predicted exactly. The model is read as "
             "Brain-Score reads a causal language model, so encoder and encoder-decoder models have no rows. The 95% "
             "CIs draw items (a suite's; for the SyntaxGym mean, the items within each of its fixed suites) or, for "
             "Wikitext, articles, since the next words of one article are not independent draws (no CI from fewer than "
             "two articles); n says what the accuracy averages.</p>", table_html(table)]
    suites = syntaxgym_suite_table(tidy, untrained)
    if not suites.empty:
        # an id of its own: the tidy table's is the page's one bare <details>
        parts += [f"<details id='syntaxgym-suites'><summary>SyntaxGym per suite ({len(suites)} suites): click to open"
                  "</summary>",
                  table_html(suites), "</details>"]
    return parts


def _pair_effects(effect: pd.DataFrame, selection: str) -> list[str]:
    """The pair-effects table and how to read it; one line where the run has no pairs."""
    if effect.empty:
        return ["<p>No model pairs in this configuration, so no pair effects.</p>"]
    return ["<p>Change from each pair's base to its derived model, averaged over pairs: absolute change in Pearson r "
            "with a bootstrap 95% CI over pairs, relative change (derived - base) / |base|, and a two-sided sign-flip "
            "permutation p-value of the relative change."
            + (f" Brain scores: each model's {html.escape(selection_words(selection))}." if selection_words(selection) else "")
            + "</p>", table_html(effect_table(effect))]


def _figure_captions(figures_dir: Path) -> dict[str, str]:
    """The registry's captions; ``captions.json`` of the figures step for figures the registry does not have."""
    path = figures_dir / "captions.json"
    written = json.loads(path.read_text()) if path.exists() else {}
    return {**written, **figure_captions()}


def write_summary_html(tidy_csv, headline_csv, models_csv, effect_csv, correlations_csv, figures_dir, out_path, label: str,
                       config_files=None, logs_dir=None, results_dir=None) -> None:
    """The summary page: findings first, then the headline figure, the pair effects, the caveats the run detected,
    the other figures, the models, and the full tidy table last (collapsed, sortable and filterable).

    ``results_dir`` (default: the folder above the tidy table's) supplies dataset metadata and the behaviour
    diagnostics; ``logs_dir`` (default: ``logs`` beside ``results_dir``) the warnings."""
    tidy = pd.read_csv(tidy_csv)
    headline = pd.read_csv(headline_csv)
    models = pd.read_csv(models_csv).fillna("")
    effect = pd.read_csv(effect_csv)
    correlations = pd.read_csv(correlations_csv)
    results_dir = Path(results_dir) if results_dir is not None else Path(tidy_csv).resolve().parents[1]
    logs_dir = Path(logs_dir) if logs_dir is not None else results_dir.parent / "logs"
    figures_dir = Path(figures_dir)
    captions = _figure_captions(figures_dir)
    pngs = {path.stem: path for path in figures_dir.glob("*.png")}
    figures = [pngs[name] for name in page_order(pngs)]
    source = provenance(config_files)
    untrained = untrained_models(models)
    selection = headline_selection(headline)  # best | nested (analysis.headline.brain_selection), "" where unknown
    versions = ", ".join(f"{k} {v}" for k, v in source["versions"].items())
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>brainalign summary</title>",
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{STYLE}</style></head><body>",
        "<h1>brainalign: language models vs brain and reading behaviour</h1>",
        f"<p class='provenance'>Config: {html.escape(', '.join(source['config']))} &middot; commit "
        f"{html.escape(source['commit'])} &middot; {html.escape(versions)}</p>",
        "<section id='findings'><h2>What was found</h2>",
        f"<p><b>Pairs compare:</b> {html.escape(label)}. Untrained models (random weights, fixed seed) are controls: "
        f"{html.escape(', '.join(sorted(untrained)) or 'none')}.</p><ul class='finding'>",
        *[f"<li>{html.escape(sentence)}</li>" for sentence in findings(effect, models, label, selection)],
        "</ul>",
    ]
    if "headline" in pngs:
        parts.append(figure_html(pngs["headline"], captions.get("headline", "")))
    parts += [
        "</section><section id='pair-effects'>",
        f"<h2>Pair effects ({html.escape(label)})</h2>",
        *_pair_effects(effect, selection),
        "</section><section id='timeseries'>",
        *_timeseries_section(tidy, models, selection),
        "</section><section id='reading'>",
        *_reading_section(tidy, untrained),
        *_language_section(tidy, untrained),
        "</section><section id='layer-selection'>",
        *_selection_section(tidy, headline),
        "</section><section id='caveats'><h2>Caveats this run detected</h2>",
    ]
    found = caveats(tidy, headline, effect, results_dir, logs_dir)
    parts.append("<ul class='caveats'>" + "".join(f"<li>{item}</li>" for item in found) + "</ul>" if found
                 else "<p>None: no near-chance scores, leaky protocols, lag shifts or warnings were found.</p>")
    # the figures' own colour encoding, so the key cannot drift from what is drawn
    key = "".join(f"<span class='swatch' style='background:{ROLE_COLOURS[role]}'></span>{html.escape(ROLE_LABELS[role])}"
                  for role in ROLE_COLOURS)
    parts += ["</section><section id='figures'><h2>Figures</h2>",
              f"<p>Colours, the same in every figure: {key} (untrained: hollow markers, dashed lines).</p>"]
    parts += [figure_html(figure, captions.get(figure.stem, "")) for figure in figures if figure.stem != "headline"]
    parts += [
        "</section><section id='models'><h2>Models</h2>",
        table_html(models[[c for c in ["model", "family", "kind", "trained", "instruction_tuned", "vanilla_base_model", "n_params",
                                       "source", "model_id", "quantization", "arithmetic"] if c in models.columns]]),
        "<h2>Correlations with model properties</h2>",
        table_html(correlations) if len(correlations) else
        "<p>None in this run: each needs several trained models with the property (the models table's columns).</p>",
        "</section><section id='all-scores'><h2>All scores</h2>",
        f"<details><summary>The full tidy table ({len(tidy)} rows): click to open; click a header to sort</summary>",
        "<p>Brain scores are raw Pearson r of cross-validated encoding models (selection: best, the layer with the best "
        "test score; nested, each fold's layer chosen on training folds only, the row naming the layer chosen most "
        "often; layer, every layer)"
        + (f"; the headline is the {html.escape(selection_words(selection))}" if selection_words(selection) else "")
        + "; 'normalised' divides by the dataset's noise ceiling where "
        "per-subject data allow one. Behaviour scores are Pearson r between per-word surprisal and reading times"
        + ("; the language-model benchmarks' rows (metric accuracy, accuracy_&lt;suite&gt;) are accuracies"
           if language_rows(tidy).any() else "") + ".</p>",
        f"<input id='filter' type='search' placeholder='filter rows (e.g. a model or dataset)' aria-label='filter rows'> "
        f"<span id='shown'>{len(tidy)}</span> rows shown",
        table_html(tidy.fillna({c: "" for c in tidy.columns if tidy[c].dtype == object}), table_id="tidy"),
        f"</details></section><script>{TABLE_SCRIPT}</script></body></html>",
    ]
    with atomic_path(out_path, suffix=".html") as tmp:
        tmp.write_text("\n".join(parts))
