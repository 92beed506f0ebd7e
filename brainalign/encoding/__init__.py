"""Encoding models: how well a model layer's activations predict brain responses to the same stimuli.

Three registered protocols (``protocols.py``): the first two run on every dataset by default, the third on request:
  * ``ridge-grouped`` (the project's default): ridge regression, the penalty chosen per neuroid by inner
    cross-validation on the training fold only, every penalty solved from one tridiagonal reduction per fold
    (numpy; one eigendecomposition per fold on torch); folds group whole
    passages/stories (or contiguous blocks of scans), so no context is shared between train and test;
    features scaled with training statistics only (``encoding.feature_scaling``: z-scored, centred, or by default
    whichever of the two the inner CV prefers per neuroid; docs/feature_scaling.md). Pearson r per neuroid on
    held-out data, median over neuroids, mean over folds.
  * ``brainscore-2023`` (the paper's, Brain-Score Language 2023): ordinary least squares with intercept
    (sklearn LinearRegression; the minimum-norm solution when features exceed stimuli), 10 ShuffleSplits 90/10
    with random_state=1 over stimuli (not grouped: context leaks), Pearson r per neuroid, median over neuroids
    per split, mean over splits. Computed from one SVD per split, it equals sklearn + scipy to 1e-6 (tested).
  * ``wehbe-2014`` (opt-in; the paper's Wehbe 2014 pipeline, Aw & Toneva's code): per outer fold, word PCA fitted on
    the training words, words averaged per TR, FIR delays, run edges trimmed, 4 contiguous folds with a gap, ridge
    without intercept with the penalty per voxel from inner 10-fold CV; mean r over each subject's voxels, then
    over subjects.
Each layer also stores, per outer fold, a training-only score (``inner_scores``) so the layer can be chosen
without looking at the test fold (the nested estimate), and a bootstrap CI over stimuli.

Back ends (``encoding.backend``): ``numpy`` (default) or ``torch`` (``encoding.device``: cpu, cuda, cuda:1, ...;
auto or unset = cuda if available). The same functions serve both: they take numpy arrays or torch tensors,
and the few operations that differ go through :func:`backend.ops_of` (torch is imported only for tensors). Both
run the decompositions in float64; scores agree to ~1e-7 from float32 inputs (the means differ in rounding) and
~1e-13 from float64 inputs.

Submodules, one concept each (the names below are re-exported here):
  * ``backend``: numpy / torch array operations (``backend_ops``, ``ops_of``, ``to_numpy``).
  * ``ridge``: ridge and OLS solvers for many penalties and targets (``RidgeSVD``, ``RidgeTridiagonal``,
    ``FoldCrossProducts``, ``ridge_cv``, ``ridge_loo``, ``ols_fit_predict``, ``DEFAULT_ALPHAS``) and the feature
    scalings they are run on (``scale_features``, ``FEATURE_SCALINGS``).
  * ``folds``: grouped, blocked and shuffle-split cross-validation folds.
  * ``protocols``: the protocol registry (``PROTOCOLS``, ``register_protocol``), ``cross_validated_score`` and
    its bootstrap CI.
  * ``design``: one layer's regression problem (``responses_matrix``, ``layer_design``: words -> scans -> delays).
  * ``layers``: the layer-metric registry (``LAYER_METRICS``, ``register_layer_metric``: protocols, RSA, CKA) and
    the workflow steps ``fit_layer_file`` (rule fit_encoding) and ``score_layers_file`` (rule score).
Pearson r per column lives in :mod:`brainalign.correlation`, shared with the ceilings and behaviour.

Importing the package costs numpy and h5py only: no torch, sklearn or scipy.stats (each of a run's hundreds of
per-layer jobs would pay them); scipy's LAPACK wrappers are imported when a ridge system is first solved.
"""

from brainalign.encoding.backend import BACKENDS, backend_ops, ops_of, to_numpy
from brainalign.encoding.design import layer_design, responses_matrix
from brainalign.encoding.folds import block_folds, grouped_folds, shuffle_splits
from brainalign.encoding.layers import (
                                        LAYER_METRICS,
                                        LayerInputs,
                                        LayerMetric,
                                        fit_layer,
                                        fit_layer_file,
                                        fit_layers_file,
                                        register_layer_metric,
                                        score_layers_file,
)
from brainalign.encoding.protocols import PROTOCOLS, Fold, cross_validated_score, get_protocol, register_protocol
from brainalign.encoding.ridge import (
                                        DEFAULT_ALPHAS,
                                        FEATURE_SCALINGS,
                                        FoldCrossProducts,
                                        RidgeSVD,
                                        RidgeTridiagonal,
                                        ShiftedSystems,
                                        ols_fit_predict,
                                        ols_with_inner_folds,
                                        ridge_cv,
                                        ridge_loo,
                                        scale_features,
                                        spectrum,
)

__all__ = [
    "BACKENDS", "DEFAULT_ALPHAS", "FEATURE_SCALINGS", "LAYER_METRICS", "PROTOCOLS", "Fold", "FoldCrossProducts", "LayerInputs",
    "LayerMetric", "fit_layers_file", "RidgeSVD", "RidgeTridiagonal", "ShiftedSystems", "backend_ops", "block_folds",
    "cross_validated_score", "fit_layer", "fit_layer_file", "get_protocol", "grouped_folds", "layer_design",
    "ols_fit_predict", "ols_with_inner_folds", "ops_of", "register_layer_metric", "register_protocol", "responses_matrix", "ridge_cv",
    "ridge_loo", "scale_features", "score_layers_file", "shuffle_splits", "spectrum", "to_numpy",
]
