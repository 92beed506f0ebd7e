"""``python -m tests.support.miniature OUT_DIR``: build the miniature and print the commands that run it;
``python -m tests.support.miniature serve OUT_DIR --port N``: serve its datasets and Hub stand-in."""

from __future__ import annotations

from pathlib import Path

import tests.support.miniature as miniature
from tests.support.miniature.build import build_miniature, snakemake_command
from tests.support.miniature.server import MiniatureServer, client_environment


def main(argv=None) -> int:
    import argparse
    import shlex
    import time

    parser = argparse.ArgumentParser(prog="python -m tests.support.miniature", description=miniature.__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="build", choices=["build", "serve"],
                        help="build (default): write the miniature into OUT_DIR; serve: run its server")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    url = f"http://127.0.0.1:{args.port}"
    if args.command == "serve":
        with MiniatureServer(args.out_dir, args.port) as server:
            print(f"serving {args.out_dir}/data and the Hub stand-in at {server.url} (Ctrl-C stops)", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
    start = time.perf_counter()
    built = build_miniature(args.out_dir, url)
    env = client_environment(url, args.out_dir.resolve() / "hf-client")
    print(f"built the paper in miniature in {args.out_dir} ({time.perf_counter() - start:.0f} s): "
          f"{len(built['manifest']['models'])} tiny models, {len(built['config']['datasets'])} datasets")
    print("\nrun it (two shells, or the first in the background):\n")
    print(f"  python -m tests.support.miniature serve {shlex.quote(str(args.out_dir))} --port {args.port}")
    shown = ("HF_ENDPOINT", "HF_HOME", "HF_HUB_DISABLE_XET", "NO_PROXY")
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k in shown)
    print(f"  {exports} \\\n    {' '.join(shlex.quote(c) for c in snakemake_command(args.out_dir))}")
    print("\nresults: <out_dir>/run/results-paper/analysis/headline_scores.csv; changes to the paper's config: docs/miniature.md")
    return 0
