"""Tiny random-weight models saved as transformers folders (loaded through the real ``from_pretrained`` path);
``tests/conftest.py`` turns them into the ``tiny_gpt2_dir`` and ``tiny_t5_dir`` fixtures."""

from __future__ import annotations

from pathlib import Path

from tests.support.tokenizers import byte_level_tokenizer


def save_tiny_gpt2(folder: Path) -> Path:
    """A 2-layer random GPT-2 with the byte-level tokenizer, saved into ``folder``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = byte_level_tokenizer()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=32, n_layer=2, n_head=2))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_t5(folder: Path) -> Path:
    """A 2+2-block random T5 whose tokenizer appends an end-of-sequence token, as T5's does, saved into ``folder``."""
    import torch
    from tokenizers import processors
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = byte_level_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    tokenizer.backend_tokenizer.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=True),
        processors.TemplateProcessing(single="$A <|endoftext|>", special_tokens=[("<|endoftext|>", eos)]),
    ])
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
                      pad_token_id=eos, eos_token_id=eos, decoder_start_token_id=eos, feed_forward_proj="gated-gelu")
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
