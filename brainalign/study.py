"""The study level: gather every per-model score file into one tidy table and write the summary page.

The tidy table (columns, reading and checks: ``brainalign.tables``) is the single source for the analysis, the figures
and the report, and it is the documented format (docs/DESIGN.md) that lets users analyse published numbers with
the same code.
"""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.config import models_table
from brainalign.io import atomic_path, software_versions, write_table
from brainalign.reading_regression import lag_check_fires
from brainalign.tables import GAIN_METRICS, GAIN_PROTOCOL, headline_scores, read_tidy


def collect_scores(score_paths, config: dict, tidy_out, headline_out, models_out, properties_csv=None,
                   headline_options: dict | None = None) -> pd.DataFrame:
    """Write the study-wide tidy table, the one-row-per-model-x-dataset headline table (the rows the config's
    ``analysis.headline`` names) and the models table."""
    tidy = read_tidy(score_paths)
    write_table(tidy, tidy_out)
    headline = headline_scores(tidy, headline_options)
    write_table(headline, headline_out)
    write_table(models_table(config, properties_csv), models_out)
    return tidy


# ----------------------------------------------------------------------------------------------- the summary page
# What a reader needs first: the comparison's result, the headline figure, the pair effects, what to distrust (the
# caveats the run itself detected); then the other figures, the models and, collapsed, the full tidy table.
NEAR_ZERO_R = 0.05  # |r| below this on a layer: indistinguishable from chance at the sizes these datasets have
FIGURE_ORDER = ["headline", "pair_effect", "layer_profiles", "alignment_vs_size", "alignment_vs_mmlu", "behaviour_vs_perplexity"]

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


def _table_html(frame: pd.DataFrame, float_format: str = "{:.3f}", table_id: str | None = None) -> str:
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


def _signed(value: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:+.{digits}f}"


def _ci(low: float, high: float, digits: int = 3) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "95% CI not estimable (fewer than 2 pairs)"
    return f"95% CI {low:+.{digits}f} to {high:+.{digits}f}"


def _p(value: float) -> str:
    return "p n/a" if not np.isfinite(value) else f"p = {value:.2g}" if value >= 0.001 else "p < 0.001"


def _untrained(models: pd.DataFrame) -> set[str]:
    if "trained" not in models:
        return set()
    return set(models.loc[models["trained"].astype(str).isin(["0", "0.0", "False", "false"]), "model"])


def change_word(models: pd.DataFrame) -> str:
    """What the pairs change, in words: training (every base is an untrained control), instruction-tuning (every
    derived model is flagged instruction-tuned), else 'the change'."""
    from brainalign.tables import pairs_of

    pairs = pairs_of(models)
    if not pairs:
        return "the change"
    untrained = _untrained(models)
    if all(base in untrained for base, _ in pairs):
        return "training"
    tuned = set(models.loc[models.get("instruction_tuned", pd.Series(dtype=str)).astype(str).isin(["1", "1.0", "True", "true"]),
                           "model"]) if "instruction_tuned" in models else set()
    if all(derived in tuned for _, derived in pairs):
        return "instruction-tuning"
    return "the change"


def findings(effect: pd.DataFrame, models: pd.DataFrame, label: str) -> list[str]:
    """The page's opening sentences (plain text): per group of pairs, on how many brain datasets the derived model
    scores higher, the brain average's change with CI and p, each behaviour measure's; measures no pair scored."""
    word = change_word(models)
    sentences = []
    for group, rows in effect.groupby("group", sort=False):
        prefix = "" if group == "all" else f"[{group}] "
        scored = rows[rows["n_pairs"] > 0]
        brain = scored[(scored["kind"] == "brain") & (scored["measure"] != "brain_average")]
        if len(brain):
            up = int((brain["mean_absolute_change"] > 0).sum())
            verb = "raises" if up > len(brain) / 2 else "lowers" if up < len(brain) / 2 else "changes"
            count = up if verb != "lowers" else len(brain) - up
            sentences.append(f"{prefix}{word[0].upper() + word[1:]} {verb} brain alignment on {count}/{len(brain)} "
                             f"dataset{'s' if len(brain) != 1 else ''} ({label}).")
        for row in scored.itertuples():
            if row.kind == "brain" and row.measure != "brain_average" and len(brain) > 1:
                continue  # the datasets are in the table; the average speaks for them here
            if row.measure == "brain_average" and len(brain) == 1:
                continue  # the average of one dataset is that dataset
            name = "brain average" if row.measure == "brain_average" else row.measure
            sentences.append(
                f"{prefix}{name} ({row.kind}): {_signed(row.mean_absolute_change)} r "
                f"({_ci(row.absolute_ci_low, row.absolute_ci_high)}), {_signed(100 * row.mean_relative_change, 1)}% relative, "
                f"{_p(row.p_perm)} (sign-flip over {row.n_pairs} pair{'s' if row.n_pairs != 1 else ''}, "
                f"{row.n_improved} improved).")
        unscored = rows.loc[rows["n_pairs"] == 0, "measure"].tolist()
        if unscored:
            sentences.append(f"{prefix}No pair has scores for both its models on: {', '.join(unscored)} "
                             "(e.g. encoder-only models give no surprisal).")
    return sentences or ["No model pairs in this configuration: scores only, no comparison."]


def _warnings_in_logs(logs_dir) -> dict[str, list[str]]:
    """Distinct WARNING messages of the run's logs -> the logs that hold them (timestamps stripped)."""
    found: dict[str, list[str]] = {}
    if logs_dir is None or not Path(logs_dir).is_dir():
        return found
    for path in sorted(Path(logs_dir).rglob("*.log")):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            match = re.match(r"^\S+ \S+ WARNING (.*)$", line)
            if match:
                found.setdefault(match.group(1).strip(), []).append(str(path.relative_to(logs_dir)))
    return found


READING_PROTOCOL = "reading-regression"


def _with_ci(value, low, high, digits: int = 3) -> str:
    if pd.isna(value):
        return ""
    text = f"{value:.{digits}f}"
    return text + (f" [{low:.{digits}f}, {high:.{digits}f}]" if pd.notna(low) and pd.notna(high) else "")


def reading_behaviour_table(tidy: pd.DataFrame, untrained=()) -> tuple[pd.DataFrame, list[str]]:
    """Per model x reading dataset, the paper's r beside the reading-regression protocol (delta log-likelihood with
    its CI, surprisal coefficient, spillover profile, lag check) and perplexity per word, untrained controls
    marked; and one warning per model x dataset whose lag check fired (``reading_regression.lag_check_fires``: the
    next word's surprisal predicts reading times better than the previous word's, so the reading times look shifted
    against the words).
    Only rows of the tidy table: the report needs no other file."""
    behaviour = tidy[tidy["kind"] == "behaviour"]
    if behaviour.empty:
        return pd.DataFrame(), []
    rows, warnings = [], []
    for (model, dataset), part in behaviour.groupby(["model", "dataset"], sort=True):
        cell = {(r.metric, r.protocol): r for r in part.itertuples(index=False)}

        def shown(metric, protocol, digits=3, cell=cell):
            r = cell.get((metric, protocol))
            return "" if r is None else _with_ci(r.raw_r, r.ci_low, r.ci_high, digits)

        lags = sorted(m for m, p in cell if p == READING_PROTOCOL and m.startswith("surprisal_coef_lag"))
        check, delta = cell.get(("lag_check", READING_PROTOCOL)), cell.get(("delta_loglik", READING_PROTOCOL))
        fired = check is not None and delta is not None and lag_check_fires(check.ci_low, delta.ci_low)
        if fired:
            warnings.append(f"{model} on {dataset}: the next word's surprisal predicts reading times better than the "
                            f"previous word's (lag check {check.raw_r:.4f} nats, CI [{check.ci_low:.4f}, {check.ci_high:.4f}]): "
                            "the reading times look shifted by one word against the text")
        rows.append({"model": model + (" (untrained)" if model in set(untrained) else ""), "dataset": dataset,
                     "r (default)": shown("surprisal_r", "default"), "|r| (brainscore-2023)": shown("surprisal_r", "brainscore-2023"),
                     "delta log-lik (nats/obs)": shown("delta_loglik", READING_PROTOCOL, 4),
                     "surprisal coef (ms/bit)": shown("surprisal_coef", READING_PROTOCOL, 2),
                     "spillover coefs (ms/bit)": ", ".join(
                         f"lag {m.removeprefix('surprisal_coef_lag')}: {cell[(m, READING_PROTOCOL)].raw_r:.2f}" for m in lags),
                     "perplexity/word": shown("perplexity_per_word", "default", 1),
                     "lag check": "" if check is None else ("WARNING: fires" if fired else "ok")})
    return pd.DataFrame(rows), warnings


def timeseries_gain_table(tidy: pd.DataFrame, models: pd.DataFrame | None = None, selection: str = "best") -> pd.DataFrame:
    """Per time-series dataset x model: the raw score (linear, ridge-grouped), the baseline (word rate + nuisance),
    the joint model (baseline + the layer's features), the gain (joint - baseline, the time series' headline) and
    the variance added, each with its block-bootstrap 95% CI, at the ``selection`` layer; each trained model is
    followed by its untrained control (its ``vanilla_base_model`` when that is untrained), so the two gains sit
    side by side. Only rows of the tidy table."""
    rows = tidy[(tidy["kind"] == "brain") & (tidy["protocol"] == GAIN_PROTOCOL) & (tidy["selection"] == selection)]
    gain = rows[rows["metric"].isin(list(GAIN_METRICS.values()))]
    if gain.empty:
        return pd.DataFrame()
    untrained = _untrained(models) if models is not None else set()
    base_of = ({r.model: r.vanilla_base_model for r in models.itertuples()}
               if models is not None and "vanilla_base_model" in models else {})
    order = []
    for model in sorted(set(gain["model"]), key=lambda m: (m in untrained, m)):
        if model in order:
            continue
        order.append(model)
        control = base_of.get(model)
        if isinstance(control, str) and control in untrained and control in set(gain["model"]) and control not in order:
            order.append(control)
    out = []
    for dataset in sorted(set(gain["dataset"])):
        here = rows[rows["dataset"] == dataset]
        for model in order:
            cell = {r.metric: r for r in here[here["model"] == model].itertuples(index=False)}
            if "gain_r" not in cell:
                continue
            at_layer = tidy[(tidy["dataset"] == dataset) & (tidy["model"] == model) & (tidy["metric"] == "linear")
                            & (tidy["protocol"] == GAIN_PROTOCOL) & (tidy["selection"] == "layer")
                            & (tidy["layer"] == cell["gain_r"].layer)]
            raw = next(at_layer.itertuples(index=False), None)  # the features alone, at the same layer
            out.append({"dataset": dataset, "model": model + (" (untrained)" if model in untrained else ""),
                        "layer": cell["gain_r"].layer,
                        "raw r": "" if raw is None else _with_ci(raw.raw_r, raw.ci_low, raw.ci_high),
                        "baseline r": _with_ci(cell["baseline_r"].raw_r, cell["baseline_r"].ci_low, cell["baseline_r"].ci_high),
                        "joint r": _with_ci(cell["joint_r"].raw_r, cell["joint_r"].ci_low, cell["joint_r"].ci_high),
                        "gain (joint - baseline)": _with_ci(cell["gain_r"].raw_r, cell["gain_r"].ci_low, cell["gain_r"].ci_high),
                        "variance added": _with_ci(cell["variance_added"].raw_r, cell["variance_added"].ci_low,
                                                   cell["variance_added"].ci_high, 4),
                        "ceiling": "" if pd.isna(cell["joint_r"].ceiling) else f"{cell['joint_r'].ceiling:.3f}"})
    return pd.DataFrame(out)


def _timeseries_section(tidy: pd.DataFrame, models: pd.DataFrame) -> list[str]:
    table = timeseries_gain_table(tidy, models)
    if table.empty:
        return []
    return ["<h2>Story fMRI: what each model adds over a word-rate and nuisance baseline</h2>",
            "<p>Every feature that changes with each word, an untrained network's included, tracks how many words arrive "
            "per scan, and motion follows the stimulus too. So each time-series dataset is scored three ways: the "
            "baseline (word rate from the stimulus timing and the dataset's stimulus-level nuisance regressors; each "
            "subject's head motion regressed out of the responses), the joint model (baseline + the layer's features, "
            "one banded ridge), and the <b>gain</b> = joint r - baseline r, the headline for time series. Raw r "
            "(the features alone, ridge-grouped) stays for reference. Best layer by joint score; 95% CIs resample "
            "blocks of contiguous scans. The ceiling (leave-one-subject-out ISC, Spearman-Brown corrected; "
            "docs/timeseries.md) normalises the raw and joint r in the full table. Untrained controls follow their "
            "trained models.</p>", _table_html(table)]


def _reading_section(tidy: pd.DataFrame, untrained) -> list[str]:
    table, warnings = reading_behaviour_table(tidy, untrained)
    if table.empty:
        return []
    parts = ["<h2>Reading behaviour: the paper's r and delta log-likelihood</h2>",
             "<p>The paper's protocol correlates surprisal with reading times, which rewards a surprisal that only tracks "
             "word length or frequency. The reading-regression protocol reports the held-out log-likelihood that "
             "surprisal (of the word and the previous ones: spillover) adds to a baseline of length, log frequency and "
             "position (mixed model per reader where the data have readers, OLS on means otherwise; 95% CI from "
             "resampling whole readers or folds); ~0 means nothing beyond length and frequency.</p>"]
    parts += [f"<p style='color:#b00'><b>Warning:</b> {html.escape(w)}</p>" for w in warnings]
    return parts + [_table_html(table)]


def caveats(tidy: pd.DataFrame, headline: pd.DataFrame, effect: pd.DataFrame, results_dir=None, logs_dir=None) -> list[str]:
    """What the run itself says to read with care (HTML-escaped list items): headline CIs that include zero,
    near-zero layers, normalised scores above 1, the leaky brainscore-2023 protocol on time-series datasets, a
    reading-time lag other than 0, too few pairs for a small p-value, and the distinct warnings of the logs."""
    items = []
    if len(headline) and {"ci_low", "ci_high"} <= set(headline.columns):
        spans = headline[(headline["ci_low"] <= 0) & (headline["ci_high"] >= 0)]
        for row in spans.itertuples():
            items.append(f"{row.model} on {row.dataset}: headline score {row.score:.3f} has a 95% CI that includes 0 "
                         f"({row.ci_low:.3f} to {row.ci_high:.3f}): not distinguishable from chance.")
    layers = tidy[(tidy["kind"] == "brain") & (tidy["metric"] == "linear") & (tidy["selection"] == "layer")
                  & (tidy["raw_r"].abs() < NEAR_ZERO_R)]
    if len(layers):
        described = "; ".join(f"{model} {layer} on {dataset} ({protocol})" for model, layer, dataset, protocol
                              in layers[["model", "layer", "dataset", "protocol"]].itertuples(index=False))
        items.append(f"{len(layers)} layer encoding scores are near chance (|r| &lt; {NEAR_ZERO_R}): {html.escape(described)}.")
    over = tidy[pd.to_numeric(tidy["normalised"], errors="coerce") > 1]
    if len(over):
        items.append(f"{len(over)} scores exceed their noise ceiling (normalised &gt; 1, up to {over['normalised'].max():.2f}): "
                     "the ceiling underestimates the explainable variance or the protocol leaks.")
    if results_dir is not None:
        for meta_path in sorted(Path(results_dir).glob("datasets/*/meta.json")):
            meta = json.loads(meta_path.read_text())
            name = meta.get("name", meta_path.parent.name)
            if meta.get("kind") == "timeseries" and ((tidy["dataset"] == name) & (tidy["protocol"] == "brainscore-2023")).any():
                items.append(f"{html.escape(name)} is a time series: its brainscore-2023 scores use random splits over "
                             "scans, so autocorrelated neighbours of each held-out scan are in the training set (leaky; "
                             "untrained models score high too). Use ridge-grouped (contiguous blocks with a gap).")
        for path in sorted(Path(results_dir).glob("behaviour/*/*.json")):
            details = json.loads(path.read_text())
            for measure, entry in (details.get("measures") or {}).items():
                if isinstance(entry, dict) and str(entry.get("best_lag", "0")) != "0":
                    items.append(f"{html.escape(path.parent.name)} on {html.escape(path.stem)} ({html.escape(measure)}): "
                                 f"surprisal predicts reading times best at lag {html.escape(str(entry['best_lag']))}, "
                                 "not 0: check the word alignment of the reading times.")
    items += [html.escape(warning) for warning in reading_behaviour_table(tidy)[1]]  # the reading-regression lag check
    small = effect[(effect["n_pairs"] > 0) & (effect["n_pairs"] < 6)]
    if len(small):
        n = int(small["n_pairs"].min())
        items.append(f"Only {n} pair{'s' if n != 1 else ''} on some measures: the sign-flip p-value cannot go below "
                     f"{2 / 2 ** n:.2g} and bootstrap CIs over pairs are {'not estimable' if n < 2 else 'coarse'}.")
    for message, logs in _warnings_in_logs(logs_dir).items():
        where = ", ".join(sorted(set(logs))[:3]) + (f" and {len(set(logs)) - 3} more" if len(set(logs)) > 3 else "")
        items.append(f"Warning (in {html.escape(where)}): {html.escape(message)}")
    return items


def provenance(config_files=None) -> dict:
    """Where the page came from: the config file(s), the commit of the code (with '+ local changes' when the
    working tree differs) and the software versions."""
    root = Path(__file__).resolve().parents[1]
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


def _figure_html(path: Path, caption: str, dpi: int = 200) -> str:
    """The PNG embedded, shown at 1.5 times its physical size (``dpi`` as saved; 144 CSS px per inch) so its 8 pt
    text reads at the page's own text size and every figure at the same scale, never wider than the page."""
    raw = path.read_bytes()
    width = int.from_bytes(raw[16:20], "big") if raw[:8] == b"\x89PNG\r\n\x1a\n" else 0
    size = f" style='width:{round(width * 144 / dpi)}px'" if width else ""
    data = base64.b64encode(raw).decode()
    return (f"<figure id='fig-{html.escape(path.stem)}'><img{size} alt='{html.escape(path.stem)}' "
            f"src='data:image/png;base64,{data}'><figcaption><b>{html.escape(path.stem)}.</b> {html.escape(caption)}"
            "</figcaption></figure>")


def _effect_table(effect: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for row in effect.itertuples():
        rows.append({"group": row.group, "measure": row.measure, "kind": row.kind, "pairs improved": f"{row.n_improved}/{row.n_pairs}",
                     "base mean r": row.mean_base, "derived mean r": row.mean_derived,
                     "change (r)": _signed(row.mean_absolute_change),
                     "95% CI": "" if not np.isfinite(row.absolute_ci_low) else f"{row.absolute_ci_low:+.3f} to {row.absolute_ci_high:+.3f}",
                     "relative change": "n/a" if not np.isfinite(row.mean_relative_change) else f"{100 * row.mean_relative_change:+.1f}%",
                     "relative 95% CI": "" if not np.isfinite(row.ci_low) else f"{100 * row.ci_low:+.1f}% to {100 * row.ci_high:+.1f}%",
                     "p (sign-flip)": "" if not np.isfinite(row.p_perm) else f"{row.p_perm:.3g}"})
    return pd.DataFrame(rows)


def write_summary_html(tidy_csv, headline_csv, models_csv, effect_csv, correlations_csv, figures_dir, out_path, label: str,
                       config_files=None, logs_dir=None, results_dir=None) -> None:
    """A self-contained page (figures embedded, no network) that a reader understands in two minutes without the
    workflow: findings first, then the headline figure, the pair effects, the caveats the run detected, the other
    figures, the models, and the full tidy table last (collapsed, sortable and filterable).

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
    captions_path = figures_dir / "captions.json"
    captions = json.loads(captions_path.read_text()) if captions_path.exists() else {}
    figures = sorted(figures_dir.glob("*.png"), key=lambda p: (FIGURE_ORDER.index(p.stem) if p.stem in FIGURE_ORDER else 99, p.stem))
    source = provenance(config_files)
    untrained = _untrained(models)
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
        *[f"<li>{html.escape(sentence)}</li>" for sentence in findings(effect, models, label)],
        "</ul>",
    ]
    headline_figure = [f for f in figures if f.stem == "headline"]
    if headline_figure:
        parts.append(_figure_html(headline_figure[0], captions.get("headline", "")))
    parts += [
        "</section><section id='pair-effects'>",
        f"<h2>Pair effects ({html.escape(label)})</h2>",
        "<p>Change from each pair's base to its derived model, averaged over pairs: absolute change in Pearson r with a "
        "bootstrap 95% CI over pairs, relative change (derived - base) / |base|, and a two-sided sign-flip permutation "
        "p-value of the relative change.</p>",
        _table_html(_effect_table(effect)),
        "</section><section id='timeseries'>",
        *_timeseries_section(tidy, models),
        "</section><section id='reading'>",
        *_reading_section(tidy, untrained),
        "</section><section id='caveats'><h2>Caveats this run detected</h2>",
    ]
    found = caveats(tidy, headline, effect, results_dir, logs_dir)
    parts.append("<ul class='caveats'>" + "".join(f"<li>{item}</li>" for item in found) + "</ul>" if found
                 else "<p>None: no near-chance scores, leaky protocols, lag shifts or warnings were found.</p>")
    from brainalign.plots import ROLE_COLOURS, ROLE_LABELS  # the figures' own encoding, so the key cannot drift

    key = "".join(f"<span class='swatch' style='background:{ROLE_COLOURS[role]}'></span>{html.escape(ROLE_LABELS[role])}"
                  for role in ROLE_COLOURS)
    parts += ["</section><section id='figures'><h2>Figures</h2>",
              f"<p>Colours, the same in every figure: {key} (untrained: hollow markers, dashed lines).</p>"]
    parts += [_figure_html(figure, captions.get(figure.stem, "")) for figure in figures if figure.stem != "headline"]
    parts += [
        "</section><section id='models'><h2>Models</h2>",
        _table_html(models[[c for c in ["model", "family", "kind", "trained", "instruction_tuned", "vanilla_base_model", "n_params",
                                        "source", "model_id", "quantization", "arithmetic"] if c in models.columns]]),
        "<h2>Correlations with model properties</h2>",
        _table_html(correlations),
        "</section><section id='all-scores'><h2>All scores</h2>",
        f"<details><summary>The full tidy table ({len(tidy)} rows): click to open; click a header to sort</summary>",
        "<p>Brain scores are raw Pearson r of cross-validated encoding models (best layer, a nested estimate whose layer "
        "is chosen on training folds only, and every layer); 'normalised' divides by the dataset's noise ceiling where "
        "per-subject data allow one. Behaviour scores are Pearson r between per-word surprisal and reading times.</p>",
        f"<input id='filter' type='search' placeholder='filter rows (e.g. a model or dataset)' aria-label='filter rows'> "
        f"<span id='shown'>{len(tidy)}</span> rows shown",
        _table_html(tidy.fillna({c: "" for c in tidy.columns if tidy[c].dtype == object}), table_id="tidy"),
        f"</details></section><script>{TABLE_SCRIPT}</script></body></html>",
    ]
    with atomic_path(out_path, suffix=".html") as tmp:
        tmp.write_text("\n".join(parts))
