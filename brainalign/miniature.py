"""The paper in miniature: the study of ``config/paper.yaml`` run end to end, offline, in minutes.

Everything the real run needs from the internet is replaced by a small local stand-in, and nothing else is:

* **Datasets**: synthetic raw files in each dataset's *real* raw format, served over HTTP from 127.0.0.1 so the
  project's own fetch code downloads them (``base_url``) and the real adapters prepare them:
  Pereira 2018 and Blank 2014 as Brain-Score NetCDF assemblies written by Brain-Score's own ``write_netcdf``
  (committed in ``tests/miniature/data/``, made by ``tests/miniature/make_assemblies.py``), Wehbe 2014 as the CMU
  ``subject_N.mat`` files + the BLS ROI file, Futrell 2018 as ``all_stories.tok`` + ``processed_RTs.tsv``
  (both generated here, deterministically).
* **Models**: each of the config's models is a tiny random-weight model of the same transformers class with a
  small tokenizer of the same class (T5 v1.1 gated-gelu / LLaMA / GPT-2, and Gemma if a config lists it),
  weights seeded by the model's name. They are served by a minimal Hugging Face Hub stand-in (``HF_ENDPOINT``
  on 127.0.0.1) under their real ``hf_id`` and ``revision``, so the ``hub`` source's real
  ``snapshot_download`` runs unchanged; the same files are also laid out as a Hugging Face cache (``HF_HOME``).
* **Config**: :func:`make_miniature_config` derives the config from the paper's and changes only what must
  change (:data:`CHANGES`, documented in docs/miniature.md).

The planted signal: every text unit has a *marker count*, the number of words from :data:`MARKERS` it contains
(a deterministic feature of the text that any model which represents its input words carries). Some neuroids of
every fMRI dataset respond to it (linearly, plus noise); the others are pure noise. Reading times depend on word
length, marker words and unigram surprisal. ``planted.json`` in the fixtures lists which neuroids carry signal.

Run ``python -m brainalign.miniature OUT_DIR`` to build everything into OUT_DIR and print the commands to run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import shutil
import threading
import zlib
from pathlib import Path

import numpy as np

from brainalign.io import file_hash

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "miniature" / "data"
PAPER_CONFIG = REPO_ROOT / "config" / "paper.yaml"
SEED = 20231201

# ------------------------------------------------------------------------------------------------ corpus
MARKERS = ("river", "forest", "mountain", "harbor", "meadow", "canyon")
NOUNS = ("teacher", "farmer", "doctor", "child", "painter", "sailor", "baker", "letter", "window", "table",
         "market", "station", "bridge", "village", "kitchen", "lantern", "engine", "basket", "ticket", "mirror")
ADJECTIVES = ("old", "quiet", "small", "bright", "heavy", "young", "famous", "careful", "hidden", "narrow",
              "distant", "gentle")
VERBS = ("watched", "visited", "crossed", "painted", "described", "remembered", "followed", "reached", "avoided",
         "found", "admired", "mentioned")
PREPOSITIONS = ("near", "behind", "beyond", "across", "beside", "above")
OPENERS = ("Yesterday", "Later", "Every morning", "At last", "Once again", "In the evening")
WORD = re.compile(r"[A-Za-z']+")


def marker_count(text: str) -> int:
    """The planted feature: how many words of ``text`` are marker words (case and punctuation ignored)."""
    return sum(1 for word in WORD.findall(text.lower()) if word in MARKERS)


def _noun(rng, marker: bool) -> str:
    return str(rng.choice(MARKERS if marker else NOUNS))


def make_sentence(rng, n_markers: int) -> str:
    """One English-like sentence with exactly ``n_markers`` (0-3) marker nouns among its three noun slots."""
    slots = np.zeros(3, dtype=bool)
    slots[rng.choice(3, size=int(n_markers), replace=False)] = True
    adj = lambda: (str(rng.choice(ADJECTIVES)) + " ") if rng.random() < 0.5 else ""  # noqa: E731
    words = f"the {adj()}{_noun(rng, slots[0])} {rng.choice(VERBS)} the {adj()}{_noun(rng, slots[1])} " \
            f"{rng.choice(PREPOSITIONS)} the {_noun(rng, slots[2])}"
    if rng.random() < 0.3:
        words = f"{str(rng.choice(OPENERS)).lower()} {words}"
    return words[0].upper() + words[1:] + "."


def _zscore(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return (values - values.mean()) / (values.std() or 1.0)


def _rng(*keys) -> np.random.Generator:
    """A generator seeded by SEED and the keys (stable across numpy versions: PCG64 + SeedSequence)."""
    return np.random.default_rng([SEED, *[zlib.crc32(str(k).encode()) for k in keys]])


# ------------------------------------------------------------------------------------------------ designs
PEREIRA_SUBJECTS = {"018": ("243sentences", "384sentences"), "199": ("243sentences", "384sentences"),
                    "215": ("243sentences",), "288": ("384sentences",)}
PEREIRA_PASSAGES = {"243sentences": 18, "384sentences": 24}
PEREIRA_CATEGORIES = ("beekeeping", "lighthouse", "orchard", "railway")
PEREIRA_VOXELS, PEREIRA_PLANTED = 10, 5
BLANK_STORIES = ("Aqua", "Boar", "Elvis", "HighSchool")
BLANK_SUBJECTS = ("061", "085")
BLANK_FROIS = ("01_LH_PostTemp", "02_LH_AntTemp", "07_RH_PostTemp", "08_RH_AntTemp")
BLANK_PLANTED_FROIS = ("01_LH_PostTemp", "02_LH_AntTemp")
WEHBE_SUBJECTS = ("F", "H", "I", "J", "K", "L", "M", "N")
# runs as in the real data: fixation at both ends (BLS trims 20 scans at the start and 15 at the end of every run)
WEHBE_RUNS, WEHBE_TRS_PER_RUN, WEHBE_LEAD_TRS, WEHBE_WORD_TRS = 4, 75, 20, 40
WEHBE_VOXELS, WEHBE_ROI = 12, 8
WEHBE_HRF = (0.5, 1.0, 0.8, 0.4)  # response to a TR's marker words 1..4 TRs later (the pipeline's FIR delays)
FUTRELL_STORIES, FUTRELL_SENTENCES, FUTRELL_READERS = 2, 6, 6
NOISE = 1.0


def pereira_design() -> dict:
    """Sentences and responses of the Pereira 2018 fixture (both experiments), as plain arrays.

    Passages have 3-4 sentences and one marker level (0-3) each, so the planted feature is constant within a
    passage (the context a model reads a sentence with cannot contradict it). Voxels 0..PLANTED-1 of each
    subject's list respond to the z-scored marker count; the rest are noise. Subjects who did not run an
    experiment have NaN there, as in Brain-Score's merged assembly.
    """
    rng = _rng("pereira2018")
    rows = []
    for experiment, n_passages in PEREIRA_PASSAGES.items():
        levels = rng.permutation(np.arange(n_passages) % 4)
        stimulus_num = 0
        for p in range(n_passages):
            category = PEREIRA_CATEGORIES[p % len(PEREIRA_CATEGORIES)]
            n_sentences = 3 if (experiment == "243sentences" and p % 3 == 2) else 4
            for _ in range(n_sentences):
                sentence = make_sentence(rng, levels[p])
                rows.append({"experiment": experiment, "stimulus_num": stimulus_num, "sentence": sentence,
                             "passage_index": p + 1, "passage_label": f"{category.capitalize()}{p // 4 + 1}",
                             "passage_category": category})
                stimulus_num += 1
    feature = np.array([marker_count(r["sentence"]) for r in rows], dtype=float)
    experiments = np.array([r["experiment"] for r in rows])
    z = np.zeros(len(rows))
    for experiment in PEREIRA_PASSAGES:
        z[experiments == experiment] = _zscore(feature[experiments == experiment])
    neuroids, columns, planted = [], [], []
    for subject, ran in PEREIRA_SUBJECTS.items():
        voxel_nums = np.sort(rng.choice(5000, size=PEREIRA_VOXELS, replace=False))
        weights = rng.uniform(0.8, 1.2, size=PEREIRA_VOXELS)
        for v, voxel_num in enumerate(voxel_nums):
            signal = weights[v] * z if v < PEREIRA_PLANTED else 0.0
            column = signal + NOISE * rng.standard_normal(len(rows))
            column[~np.isin(experiments, ran)] = np.nan
            columns.append(column)
            neuroids.append({"subject": subject, "voxel_num": int(voxel_num)})
            if v < PEREIRA_PLANTED:
                planted.append(f"{subject}.{voxel_num}")
    return {"presentation": rows, "neuroid": neuroids, "values": np.stack(columns, axis=1), "planted": planted,
            "feature": feature.tolist()}


def blank_design() -> dict:
    """Story fragments (one per TR, as Brain-Score paired them) and fROI responses of the Blank 2014 fixture.

    Each story is 10 sentences cut into fragments that end at each noun; the planted fROIs respond to the fragment's
    z-scored marker count, the others are noise."""
    rng = _rng("blank2014")
    rows = []
    for story in BLANK_STORIES:
        timepoint = 0
        for sentence_num in range(10):
            words = make_sentence(rng, int(rng.integers(0, 4))).split()
            nouns = [i for i, w in enumerate(words) if w.strip(".").lower() in MARKERS + NOUNS]
            cuts = [0] + [i + 1 for i in nouns[:-1]] + [len(words)]  # a fragment ends at each noun
            for part, (start, end) in enumerate(zip(cuts[:-1], cuts[1:])):
                fragment = " ".join(words[start:end])
                timepoint += 2
                rows.append({"story": story, "stimulus": fragment, "sentence_number_in_story": sentence_num,
                             "part_number_in_sentence": part, "timepoint_value": timepoint,
                             "stimulus_id": f"{story}.{sentence_num}.{part}"})
    feature = np.array([marker_count(r["stimulus"]) for r in rows], dtype=float)
    z = _zscore(feature)
    neuroids, columns, planted = [], [], []
    for subject in BLANK_SUBJECTS:
        for froi in BLANK_FROIS:
            signal = rng.uniform(0.8, 1.2) * z if froi in BLANK_PLANTED_FROIS else 0.0
            columns.append(signal + NOISE * rng.standard_normal(len(rows)))
            neuroids.append({"subject_id": subject, "fROI_area": froi})
            if froi in BLANK_PLANTED_FROIS:
                planted.append(f"{subject}.{froi}")
    return {"presentation": rows, "neuroid": neuroids, "values": np.stack(columns, axis=1), "planted": planted,
            "feature": feature.tolist()}


def wehbe_design() -> dict:
    """Words (0.5 s each, in 4 runs), scan times and per-subject voxel responses of the Wehbe 2014 fixture.

    Each run: WEHBE_LEAD_TRS scans of fixation, WEHBE_WORD_TRS scans of reading (4 words per 2 s scan), the rest
    fixation. Planted ROI voxels respond to the number of marker words read in each scan, 1-4 scans later
    (weights WEHBE_HRF); the other voxels are noise."""
    rng = _rng("wehbe2014")
    n_trs = WEHBE_RUNS * WEHBE_TRS_PER_RUN
    times = np.arange(n_trs) * 2.0
    runs = np.repeat(np.arange(1, WEHBE_RUNS + 1), WEHBE_TRS_PER_RUN)
    words, onsets = [], []
    for run in range(WEHBE_RUNS):
        run_words = []
        while len(run_words) < WEHBE_WORD_TRS * 4:
            run_words += make_sentence(rng, int(rng.integers(0, 4))).split()
        run_words = run_words[:WEHBE_WORD_TRS * 4]
        start = (run * WEHBE_TRS_PER_RUN + WEHBE_LEAD_TRS) * 2.0
        words += run_words
        onsets += [start + 0.5 * i for i in range(len(run_words))]
    per_scan = np.zeros(n_trs)
    for word, onset in zip(words, onsets):
        per_scan[int(onset // 2.0)] += marker_count(word)
    drive = np.zeros(n_trs)
    for lag, weight in enumerate(WEHBE_HRF, 1):
        shifted = np.zeros(n_trs)
        shifted[lag:] = per_scan[:-lag]
        shifted[runs != np.roll(runs, lag)] = 0.0  # no carry-over across runs
        drive += weight * shifted
    z = _zscore(drive)
    subjects, roi, planted = {}, {}, []
    for letter in WEHBE_SUBJECTS:
        roi_index = np.sort(rng.choice(WEHBE_VOXELS, size=WEHBE_ROI, replace=False))
        data = NOISE * rng.standard_normal((n_trs, WEHBE_VOXELS))
        for v in roi_index[: WEHBE_ROI // 2]:
            data[:, v] += rng.uniform(0.8, 1.2) * z
            planted.append(f"{letter}.{v}")
        subjects[letter] = data.astype(np.float32)
        roi[letter] = {"all": roi_index.astype(np.int64), "PostTemp": roi_index[:4].astype(np.int64)}
    return {"words": words, "onsets": onsets, "times": times, "runs": runs, "subjects": subjects, "roi": roi,
            "planted": planted, "feature": per_scan.tolist()}


def unigram_surprisal(words) -> dict:
    """-log2 relative frequency of each (lower-cased, punctuation-free) word in ``words``."""
    keys = [w.lower().strip(".,") for w in words]
    counts = {k: keys.count(k) for k in set(keys)}
    return {k: -math.log2(c / len(keys)) for k, c in counts.items()}


def futrell_design() -> dict:
    """Natural Stories word list and per-reader self-paced reading times of the Futrell 2018 fixture.

    RT (ms) = 200 + 12 * characters + 40 * marker word + 15 * unigram surprisal (bits) + reader offset + noise;
    one reader skipped the second story (NaN there, as in the real data)."""
    rng = _rng("futrell2018")
    tok = []
    for item in range(1, FUTRELL_STORIES + 1):
        words = []
        for _ in range(FUTRELL_SENTENCES):
            words += make_sentence(rng, int(rng.integers(0, 4))).split()
        tok += [{"word": w, "zone": z, "item": item} for z, w in enumerate(words, 1)]
    surprisal = unigram_surprisal([t["word"] for t in tok])
    readers = [f"A{hashlib.sha1(f'reader{i}'.encode()).hexdigest()[:12].upper()}" for i in range(FUTRELL_READERS)]
    rts = []
    for i, reader in enumerate(readers):
        offset = rng.normal(0, 40)
        for t in tok:
            if i == len(readers) - 1 and t["item"] == FUTRELL_STORIES:
                continue
            key = t["word"].lower().strip(".,")
            rt = (200 + 12 * len(key) + 40 * (key in MARKERS) + 15 * surprisal[key] + offset + rng.normal(0, 30))
            rts.append({"WorkerId": reader, "item": t["item"], "zone": t["zone"], "RT": int(round(min(max(rt, 101), 2999))),
                        "word": t["word"]})
    return {"tok": tok, "rts": rts, "readers": readers}


def all_texts() -> list[str]:
    """Every text of every fixture (the tokenizers' training corpus)."""
    texts = [r["sentence"] for r in pereira_design()["presentation"]]
    texts += [r["stimulus"] for r in blank_design()["presentation"]]
    texts.append(" ".join(wehbe_design()["words"]))
    texts.append(" ".join(t["word"] for t in futrell_design()["tok"]))
    return texts


# ------------------------------------------------------------------------------------------------ raw files
ALL_STORIES_TOK_SIZE = 119005  # the size futrell2018.REMOTE_FILES pins for all_stories.tok (see pad_to_size)


def pad_to_size(path: Path, size: int) -> None:
    """Append blank lines until ``path`` is ``size`` bytes.

    WORKAROUND: fetch.py checks the size pinned in an adapter's REMOTE_FILES even when ``options.checksums`` pins
    another checksum, and futrell2018 pins all_stories.tok at 119,005 bytes. The tab-separated readers skip blank
    lines (pandas ``skip_blank_lines``), so the padded file reads exactly as the unpadded one.
    """
    have = path.stat().st_size
    if have > size:
        raise ValueError(f"{path}: {have} bytes, more than the {size} to pad to")
    with open(path, "ab") as handle:
        handle.write(b"\n" * (size - have))


def write_futrell(out_dir: Path) -> dict:
    """``all_stories.tok`` (padded, see :func:`pad_to_size`) and ``processed_RTs.tsv`` in the naturalstories format."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    design = futrell_design()
    lines = ["word\tzone\titem"] + [f"{t['word']}\t{t['zone']}\t{t['item']}" for t in design["tok"]]
    (out_dir / "all_stories.tok").write_text("\n".join(lines) + "\n")
    pad_to_size(out_dir / "all_stories.tok", ALL_STORIES_TOK_SIZE)
    by_item = {}
    for r in design["rts"]:
        by_item.setdefault((r["item"], r["zone"]), []).append(r["RT"])
    header = ["WorkerId", "WorkTimeInSeconds", "correct", "item", "zone", "RT", "word", "nItem", "meanItemRT",
              "sdItemRT", "gmeanItemRT", "gsdItemRT"]
    lines = ["\t".join(header)]
    for r in design["rts"]:
        values = np.array(by_item[(r["item"], r["zone"])], dtype=float)
        logs = np.log(values)
        lines.append("\t".join(str(v) for v in [
            r["WorkerId"], 1200, 6, r["item"], r["zone"], r["RT"], r["word"], len(values), f"{values.mean():.4f}",
            f"{values.std(ddof=1):.4f}", f"{np.exp(logs.mean()):.4f}", f"{np.exp(logs.std(ddof=1)):.4f}"]))
    (out_dir / "processed_RTs.tsv").write_text("\n".join(lines) + "\n")
    return {"readers": design["readers"], "n_words": len(design["tok"])}


def write_wehbe(out_dir: Path) -> dict:
    """``subject_{1..8}.mat`` (data, time, words: the CMU format) and ``HP_subj_roi_inds.npy`` (BLS format)."""
    from scipy.io import savemat

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    design = wehbe_design()
    words = np.zeros((1, len(design["words"])), dtype=[("text", object), ("start", object)])
    for i, (word, onset) in enumerate(zip(design["words"], design["onsets"])):
        words[0, i] = (np.array([word]), np.array([[onset]]))
    time = np.stack([design["times"], design["runs"]], axis=1).astype(float)
    for number, letter in enumerate(WEHBE_SUBJECTS, 1):
        savemat(out_dir / f"subject_{number}.mat", {"data": design["subjects"][letter], "time": time, "words": words},
                do_compression=True)
    np.save(out_dir / "HP_subj_roi_inds.npy", design["roi"], allow_pickle=True)
    return {"planted": design["planted"]}


# ------------------------------------------------------------------------------------------------ tiny models
HIDDEN = 32
INIT_STD = 0.2  # decoder weights' init std (transformers' default 0.02 leaves a random model's attention near zero)
T5_EXTRA_IDS = 100


def architecture_for(spec: dict) -> str:
    """Which tiny architecture stands in for a config model: t5 | llama | gpt2 | gemma | gemma2 | gemma3."""
    hf_id = str(spec.get("hf_id", "")).lower()
    family = str(spec.get("family", "")).lower()
    if spec.get("kind") == "encoder-decoder" or "t5" in family or "t5" in hf_id:
        return "t5"
    if "gemma" in family or "gemma" in hf_id:
        if re.search(r"gemma-?3", hf_id) or "gemma3" in family:
            return "gemma3"
        if re.search(r"gemma-?2(?![0-9.]*b)", hf_id) or "gemma2" in family:  # gemma-2-2b-it, not gemma-2b
            return "gemma2"
        return "gemma"
    if "gpt2" in family or "gpt2" in hf_id or "gpt-2" in family:
        return "gpt2"
    if "llama" in family or "llama" in hf_id or "vicuna" in hf_id or "alpaca" in hf_id:
        return "llama"
    raise ValueError(f"model {spec.get('name')}: no tiny stand-in for family {spec.get('family')!r} / {spec.get('hf_id')!r}")


def _train_bpe(corpus: list[str], metaspace: bool, vocab_size: int, special: list[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    if metaspace:
        tokenizer = Tokenizer(models.BPE(byte_fallback=True))
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        alphabet = sorted(set("".join(corpus).replace(" ", "")) | {"▁"})
    else:
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, initial_alphabet=alphabet,
                                  show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer)
    state = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    return state["vocab"], merges


def _train_unigram(corpus: list[str], vocab_size: int):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>",
                                      show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer)
    return [tuple(pair) for pair in json.loads(tokenizer.to_str())["model"]["vocab"]]


def build_tokenizer(architecture: str, corpus: list[str]):
    """A small tokenizer of the architecture's own transformers class (fast, with offsets), trained on ``corpus``."""
    from transformers import GemmaTokenizer, GPT2Tokenizer, LlamaTokenizer, T5Tokenizer

    if architecture == "t5":
        return T5Tokenizer(vocab=_train_unigram(corpus, 400), extra_ids=T5_EXTRA_IDS)
    if architecture == "gpt2":
        vocab, merges = _train_bpe(corpus, metaspace=False, vocab_size=500, special=["<|endoftext|>"])
        return GPT2Tokenizer(vocab=vocab, merges=merges)
    if architecture == "llama":
        special = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
        vocab, merges = _train_bpe(corpus, metaspace=True, vocab_size=700, special=special)
        return LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True)  # LLaMA prepends <s>
    if architecture.startswith("gemma"):
        special = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"] + [f"<0x{i:02X}>" for i in range(256)]
        vocab, merges = _train_bpe(corpus, metaspace=True, vocab_size=700, special=special)
        return GemmaTokenizer(vocab=vocab, merges=merges, add_bos_token=True)  # Gemma prepends <bos>
    raise ValueError(architecture)


def _model_config(architecture: str, tokenizer):
    import transformers as tf

    vocab = len(tokenizer)
    small = dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_size=HIDDEN,
                 intermediate_size=2 * HIDDEN, vocab_size=vocab, max_position_embeddings=4096,
                 bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                 pad_token_id=tokenizer.pad_token_id, initializer_range=INIT_STD)
    if architecture == "t5":  # T5 v1.1: gated-GELU feed-forward, untied embeddings, no dropout at eval
        return tf.T5Config(vocab_size=vocab, d_model=HIDDEN, d_kv=8, d_ff=2 * HIDDEN, num_layers=2, num_decoder_layers=2,
                           num_heads=4, relative_attention_num_buckets=8, feed_forward_proj="gated-gelu",
                           tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
                           eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    if architecture == "gpt2":
        return tf.GPT2Config(vocab_size=vocab, n_positions=1024, n_embd=HIDDEN, n_layer=2, n_head=4, initializer_range=INIT_STD,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if architecture == "llama":
        return tf.LlamaConfig(**small)
    if architecture == "gemma":
        return tf.GemmaConfig(head_dim=8, **small)
    if architecture == "gemma2":
        return tf.Gemma2Config(head_dim=8, sliding_window=512, **small)
    if architecture == "gemma3":
        return tf.Gemma3TextConfig(head_dim=8, sliding_window=512, **small)
    raise ValueError(architecture)


MODEL_CLASSES = {"t5": "T5ForConditionalGeneration", "gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM",
                 "gemma": "GemmaForCausalLM", "gemma2": "Gemma2ForCausalLM", "gemma3": "Gemma3ForCausalLM"}


def model_seed(name: str) -> int:
    """Weights of a tiny model are drawn from this seed: base and tuned models of a pair differ."""
    return zlib.crc32(f"brainalign-miniature:{name}".encode())


def save_tiny_model(spec: dict, tokenizer, folder: Path) -> dict:
    """Save the tiny random model standing in for ``spec`` (and its tokenizer) as a transformers folder.

    A model published as delta weights (``delta_of: <base>``, stable-vicuna-13b) is saved as deltas: its own
    weights minus the base's tiny model (same architecture and tokenizer, the base's seed), so that the
    workflow's base + delta gives back exactly the model seeded by this model's name."""
    import torch
    import transformers as tf

    architecture = architecture_for(spec)
    config = _model_config(architecture, tokenizer)
    model_class = getattr(tf, MODEL_CLASSES[architecture])
    torch.manual_seed(model_seed(spec["name"]))
    model = model_class(config).eval()
    n_params = int(sum(p.numel() for p in model.parameters()))
    if spec.get("delta_of"):
        torch.manual_seed(model_seed(spec["delta_of"]))
        base = dict(model_class(config).named_parameters())
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                parameter.sub_(base[name])
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {"architecture": architecture, "class": MODEL_CLASSES[architecture], "n_params": n_params,
            "seed": model_seed(spec["name"]), "delta_of": spec.get("delta_of")}


# ------------------------------------------------------------------------------------------------ HF cache
COMMIT_HEX = re.compile(r"^[0-9a-f]{40}$")


def repo_folder(hub_cache: Path, repo_id: str) -> Path:
    return Path(hub_cache) / ("models--" + repo_id.replace("/", "--"))


def add_to_hub_cache(hub_cache: Path, repo_id: str, revision: str, folder: Path) -> str:
    """Lay ``folder`` out as a Hugging Face cache entry (``blobs/``, ``snapshots/<commit>/``, ``refs/<revision>``).

    The commit is ``revision`` itself when the config pins a 40-hex commit, else a hash of the repo id and
    file contents. Blob names are the files' sha256 (the Hub's ETag of LFS files). Returns the commit."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    digest = hashlib.sha1(repo_id.encode())
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + file_hash(path).encode())
    commit = revision if COMMIT_HEX.match(revision) else digest.hexdigest()
    root = repo_folder(hub_cache, repo_id)
    snapshot = root / "snapshots" / commit
    for path in files:
        sha = file_hash(path)
        blob = root / "blobs" / sha
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            shutil.copyfile(path, blob)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    if not COMMIT_HEX.match(revision):
        (root / "refs" / revision).write_text(commit)
    return commit


def resolve_revision(hub_cache: Path, repo_id: str, revision: str) -> str | None:
    root = repo_folder(hub_cache, repo_id)
    if COMMIT_HEX.match(revision):
        return revision if (root / "snapshots" / revision).is_dir() else None
    ref = root / "refs" / revision
    return ref.read_text().strip() if ref.is_file() else None


# ------------------------------------------------------------------------------------------------ server
def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class MiniatureServer:
    """One loopback HTTP server (127.0.0.1 only) for the whole miniature:

    * ``/data/<folder>/<file>``: the synthetic raw dataset files (what each dataset's ``base_url`` points at);
    * a minimal Hugging Face Hub stand-in over the HF cache ``hub_cache`` (``HF_ENDPOINT=<url>``):
      ``GET /api/models/<repo>/revision/<rev>`` (repo info with the commit sha), ``GET /api/models/<repo>/tree/<rev>``
      (file listing) and ``HEAD|GET /<repo>/resolve/<rev>/<file>`` (``X-Repo-Commit``, ``ETag``, Range requests),
      which is what ``huggingface_hub.snapshot_download`` asks for.

    Use as a context manager (``with MiniatureServer(out) as server: server.url``); it stops on exit. Every
    request is recorded in ``self.requests`` (method, path, status).
    """

    def __init__(self, root: Path, port: int = 0):
        self.root = Path(root)
        self.data_dir = self.root / "data"
        self.hub_cache = self.root / "hf" / "hub"
        self.port = port
        self.requests: list[tuple[str, str, int]] = []
        self._server = None
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        from http.server import ThreadingHTTPServer

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="miniature-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def _handler(self):
        from http.server import BaseHTTPRequestHandler
        from urllib.parse import unquote, urlsplit

        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet; requests are recorded instead
                pass

            def _send(self, status, body=b"", headers=None, head=False):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))  # HEAD: the length a GET would send
                self.end_headers()
                if not head:
                    self.wfile.write(body)
                owner.requests.append((self.command, self.path, status))

            def _json(self, obj, status=200, head=False, headers=None):
                self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})}, head)

            def _file(self, path: Path, extra: dict, head: bool):
                data = path.read_bytes()
                start, end, status = 0, len(data) - 1, 200
                match = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                if match:
                    start = int(match.group(1))
                    end = int(match.group(2)) if match.group(2) else len(data) - 1
                    if start >= len(data):
                        return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"}, head)
                    status = 206
                body = data[start:end + 1]
                headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", **extra}
                if status == 206:
                    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                self._send(status, body, headers, head)

            def _route(self, head: bool):
                path = unquote(urlsplit(self.path).path)
                if path.startswith("/data/"):
                    target = (owner.data_dir / path[len("/data/"):]).resolve()
                    if owner.data_dir.resolve() in target.parents and target.is_file():
                        return self._file(target, {}, head)
                    return self._send(404, b"not found", head=head)
                api = re.match(r"^/api/models/(.+?)/(revision|tree)/([^/]+)(/.*)?$", path)
                if api:
                    repo_id, what, revision = api.group(1), api.group(2), api.group(3)
                    commit = resolve_revision(owner.hub_cache, repo_id, revision)
                    if commit is None:
                        return self._json({"error": f"Repository {repo_id} or revision {revision} not found"}, 404, head,
                                          {"X-Error-Code": "RevisionNotFound" if repo_folder(owner.hub_cache, repo_id).is_dir()
                                           else "RepoNotFound"})
                    snapshot = repo_folder(owner.hub_cache, repo_id) / "snapshots" / commit
                    files = sorted(p for p in snapshot.rglob("*") if p.is_file())
                    if what == "revision":
                        return self._json({"id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                                           "siblings": [{"rfilename": p.relative_to(snapshot).as_posix()} for p in files]},
                                          head=head)
                    return self._json([{"type": "file", "path": p.relative_to(snapshot).as_posix(), "size": p.stat().st_size,
                                        "oid": _git_blob_sha1(p.read_bytes())} for p in files], head=head)
                resolve = re.match(r"^/(.+?)/resolve/([^/]+)/(.+)$", path)
                if resolve:
                    repo_id, revision, filename = resolve.groups()
                    commit = resolve_revision(owner.hub_cache, repo_id, revision)
                    if commit is None:
                        return self._send(404, b"", {"X-Error-Code": "RevisionNotFound"}, head)
                    target = repo_folder(owner.hub_cache, repo_id) / "snapshots" / commit / filename
                    if not target.is_file():
                        return self._send(404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, head)
                    return self._file(target, {"X-Repo-Commit": commit, "ETag": f'"{file_hash(target)}"'}, head)
                return self._send(404, b"not found", head=head)

            def do_GET(self):
                self._route(head=False)

            def do_HEAD(self):
                self._route(head=True)

        return Handler


def client_environment(server_url: str, hf_home: Path) -> dict:
    """Environment for the workflow's jobs: the Hub stand-in as ``HF_ENDPOINT`` and an empty client cache."""
    return {"HF_ENDPOINT": server_url, "HF_HOME": str(hf_home), "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0", "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost", "TOKENIZERS_PARALLELISM": "false"}


# ------------------------------------------------------------------------------------------------ config
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


# ------------------------------------------------------------------------------------------------ build
RAW_FOLDERS = {"pereira2018": "pereira2018", "blank2014": "blank2014", "wehbe2014": "wehbe2014",
               "futrell2018": "futrell2018"}


def write_raw_files(data_dir: Path, adapters: set[str]) -> dict:
    """Each adapter's synthetic raw files into ``data_dir/<adapter>/``; returns planted-neuroid lists."""
    planted = json.loads((FIXTURES / "planted.json").read_text())
    info = {}
    for adapter in sorted(adapters):
        folder = Path(data_dir) / RAW_FOLDERS[adapter]
        folder.mkdir(parents=True, exist_ok=True)
        if adapter == "pereira2018":
            shutil.copyfile(FIXTURES / "assy_Pereira2018_language.nc", folder / "assy_Pereira2018_language.nc")
            info[adapter] = {"planted": planted["datasets"]["pereira2018"]["planted"]}
        elif adapter == "blank2014":
            shutil.copyfile(FIXTURES / "assy_Blank2014_fROI.nc", folder / "assy_Blank2014_fROI.nc")
            info[adapter] = {"planted": planted["datasets"]["blank2014"]["planted"]}
        elif adapter == "wehbe2014":
            info[adapter] = write_wehbe(folder)
        elif adapter == "futrell2018":
            info[adapter] = write_futrell(folder)
        else:
            raise ValueError(f"adapter {adapter}: the miniature has no synthetic files for it")
    return info


def dataset_checksums(data_dir: Path, config: dict) -> dict:
    """dataset name -> {filename: "sha256:<hex>"} for every REMOTE_FILES entry of its adapter."""
    from brainalign.datasets import get_adapter

    out = {}
    for dataset in config["datasets"]:
        adapter = get_adapter(dataset["adapter"])
        folder = Path(data_dir) / RAW_FOLDERS[dataset["adapter"]]
        out[dataset["name"]] = {name: "sha256:" + file_hash(folder / name) for name, *_ in adapter.REMOTE_FILES}
    return out


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


def load_paper_config(path: Path = PAPER_CONFIG) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


def write_config(config: dict, path: Path) -> Path:
    import yaml

    header = ("# The paper in miniature, derived from config/paper.yaml by brainalign.miniature.make_miniature_config\n"
              "# (docs/miniature.md). Needs the miniature server: python -m brainalign.miniature serve <dir>\n")
    Path(path).write_text(header + yaml.safe_dump(config, sort_keys=False, width=120))
    return Path(path)


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


def main(argv=None) -> int:
    import argparse
    import shlex
    import time

    parser = argparse.ArgumentParser(prog="python -m brainalign.miniature", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="build", choices=["build", "serve"],
                        help="build (default): write the miniature into OUT_DIR; serve: run its server")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    url = f"http://127.0.0.1:{args.port}"
    if args.command == "serve":
        with MiniatureServer(args.out_dir, args.port) as server:
            print(f"serving {args.out_dir}/data and the Hub stand-in at {server.url} (Ctrl-C stops)", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
    start = time.perf_counter()
    built = build_miniature(args.out_dir, url)
    env = client_environment(url, args.out_dir.resolve() / "hf-client")
    print(f"built the paper in miniature in {args.out_dir} ({time.perf_counter() - start:.0f} s): "
          f"{len(built['manifest']['models'])} tiny models, {len(built['config']['datasets'])} datasets")
    print("\nrun it (two shells, or the first in the background):\n")
    print(f"  python -m brainalign.miniature serve {shlex.quote(str(args.out_dir))} --port {args.port}")
    shown = ("HF_ENDPOINT", "HF_HOME", "HF_HUB_DISABLE_XET", "NO_PROXY")
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k in shown)
    print(f"  {exports} \\\n    {' '.join(shlex.quote(c) for c in snakemake_command(args.out_dir))}")
    print("\nresults: <out_dir>/run/results-paper/analysis/headline_scores.csv; changes to the paper's config: docs/miniature.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
