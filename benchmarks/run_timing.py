"""Wall time and job-seconds per rule of one workflow run, from its `results/benchmarks/**.tsv` (Snakemake's
`benchmark:` files) and the `time make run` line of its log; writes a markdown table (issue: the default run in
under 10 minutes).

Usage:
    .venv/bin/python benchmarks/run_timing.py RUN_DIR [--log RUN_LOG] [--label "after"] [--out benchmarks/results/default_run.md]
RUN_DIR is the folder the run wrote results/ into (a fresh clone, for numbers a new user sees).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd


def job_seconds(run_dir: Path) -> pd.DataFrame:
    """One row per rule: jobs, job-seconds (sum of each job's wall seconds), the slowest job."""
    rows = []
    root = run_dir / "results" / "benchmarks"
    for path in sorted(root.rglob("*.tsv")):
        job = path.relative_to(root)
        rule = job.parts[0].removesuffix(".tsv")  # one-job rules write <rule>.tsv
        seconds = float(pd.read_csv(path, sep="\t")["s"].iloc[-1])
        rows.append({"rule": rule, "job": str(job), "s": seconds})
    jobs = pd.DataFrame(rows, columns=["rule", "job", "s"])
    table = jobs.groupby("rule").agg(jobs=("s", "size"), job_seconds=("s", "sum"), slowest_s=("s", "max"))
    return table.sort_values("job_seconds", ascending=False)


def wall_time(log: Path | None) -> str:
    """The `real` line that bash's `time` printed, if the log has one."""
    if log is None or not log.is_file():
        return "n/a"
    found = re.findall(r"^real\s+(\S+)$", log.read_text(errors="replace"), flags=re.M)
    return found[-1] if found else "n/a"


def snakemake_elapsed(run_dir: Path) -> str:
    """Snakemake's own "Elapsed time" of the run (its last log that has one; the --report call has none)."""
    for log in sorted((run_dir / ".snakemake" / "log").glob("*.snakemake.log"), reverse=True):
        found = re.findall(r"^Elapsed time: (\S+)$", log.read_text(errors="replace"), flags=re.M)
        if found:
            return found[-1]
    return "n/a"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument("--label", default="run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    table = job_seconds(args.run_dir)
    totals = f"{int(table['jobs'].sum())} jobs, {table['job_seconds'].sum():.0f} job-seconds"
    lines = [f"### {args.label}", "", f"wall time (`time make run`, install included): {wall_time(args.log)}; Snakemake's "
             f"elapsed time: {snakemake_elapsed(args.run_dir)}; {totals}", "",
             "| rule | jobs | job-seconds | slowest job (s) |", "|---|---|---|---|"]
    lines += [f"| {rule} | {int(row.jobs)} | {row.job_seconds:.0f} | {row.slowest_s:.0f} |" for rule, row in table.iterrows()]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()
