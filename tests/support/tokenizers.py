"""Small tokenizers trained in the test process (no download): a byte-level BPE with GPT-2-like offsets."""

from __future__ import annotations

CORPUS = ("the quick brown fox jumps over the lazy dog . she didn't say \"3.5 million\" ; naive cafe-goers , 'quoted' words "
          "and numbers 1999 , 42 . Alice was beginning to get very tired of sitting by her sister on the bank . ") * 20


def byte_level_tokenizer():
    """A small byte-level BPE tokenizer trained here (fast, offsets like GPT-2's), wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([CORPUS], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")
