"""Coverage of the reading regression's 95% intervals on planted crossed data with a known truth
(tests/support/crossed.py; docs/statistics.md, "Reading times"): the fraction of replicates whose interval holds the planted
mean or slope, for the intervals ``reading_regression`` reports (a crossed readers x sentences bootstrap of a pooled
mean, two-way cluster-robust Wald intervals of a coefficient) beside the ones it reported before (readers alone,
the mixed model's own errors). Writes benchmarks/results/coverage_reading.md.

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/coverage_reading.py            # ~10 min on one core
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/coverage_reading.py --quick    # ~2 min
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.crossed import BALANCED, FRANK_LIKE, STORIES_LIKE, mean_coverage, slope_coverage, smaller  # noqa: E402

MIXED_DESIGN = smaller(BALANCED, readers=24, sentences=60)  # a MixedLM fit per replicate: a smaller design
DESIGNS = {"Frank-like": FRANK_LIKE, "balanced": BALANCED, "stories-like": STORIES_LIKE, "balanced, small (MixedLM)": MIXED_DESIGN}


def band(coverage: float, replicates: int) -> str:
    """The binomial 95% range of a coverage estimate from ``replicates`` replicates when the truth is 95%."""
    half = 1.96 * np.sqrt(0.95 * 0.05 / replicates)
    return f"{0.95 - half:.3f}-{0.95 + half:.3f}"


def describe(design) -> str:
    stories = f"{design.stories} stories of " if design.stories > 1 else ""
    readers = f"{design.readers} readers x " if design.readers > 1 else "1 pseudo-reader (means) x "
    return (f"{readers}{stories}{design.sentences} sentences of {design.words[0]}-{design.words[1]} words, {design.missing:.0%} "
            f"cells missing; SDs reader {design.sd_reader}, story {design.sd_story}, sentence {design.sd_sentence}, word "
            f"{design.sd_word}, noise {design.sd_noise}, reader slope {design.sd_reader_slope}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer replicates (the test's sizes)")
    parser.add_argument("--replicates", type=int, default=None, help="replicates of the mean and OLS-slope designs")
    parser.add_argument("--mixed-replicates", type=int, default=None, help="replicates of the MixedLM slope design")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples per bootstrap interval")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "coverage_reading.md")
    args = parser.parse_args(argv)
    replicates = args.replicates or (200 if args.quick else 1000)
    mixed_replicates = args.mixed_replicates or (50 if args.quick else 200)
    started, load = time.time(), os.getloadavg()[0]
    def means(design, n):
        return mean_coverage(design, n, args.bootstrap, args.seed)

    def ols(design, n):
        return slope_coverage(design, n, mixed=False, seed=args.seed)

    def mixed(design, n):
        return slope_coverage(design, n, mixed=True, seed=args.seed)

    runs = [("pooled mean (delta log-likelihood, lag check)", "Frank-like", replicates, means),
            ("pooled mean (delta log-likelihood, lag check)", "balanced", replicates, means),
            ("pooled mean (delta log-likelihood, lag check)", "stories-like", replicates, means),
            ("slope, OLS fit", "Frank-like", replicates, ols),
            ("slope, OLS fit", "balanced", replicates, ols),
            ("slope, OLS fit", "stories-like", replicates, ols),
            ("slope, MixedLM fit (random intercept per reader)", "balanced, small (MixedLM)", mixed_replicates, mixed)]
    rows = []
    for name, label, n, run in runs:
        t0 = time.time()
        result = run(DESIGNS[label], n)
        seconds = time.time() - t0
        for interval, entry in result.items():
            if not np.isfinite(entry["median_width"]):
                continue  # readers-clustered errors of one pseudo-reader: undefined
            rows.append(f"| {name} | {label} | {interval} | {entry['coverage']:.3f} | {band(entry['coverage'], n)} | {n} | "
                        f"{entry['median_width']:.3f} | {seconds:.0f} |")
        print(name, label, result, f"{seconds:.0f}s", flush=True)
    command = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/coverage_reading.py" + (" --quick" if args.quick else "")
    if args.replicates or args.mixed_replicates:
        command += f" --replicates {replicates} --mixed-replicates {mixed_replicates}"
    lines = [
        "# Coverage of the reading regression's intervals (planted crossed data)", "",
        f"Reproduce: `{command}` ({datetime.date.today().isoformat()}, {platform.python_version()}, "
        f"{args.bootstrap} bootstrap resamples per interval, seed {args.seed}; load average {load:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end; {time.time() - started:.0f} s).", "",
        "Planted data (tests/support/crossed.py): value = mean + (slope + reader slope) x + reader + story + sentence + "
        "word + noise, every reader reading every sentence; truth: mean 0, slope 1. Designs:", "",
        *[f"* {label}: {describe(design)}" for label, design in DESIGNS.items()], "",
        "Intervals: `crossed` = the pigeonhole bootstrap of readers x sentences (sentences inside stories where there "
        "are stories) that `reading_regression` now reports for the delta log-likelihood and the lag check; `readers only` "
        "= whole readers resampled (what it reported before on per-reader data); `sentences only` = sentences "
        "resampled, stories ignored; `two-way cluster-robust` = Wald with errors clustered by reader and by group "
        "(sentence; story where there are stories), t(fewest clusters - 1), what it now reports for the coefficients; "
        "`readers-clustered` = one-way by reader; `model-based` = the fit's own errors (MixedLM with a random intercept "
        "per reader: what it reported before; OLS: independent observations). `band` = the range a 95% interval's "
        "coverage falls in 95% of the time with this many replicates.", "",
        "| statistic | design | interval | coverage | band at 95% | replicates | median width | seconds |",
        "|---|---|---|---|---|---|---|---|", *rows, "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
