"""How far two runs' numbers are apart: the headline table row by row, every per-layer score, every surprisal.

Written for `extraction.matmul_dtype` (bfloat16 products vs float32), usable for any two runs of the same config
(a code change that should not move the numbers, another machine). Writes a markdown report.

Usage:
    .venv/bin/python benchmarks/compare_runs.py REFERENCE_RESULTS OTHER_RESULTS [--labels float32 bfloat16]
        [--out benchmarks/results/matmul_dtype.md] [--title "..."]
Each RESULTS is a run's `results/` folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

KEY = ["model", "dataset", "kind", "metric", "protocol"]


def headline(results: Path) -> pd.DataFrame:
    return pd.read_csv(results / "analysis" / "headline_scores.csv")


def per_layer(results: Path) -> pd.DataFrame:
    """Every score row of every model and brain dataset (all protocols, layers and selections)."""
    frames = [pd.read_csv(path) for path in sorted((results / "scores").glob("*/*.csv"))]
    return pd.concat(frames, ignore_index=True)


def surprisals(results: Path) -> pd.DataFrame:
    frames = []
    for path in sorted((results / "surprisal").glob("*/*.tsv")):
        table = pd.read_csv(path, sep="\t", usecols=["stimulus_id", "surprisal_bits"])
        frames.append(table.assign(model=path.parent.name, dataset=path.stem))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["model", "dataset", "stimulus_id", "surprisal_bits"])


def _fmt(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.4f}"


def headline_section(a: pd.DataFrame, b: pd.DataFrame, labels) -> list[str]:
    both = a.merge(b, on=KEY, suffixes=("_a", "_b"), how="outer", indicator=True)
    lines = [f"| model | dataset | metric | {labels[0]} | {labels[1]} | difference | {labels[0]} 95% CI | same layer |",
             "|---|---|---|---|---|---|---|---|"]
    for _, row in both.sort_values(["kind", "dataset", "model"]).iterrows():
        difference = row["score_b"] - row["score_a"]
        same_layer = ""
        if row["kind"] == "brain":
            same_layer = "yes" if row["layer_a"] == row["layer_b"] else f"{row['layer_a']} -> {row['layer_b']}"
        lines.append(f"| {row['model']} | {row['dataset']} | {row['metric']} | {_fmt(row['score_a'])} | {_fmt(row['score_b'])} | "
                     f"{difference:+.4f} | [{_fmt(row['ci_low_a'])}, {_fmt(row['ci_high_a'])}] | {same_layer} |")
    differences = (both["score_b"] - both["score_a"]).abs()
    widths = (both["ci_high_a"] - both["ci_low_a"]).abs()
    summary = [f"Headline rows: {len(both)}; max |difference| {differences.max():.4f}, median {differences.median():.4f}; "
               f"largest |difference| / the reference's CI width: {(differences / widths).max():.3f}. Best layer the same in "
               f"{int((both.loc[both['kind'] == 'brain', 'layer_a'] == both.loc[both['kind'] == 'brain', 'layer_b']).sum())} of "
               f"{int((both['kind'] == 'brain').sum())} brain rows.", ""]
    return summary + lines


def layer_section(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    keys = ["model", "dataset", "metric", "protocol", "selection", "layer"]
    both = a.merge(b, on=keys, suffixes=("_a", "_b"))
    both["difference"] = (both["raw_r_b"] - both["raw_r_a"]).abs()
    table = both.groupby(["dataset", "protocol"]).agg(rows=("difference", "size"), max_abs=("difference", "max"),
                                                     median_abs=("difference", "median")).reset_index()
    lines = ["| dataset | protocol | score rows | max abs difference of raw r | median |", "|---|---|---|---|---|"]
    lines += [f"| {r.dataset} | {r.protocol} | {r.rows} | {r.max_abs:.4f} | {r.median_abs:.5f} |" for r in table.itertuples()]
    return lines


def surprisal_section(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    both = a.merge(b, on=["model", "dataset", "stimulus_id"], suffixes=("_a", "_b"))
    both = both[np.isfinite(both["surprisal_bits_a"]) & np.isfinite(both["surprisal_bits_b"])]
    lines = ["| model | dataset | words | max abs difference (bits) | median | r between the two |", "|---|---|---|---|---|---|"]
    for (model, dataset), rows in both.groupby(["model", "dataset"]):
        difference = (rows["surprisal_bits_b"] - rows["surprisal_bits_a"]).abs()
        r = np.corrcoef(rows["surprisal_bits_a"], rows["surprisal_bits_b"])[0, 1]
        lines.append(f"| {model} | {dataset} | {len(rows)} | {difference.max():.4f} | {difference.median():.5f} | {r:.7f} |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("other", type=Path)
    parser.add_argument("--labels", nargs=2, default=["reference", "other"])
    parser.add_argument("--title", default="Two runs compared")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    lines = [f"## {args.title}", "", f"`{args.reference}` ({args.labels[0]}) vs `{args.other}` ({args.labels[1]}).", "",
             "### Headline scores", ""]
    lines += headline_section(headline(args.reference), headline(args.other), args.labels)
    lines += ["", "### Every per-layer score", ""] + layer_section(per_layer(args.reference), per_layer(args.other))
    lines += ["", "### Per-word surprisal", ""] + surprisal_section(surprisals(args.reference), surprisals(args.other))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
