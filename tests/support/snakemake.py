"""Reading Snakemake's own output in tests."""

from __future__ import annotations


def planned_jobs(output: str) -> dict[str, int]:
    """``{rule: count}`` from the "Job stats" table of a dry run."""
    table = output[output.index("Job stats:"):]
    counts = {}
    for line in table.splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts
