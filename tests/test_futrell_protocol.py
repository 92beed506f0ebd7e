"""The paper's Futrell 2018 protocol (Brain-Score Language 2023 Futrell2018-pearsonr, methods §2.5, §3.2-3.3):

* the score row: |Pearson r| over words not first in their sentence against the mean RT, normalised by the published
  ceiling 0.858 (or Brain-Score's split-half ceiling over all words when none is published), checked by hand;
* the surprisal: one stream through the corpus, every word scored with its prefix left-truncated to the window, equal
  to Brain-Score's own per-word procedure re-run here on a tiny GPT-2, across story boundaries;
* T5 with ``t5_mode: paper``: Brain-Score PR194's encoder-decoder slicing, by hand on a tiny random T5, and its
  behaviour rows.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import pearsonr

from brainalign.behaviour.scoring import behaviour_score_file
from brainalign.behaviour.surprisal import surprisal_file, surprisal_reading, word_surprisals
from brainalign.datasets.base import PreparedDataset, write_prepared
from brainalign.models.session import load_model
from brainalign.study.tables import TIDY_COLUMNS

STORY_1 = ("Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing to do. "
           "Once or twice she had peeped into the book her sister was reading.").split()
STORY_2 = ("The quick brown fox jumps over the lazy dog. She didn't say 3.5 million naive cafe-goers, and numbers "
           "1999, 42 were quoted.").split()


# ----------------------------------------------------------------------------------------------- synthetic data
def _sentence_positions(words):
    """word_in_sentence (1-based) and sentence ids: a sentence ends at a word ending in '.'."""
    within, sentence, position, number = [], [], 1, 0
    for word in words:
        within.append(position)
        sentence.append(number)
        position, number = (1, number + 1) if word.endswith(".") else (position + 1, number)
    return within, sentence


def reading_dataset(path, stories, rts, meta_extra=None):
    """A prepared reading dataset: words of ``stories`` (lists of words) in order, ``rts`` (subjects, words)."""
    rows = []
    for s, words in enumerate(stories):
        within, sentence = _sentence_positions(words)
        for i, word in enumerate(words):
            rows.append({"stimulus_id": f"st{s}.{i}", "text": word, "group": f"story{s}", "position": i,
                         "sentence_id": f"st{s}.s{sentence[i]}", "word_in_sentence": within[i]})
    stimuli = pd.DataFrame(rows)
    meta = {"name": "futrell_toy", "adapter": "futrell2018", "kind": "reading", "description": "toy", "source": "test",
            "licence": "test", "provenance": "test", "context": "group", "group_averaged": False, **(meta_extra or {})}
    write_prepared(PreparedDataset(stimuli, np.asarray(rts, dtype=np.float32)[:, :, None],
                                   [f"p{i}" for i in range(len(rts))], ["rt"], meta=meta), path)
    return stimuli


def write_surprisal(path, stimuli, bits):
    table = stimuli[["stimulus_id", "group", "text"]].assign(surprisal_bits=bits, n_tokens=1)
    table.to_csv(path, sep="\t", index=False)
    path.with_suffix(".json").write_text(json.dumps({"applicable": True, "reading": "causal", "perplexity": 10.0,
                                                      "n_tokens": len(bits)}))


def planted(n_words, n_subjects=24, seed=0):
    """Surprisal and per-subject RTs that fall with it (r < 0, so |r| matters), with NaN cells and RTs outside
    50-3000 ms (Brain-Score filters none)."""
    rng = np.random.default_rng(seed)
    surprisal = rng.gamma(2.0, 2.0, n_words)
    rts = 400 - 15 * surprisal[None] + 80 * rng.standard_normal((n_subjects, n_words))
    rts[rng.random(rts.shape) < 0.1] = np.nan
    rts[0, :5] = [20.0, 30.0, 4000.0, 5000.0, 40.0]
    return surprisal, rts


# ----------------------------------------------------------------------------------------------- the score row
def test_paper_row_is_abs_r_over_non_initial_words_normalised_by_the_published_ceiling(tmp_path):
    stories = [[f"w{i}." if i % 9 == 8 else f"w{i}" for i in range(300)], [f"v{i}" for i in range(200)]]
    surprisal, rts = planted(500)
    stimuli = reading_dataset(tmp_path / "data", stories, rts, {"published_ceiling": 0.858})
    write_surprisal(tmp_path / "s.tsv", stimuli, surprisal)
    frame = behaviour_score_file(tmp_path / "s.tsv", tmp_path / "data", tmp_path / "b.csv", "m", "futrell_toy",
                                 {"n_bootstrap": 10})
    row = frame[(frame["metric"] == "surprisal_r") & (frame["protocol"] == "brainscore-2023")].iloc[0]
    keep = stimuli["word_in_sentence"].to_numpy() != 1
    target = np.nanmean(rts, axis=0)  # the "average human", no RT filter
    r = pearsonr(surprisal[keep], target[keep]).statistic
    assert r < -0.3
    assert row["raw_r"] == pytest.approx(abs(r), abs=1e-6) and row["n"] == keep.sum()
    assert row["ceiling"] == pytest.approx(0.858) and row["normalised"] == pytest.approx(abs(r) / 0.858, abs=1e-6)
    details = json.loads((tmp_path / "b.json").read_text())["measures"]["rt"]
    assert details["brainscore_r"] == pytest.approx(r, abs=1e-6) and details["brainscore_ceiling_source"] == "published"
    assert np.isfinite(details["brainscore_split_half_ceiling"])  # the project's own ceiling is kept beside it
    # the default row keeps the project's protocol and ceiling (split-half over its kept words)
    default = frame[(frame["metric"] == "surprisal_r") & (frame["protocol"] == "default")].iloc[0]
    assert default["ceiling"] == pytest.approx(details["ceiling"]) and default["ceiling"] != pytest.approx(0.858)
    assert list(pd.read_csv(tmp_path / "b.csv").columns) == TIDY_COLUMNS


def test_without_a_published_ceiling_the_paper_row_uses_brainscore_split_halves_over_all_words(tmp_path):
    stories = [[f"w{i}." if i % 7 == 6 else f"w{i}" for i in range(400)]]
    surprisal, rts = planted(400, n_subjects=15, seed=3)
    stimuli = reading_dataset(tmp_path / "data", stories, rts)
    write_surprisal(tmp_path / "s.tsv", stimuli, surprisal)
    frame = behaviour_score_file(tmp_path / "s.tsv", tmp_path / "data", tmp_path / "b.csv", "m", "toy", {"n_bootstrap": 0})
    row = frame[(frame["metric"] == "surprisal_r") & (frame["protocol"] == "brainscore-2023")].iloc[0]
    # Brain-Score's SplitHalvesConsistency, written out: RandomState(0).choice of half the subjects, the rest, their
    # mean RTs over every word (sentence-initial ones too), |r|, Spearman-Brown, median over 10 splits
    state, values = np.random.RandomState(0), []
    for _ in range(10):
        half = state.choice(len(rts), size=len(rts) // 2, replace=False)
        rest = np.setdiff1d(np.arange(len(rts)), half)
        a, b = np.nanmean(rts[half], 0), np.nanmean(rts[rest], 0)
        ok = np.isfinite(a) & np.isfinite(b)
        c = abs(pearsonr(a[ok], b[ok]).statistic)
        values.append(2 * c / (1 + c))
    assert row["ceiling"] == pytest.approx(np.median(values), abs=1e-6)
    assert row["normalised"] == pytest.approx(row["raw_r"] / np.median(values), abs=1e-6)


# ----------------------------------------------------------------------------------------------- Brain-Score's reading, re-run
def brainscore_reading_times(model, tokenizer, words, max_length, encoder_decoder=False):
    """Brain-Score's digest_text + estimate_reading_times, per word (HuggingfaceSubject, 2023 / PR194): tokenise the
    whole prefix up to the word, keep its last ``max_length`` tokens (truncation_side left), the part's tokens are
    those beyond the previous prefix's count, cross-entropy of logits[-n-1:-1] against them, in bits."""
    values, previous = [], 0
    for i in range(len(words)):
        tokens = tokenizer(" ".join(words[:i + 1]))["input_ids"]
        ids = tokens[-max_length:]
        overflow = len(tokens) - len(ids)
        current = ids[previous - overflow:]
        previous = len(tokens)
        inputs = torch.tensor([ids])
        with torch.inference_mode():
            kwargs = {"decoder_input_ids": inputs} if encoder_decoder else {}
            logits = model(input_ids=inputs, **kwargs).logits[0].float()
        if logits.shape[0] <= 1:
            values.append(float("nan"))
            continue
        predicted = logits[-len(current) - 1:-1]
        actual = torch.tensor(current)
        if len(actual) == len(predicted) + 1:
            actual = actual[1:]
        values.append(float(torch.nn.functional.cross_entropy(predicted, actual, reduction="sum")) / math.log(2))
    return np.array(values)


@pytest.fixture(scope="module")
def tiny(tiny_gpt2_dir):
    spec = {"name": "tiny", "source": "local", "path": str(tiny_gpt2_dir), "kind": "decoder"}
    return spec, load_model(spec, tiny_gpt2_dir, device="cpu")


@pytest.fixture(scope="module")
def brainscore_stream(tiny):
    """Brain-Score's per-word values for story 1 then story 2 as one stream, truncated to 24 tokens."""
    _, loaded = tiny
    return brainscore_reading_times(loaded.model, loaded.tokenizer, STORY_1 + STORY_2, max_length=24)


def test_sliding_windows_are_brainscore_left_truncation_word_by_word(tiny, brainscore_stream):
    _, loaded = tiny
    words = STORY_1 + STORY_2
    expected = brainscore_stream
    bits, counts, _ = word_surprisals(loaded.model, loaded.tokenizer, words,
                                      options={"max_context_tokens": 24, "context_window": "sliding", "window_batch_size": 5})
    assert counts.sum() > 2 * 24  # many words are read with a truncated prefix
    np.testing.assert_allclose(bits[1:], expected[1:], atol=1e-4)
    # the overlapping windows (the default) give every token less context than the budget allows: they differ
    overlapping, _, _ = word_surprisals(loaded.model, loaded.tokenizer, words, options={"max_context_tokens": 24, "min_context_tokens": 8})
    assert np.nanmax(np.abs(overlapping[1:] - expected[1:])) > 1e-2


def test_corpus_scope_carries_context_across_stories(tiny, brainscore_stream, tmp_path):
    spec, loaded = tiny
    rng = np.random.default_rng(0)
    n = len(STORY_1) + len(STORY_2)
    stimuli = reading_dataset(tmp_path / "data", [STORY_1, STORY_2], 300 + 50 * rng.random((4, n)))
    options = {"context_scope": "corpus", "context_window": "sliding", "max_context_tokens": 24}
    surprisal_file(spec, spec["path"], tmp_path / "data", tmp_path / "corpus.tsv", options, progress=False)
    surprisal_file(spec, spec["path"], tmp_path / "data", tmp_path / "story.tsv", {**options, "context_scope": "story"}, progress=False)
    corpus = pd.read_csv(tmp_path / "corpus.tsv", sep="\t")["surprisal_bits"].to_numpy()
    story = pd.read_csv(tmp_path / "story.tsv", sep="\t")["surprisal_bits"].to_numpy()
    start = len(STORY_1)  # the first word of story 2
    assert stimuli["text"].tolist() == STORY_1 + STORY_2
    stream = brainscore_stream
    assert np.isfinite(corpus[start]) and corpus[start] == pytest.approx(stream[start], abs=1e-4)  # conditioned on story 1
    assert np.isnan(story[start])  # the story's context resets: its first word has nothing to condition on
    np.testing.assert_allclose(corpus[1:], stream[1:], atol=1e-4)
    summary = json.loads((tmp_path / "corpus.json").read_text())
    assert summary["context_scope"] == "corpus" and summary["context_window"] == "sliding" and list(summary["per_group"]) == ["corpus"]


# ----------------------------------------------------------------------------------------------- T5, the paper's reading
def _t5(folder, mode):
    spec = {"name": f"tiny-t5-{mode}", "source": "local", "path": str(folder), "kind": "encoder-decoder", "t5_mode": mode}
    return spec, load_model(spec, folder, device="cpu")


def test_surprisal_readings():
    assert surprisal_reading({"kind": "decoder"}) == "causal"
    assert surprisal_reading({"kind": "encoder-decoder", "t5_mode": "paper"}) == "t5-paper"
    assert surprisal_reading({"kind": "encoder-decoder", "t5_mode": "principled"}) is None
    assert surprisal_reading({"kind": "encoder-decoder"}) is None  # principled is the default
    assert surprisal_reading({"kind": "encoder"}) is None


def test_t5_paper_reading_is_the_pr194_slicing_by_hand(tiny_t5_dir):
    _, loaded = _t5(tiny_t5_dir, "paper")
    words = STORY_1 + STORY_2
    expected = brainscore_reading_times(loaded.model, loaded.tokenizer, words, max_length=20, encoder_decoder=True)
    bits, counts, nats = word_surprisals(loaded.model, loaded.tokenizer, words, options={"max_context_tokens": 20, "window_batch_size": 4},
                                         reading="t5-paper")
    assert np.isfinite(expected).all() and counts.sum() > 2 * 20
    np.testing.assert_allclose(bits, expected, atol=1e-4)  # the first word too: T5's </s> makes it scorable
    assert len(nats) == counts.sum()  # n targets per word: its trailing sub-tokens and </s>


def test_t5_paper_mode_gets_behaviour_rows_and_principled_t5_none(tiny_t5_dir, tmp_path):
    n = len(STORY_1) + len(STORY_2)
    surprisal_like = np.random.default_rng(1).gamma(2.0, 2.0, n)
    rts = 300 + 20 * surprisal_like[None] + 30 * np.random.default_rng(2).standard_normal((6, n))
    reading_dataset(tmp_path / "data", [STORY_1, STORY_2], rts, {"published_ceiling": 0.858})
    options = {"context_scope": "corpus", "max_context_tokens": 32, "n_bootstrap": 10}
    spec, _ = _t5(tiny_t5_dir, "paper")
    surprisal_file(spec, tiny_t5_dir, tmp_path / "data", tmp_path / "paper.tsv", options, progress=False)
    summary = json.loads((tmp_path / "paper.json").read_text())
    assert summary["applicable"] and summary["reading"] == "t5-paper"
    frame = behaviour_score_file(tmp_path / "paper.tsv", tmp_path / "data", tmp_path / "paper.csv", spec["name"], "toy", options)
    surprisal_rows = frame[frame["metric"] == "surprisal_r"]
    assert set(surprisal_rows["protocol"]) == {"default", "brainscore-2023"}
    assert np.isfinite(surprisal_rows["raw_r"]).all()
    paper = surprisal_rows[surprisal_rows["protocol"] == "brainscore-2023"].iloc[0]
    assert paper["ceiling"] == pytest.approx(0.858) and paper["normalised"] == pytest.approx(paper["raw_r"] / 0.858)
    assert "perplexity" not in set(frame["metric"])  # the PR194 token losses are no perplexity
    spec, _ = _t5(tiny_t5_dir, "principled")
    surprisal_file(spec, tiny_t5_dir, tmp_path / "data", tmp_path / "principled.tsv", options, progress=False)
    assert not json.loads((tmp_path / "principled.json").read_text())["applicable"]
    frame = behaviour_score_file(tmp_path / "principled.tsv", tmp_path / "data", tmp_path / "principled.csv", spec["name"],
                                 "toy", options)
    assert frame.empty
