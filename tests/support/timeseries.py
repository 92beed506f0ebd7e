"""Synthetic time-series noise for the scan-time tests."""

from __future__ import annotations

import numpy as np


def ar1(rng, n, phi, size=()):
    """Unit-variance AR(1) noise, ``n`` steps (first axis)."""
    e = rng.standard_normal((n, *size))
    out = np.empty_like(e)
    out[0] = e[0]
    for t in range(1, n):
        out[t] = phi * out[t - 1] + np.sqrt(1 - phi**2) * e[t]
    return out
