"""Each rule's conda env (``conda:`` in workflow/rules/*.smk) lists every third-party package its ``script:``
imports, followed statically through brainalign (imports inside functions included: they run in that job).

Nothing here lists modules or rules: the rules, their scripts and the package's modules are discovered, so
moving a module between files keeps the test meaningful.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "brainalign"

# import name -> conda (or pip) package name, where they differ
CONDA_NAMES = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "torch": "pytorch",
    "PIL": "pillow",
    "skimage": "scikit-image",
    "cv2": "opencv",
    "bs4": "beautifulsoup4",
    "netCDF4": "netcdf4",
    "dateutil": "python-dateutil",
    "google.protobuf": "protobuf",
}
# names a package is published under on PyPI when the env lists it under pip: (same package, other name)
PIP_NAMES = {"pytorch": "torch"}

# Optional imports: allowed to be missing from an env only where the code guards them with
# `try: ... except ImportError` (an unguarded import of the same name anywhere in the job still requires it).
OPTIONAL_IMPORTS = {
    "torch": "the encoding back end 'torch' is optional (backend: numpy needs no torch); its import is guarded "
             "and names the missing package",
}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ----------------------------------------------------------------------------------------------- rules
def _string_after(lines: list[str], index: int, directive: str) -> str | None:
    """The quoted string of ``directive:`` at lines[index] (same line or the next non-empty one)."""
    rest = lines[index].split(f"{directive}:", 1)[1].strip()
    candidates = [rest] if rest else [line.strip() for line in lines[index + 1:index + 3] if line.strip()][:1]
    for text in candidates:
        match = re.match(r"""^(['"])(.+?)\1""", text)
        if match:
            return match.group(2)
    return None


@lru_cache(maxsize=1)
def rule_envs() -> tuple[tuple[str, Path, Path | None], ...]:
    """(rule, env file, script file or None) for every rule with a ``conda:`` directive in the workflow's files
    (paths resolved against the file that declares the rule, as Snakemake does)."""
    found = []
    for smk in sorted([REPO / "Snakefile", *(REPO / "workflow").rglob("*.smk")]):
        if not smk.is_file():
            continue
        lines = smk.read_text().splitlines()
        block: dict = {}

        def flush(block=block, smk=smk):
            if block.get("rule") and block.get("conda"):
                script = (smk.parent / block["script"]).resolve() if block.get("script") else None
                found.append((block["rule"], (smk.parent / block["conda"]).resolve(), script))
            block.clear()

        for i, line in enumerate(lines):
            header = re.match(r"^(?:rule|checkpoint)\s+(\w+)\s*:", line)
            if header:
                flush()
                block["rule"] = header.group(1)
            elif line.strip() and not line[0].isspace() and not line.startswith("#"):
                flush()  # top-level code ends the rule
            elif block.get("rule"):
                directive = re.match(r"^\s+(conda|script)\s*:", line)
                if directive:
                    block[directive.group(1)] = _string_after(lines, i, directive.group(1))
        flush()
    return tuple(found)


# ----------------------------------------------------------------------------------------------- imports
@lru_cache(maxsize=1)
def package_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (discovered)."""
    modules = {}
    for path in sorted((REPO / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names)


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


def _is_import_module(func: ast.AST) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id == "import_module")


def _static_prefix(arg: ast.AST) -> str | None:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        return arg.values[0].value
    return None


def scan(nodes, module: str, is_package: bool) -> tuple[list[tuple[str, bool]], set[str]]:
    """What running ``nodes`` can do: (absolute module imported, guarded by ``except ImportError``) for each
    import at any depth (``importlib.import_module(f"<package>.x.{...}")``: every module under that prefix), and
    every identifier it names (names, attributes, imported names)."""
    imports: list[tuple[str, bool]] = []
    names: set[str] = set()

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child, guarded)
            return
        if isinstance(node, ast.Try):
            body_guarded = guarded or any(_catches_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, body_guarded)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, guarded)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                imports.append((alias.name, guarded))
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_relative(module, is_package, node.level, node.module) if node.level else node.module
            imports.append((base, guarded))
            for alias in node.names:
                if alias.name != "*":
                    imports.append((f"{base}.{alias.name}", guarded))
                    names.add(alias.name)
        elif isinstance(node, ast.Call) and _is_import_module(node.func) and node.args:
            prefix = _static_prefix(node.args[0])
            if prefix and prefix.split(".")[0] == PACKAGE:
                imports.extend((name, guarded) for name in package_modules() if name.startswith(prefix))
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    for node in nodes:
        visit(node, False)
    return imports, names


class ParsedModule:
    """A module split into the code that runs when it is imported and its functions (run when reached)."""

    def __init__(self, path: Path, name: str):
        self.path, self.name, self.is_package = path, name, path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))
        self.top: list[ast.AST] = []  # module and class bodies, decorators, default values, base classes
        self.functions: list[tuple[str, str | None, ast.AST]] = []  # (name, enclosing class, node)
        self.decorated_classes: set[str] = set()
        self._collect(tree.body, None)
        # an import name this module guards with `except ImportError` anywhere is optional in all of the module
        # (its other imports of that name run only after the guarded one succeeded)
        self.guarded = {name.split(".")[0] for name, guarded in scan([tree], name, self.is_package)[0] if guarded}

    def _collect(self, body, cls: str | None) -> None:
        for statement in body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.top.extend(statement.decorator_list)
                self.top.extend(d for d in [*statement.args.defaults, *statement.args.kw_defaults] if d is not None)
                self.functions.append((statement.name, cls, statement))
            elif isinstance(statement, ast.ClassDef):
                self.top.extend([*statement.decorator_list, *statement.bases, *(k.value for k in statement.keywords)])
                if statement.decorator_list:
                    self.decorated_classes.add(statement.name)
                self._collect(statement.body, statement.name)
            else:
                self.top.append(statement)


def job_imports(script: Path) -> dict[str, bool]:
    """Third-party top-level import name -> required, for what a rule's script can run.

    Reachability by name, conservatively: the script's module code runs; importing a package module runs its
    module code (and its parent packages'); a function (anywhere in a reached module) runs once any reached code
    names it (call, attribute, import or reference: passing ``step`` to ``run_rule`` counts); a class's dunder
    methods run once the class is named or decorated. Everything a running piece of code imports, at any depth
    (inside functions included), is collected. False: only imports of an OPTIONAL_IMPORTS name in a module that
    guards it with ``except ImportError``."""
    modules = package_modules()
    parsed: dict[str, ParsedModule] = {}
    named: set[str] = set()
    done: set[int] = set()
    third_party: dict[str, bool] = {}

    def run(nodes, module: ParsedModule) -> None:
        imports, names = scan(nodes, module.name, module.is_package)
        named.update(names)
        for name, _ in imports:
            top = name.split(".")[0]
            if top == PACKAGE:
                parts = name.split(".")
                for n in range(1, len(parts) + 1):
                    reach(".".join(parts[:n]))
            elif top not in sys.stdlib_module_names and top != "__future__":
                optional = top in OPTIONAL_IMPORTS and top in module.guarded
                third_party[top] = third_party.get(top, False) or not optional

    def reach(name: str) -> None:
        if name in parsed or name not in modules:
            return
        if "." in name:
            reach(name.rsplit(".", 1)[0])  # the package's __init__ runs first
        parsed[name] = ParsedModule(modules[name], name)
        run(parsed[name].top, parsed[name])

    parsed["__main__"] = ParsedModule(script, "__main__")
    run(parsed["__main__"].top, parsed["__main__"])
    progress = True
    while progress:
        progress = False
        for module in list(parsed.values()):
            for name, cls, node in module.functions:
                if id(node) in done:
                    continue
                dunder = name.startswith("__") and name.endswith("__")
                if (name in named) if not dunder else (cls is None or cls in named or cls in module.decorated_classes):
                    done.add(id(node))
                    run(node.body, module)
                    progress = True
    return third_party


# ----------------------------------------------------------------------------------------------- envs
def env_packages(env_file: Path) -> set[str]:
    """Normalised names of the env's conda and pip packages."""
    spec = yaml.safe_load(env_file.read_text())
    names = set()

    def add(entry: str) -> None:
        entry = entry.split("::")[-1].strip()
        match = re.match(r"^[A-Za-z0-9_.\-]+", entry)
        if match:
            names.add(_normal(match.group(0)))

    for dependency in spec.get("dependencies", []):
        if isinstance(dependency, str):
            add(dependency)
        elif isinstance(dependency, dict):
            for entry in dependency.get("pip", []):
                add(entry)
    return names


def package_name(import_name: str) -> str:
    return _normal(CONDA_NAMES.get(import_name, import_name))


def missing_from_env(env_file: Path, script: Path) -> list[str]:
    listed = env_packages(env_file)
    missing = []
    for name, required in sorted(job_imports(script).items()):
        wanted = package_name(name)
        if required and wanted not in listed and _normal(PIP_NAMES.get(wanted, wanted)) not in listed:
            missing.append(f"{name} (package {wanted})")
    return missing


# ----------------------------------------------------------------------------------------------- tests
def test_rules_and_their_envs_are_found():
    rules = rule_envs()
    assert len(rules) >= 5, rules
    for rule, env, script in rules:
        assert env.is_file(), f"rule {rule}: conda env {env} does not exist"
        assert script is None or script.is_file(), f"rule {rule}: script {script} does not exist"
    assert any(script is not None for _, _, script in rules)


@pytest.mark.parametrize("rule, env, script", [r for r in rule_envs() if r[2] is not None], ids=lambda v: getattr(v, "name", v))
def test_each_rule_env_lists_what_its_script_imports(rule, env, script):
    missing = missing_from_env(env, script)
    assert not missing, (f"rule {rule}: {env.relative_to(REPO)} lacks {', '.join(missing)}, which "
                         f"{script.relative_to(REPO)} imports (directly or through {PACKAGE})")


def test_the_walk_follows_functions_guards_and_dynamic_imports(tmp_path):
    """The walk itself: imports inside reached functions, not inside functions nothing names; guarded optional
    imports; the dataset adapters that ``importlib.import_module(f"brainalign.datasets.{name}")`` loads by name."""
    script = tmp_path / "job.py"
    script.write_text(
        "import sys\n\n"
        "def step():\n    from brainalign.datasets import prepare_dataset\n    helper()\n\n"
        "def helper():\n    try:\n        import PIL\n    except ImportError:\n        PIL = None\n"
        "    try:\n        import torch\n    except ImportError:\n        torch = None\n\n"
        "def never_called():\n    import sklearn\n\n"
        "run(step)\n"
    )
    found = job_imports(script)
    assert "sys" not in found and "sklearn" not in found
    assert found["PIL"] is True  # guarded but not in OPTIONAL_IMPORTS: still required
    assert found["torch"] is False  # guarded and optional
    adapters = [m for m in package_modules() if m.startswith(f"{PACKAGE}.datasets.")]
    assert adapters
    trees = {m: ast.parse(package_modules()[m].read_text()) for m in adapters}
    direct = {name.split(".")[0] for m, tree in trees.items() for name, _ in scan([tree], m, False)[0]}
    assert {n for n in direct if n not in sys.stdlib_module_names and n not in (PACKAGE, "__future__")} <= set(found)
