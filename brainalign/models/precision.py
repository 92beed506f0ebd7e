"""Matrix products in bfloat16, everything else in float32 (``extraction.matmul_dtype: bfloat16``).

Why: a model job's time is mostly its matrix products, and a CPU with AVX512-BF16 (or AMX, or any recent GPU)
multiplies bfloat16 inputs faster than float32 ones, accumulating in float32. What it costs: every product's
inputs (weights once, activations per call) and its output are rounded to bfloat16's 8 significant bits; sums,
norms, softmax, attention and the residual stream stay float32, and so does the LM head, which surprisal reads (a
logit near 20 would move by up to 0.06 nats in bfloat16). The effect on the default run's scores is in
``benchmarks/results/matmul_dtype.md``.

How: each ``nn.Linear`` (and GPT-2's ``Conv1D``) of the model except its output embeddings is swapped for a
:class:`BFloat16Linear` holding a bfloat16 copy of its weight. No autocast context: the swap travels with the
model object, so every caller (backbone-only extraction, full-model surprisal) gets the same arithmetic.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


class BFloat16Linear(torch.nn.Module):
    """``y = x W' + b`` with x and W rounded to bfloat16, the product accumulated in float32 by the kernel and
    returned in x's dtype; the bias is added in that dtype, unrounded."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.weight = torch.nn.Parameter(weight.detach().to(torch.bfloat16), requires_grad=False)
        self.bias = None if bias is None else torch.nn.Parameter(bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.nn.functional.linear(x.to(torch.bfloat16), self.weight).to(x.dtype)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}, bias={self.bias is not None}"


def _as_bfloat16(module) -> BFloat16Linear | None:
    if isinstance(module, torch.nn.Linear):
        return BFloat16Linear(module.weight, module.bias)
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - transformers is a dependency of every model job
        return None
    if isinstance(module, Conv1D):  # GPT-2: weight (in, out), y = x W + b
        return BFloat16Linear(module.weight.t(), module.bias)
    return None


def use_bfloat16_matmuls(model) -> int:
    """Swap ``model``'s linear layers for :class:`BFloat16Linear` in place, all but the output embeddings (the LM
    head, tied to the input embeddings in most small models); returns how many were swapped."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    swaps = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if child is head:
                continue
            replacement = _as_bfloat16(child)
            if replacement is not None:
                swaps.append((parent, name, replacement))
    for parent, name, replacement in swaps:
        setattr(parent, name, replacement)
    return len(swaps)


def native_bfloat16(device: str) -> bool:
    """Whether ``device`` multiplies bfloat16 natively (a CPU without AVX512-BF16 or AMX emulates it: slower than
    float32, same numbers)."""
    if str(device).startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
