"""Scoring any registered protocol the same way (:func:`cross_validated_score`): Pearson r per neuroid on each
held-out fold, median over neuroids (or the protocol's own ``aggregate``), mean over folds; per fold also a
training-only score (``inner_scores``, for the nested layer choice) and, over all folds, a bootstrap CI over
stimuli (:func:`brainalign.encoding.bootstrap.fold_draws`), whose per-fold draws the result keeps (``fold_draws``,
``bootstrap_inflation``) for the nested choice's own interval (:mod:`brainalign.encoding.selection`). A protocol
only says how one fold is fitted and predicted (:mod:`brainalign.encoding.protocols.registry`).

Not imported by the ``protocols`` package itself: it reads the typed options (brainalign.options), whose module
imports the config check, which reads the registry.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from brainalign.bootstrap import unit_inflation
from brainalign.correlation import pearson_columns
from brainalign.encoding.backend import backend_ops, to_numpy
from brainalign.encoding.bootstrap import _median, encode_draws, fold_draws, fold_mean_interval
from brainalign.encoding.folds import fold_units
from brainalign.encoding.protocols.registry import Fold, get_protocol
from brainalign.encoding.ridge import DEFAULT_ALPHAS
from brainalign.errors import BrainalignError
from brainalign.options import EncodingOptions


def cross_validated_score(x: np.ndarray, y: np.ndarray, groups=None, protocol: str = "ridge-grouped",
                          options: EncodingOptions | dict | None = None, folds=None, words=None, units=None,
                          inner_blocks: int | None = None, nested: bool = True) -> dict:
    """Score one feature matrix against responses (samples x neuroids) under a registered protocol, on the back
    end that ``options.backend`` names (numpy or torch, ``options.device``). ``options``: the encoding options,
    typed or a dict (missing keys take the schema's defaults). ``folds``: outer folds (None: the protocol's own);
    ``inner_blocks``: inner folds of that many contiguous blocks of scans (a single-run time series; the
    protocol's ``layer_folds`` gives both). ``words``: the word-level input (encoding.design.WordLevel) that a
    word-level protocol needs; its scans are then grouped by run. ``units``: the bootstrap's resampling unit of
    every sample (passages, blocks of scans: encoding.folds.scan_block_units); None: single samples. ``nested``: False
    where no nested layer choice will read the training-only scores (a metric computed only at selected layers):
    a protocol may then skip the fits that only they need and record NaN."""
    options = options if isinstance(options, EncodingOptions) else EncodingOptions.from_dict(options)
    seed = int(options.seed)
    dtype = np.dtype(options.dtype)
    ops = backend_ops(options.backend, options.device)
    x = ops.asarray(x, dtype=dtype)
    y = ops.asarray(y, dtype=dtype)
    alphas = np.asarray(options.alphas or DEFAULT_ALPHAS, dtype=float)
    n = len(x)
    chosen = get_protocol(protocol)
    if chosen.word_level:
        if words is None:
            raise BrainalignError(f"encoding protocol {protocol!r} needs the word-level input of a time series of words "
                                  "with onsets (encoding.design.word_level_design)")
        groups = words.scan_groups
    groups = np.arange(n) if groups is None else np.asarray(groups)
    aggregate = None if chosen.aggregate is None else partial(chosen.aggregate, words=words)
    folds = chosen.outer_folds(n, groups, options, seed, folds)
    fold_scores, inner_scores, pairs, neuroid_r, details = [], [], [], [], {}
    for k, (train_index, test_index) in enumerate(folds):
        fold = Fold(k, x, y, train_index, test_index, ops.index(train_index), ops.index(test_index), groups, alphas,
                    options, seed, ops, words, inner_blocks, nested)
        predicted, actual, inner_score, *extra = chosen.fit_fold(fold)
        for key, value in (extra[0] if extra else {}).items():
            details.setdefault(key, []).append(value)
        inner_scores.append(inner_score)
        r = to_numpy((chosen.correlation or pearson_columns)(predicted, actual))
        neuroid_r.append(r)
        fold_scores.append(_median(r) if aggregate is None else float(aggregate(r)))
        pairs.append((predicted, actual))
    n_bootstrap, units = int(options.n_bootstrap), fold_units(folds, units)
    draws, inflation = {}, None
    ci_low, ci_high = float("nan"), float("nan")
    if n_bootstrap > 0 and chosen.bootstrap:
        resampled, observed = fold_draws(pairs, n_bootstrap, seed, reduce=aggregate, units=units)
        inflation = unit_inflation(units) if units is not None else None
        ci_low, ci_high = fold_mean_interval(resampled, observed, inflation)
        # each fold's draws, for the nested layer choice's interval (encoding.selection)
        draws = {"fold_draws": encode_draws(resampled), "bootstrap_inflation": inflation}
    return {
        "score": float(np.nanmean(fold_scores)),
        "fold_scores": fold_scores,
        "inner_scores": inner_scores,
        "ci_low": ci_low,
        "ci_high": ci_high,
        **draws,
        "n": int(n),
        "neuroid_r": np.nanmean(np.vstack(neuroid_r), axis=0).tolist(),
        "feature_scaling": chosen.feature_scaling(options),
        **details,
    }
