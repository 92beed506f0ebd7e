"""Encoding models: how well a model layer's activations predict brain responses to the same stimuli, the noise
ceilings that bound them, and the similarity metrics beside them.

Three registered protocols (``protocols/``): the first two run on every dataset by default, the third on request:
  * ``ridge-grouped`` (the project's default): ridge regression, the penalty chosen per neuroid by inner
    cross-validation on the training fold only, every penalty solved from one tridiagonal reduction per fold
    (numpy; one eigendecomposition per fold on torch); folds group whole passages/stories (or contiguous blocks of
    scans), so no context is shared between train and test; features scaled with training statistics only
    (``encoding.feature_scaling``: z-scored, centred, or by default whichever of the two the inner CV prefers per
    neuroid; docs/feature_scaling.md). Pearson r per neuroid on held-out data, median over neuroids, mean over
    folds.
  * ``brainscore-2023`` (the paper's, Brain-Score Language 2023): ordinary least squares with intercept (the
    minimum-norm solution when features exceed stimuli), 10 ShuffleSplits 90/10 with random_state=1 over stimuli
    (not grouped: context leaks), Pearson r per neuroid, median over neuroids per split, mean over splits; equal to
    sklearn + scipy to 1e-6 (tested).
  * ``wehbe-2014`` (opt-in; the paper's Wehbe 2014 pipeline, Aw & Toneva's code): per outer fold, word PCA fitted on
    the training words, words averaged per TR, FIR delays, run edges trimmed, 4 contiguous folds with a gap, ridge
    without intercept with the penalty per voxel from inner 10-fold CV; mean r over each subject's voxels, then
    over subjects.
Each layer also stores, per outer fold, a training-only score (``inner_scores``) so the layer can be chosen
without looking at the test fold (the nested estimate), and a bootstrap CI over stimuli.

Back ends (``encoding.backend``): ``numpy`` (default) or ``torch`` (``encoding.device``: cpu, cuda, cuda:1, ...;
auto = cuda if available). The same functions serve both: they take numpy arrays or torch tensors, and the few
operations that differ go through :func:`backend.ops_of` (torch is imported only for tensors). Both run the
decompositions in float64; scores agree to ~1e-7 from float32 inputs (the means differ in rounding) and ~1e-13
from float64 inputs.

Modules, one concept each (import from them; this package re-exports nothing):
  * ``backend``: numpy / torch array operations (``backend_ops``, ``ops_of``, ``to_numpy``).
  * ``scaling``: the feature scalings fitted on training rows (``scale_features``, ``FEATURE_SCALINGS``).
  * ``ridge``: ridge solvers for many penalties and targets (``RidgeSVD``, ``RidgeTridiagonal``,
    ``ShiftedSystems``, ``FoldCrossProducts``, ``ridge_cv``, ``ridge_loo``, ``DEFAULT_ALPHAS``).
  * ``loo``: exact leave-one-out ridge for one or several scalings at once, targets in chunks (``loo_scalings``).
  * ``ols``: ordinary least squares (``ols_fit_predict``, ``ols_with_inner_folds``, ``ols_kernel_fit``).
  * ``folds``: grouped, blocked and shuffle-split cross-validation folds.
  * ``bootstrap``: the bootstrap CI of a score over stimuli, passages or blocks of scans.
  * ``protocols/``: the protocol registry (``registry``), one module per protocol, and ``scoring``
    (``cross_validated_score``).
  * ``design``: one layer's regression problem (``responses_matrix``, ``layer_design``: words -> scans -> delays).
  * ``timeseries``: word features -> scan times (Lanczos / sum / mean), FIR delays, run trimming.
  * ``baseline``: a time series' word-rate/nuisance baseline and the joint model, fitted per outer fold
    (``baseline_gain``).
  * ``gain``: the gain over the baseline with its two-level bootstrap CIs (subjects, then blocks of scans), and its
    tidy rows.
  * ``similarity``: RSA and linear CKA.
  * ``layer_metrics``: the layer-metric registry (``LAYER_METRICS``, ``register_layer_metric``: protocols, RSA, CKA,
    baseline gain) and each metric's tidy rows (layer profile, best, nested).
  * ``layer_fits``: the workflow step ``fit_layers_file`` (rule fit_encoding): every layer metric per layer,
    resumable.
  * ``layer_scores``: the workflow step ``score_layers_file`` (rule score).
  * ``ceilings``: noise ceilings (split-half, extrapolation, inter-subject correlation) and the step
    ``compute_ceiling_file`` (rule compute_ceiling).
Pearson r per column lives in :mod:`brainalign.correlation`, shared with the behaviour scores. Step functions take
the stage's typed options (:class:`brainalign.options.EncodingOptions`, ``CeilingOptions``) or a dict, converted
once.

Importing a step module costs numpy, h5py and the options module (PyYAML): no torch, sklearn or scipy.stats (each
of a run's hundreds of per-layer jobs would pay them); scipy's LAPACK wrappers are imported when a ridge system is
first solved.
"""
