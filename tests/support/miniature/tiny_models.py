"""Tiny random-weight stand-ins for the config's models: the same transformers class (T5 v1.1 gated-gelu, LLaMA,
GPT-2, Gemma), a small tokenizer of the same class trained on the fixtures' texts, weights seeded by the model's name.
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

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
