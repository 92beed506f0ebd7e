"""Plugins: user modules that extend the workflow's registries (dataset adapters, model sources, encoding
protocols, layer metrics, figures) without editing the package.

The config's ``plugins`` list names modules. They are imported when the workflow loads its config (before the
config is checked, since a plugin's source or protocol widens what the schema accepts) and again in every job
(:func:`brainalign.runner.run_rule`), because each job is a fresh Python process and registries live in memory.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from brainalign.errors import BrainalignError


def load_plugins(modules: Iterable[str] | None) -> list[str]:
    """Import each plugin module (once: Python caches imports); a module that cannot be imported is one line
    naming it and why."""
    loaded = []
    for index, name in enumerate(modules or ()):
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise BrainalignError(f"config.plugins[{index}]: cannot import {name!r} ({error}); install it or put its "
                                  "folder on PYTHONPATH") from None
        loaded.append(name)
    return loaded
