"""Benchmark: our per-word surprisal over Natural Stories vs plain forward passes over the same tokens.

Every story of Natural Stories (the real shipped data, prepared through brainalign.datasets) is read by a causal
model, and this times

  * ours: ``word_surprisals`` as the workflow calls it (``behaviour`` options from the schema's defaults unless
    ``--max-context-tokens`` / ``--min-context-tokens`` say otherwise): tokenisation, word alignment, the
    overlapping windows, logits only where they are read, log-softmax, per-word sums;
  * bare story: one ``model(input_ids=prefix + story).logits`` per story, every position's logits (the issue's
    reference: "one plain forward pass per story over the same tokens");
  * bare windows: one plain ``model(input_ids=window).logits`` per window of ours (the same windows, no
    ``logits_to_keep``): what the windows cost before anything of ours is added.

Ours over bare story is the cost of the window protocol plus ours; ours over bare windows is ours alone. Where a
story fits one window (``--max-context-tokens`` above its length) ours reads it in one pass, and its per-token
surprisals must equal the bare story's (checked; the largest difference is reported).

Usage (numbers in benchmarks/results/surprisal.md):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_surprisal.py --model-name smollm2-135m-instruct
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_extraction import machine_info, model_spec  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-name", default="smollm2-135m-instruct", help="a config/config.yaml decoder entry")
    parser.add_argument("--config", default=str(REPO_ROOT / "config" / "config.yaml"))
    parser.add_argument("--n-stories", type=int, default=10)
    parser.add_argument("--max-context-tokens", type=int, action="append", default=None,
                        help="ours with this window (repeatable; default: the schema's default)")
    parser.add_argument("--min-context-tokens", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats per method (the median is reported)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "surprisal.md"))
    return parser.parse_args(argv)


def stories(n, work):
    """The first n Natural Stories stories, as lists of words."""
    from brainalign.datasets import fetch_dataset, load_prepared, prepare_dataset

    spec = {"name": "naturalstories", "adapter": "naturalstories", "local_dir": str(REPO_ROOT / "resources" / "data" / "naturalstories")}
    fetch_dataset(spec, work / "raw")
    prepare_dataset(spec, work / "raw", work / "ds")
    stimuli = load_prepared(work / "ds").stimuli
    groups = list(dict.fromkeys(stimuli["group"]))[:n]
    return [stimuli.loc[stimuli["group"] == g, "text"].astype(str).tolist() for g in groups]


def timed(function, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    import torch

    from brainalign.behaviour.surprisal import word_surprisals
    from brainalign.extraction.alignment import plan_windows, prefix_ids, words_to_text
    from brainalign.models.session import load_model, prepare_model
    from brainalign.options import with_defaults

    if args.threads:
        torch.set_num_threads(args.threads)
    defaults = with_defaults("behaviour", {})
    spec = model_spec(args.config, args.model_name)
    folder = REPO_ROOT / "resources" / "models" / args.model_name
    if not (folder / "config.json").exists():
        prepare_model(spec, folder)
    loaded = load_model(spec, folder, device="cpu")
    model, tokenizer = loaded.model, loaded.tokenizer
    prefix = prefix_ids(tokenizer, spec.get("prepend_text"))
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        texts = stories(args.n_stories, Path(work))
    story_ids = [tokenizer(words_to_text(words)[0], add_special_tokens=False)["input_ids"] for words in texts]
    n_tokens = sum(len(ids) for ids in story_ids)

    def bare_story():
        out = []
        with torch.inference_mode():
            for ids in story_ids:
                logits = model(input_ids=torch.tensor([prefix + ids])).logits[0].float()
                logprobs = torch.log_softmax(logits, -1)
                out.append(-logprobs[len(prefix) - 1:-1].gather(1, torch.tensor(ids)[:, None])[:, 0].numpy())
        return out

    def bare_windows(max_tokens, min_tokens):
        budget = max_tokens - len(prefix)
        with torch.inference_mode():
            for ids in story_ids:
                for begin, end, _ in plan_windows(len(ids), budget, min(min_tokens, budget // 2)):
                    model(input_ids=torch.tensor([prefix + ids[begin:end]]))

    def ours(max_tokens, min_tokens):
        options = {"max_context_tokens": max_tokens, "min_context_tokens": min_tokens, "context_window": "overlapping"}
        return [word_surprisals(model, tokenizer, words, spec.get("prepend_text"), options, device="cpu")[2] for words in texts]

    min_tokens = args.min_context_tokens or int(defaults["min_context_tokens"])
    windows = args.max_context_tokens or [int(defaults["max_context_tokens"])]
    bare_story_s, reference = timed(bare_story, args.repeats)
    rows = []
    for max_tokens in windows:
        bare_s, _ = timed(lambda: bare_windows(max_tokens, min_tokens), args.repeats)
        ours_s, nats = timed(lambda: ours(max_tokens, min_tokens), args.repeats)
        one_pass = all(len(prefix) + len(ids) <= max_tokens for ids in story_ids)
        difference = (max(float(np.nanmax(np.abs(a[1:] - b[1:]))) for a, b in zip(nats, reference)) if one_pass else None)
        rows.append({"max": max_tokens, "min": min_tokens, "ours": ours_s, "bare_windows": bare_s, "one_pass": one_pass,
                     "difference": difference})
    load_end = os.getloadavg()[0]
    lines = [f"# Surprisal: ours vs plain forward passes ({args.model_name}, Natural Stories)", "",
             f"{datetime.date.today().isoformat()}; `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} "
             f".venv/bin/python benchmarks/bench_surprisal.py --model-name {args.model_name}"
             + (f" --n-stories {args.n_stories}" if args.n_stories != 10 else "")
             + "".join(f" --max-context-tokens {w}" for w in (args.max_context_tokens or [])) + "`", "",
             f"{len(story_ids)} stories, {n_tokens:,} tokens; load average {load_start:.1f} at start, {load_end:.1f} at end; "
             f"median of {args.repeats} run(s). Bare story (one forward pass per story, every position's logits): "
             f"**{bare_story_s:.1f} s**.", "",
             "| window (max / min context tokens) | ours (s) | bare, same windows (s) | ours / bare windows | ours / bare story | "
             "one pass per story? | max abs difference from bare story (nats) |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        difference = f"{row['difference']:.1e}" if row["difference"] is not None else "n/a (windows overlap)"
        lines.append(f"| {row['max']} / {row['min']} | {row['ours']:.1f} | {row['bare_windows']:.1f} | "
                     f"{row['ours'] / row['bare_windows']:.2f} | {row['ours'] / bare_story_s:.2f} | "
                     f"{'yes' if row['one_pass'] else 'no'} | {difference} |")
    lines += ["", "Machine:", ""] + [f"- {k}: {v}" for k, v in machine_info("cpu", torch.get_num_threads()).items()]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
