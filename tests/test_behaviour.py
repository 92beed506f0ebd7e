"""Surprisal: exactness against a direct log-softmax, word/token alignment, exclusions, lags, ceilings, and the
real SmolLM2 against its untrained control on Natural Stories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import brainalign.behaviour.nll as nll
from brainalign.behaviour.scoring import behaviour_scores, headline_measure, split_half_rt_ceiling
from brainalign.behaviour.surprisal import token_surprisals, word_surprisals
from brainalign.datasets.base import PreparedDataset
from brainalign.extraction.alignment import token_word_index, words_to_text
from brainalign.models.session import load_model

TRICKY = ["She", "didn't", "say", "\"3.5", "million\"", "—", "naïve", "café-goers,", "'quoted'", "1999."]


@pytest.fixture(scope="module")
def tiny(tiny_gpt2_dir):
    spec = {"name": "tiny", "source": "local", "path": str(tiny_gpt2_dir), "kind": "decoder"}
    return load_model(spec, tiny_gpt2_dir, device="cpu")


def direct_nats(model, ids):
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0], -1)
    return np.array([-float(logprobs[i - 1, ids[i]]) for i in range(1, len(ids))])


def test_every_token_belongs_to_the_word_it_spells(tiny):
    text, spans = words_to_text(TRICKY)
    encoded = tiny.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    owner = token_word_index(encoded["offset_mapping"], spans)
    assert owner.min() == 0 and owner.max() == len(TRICKY) - 1 and (np.diff(owner) >= 0).all()  # every token assigned, in order
    for (a, b), w in zip(encoded["offset_mapping"], owner):
        piece = text[a:b].strip()
        if piece:
            assert piece in TRICKY[w], (piece, TRICKY[w])
    assert set(owner) == set(range(len(TRICKY)))  # every word, including unicode ones, has a token


def test_word_surprisal_sums_the_direct_token_computation(tiny):
    bits, counts, nats = word_surprisals(tiny.model, tiny.tokenizer, TRICKY, prepend_text="<|endoftext|>")
    ids = tiny.tokenizer("<|endoftext|>" + " ".join(TRICKY), add_special_tokens=False)["input_ids"]
    reference = direct_nats(tiny.model, ids)
    np.testing.assert_allclose(nats, reference, atol=1e-4)
    assert abs(np.nansum(bits) * np.log(2) - reference.sum()) < 1e-4
    assert counts.sum() == len(ids) - 1
    no_bos, _, _ = word_surprisals(tiny.model, tiny.tokenizer, TRICKY)
    assert np.isnan(no_bos[0]) and np.isfinite(no_bos[1:]).all()  # nothing to condition the first word on


def test_length_batches_keep_the_order_and_the_budget():
    lengths = [5, 3, 9, 3, 40, 7, 2]
    batches = nll.length_batches(lengths, batch_size=3, max_batch_tokens=20)
    assert [i for batch in batches for i in batch] == sorted(range(len(lengths)), key=lambda i: lengths[i])  # stable
    assert all(len(b) <= 3 and (len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 20) for b in batches)
    assert [4] in batches  # longer than the budget: alone
    assert nll.length_batches(lengths, batch_size=16) == [sorted(range(len(lengths)), key=lambda i: lengths[i])]


@pytest.mark.parametrize("prepend", ["<|endoftext|>", None])
def test_short_streams_read_together_equal_one_pass_each(tiny, prepend):
    """Sentences read in padded batches (surprisal_file's short streams) give each one's own forward pass values;
    a stream longer than the short-window limit is left to word_surprisals."""
    from brainalign.behaviour.surprisal import SHORT_STREAM_TOKENS, short_stream_surprisals

    sentences = [TRICKY, ["Alice"], "The cat sat on the mat .".split(), TRICKY[:4] * 3, ["a", "b"] * 3,
                 "long " .split() * (SHORT_STREAM_TOKENS + 5)]
    got = short_stream_surprisals(tiny.model, tiny.tokenizer, sentences, prepend, max_context_tokens=2048)
    assert sorted(got) == [0, 1, 2, 3, 4]
    for index, (bits, counts, nats) in got.items():
        expected_bits, expected_counts, expected_nats = word_surprisals(tiny.model, tiny.tokenizer, sentences[index], prepend)
        np.testing.assert_array_equal(counts, expected_counts)
        np.testing.assert_array_equal(np.isnan(nats), np.isnan(expected_nats))
        np.testing.assert_allclose(nats, expected_nats, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(bits, expected_bits, atol=1e-5, rtol=1e-5)
    assert np.isnan(got[1][0][0]) == (prepend is None)  # one word and no prefix: nothing to condition it on


def test_sliding_windows_keep_the_minimum_context(tiny):
    words = ("Alice was beginning to get very tired of sitting by her sister on the bank . " * 5).split()
    text = " ".join(words)
    ids, _, nats = token_surprisals(tiny.model, tiny.tokenizer, text, "<|endoftext|>", max_context_tokens=41, min_context_tokens=10)
    prefix = tiny.tokenizer("<|endoftext|>", add_special_tokens=False)["input_ids"]
    full = direct_nats(tiny.model, prefix + ids)
    np.testing.assert_allclose(nats[:40], full[:40], atol=1e-4)  # first window: the whole preceding text
    # token 45 is scored in the window starting at token 30: its context is tokens 30..44 after the prefix
    window = direct_nats(tiny.model, prefix + ids[30:46])
    assert abs(nats[45] - window[-1]) < 1e-4


def reading_dataset(surprisal_like, rng, n_subjects=20, lag=0, reliability_noise=60.0):
    n = len(surprisal_like)
    shifted = np.roll(surprisal_like, lag)
    base = 300 + 20 * shifted
    rts = base[None] + reliability_noise * rng.standard_normal((n_subjects, n))
    words = [f"w{i}" for i in range(n)]
    stimuli = pd.DataFrame({"stimulus_id": words, "text": words, "group": "story", "position": range(n),
                            "sentence_id": [f"s{i // 10}" for i in range(n)], "word_in_sentence": [i % 10 + 1 for i in range(n)]})
    return PreparedDataset(stimuli, rts[:, :, None].astype(np.float32), [f"p{i}" for i in range(n_subjects)], ["rt"],
                           meta={"kind": "reading", "name": "toy", "group_averaged": False})


def test_lag_analysis_finds_a_planted_spillover():
    rng = np.random.default_rng(0)
    surprisal = rng.gamma(2.0, 2.0, 2000)
    details = behaviour_scores(surprisal, reading_dataset(surprisal, rng, lag=1), {"n_bootstrap": 50})
    entry = details["measures"]["rt"]
    assert entry["best_lag"] == "-1"  # reading time of word i tracks the surprisal of word i-1
    aligned = behaviour_scores(surprisal, reading_dataset(surprisal, rng, lag=0), {"n_bootstrap": 50})["measures"]["rt"]
    assert aligned["best_lag"] == "0" and aligned["r"] > 0.5 and aligned["p"] < 1e-10
    assert aligned["ci_low"] < aligned["r"] < aligned["ci_high"]
    assert aligned["exclusions"]["first_in_sentence"] == 200 and aligned["exclusions"]["last_in_sentence"] == 200


def test_the_r_interval_resamples_whole_sentences_inside_stories():
    """The default protocol's r CI draws stories, then sentences inside them, never single words: each resample's r
    is the r of the expanded words; with noise the words of a sentence share, it is wider than a word bootstrap."""
    from brainalign.behaviour.scoring import unit_pearson_ci
    from brainalign.bootstrap import unit_weights

    rng = np.random.default_rng(6)
    sentence = np.repeat(np.arange(60), 10)
    units, stories = np.array([f"s{j:03d}" for j in sentence]), np.array([f"t{j // 20}" for j in sentence])
    shared = rng.standard_normal(60)[sentence]
    x, y = shared + 0.5 * rng.standard_normal(600), 0.5 * shared + rng.standard_normal(600)
    low, high = unit_pearson_ci(x, y, units, 300, seed=2, groups=stories)
    expanded = []
    for weights in unit_weights(60, 300, 2, np.array([f"t{j // 20}" for j in range(60)])):
        words = np.repeat(np.arange(600), weights[sentence].astype(int))
        expanded.append(np.corrcoef(x[words], y[words])[0, 1])
    assert (low, high) == pytest.approx(tuple(np.percentile(expanded, [2.5, 97.5])), rel=1e-9)
    words = [np.corrcoef(x[i], y[i])[0, 1] for i in (rng.integers(0, 600, 600) for _ in range(300))]
    assert high - low > 1.5 * np.subtract(*np.percentile(words, [97.5, 2.5]))
    surprisal = rng.gamma(2.0, 2.0, 200)
    entry = behaviour_scores(surprisal, reading_dataset(surprisal, rng), {"n_bootstrap": 50, "regression": False})["measures"]["rt"]
    assert entry["ci_resamples"] == "groups, then sentences within each (two-level)" and entry["ci_low"] < entry["r"] < entry["ci_high"]


def test_split_half_rt_ceiling_matches_known_reliability():
    rng = np.random.default_rng(1)
    n_subjects, noise = 20, 2.0
    signal = rng.standard_normal(5000)
    rts = signal[None] + noise * rng.standard_normal((n_subjects, 5000))
    half = 1 / (1 + noise**2 / (n_subjects / 2))
    assert abs(split_half_rt_ceiling(rts) - 2 * half / (1 + half)) < 0.02


def test_unknown_exclusion_step_is_a_clear_error():
    from brainalign.errors import BrainalignError

    rng = np.random.default_rng(2)
    surprisal = rng.gamma(2.0, 2.0, 100)
    with pytest.raises(BrainalignError, match="config.behaviour.exclusions: unknown steps \\['nope'\\]"):
        behaviour_scores(surprisal, reading_dataset(surprisal, rng), {"exclusions": ["nope"], "n_bootstrap": 0})


# ----------------------------------------------------------------------------------------------- headline measure
#: each reading adapter's measures and the one its headline rows report (the table scoring kept before the adapters
#: declared HEADLINE_MEASURE themselves)
READING_MEASURES = {"naturalstories": (["rt_mean", "rt_gmean"], "rt_mean"), "futrell2018": (["rt"], "rt"),
                    "futrell2018_assembly": (["rt"], "rt"),
                    "frank2013": (["first_fixation", "first_pass", "go_past"], "first_pass")}


def test_reading_adapters_declare_their_headline_measure():
    from brainalign.datasets.registry import ADAPTERS

    for adapter, (measures, headline) in READING_MEASURES.items():
        assert ADAPTERS[adapter].KIND == "reading" and ADAPTERS[adapter].HEADLINE_MEASURE == headline
        assert headline_measure({"name": adapter, "adapter": adapter}, measures) == headline


@pytest.mark.parametrize("config_file", ["config/config.yaml", "config/paper.yaml", "tests/data/config_small.yaml",
                                         "tests/data/config_slurm.yaml"])
def test_the_configs_reading_datasets_keep_their_headline_measure(config_file, repo_root):
    """The measure is looked up by adapter, not by the dataset's name (which may differ): every reading dataset
    of the shipped configs resolves to the measure its adapter's headline was before."""
    import yaml

    datasets = yaml.safe_load((repo_root / config_file).read_text()).get("datasets") or []
    reading = [d for d in datasets if d["adapter"] in READING_MEASURES]
    for dataset in reading:
        measures, headline = READING_MEASURES[dataset["adapter"]]
        assert headline_measure({"name": dataset["name"], "adapter": dataset["adapter"]}, measures) == headline
    assert reading
    # a dataset named apart from its adapter still takes the adapter's measure
    assert headline_measure({"name": "my_frank_subset", "adapter": "frank2013"}, READING_MEASURES["frank2013"][0]) == "first_pass"


def test_an_adapter_without_a_headline_measure_is_an_error_unless_there_is_one_measure(monkeypatch):
    import types

    from brainalign.datasets import registry
    from brainalign.errors import BrainalignError

    monkeypatch.setitem(registry.ADAPTERS, "toy_reading", types.ModuleType("toy_reading"))
    meta = {"name": "toy", "adapter": "toy_reading", "kind": "reading"}
    assert headline_measure(meta, ["rt"]) == "rt"  # one measure: nothing to choose
    message = r"adapter 'toy_reading' declares no HEADLINE_MEASURE and the dataset has 2 reading measures \(rt, gaze\)"
    with pytest.raises(BrainalignError, match=message):
        headline_measure(meta, ["rt", "gaze"])
    rng = np.random.default_rng(3)
    surprisal = rng.gamma(2.0, 2.0, 100)
    one = reading_dataset(surprisal, rng)
    two = PreparedDataset(one.stimuli, np.concatenate([one.responses, one.responses], axis=2), one.subjects, ["rt", "gaze"],
                          meta=dict(one.meta, adapter="toy_reading"))
    with pytest.raises(BrainalignError, match=message):  # not the first measure, silently
        behaviour_scores(surprisal, two, {"n_bootstrap": 0})
    assert behaviour_scores(surprisal, two, {"n_bootstrap": 0, "regression": False}, measure="gaze")["headline_measure"] == "gaze"


@pytest.mark.slow
def test_real_smollm2_tracks_reading_times_and_beats_its_untrained_control(smollm2_dir, model_specs, resources_data, tmp_path):
    from scipy.stats import pearsonr

    from brainalign.datasets import fetch_dataset, load_prepared, prepare_dataset

    spec = {"name": "ns", "adapter": "naturalstories", "local_dir": str(resources_data / "naturalstories"), "options": {"subset": 1}}
    fetch_dataset(spec, tmp_path / "raw")
    prepare_dataset(spec, tmp_path / "raw", tmp_path / "ns")
    story = load_prepared(tmp_path / "ns")
    words = story.stimuli["text"].tolist()
    trained = load_model(model_specs["smollm2-135m-instruct"], smollm2_dir, device="cpu")
    control = load_model(model_specs["smollm2-135m-untrained"], smollm2_dir, device="cpu")
    prepend = "<|endoftext|>"
    window = {"max_context_tokens": 512, "min_context_tokens": 256}
    bits, _, nats = word_surprisals(trained.model, trained.tokenizer, words, prepend, window)
    _, _, control_nats = word_surprisals(control.model, control.tokenizer, words, prepend, window)
    perplexity, control_perplexity = np.exp(np.nanmean(nats)), np.exp(np.nanmean(control_nats))
    assert perplexity < 60 and control_perplexity > 100 * perplexity
    rt = story.responses[0, :, story.neuroids.index("rt_mean")]
    ok = np.isfinite(bits) & np.isfinite(rt)
    result = pearsonr(bits[ok], rt[ok])
    assert result.statistic > 0.15 and result.pvalue < 1e-6
    # the shipped per-word means may be shifted by one word (PROVENANCE): lags -1/0/+1 are all scored, and on the
    # real data with a real model the unshifted alignment (lag 0) is the one that fits best
    lags = behaviour_scores(bits, story, {"n_bootstrap": 0})["measures"]["rt_mean"]
    assert lags["best_lag"] == "0", lags


def test_sliding_windows_equal_the_overlapping_ones_when_the_text_fits(tiny):
    from brainalign.extraction.alignment import word_token_ranges

    overlapping, counts, _ = word_surprisals(tiny.model, tiny.tokenizer, TRICKY, prepend_text="<|endoftext|>")
    sliding, _, _ = word_surprisals(tiny.model, tiny.tokenizer, TRICKY, prepend_text="<|endoftext|>", options={"context_window": "sliding"})
    np.testing.assert_allclose(sliding, overlapping, atol=1e-5)
    ranges = word_token_ranges(np.repeat(np.arange(len(TRICKY)), counts), len(TRICKY))
    assert (ranges[:, 1] - ranges[:, 0] == counts).all() and ranges[0, 0] == 0 and (ranges[1:, 0] == ranges[:-1, 1]).all()


def test_unknown_context_window_is_a_clear_error(tiny):
    from brainalign.errors import BrainalignError

    with pytest.raises(BrainalignError, match="config.behaviour.context_window: unknown 'nope'"):
        word_surprisals(tiny.model, tiny.tokenizer, TRICKY, options={"context_window": "nope"})


def test_overlapping_windows_compute_logits_only_where_read_with_the_same_surprisals(tiny_gpt2_dir, monkeypatch):
    """A model without a plain LM head (here GPT-2 treated as one) runs whole with ``logits_to_keep``: the LM head
    and log-softmax see only each window's scored positions; the surprisals are those of full logits, bit for bit."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    monkeypatch.setattr(nll, "PLAIN_HEAD_MODEL_TYPES", ())

    model = GPT2LMHeadModel.from_pretrained(tiny_gpt2_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2_dir)
    kept = []

    class FullLogits(torch.nn.Module):  # the same model without logits_to_keep in its signature: every position
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids):
            return self.inner(input_ids=input_ids)

    real_forward = model.forward

    def recording_forward(*args, **kwargs):
        kept.append(kwargs.get("logits_to_keep"))
        return real_forward(*args, **kwargs)

    text = " ".join(f"word{i % 17} and" for i in range(120))
    full = token_surprisals(FullLogits(model), tokenizer, text, None, max_context_tokens=64, min_context_tokens=24)[2]
    model.forward = recording_forward
    model.forward.__signature__ = __import__("inspect").signature(real_forward)
    partial = token_surprisals(model, tokenizer, text, None, max_context_tokens=64, min_context_tokens=24)[2]
    assert np.array_equal(full, partial, equal_nan=True)
    assert len(kept) > 2 and kept[0] == 64 and all(k is not None and k < 64 for k in kept[1:])


def _story_dataset(folder, n_words):
    from brainalign.datasets.base import write_prepared

    words = (("the river ran past the old mill and the miller's dog barked at every boat ") * 200).split()[:n_words]
    stimuli = pd.DataFrame({"stimulus_id": [f"w{i}" for i in range(n_words)], "text": words, "group": ["story"] * n_words,
                            "position": range(n_words), "sentence": 0})
    meta = {"name": "story", "kind": "reading", "description": "", "source": "", "licence": "", "provenance": "",
            "context": "story", "group_averaged": True}
    write_prepared(PreparedDataset(stimuli, np.zeros((1, n_words, 1), np.float32), ["average"], ["rt"], meta=meta), folder)
    return folder


def test_the_default_window_reads_a_story_in_one_pass_equal_to_a_plain_forward(tiny):
    """With the default window (2048 tokens) a story that fits is read in one forward pass: every token's surprisal
    equals a plain forward pass over the prefix and the whole story (bench_surprisal.py's check, in small)."""
    words = (("the river ran past the old mill and the dog barked ") * 3).split()
    bits, counts, nats = word_surprisals(tiny.model, tiny.tokenizer, words, prepend_text="<|endoftext|>")
    ids = tiny.tokenizer(words_to_text(words)[0], add_special_tokens=False)["input_ids"]
    prefix = tiny.tokenizer("<|endoftext|>", add_special_tokens=False)["input_ids"]
    assert len(prefix) + len(ids) < 256  # the tiny model's position table: one window
    np.testing.assert_allclose(nats, direct_nats(tiny.model, prefix + ids)[len(prefix) - 1:], atol=1e-6)


def test_a_window_beyond_the_models_positions_is_capped_to_them(tiny_gpt2_dir, tmp_path):
    """The tiny GPT-2 reads 256 positions: the default 2048-token window is capped to 256 (recorded in the JSON),
    giving the same surprisals as asking for 256 (without the cap, the forward pass would fail)."""
    import json

    from brainalign.behaviour.surprisal import surprisal_file

    spec = {"name": "tiny", "source": "local", "path": str(tiny_gpt2_dir), "kind": "decoder"}
    dataset = _story_dataset(tmp_path / "story", 600)
    surprisal_file(spec, tiny_gpt2_dir, dataset, tmp_path / "default.tsv", progress=False)
    surprisal_file(spec, tiny_gpt2_dir, dataset, tmp_path / "256.tsv", {"max_context_tokens": 256}, progress=False)
    assert (tmp_path / "default.tsv").read_bytes() == (tmp_path / "256.tsv").read_bytes()
    summary = json.loads((tmp_path / "default.json").read_text())
    assert summary["max_context_tokens"] == 256 and summary["context_limited_by_model"] is True
    assert "context_limited_by_model" not in json.loads((tmp_path / "256.json").read_text())
    assert pd.read_csv(tmp_path / "default.tsv", sep="\t")["surprisal_bits"].notna().sum() > 500


def _tiny_causal_lms():
    """Tiny random causal LMs of the three plain-head families the default and the paper read (GPT-2's Conv1D,
    Llama's tied head, Gemma 3 with a logit soft-cap), loaded in float32."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    small = {"vocab_size": 5003, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "max_position_embeddings": 128}
    gemma = Gemma3ForCausalLM(Gemma3TextConfig(**small, head_dim=8, final_logit_softcapping=5.0, sliding_window=16)).eval()
    return {"gpt2": GPT2LMHeadModel(GPT2Config(vocab_size=5003, n_positions=128, n_embd=32, n_layer=2, n_head=2)).eval(),
            "llama": LlamaForCausalLM(LlamaConfig(**small, tie_word_embeddings=True)).eval(), "gemma3": gemma}


@pytest.mark.parametrize("family", ["gpt2", "llama", "gemma3"])
def test_the_sliced_lm_head_gives_the_log_softmax_of_the_full_logits(family, monkeypatch):
    """position_nlls runs the backbone, then the read positions' hidden states through the LM head in vocabulary
    slices with a running log-sum-exp (soft-capped where the model caps its logits): equal to the log-softmax of the
    model's own full logits, on padded batches too."""
    model = _tiny_causal_lms()[family]
    assert nll.plain_head(model) is not None
    monkeypatch.setattr(nll, "HEAD_SLICE_ROWS", 1000)  # six slices, the last one short
    monkeypatch.setattr(nll, "HEAD_BLOCK_POSITIONS", 4)  # and the positions in blocks
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 5003, (3, 20), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0  # a right-padded row
    rows = [0, 0, 1, 1, 2, 2, 2]
    positions = [0, 19, 3, 14, 5, 6, 18]
    targets = torch.randint(0, 5003, (len(rows),), generator=generator).tolist()
    targets[0] = 5002  # the last word of the vocabulary
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.double(), -1)
    expected = np.array([-float(logprobs[r, p, t]) for r, p, t in zip(rows, positions, targets)])
    forwards = []
    monkeypatch.setattr(model, "forward", lambda *a, **k: forwards.append(1))  # the plain path never runs the whole model
    got = nll.position_nlls(model, {"input_ids": ids, "attention_mask": mask}, rows, positions, targets)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5)
    assert not forwards


def test_story_surprisal_from_the_sliced_head_equals_full_logits(tiny_gpt2_dir):
    """token_surprisals on a plain-head model equals the same model run whole (every position's logits) to float
    rounding, and takes only the scored positions through the head."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(tiny_gpt2_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2_dir)

    class FullLogits(torch.nn.Module):  # no config, no logits_to_keep: the whole model, every position
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids):
            return self.inner(input_ids=input_ids)

    text = " ".join(f"word{i % 17} and" for i in range(120))
    full = token_surprisals(FullLogits(model), tokenizer, text, None, max_context_tokens=64, min_context_tokens=24)[2]
    head_rows, real_head = [], nll.head_nlls

    def counting_head(hidden, *args):
        head_rows.append(len(hidden))
        return real_head(hidden, *args)

    nll.head_nlls = counting_head
    try:
        sliced = token_surprisals(model, tokenizer, text, None, max_context_tokens=64, min_context_tokens=24)[2]
    finally:
        nll.head_nlls = real_head
    np.testing.assert_allclose(sliced, full, rtol=0, atol=2e-5)
    assert np.isnan(sliced[0]) == np.isnan(full[0]) and sum(head_rows) == int(np.isfinite(full).sum())
