"""Build the whole miniature into a folder (raw files, HF cache of tiny models, derived config, manifest) and the
Snakemake command that runs the workflow on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.support.miniature.config import CHANGES, load_paper_config, make_miniature_config, write_config
from tests.support.miniature.designs import all_texts
from tests.support.miniature.hub_cache import add_to_hub_cache
from tests.support.miniature.paths import PAPER_CONFIG, REPO_ROOT
from tests.support.miniature.raw_files import RAW_FOLDERS, dataset_checksums, write_raw_files
from tests.support.miniature.tiny_models import architecture_for, build_tokenizer, save_tiny_model


def build_models(config: dict, hub_cache: Path, work_dir: Path) -> dict:
    """A tiny model per config model (same class, seeded by name), laid out in the HF cache ``hub_cache``."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    corpus = all_texts()
    tokenizers, info = {}, {}
    for spec in config["models"]:
        if spec.get("source") != "hub":
            continue
        architecture = architecture_for(spec)
        if architecture not in tokenizers:
            tokenizers[architecture] = build_tokenizer(architecture, corpus)
        folder = Path(work_dir) / spec["name"]
        entry = save_tiny_model(spec, tokenizers[architecture], folder)
        entry["commit"] = add_to_hub_cache(hub_cache, spec["hf_id"], spec.get("revision", "main"), folder)
        entry.update(hf_id=spec["hf_id"], revision=spec.get("revision", "main"))
        info[spec["name"]] = entry
        shutil.rmtree(folder)
    return info


def build_miniature(out_dir, server_url: str = "http://127.0.0.1:8765", paper_config_path: Path = PAPER_CONFIG) -> dict:
    """Everything the miniature needs, in ``out_dir``: ``data/`` (raw files), ``hf/hub/`` (HF cache of tiny
    models), ``config.yaml`` (derived config, datasets at ``server_url``) and ``miniature.json`` (manifest)."""
    out_dir = Path(out_dir)
    paper = load_paper_config(paper_config_path)
    adapters = {d["adapter"] for d in paper["datasets"]}
    data_info = write_raw_files(out_dir / "data", adapters)
    models = build_models(paper, out_dir / "hf" / "hub", out_dir / "tmp-models")
    shutil.rmtree(out_dir / "tmp-models", ignore_errors=True)
    checksums = dataset_checksums(out_dir / "data", paper)
    config = configure(out_dir, server_url, paper, checksums)
    manifest = {"server_url": server_url, "paper_config": str(paper_config_path), "models": models,
                "datasets": {d["name"]: {"adapter": d["adapter"], "checksums": checksums[d["name"]],
                                         "planted": data_info[d["adapter"]].get("planted", [])} for d in paper["datasets"]},
                "changes": CHANGES}
    (out_dir / "miniature.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return {"config": config, "config_path": out_dir / "config.yaml", "manifest": manifest}


def configure(out_dir, server_url: str, paper: dict | None = None, checksums: dict | None = None) -> dict:
    """(Re)write ``out_dir/config.yaml`` for a server at ``server_url`` (a test's server picks a free port)."""
    out_dir = Path(out_dir)
    paper = paper or load_paper_config()
    if checksums is None:
        checksums = dataset_checksums(out_dir / "data", paper)
    urls = {d["name"]: f"{server_url}/data/{RAW_FOLDERS[d['adapter']]}" for d in paper["datasets"]}
    config = make_miniature_config(paper, urls, checksums)
    write_config(config, out_dir / "config.yaml")
    return config


def snakemake_command(out_dir, workdir=None, cores: int = 2) -> list[str]:
    import sys

    out_dir = Path(out_dir)
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO_ROOT / "Snakefile"), "--directory",
            str(workdir or out_dir / "run"), "--configfile", str(out_dir / "config.yaml"), "--cores", str(cores)]
