"""The ``brainalign`` console command.

    brainalign analyse SCORES.csv --models MODELS.csv --out DIR [--config CONFIG.yaml] [--label TEXT]
                       [--subset instruction_tuned|all] [--seed N] [--n-permutations N] [--no-figures]

SCORES.csv needs only ``model,dataset,score`` (one row per model x dataset), so another study's published
numbers can be analysed with the same statistics as the workflow's own. Options take the config's ``analysis``
block (with ``--config``), then the flags given; anything left unset takes the schema's default.
"""

from __future__ import annotations

import argparse
import sys

from brainalign.errors import BrainalignError


def build_parser() -> argparse.ArgumentParser:
    from brainalign.options import schema_defaults, stage_properties, top_level_default

    defaults = schema_defaults("analysis")
    parser = argparse.ArgumentParser(prog="brainalign", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    analyse = commands.add_parser("analyse", help="pair effects and property correlations from a scores table")
    analyse.add_argument("scores", help="CSV with columns model,dataset,score (and kind: brain | behaviour)")
    analyse.add_argument("--config", default=None,
                         help="a workflow config (e.g. config/paper.yaml) whose `analysis` block says which datasets are brain "
                              "alignment, how experiments merge and which families form the headline")
    analyse.add_argument("--models", required=True,
                         help="models table CSV (model, family, instruction_tuned, vanilla_base_model, n_params, ...)")
    analyse.add_argument("--out", required=True, help="output folder")
    analyse.add_argument("--label", default=None, help="what the pairs compare")
    analyse.add_argument("--subset", choices=stage_properties("analysis")["subset"]["enum"], default=None,
                         help=f"models used for the property correlations (default: {defaults['subset']})")
    analyse.add_argument("--seed", type=int, default=None,
                         help=f"seed of the random sign flips and bootstrap CIs (default: {top_level_default('seed')})")
    analyse.add_argument("--n-permutations", type=int, default=None,
                         help="random sign flips of the permutation test when a measure has more than 16 pairs "
                              f"(default: {defaults['n_permutations']})")
    analyse.add_argument("--figures", dest="figures", action="store_true", default=True)
    analyse.add_argument("--no-figures", dest="figures", action="store_false")
    return parser


def analysis_options(config_path) -> dict:
    """The ``analysis`` block of a workflow config, checked against the schema (defaults filled in)."""
    from pathlib import Path

    import yaml

    from brainalign.config import validate_schema

    path = Path(config_path)
    if not path.is_file():
        raise BrainalignError(f"{path}: config file not found")
    config = validate_schema(yaml.safe_load(path.read_text()) or {})
    return dict(config.get("analysis") or {})


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "analyse":
            from brainalign.options import AnalysisOptions
            from brainalign.study.analysis import analyse

            given = {"subset": args.subset, "seed": args.seed, "n_permutations": args.n_permutations}
            options = AnalysisOptions.from_dict(analysis_options(args.config) if args.config else {},
                                                **{key: value for key, value in given.items() if value is not None})
            result = analyse(args.scores, args.models, args.out, options, label=args.label, figures=args.figures)
            print(f"wrote {args.out}/instruction_effect.csv, {args.out}/property_correlations.csv"
                  + (f" and {len(result['figures'])} figures" if args.figures else ""))
    except BrainalignError as error:
        print(f"brainalign: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
