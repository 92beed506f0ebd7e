"""Brain-Score Language's language-model benchmarks: SyntaxGym suites and Wikitext next-word accuracy.

Checked against Brain-Score Language 2.3.0 itself where it is installed (``/tmp/bsl``: its formula parser on every
formula of the miniature's suites and of its shipped suites, its Wikitext contexts, its HuggingfaceSubject read-outs
on a tiny GPT-2), and against planted ground truth (a model preferring the grammatical condition scores 1, the
swapped suite 0; predictions with known hits)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainalign.behaviour.accuracy_intervals import wilson_interval
from brainalign.behaviour.brainscore_readout import fed_tokens, next_word_predictions, part_surprisals, prepare_context
from brainalign.behaviour.lm_benchmarks import lm_score_file, readout_file, suite_accuracy, syntaxgym_rows
from brainalign.behaviour.prediction_formula import evaluate_formula, parse_formula
from brainalign.datasets import syntaxgym, wikitext
from brainalign.datasets.base import load_prepared
from brainalign.datasets.fetch import fetch_dataset
from brainalign.datasets.prepare import prepare_dataset
from brainalign.errors import BrainalignError
from tests.support.miniature.lm_files import WIKITEXT_ROWS, mini_suites, swapped_suite, write_syntaxgym, write_wikitext
from tests.support.miniature.server import MiniatureServer

BSL_PYTHON = Path("/tmp/bsl/bin/python")
BSL_SCRIPT = Path(__file__).parent / "support" / "bsl_lm.py"
needs_bsl = pytest.mark.skipif(not BSL_PYTHON.exists(), reason="Brain-Score Language 2.3.0 is not installed at /tmp/bsl")
GPT2_SPEC = {"name": "tiny", "kind": "decoder", "source": "local", "dtype": "float32"}


def bsl_has_pyparsing() -> bool:
    """Brain-Score's SyntaxGym parser needs pyparsing (its syntaxgym requirements.txt), which its install may lack."""
    return BSL_PYTHON.exists() and subprocess.run([str(BSL_PYTHON), "-c", "import pyparsing"], capture_output=True).returncode == 0


def run_bsl(job: dict, tmp_path: Path) -> dict:
    path = tmp_path / "bsl_job.json"
    path.write_text(json.dumps(job))
    done = subprocess.run([str(BSL_PYTHON), "-P", str(BSL_SCRIPT), str(path)], capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def random_totals(suite_formulas: list[str], rng, n: int = 6) -> list[dict]:
    """Region totals for every (condition, region) a formula names, some tied (the '=' tolerance) and some not."""
    import re

    keys = sorted({(c, int(r)) for f in suite_formulas for r, c in re.findall(r"\((\d+)\s*;%([A-Za-z0-9_-]+)%\)", f)}
                  | {(c, k) for f in suite_formulas for c in re.findall(r"\(\*\s*;%([A-Za-z0-9_-]+)%\)", f) for k in (1, 2)})
    out = []
    for i in range(n):
        base = rng.uniform(0, 20, len(keys))
        if i % 3 == 0:
            base[:] = base[0] + rng.uniform(-5e-4, 5e-4, len(keys))  # near ties
        out.append({key: float(v) for key, v in zip(keys, base)})
    return out


HAND_CASES = [
    ("(1;%a%) > (1;%b%)", {("a", 1): 2.0, ("b", 1): 1.0}, True),
    ("(1;%a%) - (1;%b%) > 0.5", {("a", 1): 2.0, ("b", 1): 1.0}, True),
    ("(1;%a%) - (1;%b%) - (2;%b%) > 0", {("a", 1): 3.0, ("b", 1): 1.0, ("b", 2): 1.5}, True),  # left-associative
    ("(1;%a%) = (1;%b%)", {("a", 1): 1.0005, ("b", 1): 1.0}, True),  # within 1e-3
    ("(1;%a%) = (1;%b%)", {("a", 1): 1.01, ("b", 1): 1.0}, False),
    ("(*;%a%) > 2.5", {("a", 1): 1.0, ("a", 2): 2.0, ("b", 1): 9.0}, True),
    ("(1;%a%) > 1 & (1;%b%) > 1 | (1;%a%) > 0", {("a", 1): 0.5, ("b", 1): 0.0}, True),  # (x & y) | z
    ("(1;%a%) > 1 & ((1;%b%) > 1 | (1;%a%) > 0)", {("a", 1): 0.5, ("b", 1): 0.0}, False),
    ("(1;%a%) -1 > -0.5", {("a", 1): 0.6}, True),
    ("(1;%a-b_c%) < 1e1", {("a-b_c", 1): 3.0}, True),
]


@pytest.mark.parametrize("formula,totals,expected", HAND_CASES)
def test_formula_hand_cases(formula, totals, expected):
    assert evaluate_formula(parse_formula(formula), totals) is expected


@pytest.mark.parametrize("formula", ["(1;%a%) >", "(1;%a%) > (1;%b%))", "((1;%a%) > 1", "(1;%a%) < (1;%b%) < 2",
                                     "(1;a) > 1", "__import__('os') > 1", "(1;%a%) * 2 > 1"])
def test_malformed_formula_is_one_line_error(formula):
    with pytest.raises(BrainalignError) as error:
        parse_formula(formula, where="suite.json: predictions[0]")
    assert "\n" not in str(error.value) and "suite.json: predictions[0]" in str(error.value)


def test_formula_naming_a_missing_region_is_one_line_error():
    with pytest.raises(BrainalignError, match="region .*'z', 4"):
        evaluate_formula(parse_formula("(4;%z%) > 1"), {("a", 1): 0.0}, where="x")


@needs_bsl
@pytest.mark.skipif(not bsl_has_pyparsing(), reason="/tmp/bsl lacks pyparsing, which Brain-Score's SyntaxGym parser needs")
def test_formulas_match_brainscore_parser(tmp_path):
    """Every formula of the miniature's suites, their swapped twins, the hand cases and every suite Brain-Score
    ships, on random and near-tied region totals: the same truth values as Brain-Score's sg_prediction."""
    rng = np.random.default_rng(0)
    formulas = [p["formula"] for s in mini_suites().values() for p in s["predictions"]]
    formulas += [p["formula"] for p in swapped_suite(mini_suites()["number_prep"], {"match": "mismatch"})["predictions"]]
    suites_dir = "python3*/site-packages/brainscore_language/benchmarks/syntaxgym/suites/syntaxgym-2020"
    shipped = sorted(Path("/tmp/bsl/lib").glob(f"{suites_dir}/*.json"))
    assert len(shipped) == 31
    formulas += [p["formula"] for path in shipped for p in json.loads(path.read_text())["predictions"]]
    jobs = [(f, random_totals([f], rng)) for f in formulas] + [(f, [t]) for f, t, _ in HAND_CASES]
    result = run_bsl({"formulas": [(f, [[(c, r, v) for (c, r), v in t.items()] for t in ts]) for f, ts in jobs]}, tmp_path)
    ours = [[evaluate_formula(parse_formula(f), t) for t in ts] for f, ts in jobs]
    assert ours == result["formulas"]
    assert any(not all(r) for r in ours) and any(any(r) for r in ours)  # both outcomes occur


def _prepared_syntaxgym(tmp_path, suites=None):
    raw = tmp_path / "raw_sg"
    write_syntaxgym(raw)
    spec = {"name": "syntaxgym", "adapter": "syntaxgym", "options": {"suites": suites or list(mini_suites())}}
    out = tmp_path / "sg"
    prepare_dataset(spec, raw, out)
    return load_prepared(out), out


def test_planted_grammatical_preference_scores_one_and_swapped_zero(tmp_path):
    """A 'model' whose read-out makes every ungrammatical region 3 bits more surprising: every item of every suite
    correct; with each suite's conditions exchanged in its formulas: none."""
    ds, _ = _prepared_syntaxgym(tmp_path)
    bad = {"mismatch", "no-comma", "bad"}
    rows = []
    for sid, cond, regions in zip(ds.stimuli["stimulus_id"], ds.stimuli["condition"], ds.stimuli["regions"]):
        for k, content in enumerate(json.loads(regions), 1):
            rows.append({"stimulus_id": sid, "region": k,
                         "surprisal_bits": np.nan if k == 1 else 1.0 + 3.0 * (cond in bad) + 0.1 * len(content)})
    readout = pd.DataFrame(rows)
    scores = {r["metric"]: r["raw_r"] for r in syntaxgym_rows(readout, ds, "m", "syntaxgym")}
    assert scores == {"accuracy_number_prep": 1.0, "accuracy_npz_obj": 1.0, "accuracy_cleft": 1.0, "accuracy": 1.0}
    pairs = {"number_prep": {"match": "mismatch"}, "npz_obj": {"comma": "no-comma"}, "cleft": {"good": "bad"}}
    for key, suite in ds.meta["suites"].items():
        twin = swapped_suite({"predictions": [{"formula": f} for f in suite["predictions"]]}, pairs[key])
        items = {}
        for r in readout.merge(ds.stimuli, on="stimulus_id").itertuples():
            if r.suite == key:
                items.setdefault(r.item, {})[(r.condition, r.region)] = 0.0 if np.isnan(r.surprisal_bits) else r.surprisal_bits
        accuracy, correct = suite_accuracy({"predictions": [p["formula"] for p in twin["predictions"]]}, [items[i] for i in sorted(items)])
        assert accuracy == 0.0 and len(correct) == 4


def test_suites_option_selects_and_fetches_only_those(tmp_path):
    raw = tmp_path / "served" / "data" / "syntaxgym"
    info = write_syntaxgym(raw)
    spec = {"name": "syntaxgym", "adapter": "syntaxgym", "options": {"suites": ["npz_obj", "cleft"], "checksums": info["checksums"]}}
    with MiniatureServer(tmp_path / "served") as server:
        spec["base_url"] = f"{server.url}/data/syntaxgym"
        fetch_dataset(spec, tmp_path / "raw")
    fetched = json.loads((tmp_path / "raw" / "fetch.json").read_text())
    assert sorted(f["path"] for f in fetched["files"]) == ["cleft.json", "npz_obj.json"]
    assert all(f["verified"] for f in fetched["files"])
    prepare_dataset(spec, tmp_path / "raw", tmp_path / "sg")
    ds = load_prepared(tmp_path / "sg")
    assert sorted(ds.meta["suites"]) == ["cleft", "npz_obj"] and ds.kind == "language"
    assert len(ds.stimuli) == 16 and ds.responses.shape == (0, 16, 0)
    assert len(syntaxgym.remote_files({})) == 31
    with pytest.raises(BrainalignError, match="unknown suite"):
        syntaxgym.selected_suites({"suites": ["nope"]})


@pytest.mark.parametrize("damage,message", [
    (lambda s: "{not json", "not valid JSON"),
    (lambda s: json.dumps({**s, "meta": {**s["meta"], "metric": "mode"}}), "meta.metric"),
    (lambda s: json.dumps({**s, "predictions": [{"type": "formula", "formula": "(2;%match%) >"}]}), "invalid prediction formula"),
    (lambda s: json.dumps({k: v for k, v in s.items() if k != "items"}), "expected a SyntaxGym suite"),
    (lambda s: json.dumps({**s, "region_meta": {"1": "a", "2": "b"}}), "expected 2 regions"),
])
def test_bad_suite_json_is_one_line_error(tmp_path, damage, message):
    raw = tmp_path / "raw"
    write_syntaxgym(raw)
    suite = mini_suites()["number_prep"]
    (raw / "number_prep.json").write_text(damage(suite))
    with pytest.raises(BrainalignError, match=message) as error:
        prepare_dataset({"name": "sg", "adapter": "syntaxgym", "options": {"suites": ["number_prep"]}}, raw, tmp_path / "out")
    assert "\n" not in str(error.value) and "number_prep.json" in str(error.value)


def _served_wikitext(tmp_path):
    served = tmp_path / "served"
    info = write_wikitext(served / "data" / "wikitext")
    spec = {"name": "wikitext", "adapter": "wikitext", "options": {"checksums": info["checksums"], "n_rows": info["rows"]}}
    with MiniatureServer(served) as server:
        spec["base_url"] = f"{server.url}/data/wikitext"
        fetch_dataset(spec, tmp_path / "raw_wt")
    prepare_dataset(spec, tmp_path / "raw_wt", tmp_path / "wt")
    return load_prepared(tmp_path / "wt"), spec


def test_wikitext_fetch_prepare_and_planted_accuracy(tmp_path):
    """Fetched through the local server with its checksum; contexts rebuilt from the prepared lines; predictions
    that hit exactly the targets at planted positions give that fraction."""
    ds, spec = _served_wikitext(tmp_path)
    rows = wikitext.read_test_rows(tmp_path / "raw_wt" / wikitext.ZIP)
    assert rows == [r if r.strip() else "" for r in WIKITEXT_ROWS]
    contexts, targets, _ = wikitext.build_contexts(rows)
    again, again_targets, owners = wikitext.build_contexts(ds.stimuli["text"].tolist())
    assert (again, again_targets) == (contexts, targets)
    assert contexts[:3] == ["=", "Alice", "Alice was"] and targets[:3] == ["Alice", "was", "beginning"]
    hits = np.arange(len(targets)) % 4 == 0
    readout = pd.DataFrame({"stimulus_id": [ds.stimulus_ids[o] for o in owners], "context": contexts, "target": targets,
                            "prediction": [t if h else t + "x" for t, h in zip(targets, hits)]})
    path = tmp_path / "readout.tsv"
    readout.to_csv(path, sep="\t", index=False)
    path.with_suffix(".json").write_text(json.dumps({"applicable": True}))
    lm_score_file(path, tmp_path / "wt", tmp_path / "score.csv", model="m", dataset="wikitext")
    score = pd.read_csv(tmp_path / "score.csv")
    assert score["raw_r"].tolist() == [pytest.approx(hits.mean())] and score["n"].tolist() == [len(targets)]
    spec["options"]["checksums"] = {wikitext.ZIP: "sha256:" + "0" * 64}
    with MiniatureServer(tmp_path / "served") as server:
        spec["base_url"] = f"{server.url}/data/wikitext"
        with pytest.raises(BrainalignError, match="sha256 mismatch"):
            fetch_dataset(spec, tmp_path / "raw_bad")


@needs_bsl
def test_wikitext_contexts_match_brainscore(tmp_path):
    ours = wikitext.build_contexts([r if r.strip() else "" for r in WIKITEXT_ROWS])[:2]
    theirs = run_bsl({"wikitext_rows": [r if r.strip() else "" for r in WIKITEXT_ROWS]}, tmp_path)
    assert list(ours) == [theirs["contexts"], theirs["targets"]]


@needs_bsl
def test_readouts_match_brainscore_huggingface_subject(tmp_path, tiny_gpt2_dir):
    """Region surprisals (every miniature suite's sentences, plus a text whose parts re-tokenise across the
    boundary) and next-word predictions over the Wikitext contexts read as one text (longer than the tiny model's
    256 positions, so the cache drops entries) equal Brain-Score's HuggingfaceSubject on the same tiny GPT-2."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2_dir)
    texts = [[r["content"] for r in c["regions"]] for s in mini_suites().values() for item in s["items"][:2] for c in item["conditions"]]
    texts.append(["the", "lazy dog", ",", "she said"])
    contexts, _, _ = wikitext.build_contexts([r if r.strip() else "" for r in WIKITEXT_ROWS])
    assert sum(map(len, fed_tokens(tokenizer, contexts))) > 256
    theirs = run_bsl({"model": str(tiny_gpt2_dir), "reading_texts": texts, "next_word_parts": contexts}, tmp_path)
    ours = part_surprisals(model, tokenizer, texts)
    compared = 0
    for parts, mine, bs in zip(texts, ours, theirs["reading"]):
        if isinstance(bs, str):  # Brain-Score 2.3.0's cached forward fails on a part adding no tokens (empty region)
            assert any(p.strip() == "" for p in parts) and np.isnan(mine[[p.strip() == "" for p in parts]]).all()
            continue
        np.testing.assert_allclose(mine, np.array([np.nan if v is None else v for v in bs]), rtol=1e-5, atol=1e-4)
        compared += 1
    assert compared >= len(texts) // 2
    assert next_word_predictions(model, tokenizer, contexts) == theirs["next_word"]


def test_readout_file_and_scores_end_to_end(tmp_path, tiny_gpt2_dir):
    """Prepared SyntaxGym -> the tiny GPT-2's read-out -> accuracy rows; an encoder gets a table that says why."""
    _, sg = _prepared_syntaxgym(tmp_path)
    readout_file(GPT2_SPEC, tiny_gpt2_dir, sg, tmp_path / "ro.tsv", device="cpu", progress=False)
    table = pd.read_csv(tmp_path / "ro.tsv", sep="\t")
    assert len(table) == 3 * 8 + 4 * 8 + 2 * 8
    lm_score_file(tmp_path / "ro.tsv", sg, tmp_path / "scores.csv", model="tiny", dataset="syntaxgym")
    scores = pd.read_csv(tmp_path / "scores.csv").set_index("metric")
    suites = scores.drop("accuracy")
    assert scores.loc["accuracy", "raw_r"] == pytest.approx(suites["raw_r"].mean())
    for suite in suites.itertuples():  # each suite's interval draws its items (Wilson)
        expected = wilson_interval(round(suite.raw_r * suite.n), int(suite.n))
        np.testing.assert_allclose((suite.ci_low, suite.ci_high), expected, atol=1e-12)
    mean = scores.loc["accuracy"]
    assert mean["ci_low"] <= mean["raw_r"] <= mean["ci_high"] and mean["ci_high"] - mean["ci_low"] > 0
    assert (scores["ceiling"] == 1).all() and (scores["protocol"] == "brainscore-2023").all()
    readout_file({**GPT2_SPEC, "kind": "encoder"}, tiny_gpt2_dir, sg, tmp_path / "enc.tsv", progress=False)
    assert json.loads((tmp_path / "enc.json").read_text())["applicable"] is False
    lm_score_file(tmp_path / "enc.tsv", sg, tmp_path / "enc.csv", model="enc", dataset="syntaxgym")
    assert pd.read_csv(tmp_path / "enc.csv").empty


def test_prepare_context_matches_brainscore_rules():
    assert prepare_context(["As the criminal", "shot", "", "the woman", ",", "yelled ."]) == "As the criminal shot the woman, yelled."
    assert prepare_context(["  ", "a"]) == "a"


def _tokenizers(smollm2_dir):
    """A byte-level BPE (GPT-2's kind), the real SmolLM2 tokenizer, and a byte-level BPE whose post-processor appends
    an end token (its cut never checks out, so every step tokenises the whole text)."""
    from tokenizers import processors
    from transformers import AutoTokenizer

    from tests.support.tokenizers import byte_level_tokenizer

    appending = byte_level_tokenizer()
    end = appending.convert_tokens_to_ids("<|endoftext|>")
    appending._tokenizer.post_processor = processors.TemplateProcessing(single="$A <|endoftext|>", special_tokens=[("<|endoftext|>", end)])
    return {"byte-level": byte_level_tokenizer(), "smollm2": AutoTokenizer.from_pretrained(smollm2_dir), "appends": appending}


@pytest.mark.slow
def test_growing_context_equals_retokenising_the_whole_text(smollm2_dir, repo_root):
    """The growing context (strings and ids) equals Brain-Score's prepare_context + whole-text tokenisation after
    every part: Wikitext's line prefixes, Natural Stories word by word, blank parts and parts that start with
    punctuation; only the first few parts (and every part of the tokenizer whose cut never checks out) are
    tokenised whole."""
    import pandas as pd

    from brainalign.behaviour.brainscore_readout import GrowingContext

    contexts, _, _ = wikitext.build_contexts([r if r.strip() else "" for r in WIKITEXT_ROWS])
    words = pd.read_csv(repo_root / "resources" / "data" / "naturalstories" / "all_stories.tok", sep="\t")["word"].astype(str).tolist()
    streams = {"wikitext": contexts + ["", "   ", ". and", ", then", "été café !", "said :", "3 @.@ 5", "end ."],
               "words": words[:300] + ["", ".", ","] + words[300:400]}
    for name, tokenizer in _tokenizers(smollm2_dir).items():
        for stream, parts in streams.items():
            context = GrowingContext(tokenizer)
            for i, part in enumerate(parts):
                ids = list(context.add(part))
                assert context.text == prepare_context(parts[: i + 1]), (name, stream, i)
                assert ids == list(tokenizer(prepare_context(parts[: i + 1]))["input_ids"]), (name, stream, i)
            if name == "appends":
                assert context.full_tokenisations == sum(part.strip() != "" for part in parts)  # blank parts add nothing
            else:
                assert context.full_tokenisations <= GrowingContext.WORDS_BACK + 1, (name, stream)
