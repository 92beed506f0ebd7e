"""Test tooling shared by the test modules (not part of the ``brainalign`` package): the paper in miniature
(:mod:`tests.support.miniature`) and small helpers that several test modules use."""
