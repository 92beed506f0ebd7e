"""Start-up cost of each rule's job: the seconds a fresh Python spends importing what the rule's script imports
(``brainalign.runner`` and the step's module), and the heaviest third-party packages among them.

Every job of a Snakemake run starts a Python process, so an import a rule does not need is paid once per job. Run:

    .venv/bin/python benchmarks/import_times.py --out benchmarks/results/import_times.md

Each measurement is a fresh interpreter (``python -X importtime -c "import ..."``), best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: rule -> the modules its script imports (scripts/<rule>.py: brainalign.runner, then the step's own module)
RULE_IMPORTS = {
    "fetch_dataset": ["brainalign.datasets"],
    "prepare_dataset": ["brainalign.datasets"],
    "prepare_model": ["brainalign.models.session"],
    "run_model": ["brainalign.extraction.model_job"],
    "compute_ceiling": ["brainalign.encoding.ceilings"],
    "fit_encoding": ["brainalign.encoding.layer_fits"],
    "score": ["brainalign.encoding.layer_scores", "brainalign.extraction.shards"],
    "behaviour": ["brainalign.behaviour.scoring"],
    "collect_scores": ["brainalign.study.collect"],
    "analyse": ["brainalign.study.analysis"],
    "figures": ["brainalign.study.figures", "matplotlib.pyplot"],  # the step imports matplotlib when it first draws
    "summary": ["brainalign.study.summary_page"],
}
THIRD_PARTY = ("torch", "transformers", "pandas", "scipy", "sklearn", "matplotlib", "h5py", "statsmodels", "yaml", "jsonschema")


def import_profile(modules: list[str]) -> tuple[float, dict[str, float]]:
    """(total seconds, cumulative seconds of each top-level third-party package) of one fresh interpreter."""
    code = "; ".join(f"import {m}" for m in ["brainalign.runner", *modules])
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    total, packages = 0.0, {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if not match:
            continue
        cumulative, depth, name = int(match.group(1)) / 1e6, len(match.group(2)), match.group(3)
        if depth == 1:
            total += cumulative
            if name in THIRD_PARTY:
                packages[name] = packages.get(name, 0.0) + cumulative
        elif name in THIRD_PARTY and name not in packages:
            packages[name] = cumulative
    return total, packages


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    lines = [f"# Start-up imports per rule ({date.today()}, `benchmarks/import_times.py`, best of {args.repeats})", "",
             "| rule | import seconds | heaviest third-party packages (cumulative s) |", "|---|---|---|"]
    for rule, modules in RULE_IMPORTS.items():
        runs = [import_profile(modules) for _ in range(args.repeats)]
        total, packages = min(runs, key=lambda run: run[0])
        heavy = ", ".join(f"{name} {seconds:.2f}" for name, seconds in sorted(packages.items(), key=lambda kv: -kv[1])[:4])
        lines.append(f"| {rule} | {total:.2f} | {heavy} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
