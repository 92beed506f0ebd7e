"""The ``brainalign`` console command.

    brainalign analyse SCORES.csv --models MODELS.csv --out DIR [--config CONFIG.yaml] [--label TEXT]
                       [--subset instruction_tuned|all] [--seed N] [--n-permutations N] [--no-figures] [--drop-invalid]
    brainalign check-config CONFIG.yaml [MORE.yaml ...] [--base-dir DIR]

SCORES.csv needs only ``model,dataset,score`` (one row per model x dataset), so another study's published
numbers can be analysed with the same statistics as the workflow's own. Options take the config's ``analysis``
block (with ``--config``), then the flags given; anything left unset takes the schema's default. A value the
analysis cannot use (a score that is empty, NaN or written with a decimal comma, a model the models table lacks, a
base model that is not in it) stops it with one line naming the file, line, model and field; ``--drop-invalid``
leaves such entries out instead, with a warning naming each and the pairs it takes out.

``check-config`` loads config files as the workflow does (each over the previous one, as ``--configfile`` goes over
the Snakefile's ``config/config.yaml``) and checks them as the workflow does at load (schema, names, plugins,
every dataset's ``local_dir``, every model's weights), naming the file and line of a YAML syntax error, which
Snakemake's own ``--configfile`` loading does not say.
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
    analyse.add_argument("--drop-invalid", action="store_true",
                         help="leave out, with a warning naming each and the pairs it removes, the rows and values the "
                              "analysis cannot use (non-finite or unparsable scores, models the models table lacks, "
                              "unknown base models) instead of stopping at the first")
    check = commands.add_parser("check-config", help="load and check workflow config files as the workflow does at load")
    check.add_argument("configs", nargs="+", metavar="CONFIG.yaml",
                       help="config files, each merged over the previous one as Snakemake merges --configfile over the "
                            "Snakefile's config/config.yaml (e.g. config/config.yaml my_models.yaml)")
    check.add_argument("--base-dir", default=None,
                       help="the folder of the workflow's Snakefile: a relative local_dir not found from the working "
                            "directory is looked up there, as the fetch step does (default: the working directory only)")
    return parser


def analysis_options(config_path) -> dict:
    """The ``analysis`` block of a workflow config, checked against the schema (defaults filled in)."""
    from pathlib import Path

    from brainalign.config import ConfigError, load_config_file, validate_schema

    path = Path(config_path)
    try:
        config = validate_schema(load_config_file(path))
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    return dict(config.get("analysis") or {})


def check_config(paths, base_dir=None) -> dict:
    """The config the workflow would run with these files (each merged over the previous), checked as the workflow
    checks it at load; every error is one line naming the file (and the line of a YAML syntax error)."""
    from pathlib import Path

    from brainalign.config import ConfigError, load_and_check, load_config_file, merge_configs, model_specs
    from brainalign.datasets import ADAPTERS
    from brainalign.models.session import check_model_available
    from brainalign.plugins import load_plugins

    config: dict = {}
    for path in paths:
        config = merge_configs(config, load_config_file(path))
    where = " + ".join(map(str, paths))
    try:
        load_plugins(config.get("plugins"))
        load_and_check(config, known_adapters=ADAPTERS, base_dir=Path(base_dir) if base_dir else Path.cwd())
        for spec in model_specs(config).values():
            check_model_available(spec)
    except BrainalignError as error:
        raise ConfigError(f"{where}: {error}") from None
    return config


def _warnings_to_stderr() -> None:
    """The package's warnings (e.g. what --drop-invalid leaves out) as ``brainalign: warning: ...`` lines."""
    import logging

    logger = logging.getLogger("brainalign")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("brainalign: warning: %(message)s"))
        handler.setLevel(logging.WARNING)
        logger.addHandler(handler)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    _warnings_to_stderr()
    try:
        if args.command == "check-config":
            config = check_config(args.configs, args.base_dir)
            print(f"{' + '.join(args.configs)}: valid ({len(config['models'])} models, {len(config['datasets'])} datasets)")
        elif args.command == "analyse":
            from brainalign.options import AnalysisOptions
            from brainalign.study.analysis import analyse

            given = {"subset": args.subset, "seed": args.seed, "n_permutations": args.n_permutations}
            options = AnalysisOptions.from_dict(analysis_options(args.config) if args.config else {},
                                                **{key: value for key, value in given.items() if value is not None})
            result = analyse(args.scores, args.models, args.out, options, label=args.label, figures=args.figures,
                             drop_invalid=args.drop_invalid)
            print(f"wrote {args.out}/instruction_effect.csv, {args.out}/property_correlations.csv"
                  + (f" and {len(result['figures'])} figures" if args.figures else ""))
    except BrainalignError as error:
        hint = " (--drop-invalid leaves such entries out, with a warning)" if getattr(error, "droppable", False) else ""
        print(f"brainalign: error: {error}{hint}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
