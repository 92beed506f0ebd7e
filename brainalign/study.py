"""The study level: gather every per-model score file into one tidy table and write the summary page.

The tidy table (columns, reading and checks: ``brainalign.tables``) is the single source for the analysis, the figures
and the report, and it is the documented format (docs/DESIGN.md) that lets users analyse published numbers with
the same code.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from brainalign.config import models_table
from brainalign.io import atomic_path, write_table
from brainalign.reading_regression import lag_check_fires
from brainalign.tables import headline_scores, read_tidy


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


def _table_html(frame: pd.DataFrame, float_format: str = "{:.3f}") -> str:
    def cell(value):
        if isinstance(value, float):
            return "" if pd.isna(value) else float_format.format(value)
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


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


def write_summary_html(tidy_csv, headline_csv, models_csv, effect_csv, correlations_csv, figures_dir, out_path, label: str) -> None:
    """A self-contained page (figures embedded) that a reader understands without the workflow."""
    tidy = pd.read_csv(tidy_csv)
    models = pd.read_csv(models_csv).fillna("")
    effect = pd.read_csv(effect_csv)
    correlations = pd.read_csv(correlations_csv)
    best = tidy[(tidy["selection"].isin(["best", "nested"])) | (tidy["kind"] == "behaviour")]
    best = best[["model", "dataset", "kind", "metric", "protocol", "selection", "layer", "raw_r", "ceiling", "normalised",
                 "ci_low", "ci_high", "n"]]
    untrained = set(models.loc[models["trained"].astype(str).isin(["0", "False", "false"]), "model"])
    figures = sorted(Path(figures_dir).glob("*.png"))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>brainalign summary</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}</style></head><body>",
        "<h1>brainalign: language models vs brain and reading behaviour</h1>",
        f"<p><b>Pairs compare:</b> {html.escape(label)}. Untrained models (random weights, fixed seed) are controls: "
        f"{html.escape(', '.join(sorted(untrained)) or 'none')}.</p>",
        "<p>Brain scores are raw Pearson r of cross-validated encoding models (best layer, and a nested estimate "
        "whose layer is chosen on training folds only); 'normalised' divides by the dataset's noise ceiling where "
        "per-subject data allow one. Behaviour scores are Pearson r between per-word surprisal and reading times, and the "
        "reading-regression protocol's delta log-likelihood (below).</p>",
        "<h2>Models</h2>",
        _table_html(models[[c for c in ["model", "family", "kind", "trained", "instruction_tuned", "vanilla_base_model", "n_params",
                                        "source", "model_id", "quantization"] if c in models.columns]]),
        "<h2>Headline scores</h2>",
        _table_html(best),
        *_reading_section(tidy, untrained),
        f"<h2>Pair effect ({html.escape(label)})</h2>",
        _table_html(effect),
        "<h2>Correlations with model properties</h2>",
        _table_html(correlations),
        "<h2>Figures</h2>",
    ]
    for figure in figures:
        data = base64.b64encode(figure.read_bytes()).decode()
        parts.append(f"<h3>{html.escape(figure.stem)}</h3><img src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    with atomic_path(out_path, suffix=".html") as tmp:
        tmp.write_text("\n".join(parts))
