"""GGUF files: loading one as transformers de-quantises it, and saving the result as a plain transformers folder.

transformers reads a GGUF file's metadata once for the config, once for the tokenizer and once for the weights,
and rebuilds the same tensor-name map for every module; :func:`gguf_parsed_once` makes those repeats share one
parse. The converted folder loads much faster than the GGUF file, which is why the ``gguf_package`` source
converts once at preparation.

This module imports neither torch, transformers nor gguf at import time.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from brainalign.models.registry import model_class


@contextlib.contextmanager
def gguf_parsed_once():
    """Within the block, every ``gguf.GGUFReader(path)`` of the same file returns one reader, and every
    ``gguf.get_tensor_name_map(arch, n_blocks)`` one map.

    For a large vocabulary (Gemma 3) each parse of the metadata is most of the model's preparation time. The
    reader only reads its memory-mapped file and the map is a pure function of its arguments, so sharing them
    changes nothing but the time (tests/test_models.py compares the weights with a plain transformers load)."""
    import gguf

    original_reader, original_map, readers, maps = gguf.GGUFReader, gguf.get_tensor_name_map, {}, {}

    def shared_reader(path, *args, **kwargs):
        key = (str(Path(path).resolve()), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = original_reader(path, *args, **kwargs)
        return readers[key]

    def shared_map(arch, n_blocks):
        if (arch, n_blocks) not in maps:
            maps[arch, n_blocks] = original_map(arch, n_blocks)
        return maps[arch, n_blocks]

    gguf.GGUFReader, gguf.get_tensor_name_map = shared_reader, shared_map
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = original_reader, original_map


def load_gguf(path: Path, kind: str):
    """The model (eval mode) and tokenizer of the GGUF file ``path``, exactly as transformers de-quantises them
    (float32); ``kind`` is the model entry's (decoder, encoder, encoder-decoder)."""
    import torch
    from transformers import AutoTokenizer

    path = Path(path)
    with gguf_parsed_once():
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = model_class(kind).from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    return model.eval(), tokenizer


def save_as_transformers(path: Path, kind: str, out_dir: Path) -> None:
    """Write the de-quantised GGUF model and its tokenizer into ``out_dir`` as a plain transformers folder: the
    model is rebuilt from its config without the quantization entry (a GGUF-loaded model refuses
    save_pretrained) and given the loaded weights."""
    model, tokenizer = load_gguf(path, kind)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config_class = type(model.config)
    plain = model_class(kind).from_config(config_class.from_dict(config))
    plain.load_state_dict(model.state_dict(), strict=True)
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
