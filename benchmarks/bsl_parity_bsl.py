"""Brain-Score Language's own benchmark objects on local files: the reference half of ``bsl_parity.py``.

Runs in Brain-Score Language's environment, not brainalign's (``brainscore-language`` pins numpy < 2):

    /tmp/bsl/bin/python benchmarks/bsl_parity_bsl.py spec.json out.json

``spec.json``: ``{"model": <transformers folder>, "layer": <module name>, "files": {<S3 file name>: <local path>},
"benchmarks": [<Brain-Score benchmark names>], "ceiling": "compute" | "none", "float32_responses": false,
"float64_activations": false}`` (the last two: checks of where a difference comes from). Each benchmark is built with
``brainscore_language.load_benchmark(name)`` and called on ``HuggingfaceSubject(model_id=<folder>,
region_layer_mapping={language_system: <layer>})``, unchanged. Brain-Score's storage (S3) is unreachable here, so
one name is replaced for the run, never edited in the installed package: ``brainscore_language.utils.s3.fetch_file``
(what ``load_from_s3`` calls to download an assembly) returns the local file of the same name from ``files``.
Brain-Score's sha1 check is skipped with it (the local files are synthetic); ``bsl_parity.py`` records their sha1.
The language-model benchmarks: SyntaxGym's ``requests.get`` of a suite URL reads the local file of that name;
WikiText-2 (Hugging Face ``datasets``, the network) is replaced by the rows in ``spec["data"]``.

Ceilings: Pereira 2018's are cached on S3 for the real data and cannot apply to other data. With ``"ceiling":
"compute"`` its ``_load_ceiling`` is replaced by what the benchmark does when no cached ceiling is given
(``ExtrapolationCeiling(subject_column="subject")`` on the loaded data with the benchmark's metric), and Blank 2014
and Fedorenko 2016 compute their extrapolation ceilings as they always do; with ``"none"`` (default) every
extrapolation ceiling is 1 (raw scores only: the extrapolation needs 3 or more subjects and minutes per
benchmark). Futrell 2018's split-half ceiling is always computed (it is cheap). Tuckute 2024 has none.
Writes, per benchmark: the raw (unceiled) score, the ceiling, the ceiled score, seconds to build the benchmark
(data + ceiling) and to score the model.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import types
from pathlib import Path


def _patch_storage(files: dict) -> None:
    import brainscore_language.utils.s3 as s3

    def local_fetch_file(location_type, location, sha1=None, version_id=None):
        name = location.rsplit("/", 1)[-1]
        if name not in files:
            raise FileNotFoundError(f"bsl_parity: no local copy of {name} (asked for {location})")
        return files[name]

    s3.fetch_file = local_fetch_file


def _patch_lm_data(files: dict, data: dict) -> None:
    """SyntaxGym suites: its benchmark fetches each suite's URL with ``requests.get``; answered from ``files`` by the
    URL's file name. Other data sets (``data``: identifier -> value, e.g. WikiText-2's rows) replace their loader."""
    import json as _json

    from brainscore_language import data_registry

    class _Response:
        def __init__(self, path):
            self.path = path

        def json(self):
            return _json.loads(Path(self.path).read_text())

    class _Requests:
        @staticmethod
        def get(url, *args, **kwargs):
            name = url.rsplit("/", 1)[-1]
            if name not in files:
                raise FileNotFoundError(f"bsl_parity: no local copy of {name} (asked for {url})")
            return _Response(files[name])

    import brainscore_language.benchmarks.syntaxgym.benchmark as syntaxgym

    syntaxgym.requests = _Requests
    for identifier, value in data.items():
        if identifier == "wikitext-2/test":  # its module imports Hugging Face datasets: a stand-in module instead
            sys.modules.setdefault("brainscore_language.data.wikitext", types.ModuleType("brainscore_language.data.wikitext"))
        data_registry[identifier] = lambda value=value: value


def _patch_float32_responses() -> None:
    """Every assembly Brain-Score loads, rounded to float32 (and kept float64): the values the workflow stores, so
    that a difference left is not the responses' rounding. Must run before any data module is imported (they
    bind ``load_from_s3`` when imported)."""
    import brainscore_language.utils.s3 as s3
    import numpy as np

    original = s3.load_from_s3

    def load_rounded(*args, **kwargs):
        assembly = original(*args, **kwargs)
        if np.issubdtype(assembly.dtype, np.floating):
            assembly.values = assembly.values.astype(np.float32).astype(assembly.dtype)
        return assembly

    s3.load_from_s3 = load_rounded


def _patch_float64_activations() -> None:
    """The model's activations handed to the metric as float64 (their float32 values, unchanged): Brain-Score's
    assemblies of activations are float32, and sklearn then fits and predicts in float32; the workflow fits in
    float64. Tests whether a difference left is that arithmetic."""
    import numpy as np
    from brainscore_language.model_helpers.huggingface import HuggingfaceSubject

    original = HuggingfaceSubject._tensor_to_numpy

    def to_float64(self, tensor):
        return original(self, tensor).astype(np.float64)

    HuggingfaceSubject._tensor_to_numpy = to_float64


def _patch_ceilings(mode: str) -> None:
    from brainscore_core.metrics import Score
    from brainscore_language.benchmarks.blank2014.ceiling import ExtrapolationCeiling
    from brainscore_language.benchmarks.pereira2018 import benchmark as pereira

    if mode == "none":  # Blank 2014, Fedorenko 2016 (and Pereira when computed): Brain-Score's extrapolation
        ExtrapolationCeiling.__call__ = lambda self, assembly, metric: Score(1.0)

    def load_ceiling(self, identifier, sha1=None, version_id=None, assembly_prefix="ceiling_", raw_kwargs=None):
        if mode == "none":
            return Score(1.0)
        return ExtrapolationCeiling(subject_column="subject")(assembly=self.data, metric=self.metric)

    pereira._Pereira2018Experiment._load_ceiling = load_ceiling


def _value(score) -> float | None:
    if score is None:
        return None
    try:
        return float(score.item() if hasattr(score, "item") else score)
    except (TypeError, ValueError):
        return None


def run(spec: dict) -> dict:
    import torch

    torch.set_num_threads(int(spec.get("threads", 1)))
    logging.disable(logging.WARNING)
    from brainscore_language import ArtificialSubject, load_benchmark
    from brainscore_language.model_helpers.huggingface import HuggingfaceSubject

    _patch_storage(spec["files"])
    if spec.get("float32_responses"):
        _patch_float32_responses()
    if spec.get("float64_activations"):
        _patch_float64_activations()
    _patch_ceilings(spec.get("ceiling", "none"))
    if any(name.startswith(("syntaxgym", "Wikitext")) for name in spec["benchmarks"]):
        _patch_lm_data(spec["files"], spec.get("data", {}))
    out = {}
    for name in spec["benchmarks"]:
        try:
            start = time.perf_counter()
            benchmark = load_benchmark(name)
            built = time.perf_counter() - start
            subject = HuggingfaceSubject(model_id=spec["model"], region_layer_mapping={
                ArtificialSubject.RecordingTarget.language_system: spec["layer"]})
            start = time.perf_counter()
            score = benchmark(subject)
            scored = time.perf_counter() - start
        except Exception as error:  # one benchmark failing (e.g. a ceiling that needs more subjects) is reported
            out[name] = {"error": f"{type(error).__name__}: {error}"[:300]}
            print(f"{name}: {out[name]}", file=sys.stderr, flush=True)
            continue
        raw = score.attrs.get("raw") if _value(score.attrs.get("raw")) is not None else score
        ceiling = score.attrs.get("ceiling", getattr(benchmark, "ceiling", None))
        out[name] = {"score": _value(score), "raw": _value(raw), "ceiling": _value(ceiling),
                     "seconds_benchmark": round(built, 3), "seconds_score": round(scored, 3)}
        print(f"{name}: {out[name]}", file=sys.stderr, flush=True)
    return out


def main(spec_path: str, out_path: str) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["BS_INSTALL_DEPENDENCIES"] = "no"  # its plugins' requirements are installed; no pip from here
    spec = json.loads(Path(spec_path).read_text())
    result = {"versions": {}, "benchmarks": run(spec)}
    import importlib.metadata
    for package in ("brainscore-language", "brainscore-core", "torch", "transformers", "numpy", "xarray"):
        try:
            result["versions"][package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    tmp = Path(out_path).with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out_path)


def derive_stories(kind: str, source: str, target: str) -> None:
    """A miniature assembly with more ``story`` groups, written by Brain-Score's own writer (responses and other
    coordinates unchanged): its 4 Pereira passage categories per experiment and 4 Blank stories are fewer than the
    10 (Pereira) or 8 (Blank) groups of the ``-ridge`` benchmarks' GroupKFold, which both Brain-Score and the
    workflow then refuse. ``pereira``: story = '<experiment>.<passage_index>' (one group per passage); ``blank``:
    each story cut into halves, '<story>.1' and '<story>.2' (in assembly order; each half is its own context)."""
    from brainscore_core.supported_data_standards.brainio.assemblies import AssemblyLoader, NeuroidAssembly, walk_coords
    from brainscore_core.supported_data_standards.brainio.packaging import write_netcdf

    assembly = AssemblyLoader(cls=NeuroidAssembly, file_path=source).load()
    coords = {name: (dims, values) for name, dims, values in walk_coords(assembly)}
    if kind == "pereira":
        experiment, passage = coords["experiment"][1], coords["passage_index"][1]
        story = [f"{e}.{p}" for e, p in zip(experiment, passage)]
    else:
        old = list(coords["story"][1])
        total = {s: old.count(s) for s in set(old)}
        seen: dict = {}
        story = []
        for s in old:
            seen[s] = seen.get(s, 0) + 1
            story.append(f"{s}.{1 if seen[s] <= total[s] // 2 else 2}")
    coords["story"] = ("presentation", story)
    write_netcdf(NeuroidAssembly(assembly.values, coords=coords, dims=list(assembly.dims)), target)


if __name__ == "__main__":
    if sys.argv[1] == "--derive-stories":
        derive_stories(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main(sys.argv[1], sys.argv[2])
