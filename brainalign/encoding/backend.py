"""Back ends of the encoding computations: numpy (default) or torch (``encoding.backend``, ``encoding.device``:
cpu, cuda, cuda:1, ...; auto = cuda if available).

The same functions serve both: they take numpy arrays or torch tensors, and the few operations whose spelling
differs go through :func:`ops_of` (torch is imported only for tensors, so a numpy run never pays its import).
Both run the decompositions in float64; scores agree to ~1e-7 from float32 inputs (the means differ in rounding)
and ~1e-13 from float64 inputs.
"""

from __future__ import annotations

import numpy as np

from brainalign.errors import BrainalignError

BACKENDS = ("numpy", "torch")


class _NumpyOps:
    """The array operations whose spelling differs between numpy and torch; operators, ``.mean(0)``, ``.T``,
    ``.sum(0)`` and indexing by index arrays or masks are shared and used directly."""

    def asarray(self, a, dtype=None):
        return np.asarray(a, dtype=dtype)

    def index(self, i):
        return i

    def eigh(self, a):
        return np.linalg.eigh(a)

    def sqrt(self, a):
        return np.sqrt(a)

    def clip_negative(self, a):
        return np.clip(a, 0, None)

    def std(self, a):
        return a.std(0)

    def zeros(self, shape, dtype=np.float64):
        return np.zeros(shape, dtype=dtype)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype=dtype)


class _TorchOps(_NumpyOps):
    """The same operations on torch tensors living on ``device``."""

    def __init__(self, device):
        import torch

        self.torch = torch
        self.device = torch.device(device)

    def dtype(self, dtype):
        return dtype if isinstance(dtype, self.torch.dtype) else getattr(self.torch, np.dtype(dtype).name)

    def asarray(self, a, dtype=None):
        if isinstance(a, np.ndarray) and not a.flags.writeable:
            a = a.copy()  # torch warns on read-only buffers (h5py, memory maps)
        return self.torch.as_tensor(a, dtype=None if dtype is None else self.dtype(dtype), device=self.device)

    def index(self, i):
        if isinstance(i, slice):
            return i
        return self.torch.as_tensor(i.copy() if isinstance(i, np.ndarray) and not i.flags.writeable else i, device=self.device)

    def eigh(self, a):
        return self.torch.linalg.eigh(a)

    def sqrt(self, a):
        return self.torch.sqrt(a)

    def clip_negative(self, a):
        return a.clamp(min=0)

    def std(self, a):
        return a.std(0, correction=0)

    def zeros(self, shape, dtype=np.float64):
        return self.torch.zeros(shape, dtype=self.dtype(dtype), device=self.device)

    def empty(self, shape, dtype):
        return self.torch.empty(shape, dtype=self.dtype(dtype), device=self.device)


NUMPY = _NumpyOps()


def ops_of(array):
    """The operations for this array's library (and, for a tensor, its device)."""
    return NUMPY if isinstance(array, np.ndarray) or not type(array).__module__.startswith("torch") else _TorchOps(array.device)


def to_numpy(a) -> np.ndarray:
    """A numpy array of a numpy array (itself) or a tensor (copied to the host)."""
    return a if isinstance(a, np.ndarray) else a.detach().cpu().numpy()


def backend_ops(backend: str, device: str):
    """The operations of a back end (``encoding.backend``: numpy or torch) on a device (``encoding.device``, torch
    only: cpu, cuda, cuda:N, or auto for cuda when available), checked."""
    if backend == "numpy":
        return NUMPY
    if backend != "torch":
        raise BrainalignError(f"unknown encoding backend {backend!r} (expected one of {', '.join(BACKENDS)})")
    try:
        import torch
    except ImportError as error:
        raise BrainalignError(f"encoding backend 'torch' needs PyTorch, which is not importable ({error})") from None
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise BrainalignError(f"encoding device {device!r} is not a torch device ({error})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BrainalignError(f"encoding device {str(device)!r}: CUDA is not available (use device: cpu or auto)")
    return _TorchOps(device)
