"""The miniature's config: ``config/paper.yaml`` with only the keys in :data:`CHANGES` changed (docs/miniature.md)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

from tests.support.miniature.paths import PAPER_CONFIG, REPO_ROOT

# Every key the miniature config changes, with why. make_miniature_config changes these and nothing else
# (tests/test_paper_miniature.py compares the two configs key by key).
CHANGES = {
    "datasets[*].base_url": "added: the loopback server's folder of the dataset's synthetic raw files "
                            "(fetch.py downloads <base_url>/<filename> for every REMOTE_FILES entry)",
    "datasets[*].options.checksums": "added: sha256 of each synthetic file; it replaces the adapter's published "
                                     "checksum (Pereira, Blank: sha1 of the real files) or pins the unpublished one "
                                     "(Wehbe, Futrell), so every download is still verified",
    "models[*].dtype": "float16/bfloat16 -> float32: tiny models on CPU (float16 matmuls are slow or unsupported there)",
    "model_properties": "made absolute (repository path): the workflow runs with --directory elsewhere",
    "extraction.threads": "added, 1: each extraction of a tiny model is too small to use 2 threads; with --cores 2 "
                          "two extractions then run at once",
}
FLOAT32 = "float32"


def make_miniature_config(paper_config: dict, base_url_by_dataset: dict, checksums_by_dataset: dict | None = None,
                          repo_root: Path = REPO_ROOT) -> dict:
    """The miniature's config: ``paper_config`` with only the keys in :data:`CHANGES` changed.

    ``base_url_by_dataset``: dataset name -> URL of the folder serving its raw files (every dataset needs one).
    ``checksums_by_dataset``: dataset name -> {filename: "sha256:<hex>"} (merged into ``options.checksums``).
    Models keep their names, ``hf_id``, ``revision``, kinds, families, pairs, ``t5_mode``, ``n_params`` and
    ``gpus``: the tiny models are served under the same Hub ids and revisions (``HF_ENDPOINT``), so the
    ``hub`` source runs unchanged.
    """
    config = copy.deepcopy(paper_config)
    checksums_by_dataset = checksums_by_dataset or {}
    for dataset in config["datasets"]:
        name = dataset["name"]
        if name not in base_url_by_dataset:
            raise KeyError(f"dataset {name}: no base_url given for the miniature")
        if dataset.get("local_dir"):
            raise ValueError(f"dataset {name}: local_dir set; the miniature serves every dataset over HTTP")
        dataset["base_url"] = base_url_by_dataset[name]
        if checksums_by_dataset.get(name):
            options = dataset.setdefault("options", {})
            options["checksums"] = {**(options.get("checksums") or {}), **checksums_by_dataset[name]}
    for model in config["models"]:
        if model.get("dtype", FLOAT32) != FLOAT32:
            model["dtype"] = FLOAT32
    properties = config.get("model_properties")
    if properties and not Path(properties).is_absolute():
        config["model_properties"] = str(Path(repo_root) / properties)
    extraction = config.setdefault("extraction", {})
    extraction.setdefault("threads", 1)
    return config


def config_differences(before, after, path: str = "") -> list[str]:
    """Key paths (``models[3].dtype``) whose values differ between two configs (added and removed keys too)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in before or key not in after:  # an added or removed block: report its leaves
                side = after.get(key) if key in after else before.get(key)
                leaves = config_differences({}, side, sub) if isinstance(side, dict) and side else []
                out += leaves or [sub]
            else:
                out += config_differences(before[key], after[key], sub)
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [d for i, (b, a) in enumerate(zip(before, after)) for d in config_differences(b, a, f"{path}[{i}]")]
    return [] if before == after else [path]


def change_pattern(path: str) -> str:
    """``models[3].dtype`` -> ``models[*].dtype``; ``datasets[0].options.checksums.x.nc`` -> ``...options.checksums``."""
    pattern = re.sub(r"\[\d+\]", "[*]", path)
    for known in CHANGES:
        if pattern == known or pattern.startswith(known + "."):
            return known
    return pattern


def load_paper_config(path: Path = PAPER_CONFIG) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


def write_config(config: dict, path: Path) -> Path:
    import yaml

    header = ("# The paper in miniature, derived from config/paper.yaml by tests.support.miniature.make_miniature_config\n"
              "# (docs/miniature.md). Needs the miniature server: python -m tests.support.miniature serve <dir>\n")
    Path(path).write_text(header + yaml.safe_dump(config, sort_keys=False, width=120))
    return Path(path)
