"""Stage options: the schema is the one place a default is written (brainalign/options.py fills them in), and
every default literal a step function still carries must equal the schema's, so a drift fails here."""

from __future__ import annotations

import ast
import copy
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from brainalign import options as opts
from brainalign.config import load_and_check
from brainalign.errors import BrainalignError

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "brainalign"

# Which stage an options.get call reads, needed only for keys whose schema default differs between stages
# (n_bootstrap: encoding 1000, ceiling 100; device: extraction auto, encoding cpu): the innermost part of the
# module's dotted path that contains one of these words decides. Module paths are discovered, not listed.
STAGE_HINTS = {
    "ceiling": ("ceiling",),
    "extraction": ("activation", "extract", "shard", "checkpoint"),
    "behaviour": ("behaviour", "surprisal", "reading"),
    "encoding": ("encoding", "ridge", "timeseries", "similarity", "backend", "fit"),
    "analysis": ("analysis", "stats", "study"),
}
# Literals that disagree with the schema today, in modules another change owns. The workflow always passes the
# schema's value (the config check injects it), so the default run uses the schema's; the literal only applies
# when a step function is called without that key. Remove an entry once the code reads the schema default
# (the test below fails when an entry is no longer found, so the list only shrinks).
KNOWN_DRIFTS: set[tuple[str, str, object]] = set()  # (stage, key, code literal) pairs accepted on purpose: none


def _load_yaml(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


def _merged(*names: str) -> dict:
    """Config files merged as ``--configfile`` merges them over the default (dicts recursively, lists replaced)."""
    def merge(a, b):
        for key, value in b.items():
            if isinstance(value, dict) and isinstance(a.get(key), dict):
                merge(a[key], value)
            else:
                a[key] = value
        return a

    config: dict = {}
    for name in names:
        merge(config, _load_yaml(name))
    return config


CONFIGS = {"default": ("config.yaml",), "paper": ("config.yaml", "paper.yaml")}


# ----------------------------------------------------------------------------------------------- code literals
def _receiver_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _options_get(node: ast.AST) -> str | None:
    """The key of an ``<...options...>.get("key", ...)`` call, else None."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            and re.search(r"opt", _receiver_name(node.func.value), re.IGNORECASE)
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return node.args[0].value
    return None


_NOT_LITERAL = object()


def _literal(node: ast.AST, constants: dict):
    """A literal's value (module-level constants such as ``PROTOCOLS = (...)`` resolved), else _NOT_LITERAL."""
    if isinstance(node, ast.Name):
        return constants.get(node.id, _NOT_LITERAL)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_LITERAL


def _module_constants(tree: ast.Module) -> dict:
    constants = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
            value = _literal(statement.value, {})
            if value is not _NOT_LITERAL:
                constants[statement.targets[0].id] = value
    return constants


def code_defaults(package: Path = PACKAGE):
    """Every ``options.get("key", literal)`` and ``options.get("key") or literal`` in brainalign/**/*.py:
    (module, line, key, literal). Dataset adapters are skipped: their ``options`` are a dataset entry's free-form
    adapter options, not a stage's."""
    found = []
    for path in sorted(package.rglob("*.py")):
        module = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        if ".datasets" in module or path.name == "options.py":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        constants = _module_constants(tree)
        for node in ast.walk(tree):
            key = _options_get(node)
            if key is not None and len(node.args) >= 2:
                found.append((module, node.lineno, key, _literal(node.args[1], constants)))
            if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
                key = _options_get(node.values[0])
                if key is not None:
                    found.append((module, node.lineno, key, _literal(node.values[1], constants)))
    return [row for row in found if row[3] is not _NOT_LITERAL]


def _normal(value):
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return value


def _same(a, b) -> bool:
    a, b = _normal(a), _normal(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _stage_of(module: str, key: str, stages: list[str]) -> str | None:
    for part in reversed(module.split(".")):
        for stage, words in STAGE_HINTS.items():
            if stage in stages and any(word in part for word in words):
                return stage
    return None


def expected_default(module: str, key: str):
    """(stage, schema default) for a key read in ``module``; (None, None) when the schema has no default to
    compare with (a run-time key such as ``progress``, or a key without a schema default such as ``delays``)."""
    if key == "seed":
        return "seed", opts.top_level_default("seed")
    defaults = {stage: opts.schema_defaults(stage) for stage in opts.STAGES}
    stages = [stage for stage in opts.STAGES if key in defaults[stage]]
    if not stages:
        return None, None
    values = [defaults[stage][key] for stage in stages]
    if all(_same(v, values[0]) for v in values):
        return (stages[0] if len(stages) == 1 else "/".join(stages)), values[0]
    stage = _stage_of(module, key, stages)
    if stage is None:
        pytest.fail(f"{module}: option {key!r} has different schema defaults in {', '.join(stages)}; add a word of the "
                    f"module's path to STAGE_HINTS in tests/test_options.py so the test knows which stage it reads")
    return stage, defaults[stage][key]


def test_the_walker_finds_the_option_reads(tmp_path):
    """The walk sees both forms of a literal default (the package's own stages read typed options instead)."""
    (tmp_path / "brainalign" / "stage").mkdir(parents=True)
    (tmp_path / "brainalign" / "stage" / "step.py").write_text(
        "def f(options, job_options):\n    return options.get('n_bootstrap', 5), job_options.get('max_context_tokens') or 9\n")
    assert {key for _, _, key, _ in code_defaults(tmp_path / "brainalign")} == {"n_bootstrap", "max_context_tokens"}


def test_extraction_and_behaviour_read_typed_options():
    """The extraction and behaviour stages read their options as attributes of ExtractionOptions /
    BehaviourOptions (defaults from the schema), never with a literal default (``options.get(key, literal)``)."""
    found = [f"{module}:{line}: options.get({key!r}, ...)" for module, line, key, _ in code_defaults()
             if module.startswith(("brainalign.extraction.", "brainalign.behaviour."))]
    assert not found, "\n".join(found)


def drifts(package: Path = PACKAGE) -> list[str]:
    out = []
    for module, line, key, literal in code_defaults(package):
        stage, default = expected_default(module, key)
        if stage is None or _same(literal, default) or (stage, key, literal) in KNOWN_DRIFTS:
            continue
        out.append(f"{module}:{line}: options {key!r} defaults to {literal!r} in the code, {default!r} in the schema ({stage})")
    return out


def test_code_default_literals_equal_the_schema_defaults():
    found = drifts()
    assert not found, "defaults drifted from brainalign/schemas/config.schema.yaml:\n" + "\n".join(found)


def test_a_drifted_literal_is_reported(tmp_path):
    package = tmp_path / "brainalign"
    (package / "scoring").mkdir(parents=True)
    (package / "scoring" / "ceiling.py").write_text(
        "N = 7\n"
        "def f(options, protocol_options):\n"
        "    a = options.get('n_bootstrap', 1000)\n"          # ceiling's default is 100
        "    b = protocol_options.get('n_bootstrap') or 100\n"  # right
        "    c = options.get('n_splits') or N\n"               # a module constant, 10 in the schema
        "    d = options.get('progress', True)\n"             # a run-time key: no schema default
        "    return options.get('checkpoint', 1)\n"           # 1 is not True
    )
    (package / "datasets").mkdir()
    (package / "datasets" / "x.py").write_text("def g(options):\n    return options.get('n_bootstrap', 5)\n")  # adapter options
    found = sorted(drifts(package))
    assert [line.split(": ")[0] for line in found] == ["brainalign.scoring.ceiling:3", "brainalign.scoring.ceiling:5",
                                                       "brainalign.scoring.ceiling:7"], found
    assert "'n_bootstrap' defaults to 1000 in the code, 100 in the schema (ceiling)" in found[0]


def test_known_drifts_are_still_there():
    """An entry of KNOWN_DRIFTS the code no longer has must be removed, so the list cannot hide a new drift."""
    found = [(expected_default(module, key)[0], key, literal) for module, _, key, literal in code_defaults()]
    fixed = sorted(drift for drift in KNOWN_DRIFTS if drift not in found)
    assert not fixed, f"fixed, remove from KNOWN_DRIFTS: {fixed}"


# ----------------------------------------------------------------------------------------------- filled options
@pytest.mark.parametrize("name", CONFIGS)
def test_filled_options_equal_the_config_checks_default_injection(name):
    """stage_options of a raw config == of the checked config (whose defaults the schema check injected), keys
    in the same order: jobs get exactly the options they got before options.py filled them."""
    raw = _merged(*CONFIGS[name])
    checked = load_and_check(copy.deepcopy(raw))
    for stage in opts.STAGES:
        a, b = opts.stage_options(raw, stage), opts.stage_options(checked, stage)
        assert list(a.items()) == list(b.items()), stage
        assert set(opts.schema_defaults(stage)) <= set(a)
    for dataset in (d["name"] for d in raw["datasets"]):
        assert opts.dataset_encoding_options(raw, dataset) == opts.dataset_encoding_options(checked, dataset)
        assert opts.ceiling_options(raw, dataset) == opts.ceiling_options(checked, dataset)
    for model in (m["name"] for m in raw["models"]):
        assert opts.extraction_options(raw, model) == opts.extraction_options(checked, model)
        assert opts.behaviour_options(raw, model) == opts.behaviour_options(checked, model)


def test_job_options_carry_overrides_and_the_seed():
    config = load_and_check(_merged("config.yaml"))
    config["seed"] = 7
    config["encoding"]["n_folds"] = 4
    config["datasets"][0]["encoding"] = {"inner_cv": "loo"}
    config["models"][0].update(batch_size=3, max_context_tokens=64)
    first, second = config["datasets"][0]["name"], config["datasets"][1]["name"]
    model, other = config["models"][0]["name"], config["models"][1]["name"]
    assert opts.dataset_encoding_options(config, first)["inner_cv"] == "loo"
    assert opts.dataset_encoding_options(config, second)["inner_cv"] == "grouped"
    assert opts.dataset_encoding_options(config, second)["n_folds"] == 4
    assert opts.dataset_encoding_options(config, second)["seed"] == 7
    ceiling = opts.ceiling_options(config, first)
    assert ceiling["seed"] == 7 and ceiling["encoding"]["inner_cv"] == "loo" and "seed" not in ceiling["encoding"]
    assert opts.extraction_options(config, model)["batch_size"] == 3
    assert opts.extraction_options(config, other)["batch_size"] == opts.schema_defaults("extraction")["batch_size"]
    assert opts.behaviour_options(config, model)["max_context_tokens"] == 64
    assert "batch_size" not in opts.behaviour_options(config, model)
    assert opts.stage_options(config, "ceiling", n_splits=3)["n_splits"] == 3


def test_removed_keys_are_gone_from_the_schema():
    schema = opts.schema()
    assert schema["properties"]["results_dir"]["default"] == "results"  # removed as unread, back: the rules read it
    # (encoding.pca_components, once removed as unread, is back: the wehbe-2014 protocol reads it)
    assert "batch_size" not in opts.stage_properties("behaviour")


def test_unknown_stage_names_the_known_ones():
    with pytest.raises(BrainalignError, match="unknown option stage 'encodng'; known stages: extraction, encoding"):
        opts.schema_defaults("encodng")
    with pytest.raises(BrainalignError, match="unknown option stage"):
        opts.typed_options("encodng", {})


# ----------------------------------------------------------------------------------------------- typed objects
@pytest.mark.parametrize("stage", opts.STAGES)
def test_typed_fields_are_the_schema_keys_and_repeat_no_default(stage):
    cls = opts.OPTION_TYPES[stage]
    properties = opts.stage_properties(stage)
    assert set(cls.option_names()) == set(properties) | {"seed"}
    for f in dataclasses.fields(cls):
        if f.name in properties:
            # a schema default lives in the schema only; a key without one is None ("not set")
            assert f.default is (dataclasses.MISSING if "default" in properties[f.name] else None), f.name


@pytest.mark.parametrize("stage", opts.STAGES)
def test_typed_options_from_nothing_are_the_schema_defaults(stage):
    typed = opts.typed_options(stage, None)
    assert typed.as_dict() == {**opts.schema_defaults(stage), "seed": opts.top_level_default("seed")}


@pytest.mark.parametrize("name", CONFIGS)
def test_typed_options_round_trip_the_job_options(name):
    config = load_and_check(_merged(*CONFIGS[name]))
    dataset, model = config["datasets"][0]["name"], config["models"][0]["name"]
    jobs = {
        "encoding": opts.dataset_encoding_options(config, dataset),
        "ceiling": opts.ceiling_options(config, dataset),
        "extraction": opts.extraction_options(config, model),
        "behaviour": opts.behaviour_options(config, model),
        "analysis": opts.stage_options(config, "analysis"),
    }
    for stage, options in jobs.items():
        typed = opts.typed_options(stage, options)
        assert typed.as_dict() == options and dict(typed) == options, stage
        assert typed == opts.typed_options(stage, typed.as_dict())
        assert sorted(typed.as_dict().items()) == sorted(options.items())  # the record fit_layer writes is unchanged


def test_typed_options_are_frozen_typed_mappings():
    typed = opts.EncodingOptions.from_dict({"n_folds": 4, "alphas": [0.1, 1.0], "progress": False})
    assert typed.n_folds == 4 and typed.alphas == (0.1, 1.0) and typed.delays == (1, 2, 3, 4)
    assert opts.EncodingOptions.from_dict({}).alphas is None and "alphas" not in opts.EncodingOptions.from_dict({})
    assert typed.protocols == tuple(opts.schema_defaults("encoding")["protocols"])
    assert typed.extra == {"progress": False} and typed["progress"] is False
    assert typed.get("gap", 5) == 5 and "delays" in typed and "alphas" in typed
    assert typed.as_dict()["alphas"] == [0.1, 1.0]  # lists again, as in the dict (and the JSON record)
    with pytest.raises(dataclasses.FrozenInstanceError):
        typed.n_folds = 3
    assert hash(typed) == hash(opts.EncodingOptions.from_dict(typed.as_dict()))
    changed = typed.replace(n_folds=6, gap=2)
    assert changed.n_folds == 6 and changed["gap"] == 2 and typed.n_folds == 4
    assert dict(typed, seed=3)["seed"] == 3  # a step function's dict(options) works on the typed object


def test_extraction_options_keep_run_time_keys():
    typed = opts.ExtractionOptions.from_dict({"batch_size": 2, "progress": False, "checkpoint_dir": "x"})
    assert typed.batch_size == 2 and typed.checkpoint is True
    assert dict(typed.extra) == {"progress": False, "checkpoint_dir": "x"}
    assert typed.as_dict()["checkpoint_dir"] == "x"
