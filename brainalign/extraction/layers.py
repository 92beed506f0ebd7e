"""Which layers of a model are read, by name, and how their outputs are recorded during a forward pass.

Layers are named modules (``transformer.h.11``, ``model.layers.29``, ``encoder.block.7``, or any module a config
names), read with forward hooks (:class:`LayerRecorder`), so anything inside the model can be read, not only the
hidden states it returns. ``layers: blocks`` (the default) is the embedding output and every transformer block in
model order (:func:`block_layer_names`), or a named submodule of every block (``layer_module``).
"""

from __future__ import annotations

import torch

from brainalign.errors import BrainalignError
from brainalign.extraction.context import encoder_decoder_mode

BLOCK_LIST_NAMES = ("layers", "h", "layer", "block", "blocks")


def block_layer_names(model) -> list[str]:
    """Embedding output + every transformer block, in model order, named by module path."""
    names = []
    embedding = model.get_input_embeddings()
    if getattr(model.config, "is_encoder_decoder", False):
        embedding = model.get_encoder().embed_tokens  # T5: the encoder's own (weight-tied) copy is the one called
    for name, module in model.named_modules():
        if module is embedding:
            names.append(name)
            break
    for name, module in model.named_modules():
        parts = name.split(".")
        if isinstance(module, torch.nn.ModuleList) and parts[-1] in BLOCK_LIST_NAMES and not any(p.isdigit() for p in parts):
            names.extend(f"{name}.{i}" for i in range(len(module)))
    if len(names) < 2:
        raise BrainalignError(f"cannot find the transformer blocks of {type(model).__name__}; list layers in the config")
    return names


def with_layer_module(model, names: list[str], spec: dict) -> list[str]:
    """``layers: blocks`` with the model's ``layer_module`` (e.g. ``post_attention_layernorm``, what the paper read
    for LLaMA): that submodule of every block instead of the block; the embedding layer (not a block) stays."""
    module = spec.get("layer_module")
    if not module:
        return names
    modules = dict(model.named_modules())
    embedding, blocks = names[0], names[1:]
    for block in blocks:
        if f"{block}.{module}" not in modules:
            raise BrainalignError(f"model {spec['name']}: layer_module {module!r} is not a submodule of block {block} "
                                  f"({type(model).__name__}); its submodules: {', '.join(n for n, _ in modules[block].named_children())}")
    return [embedding] + [f"{block}.{module}" for block in blocks]


def resolve_layers(model, spec: dict) -> list[str]:
    """The module names a model spec's ``layers`` stands for (``blocks``, or a list of module names), checked
    against the model; in ``t5_mode: principled`` decoder layers are left out of ``blocks`` and refused in a list."""
    layers = spec.get("layers", "blocks")
    names = with_layer_module(model, block_layer_names(model), spec) if layers == "blocks" else list(layers)
    if encoder_decoder_mode(spec) == "principled":
        decoder_layers = [n for n in names if n.startswith("decoder.")]
        if layers == "blocks":
            names = [n for n in names if not n.startswith("decoder.")]
        elif decoder_layers:
            raise BrainalignError(f"model {spec['name']}: layers {decoder_layers[:3]} are decoder layers, read only with t5_mode: paper")
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise BrainalignError(f"model {spec['name']}: layers {missing[:3]} are not modules of {type(model).__name__}")
    return names


class LayerRecorder:
    """Forward hooks that keep each named module's output (element 0 of a tuple) for the current pass."""

    def __init__(self, model, names):
        modules = dict(model.named_modules())
        self.outputs: dict[str, object] = {}
        self.handles = [modules[name].register_forward_hook(self._hook(name)) for name in names]

    def _hook(self, name):
        def hook(module, inputs, output):
            self.outputs[name] = output[0] if isinstance(output, (tuple, list)) else output
        return hook

    def close(self):
        for handle in self.handles:
            handle.remove()
