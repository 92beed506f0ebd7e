"""The encoding protocol registry: what a protocol is (:class:`Protocol`: how one outer fold is fitted and
predicted, on which folds, and how a layer's design changes them), what its fold function gets (:class:`Fold`),
and the registered protocols by name (:data:`PROTOCOLS`).

The registry is the one place a protocol is defined: the layer jobs score every registered protocol a config
selects, and the config check fills the schema's ``encoding.protocols`` enum from :data:`PROTOCOLS`
(brainalign/config.py), so a protocol registered here is accepted by the config with no schema edit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainalign.encoding.folds import grouped_folds
from brainalign.errors import BrainalignError


@dataclass(frozen=True)
class Fold:
    """What a protocol's fold function gets: one outer fold of one scoring run, its data on the run's back end."""

    k: int                    # the fold's number (inner folds are seeded with seed + k)
    x: Any                    # all samples' features (samples x features), numpy array or torch tensor
    y: Any                    # all samples' responses (samples x neuroids)
    train_index: np.ndarray   # the fold's training and test samples, numpy indices
    test_index: np.ndarray
    train: Any                # the same indices for indexing x and y on the back end
    test: Any
    groups: np.ndarray        # every sample's CV group (passage, story, run)
    alphas: np.ndarray        # the ridge penalties to choose from
    options: Any              # the run's encoding options (brainalign.options.EncodingOptions)
    seed: int
    ops: Any                  # the back end's operations (encoding.backend)
    words: Any = None         # word-level protocols only: the layer's encoding.design.WordLevel, else None
    inner_blocks: int | None = None  # a single-run time series: inner folds of this many contiguous blocks of scans
    nested: bool = True       # False: no nested layer choice reads this layer's training-only score (may be NaN)


def grouped_outer_folds(n: int, groups: np.ndarray, options, seed: int, folds):
    """The caller's folds if it gave any, else ``n_folds`` folds of whole groups."""
    return folds if folds is not None else grouped_folds(groups, int(options.n_folds), seed)


def unchanged_layer_folds(n_samples: int, overrides: dict, options):
    """No folds of the layer design's own (the protocol's outer folds apply), no inner blocks."""
    return None, None


def no_feature_scaling(options) -> str:
    """What a protocol that fits the features as they are records as its feature scaling."""
    return "none"


@dataclass(frozen=True)
class Protocol:
    """A registered protocol: ``fit_fold(fold) -> (predicted, actual, training-only score)`` on one outer fold;
    ``outer_folds(n, groups, options, seed, folds)`` the folds it runs on (``folds``: the caller's, or None);
    ``layer_folds(n_samples, overrides, options) -> (folds or None, inner_blocks or None)`` how a layer's design
    (e.g. a single-run time series, ``overrides["blocks"]``) sets its outer folds and its inner blocks of scans
    (``Fold.inner_blocks``) in ``fit_layer``; ``word_level``: its folds need the word-level input (``Fold.words``,
    encoding.design.WordLevel), and its scans are grouped by run; ``opt_in``: it runs only when
    ``options.protocols`` names it; ``aggregate(r, words)``: how per-neuroid r (last axis) become one score (None:
    the median over neuroids); ``feature_scaling(options)``: what it does to the features before fitting, recorded
    in each layer's result; ``correlation(predicted, actual)``: per-column r of a fold (None: Pearson r,
    brainalign.correlation.pearson_columns); ``bootstrap``: False where resampling test stimuli does not resample
    what the fold scores (no CI, NaN). ``fit_fold`` may return a fourth item, a dict of per-fold details, stored as one list
    per key in the result. ``options`` is always the run's :class:`brainalign.options.EncodingOptions`."""

    name: str
    fit_fold: Callable
    outer_folds: Callable = grouped_outer_folds
    layer_folds: Callable = unchanged_layer_folds
    word_level: bool = False
    opt_in: bool = False
    aggregate: Callable | None = None
    feature_scaling: Callable = no_feature_scaling
    correlation: Callable | None = None
    bootstrap: bool = True


PROTOCOLS: dict[str, Protocol] = {}  # name -> protocol, in registration order (the default order of a layer's)


def register_protocol(name: str, *, outer_folds: Callable = grouped_outer_folds,
                      layer_folds: Callable = unchanged_layer_folds, word_level: bool = False, opt_in: bool = False,
                      aggregate: Callable | None = None, feature_scaling: Callable = no_feature_scaling,
                      correlation: Callable | None = None, bootstrap: bool = True):
    """Decorator: register ``fit_fold`` as protocol ``name`` (see :class:`Protocol` for the hooks and flags)."""

    def decorator(fit_fold: Callable) -> Callable:
        PROTOCOLS[name] = Protocol(name, fit_fold, outer_folds, layer_folds, word_level, opt_in, aggregate, feature_scaling,
                                   correlation, bootstrap)
        return fit_fold

    return decorator


def default_protocols() -> list[str]:
    """The protocols a layer is scored with when ``options.protocols`` is empty: every registered one that is not
    opt-in, in registration order."""
    return [name for name, protocol in PROTOCOLS.items() if not protocol.opt_in]


def get_protocol(name: str) -> Protocol:
    """The registered protocol of this name; an unknown name is an error that lists the known ones."""
    if name not in PROTOCOLS:
        raise BrainalignError(f"unknown encoding protocol {name!r} (expected one of {', '.join(PROTOCOLS)})")
    return PROTOCOLS[name]
