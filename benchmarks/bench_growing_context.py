"""Brain-Score's growing context (the Wikitext read-out): this project's GrowingContext against re-joining and
re-tokenising the whole text at every part, as Brain-Score's HuggingfaceSubject does, on Wikitext-like parts (each
line's word prefixes, lines of 60 words of Natural Stories), with a real tokenizer. What the read-out takes from each
step (the token count and the tokens past the previous step's count) is compared at every part.

Usage:
    .venv/bin/python benchmarks/bench_growing_context.py TOKENIZER_FOLDER [--words 600 1500 3000]
        [--out benchmarks/results/growing_context.md]
TOKENIZER_FOLDER: a transformers folder, e.g. a default run's resources/models/smollm2-135m-instruct.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from brainalign.behaviour.brainscore_readout import GrowingContext, prepare_context  # noqa: E402
from brainalign.datasets.wikitext import build_contexts  # noqa: E402


def parts_of(n_words: int, line_words: int = 60) -> list[str]:
    words = pd.read_csv(REPO / "resources" / "data" / "naturalstories" / "all_stories.tok", sep="\t")["word"].astype(str).tolist()
    words = (words * (n_words // len(words) + 1))[:n_words]
    rows = [" " + " ".join(words[i:i + line_words]) + " \n" for i in range(0, n_words, line_words)]
    return build_contexts(rows)[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tokenizer")
    parser.add_argument("--words", type=int, nargs="+", default=[600, 1500, 3000])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "growing_context.md"))
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    rows = []
    for n_words in args.words:
        parts = parts_of(n_words)
        start = time.perf_counter()
        context, ours = GrowingContext(tokenizer), []
        for part in parts:  # what the read-out keeps of each step: the length and the tokens past the previous one's
            ids = context.add(part)
            ours.append((len(ids), ids[ours[-1][0] if ours else 0:]))
        growing = time.perf_counter() - start
        start = time.perf_counter()
        whole = []
        for i in range(len(parts)):
            ids = tokenizer(prepare_context(parts[: i + 1]))["input_ids"]
            whole.append((len(ids), ids[whole[-1][0] if whole else 0:]))
        retokenised = time.perf_counter() - start
        rows.append({"words in lines": n_words, "parts": len(parts), "text characters": len(context.text),
                     "tokens": len(context.ids), "GrowingContext (s)": round(growing, 2),
                     "re-tokenised whole (s)": round(retokenised, 2), "ratio": round(retokenised / growing, 1),
                     "whole-text tokenisations": context.full_tokenisations, "same tokens fed at every part": ours == whole})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    lines = ["# Brain-Score's growing context: GrowingContext vs re-tokenising the whole text at every part", "",
             f"`.venv/bin/python benchmarks/bench_growing_context.py <{Path(args.tokenizer).name}> --words "
             f"{' '.join(map(str, args.words))}`, one process, this machine (2 vCPUs).", "",
             "| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v) for v in row) + " |"
              for row in table.itertuples(index=False)]
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
