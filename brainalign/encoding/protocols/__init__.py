"""The encoding protocols, as a registry: what is fitted in each outer fold, on which folds, and how one layer's
design changes them.

  * ``registry``: :class:`~registry.Protocol`, :class:`~registry.Fold`, ``register_protocol``, ``get_protocol``,
    ``PROTOCOLS``, ``default_protocols``.
  * ``ridge_grouped`` (the project's default), ``brainscore_2023`` (the paper's, run by default too) and
    ``wehbe_2014`` (opt-in), ``brainscore_ridge`` and ``brainscore_rsa`` (opt-in: Brain-Score Language 2.3.0's
    metrics, on its splits, ``brainscore_splits``): one module per protocol, each registering itself when imported.
  * ``scoring``: ``cross_validated_score``, which runs any registered protocol and scores it the same way.

Importing this package imports the protocol modules, so whoever reads the registry (the layer jobs, the config
check's ``encoding.protocols`` enum) sees every protocol. The import order is the registration order, which is the
default order of a layer's protocols. ``scoring`` is left out (it imports the options module, which imports the
config check).

Adding a protocol is one registered fold function in a module imported here; the config then accepts its name
in ``encoding.protocols`` (the schema's enum is filled from the registry)::

    @register_protocol("ols-grouped")  # grouped outer folds (the default ``outer_folds``)
    def ols_grouped(fold: Fold):
        x, y, train, test = fold.x, fold.y, fold.train, fold.test
        fitted = ols_fit_predict(x[train], y[train], x[train])  # a training-only score for the nested choice
        return ols_fit_predict(x[train], y[train], x[test]), y[test], _median(pearson_columns(fitted, y[train]))

It then runs in every layer job that selects it (``fit_layer``) and gets its layer, best and nested rows
(``score_layers_file``).
"""

# isort: off
from brainalign.encoding.protocols import ridge_grouped  # noqa: F401
from brainalign.encoding.protocols import brainscore_2023  # noqa: F401
from brainalign.encoding.protocols import wehbe_2014  # noqa: F401
from brainalign.encoding.protocols import brainscore_ridge  # noqa: F401  (opt-in: Brain-Score 2.3.0's metrics)
from brainalign.encoding.protocols import brainscore_rsa  # noqa: F401
# isort: on
