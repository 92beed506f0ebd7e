"""From word-level model features to fMRI scan times: Lanczos downsampling (or summing within a scan) and
finite-impulse-response delays.

What the kernel is: Huth et al.'s ``lanczosfun`` (Huth et al. 2016; LITcoder 2025), a 3-lobe Lanczos windowed sinc
``3 sin(pi t c) sin(pi t c / 3) / (pi t c)^2`` with ``c = 1 / tr`` (``downsample: lanczos``): the sinc has its first
zero at one TR, support +-3 TR. Its frequency response (:func:`lanczos_gain`) is >= 0.9 up to 0.73 of the scan
Nyquist frequency 1 / (2 tr), falls through **1/2 at the Nyquist** (0.25 Hz at TR 2 s) and reaches ~0 only at ~1.3 x Nyquist
(0.18 at 1.2 x): a smooth interpolation of the feature time course, **not an anti-alias filter** (which must reject
everything above the Nyquist before sampling). Feature power between the Nyquist and ~1.3 x Nyquist is folded into
the band just below it. It is still far better than averaging the words inside each scan (a boxcar, whose side lobes
alias fast fluctuations down into the slow BOLD band). ``downsample: lanczos-antialias`` is the same kernel with the
cutoff at :data:`ANTIALIAS_CUTOFF` (0.7) of that: |gain| <= 0.011 from the scan Nyquist up, 0.9 up to 0.13 Hz and 1/2
at 0.175 Hz at TR 2 s, so nothing above the Nyquist is aliased and the BOLD band (below ~0.15 Hz) passes. Both are
scaled to the same passband gain (a scan's value is the words per scan times their features).
tests/test_timeseries.py checks both gains against the kernels' analytic frequency responses; the measured effect
on Brennan 2016 is in docs/timeseries.md.

Why FIR delays rather than a canonical HRF: the haemodynamic lag differs across regions and people; stacking the
features at several lags lets the (ridge) encoding model learn the response shape.
"""

from __future__ import annotations

import functools

import numpy as np

ANTIALIAS_CUTOFF = 0.7  # ``downsample: lanczos-antialias``: the kernel's cutoff as a fraction of lanczos's 1 / tr
LANCZOS_METHODS = {"lanczos": 1.0, "lanczos-antialias": ANTIALIAS_CUTOFF}  # encoding.downsample -> cutoff fraction


def lanczos_kernel(t: np.ndarray, cutoff: float, window: int = 3) -> np.ndarray:
    """Lanczos windowed sinc at frequency ``cutoff`` (cycles/s), ``window`` lobes; t in seconds."""
    x = t * cutoff
    kernel = window * np.sin(np.pi * x) * np.sin(np.pi * x / window) / (np.pi**2 * x**2 + 1e-300)
    kernel[np.abs(x) < 1e-12] = 1.0
    kernel[np.abs(x) > window] = 0.0
    return kernel


def lanczos_cutoff(tr: float, fraction: float = 1.0) -> float:
    """The kernel parameter of :func:`lanczos_kernel` for a scan every ``tr`` s: ``fraction / tr`` (Huth et al.'s
    ``lanczosinterp2D`` with ``cutoff_mult = fraction``). ``fraction`` 1 (``downsample: lanczos``): gain 1/2 at the
    scan Nyquist frequency 1 / (2 tr), so not an anti-alias filter; :data:`ANTIALIAS_CUTOFF` (``lanczos-antialias``):
    |gain| <= 0.011 from the Nyquist up."""
    return float(fraction) / float(tr)


def lanczos_gain(frequency, tr: float, window: int = 3, step: float = 1e-3, fraction: float = 1.0) -> np.ndarray:
    """The downsampling's frequency response: the kernel's Fourier transform at ``frequency`` (Hz) divided by its
    integral, by numerical integration. A sinusoid of amplitude A carried by events at a steady rate of ``rho`` per
    second comes out of :func:`lanczos_downsample` with amplitude ``A * rho * tr * gain`` (``rho * tr``: the events
    per scan, since events are impulses that add up), for either ``fraction``."""
    cutoff = lanczos_cutoff(tr, fraction)
    t = np.arange(-window / cutoff, window / cutoff + step, step)
    kernel = lanczos_kernel(t, cutoff, window)
    frequency = np.atleast_1d(np.asarray(frequency, dtype=float))
    return (np.cos(2 * np.pi * frequency[:, None] * t[None, :]) @ kernel) / kernel.sum()


def lanczos_downsample(features: np.ndarray, event_times: np.ndarray, scan_times: np.ndarray, tr: float,
                       window: int = 3, fraction: float = 1.0) -> np.ndarray:
    """Features of events (words, tokens) at ``event_times`` resampled at ``scan_times`` through the Lanczos kernel
    with cutoff ``fraction / tr`` (:func:`lanczos_cutoff`: 1, half gain at the scan Nyquist; :data:`ANTIALIAS_CUTOFF`,
    an anti-alias low-pass).

    Each scan gets the kernel-weighted sum of the event features around it (events are impulses, as in Huth et
    al.'s ``lanczosinterp2D``), so more words in a scan give a larger value, as more words drive more response; the
    kernel is multiplied by ``fraction`` so that every cutoff has the same passband gain (its integral stays ``tr``).
    """
    scan_times, event_times = np.asarray(scan_times, dtype=float), np.asarray(event_times, dtype=float)
    return _lanczos_weights(scan_times.tobytes(), event_times.tobytes(), float(tr), window, float(fraction)) @ features


@functools.lru_cache(maxsize=4)
def _lanczos_weights(scan_times: bytes, event_times: bytes, tr: float, window: int, fraction: float = 1.0) -> np.ndarray:
    """The scans x events kernel matrix of :func:`lanczos_downsample` (read-only), kept for the same timing (the
    times as float64 bytes): an encoding job resamples every layer of a model (and the word-rate baseline) on one
    dataset's times, and the kernel, not the product, is most of that work."""
    scans, events = np.frombuffer(scan_times), np.frombuffer(event_times)
    weights = lanczos_kernel(scans[:, None] - events[None, :], lanczos_cutoff(tr, fraction), window)
    if fraction != 1.0:
        weights *= fraction
    weights.setflags(write=False)
    return weights


def sum_within_scans(features: np.ndarray, event_times: np.ndarray, scan_times: np.ndarray, tr: float,
                     mean: bool = False) -> np.ndarray:
    """Sum (or mean) of the features of the events whose time falls in [scan_time, scan_time + tr)."""
    out = np.zeros((len(scan_times), features.shape[1]), dtype=features.dtype)
    index = np.searchsorted(scan_times, event_times, side="right") - 1
    valid = (index >= 0) & (event_times < scan_times[np.clip(index, 0, None)] + tr)
    np.add.at(out, index[valid], features[valid])
    if mean:
        counts = np.bincount(index[valid], minlength=len(scan_times))[:, None]
        out = np.divide(out, counts, out=np.zeros_like(out), where=counts > 0)
    return out


def make_delays(features: np.ndarray, delays, groups: np.ndarray | None = None) -> np.ndarray:
    """Stack copies of ``features`` shifted by each delay (in scans; positive = the past), zero-filled, never
    crossing a run boundary (``groups`` labels each scan's run)."""
    n = len(features)
    groups = np.zeros(n, dtype=int) if groups is None else np.asarray(groups)
    blocks = []
    for delay in delays:
        shifted = np.zeros_like(features)
        if delay == 0:
            shifted[:] = features
        elif delay > 0:
            shifted[delay:] = features[:-delay]
            same_run = np.zeros(n, dtype=bool)
            same_run[delay:] = groups[delay:] == groups[:-delay]
            shifted[~same_run] = 0
        else:
            raise ValueError("delays must be >= 0 (scans back in time)")
        blocks.append(shifted)
    return np.concatenate(blocks, axis=1)


def words_to_scans(features: np.ndarray, onsets: np.ndarray, offsets: np.ndarray, scan_times: np.ndarray,
                   tr: float, method: str = "lanczos") -> np.ndarray:
    """Word features -> scan features (``method``: ``encoding.downsample``). Word time = its offset (the word is
    understood once heard/read)."""
    times = np.asarray(offsets if offsets is not None else onsets, dtype=float)
    if method in LANCZOS_METHODS:
        return lanczos_downsample(features, times, np.asarray(scan_times, dtype=float), tr,
                                  fraction=LANCZOS_METHODS[method])
    return sum_within_scans(features, times, np.asarray(scan_times, dtype=float), tr, mean=(method == "mean"))


# --------------------------------------------------------------------- Wehbe et al. 2014 (BLS) word -> TR steps
def scan_of_events(event_times: np.ndarray, scan_times: np.ndarray) -> np.ndarray:
    """Index of the scan each event (word) belongs to in Wehbe et al.'s pipeline (BLS ``TR_to_word_CV_ind``): the
    last scan that starts strictly before the event, so scan i holds the words with onsets in (t_i, t_i+1];
    -1 for an event at or before the first scan."""
    return np.searchsorted(np.asarray(scan_times, dtype=float), np.asarray(event_times, dtype=float), side="left") - 1


def mean_within_scans(features: np.ndarray, event_scans: np.ndarray, n_scans: int) -> np.ndarray:
    """Mean of the features of the events assigned to each scan (``event_scans``: a scan index per event, -1 or
    out of range for none); 0 for a scan without events (BLS's mean of no words is NaN, which its later z-scoring
    turns into a zero column for the whole run; no scan of the trimmed Wehbe runs is without words)."""
    event_scans = np.asarray(event_scans)
    valid = (event_scans >= 0) & (event_scans < n_scans)
    out = np.zeros((n_scans, features.shape[1]), dtype=np.float64)
    np.add.at(out, event_scans[valid], features[valid])
    counts = np.bincount(event_scans[valid], minlength=n_scans)[:, None]
    return np.divide(out, counts, out=np.zeros_like(out), where=counts > 0)


def run_blocks(groups: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``(run, scan indices)`` of each run in order of first appearance; a run whose scans are not contiguous is an
    error (scans must be in presentation order)."""
    groups = np.asarray(groups).astype(str)
    _, first = np.unique(groups, return_index=True)
    blocks = []
    for run in groups[np.sort(first)]:
        index = np.flatnonzero(groups == run)
        if index[-1] - index[0] + 1 != len(index):
            raise ValueError(f"the scans of run {run!r} are not contiguous; scans must be in presentation order")
        blocks.append((str(run), index))
    return blocks


def trimmed_scans(groups: np.ndarray, first: int, last: int) -> np.ndarray:
    """Indices of the scans kept when the first ``first`` and last ``last`` scans of every run are dropped (Wehbe
    et al.: 20 and 15, the 1,351 TRs of Harry Potter chapter 9 becoming 1,211), in scan order."""
    kept = []
    for run, index in run_blocks(groups):
        if len(index) <= first + last:
            raise ValueError(f"run {run!r} has {len(index)} scans, none left after trimming {first} + {last} at its edges")
        kept.append(index[first:len(index) - last])
    return np.concatenate(kept)


def zscore_columns(x: np.ndarray) -> np.ndarray:
    """z-score each column (population SD, as scipy.stats.zscore), constant columns -> 0 (BLS ``nan_to_num``)."""
    x = np.asarray(x, dtype=np.float64)
    mean, sd = x.mean(0), x.std(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - mean) / sd
    z[:, ~(sd > 0)] = 0.0
    return np.nan_to_num(z)


def zscore_per_run(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """:func:`zscore_columns` within each run (``groups``: run of each row)."""
    out = np.empty(x.shape, dtype=np.float64)
    groups = np.asarray(groups).astype(str)
    for run in np.unique(groups):
        rows = groups == run
        out[rows] = zscore_columns(x[rows])
    return out
