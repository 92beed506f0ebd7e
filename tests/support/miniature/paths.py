"""Where the miniature finds the repository's files: the paper's config, the Snakefile and the committed fixtures."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]  # tests/support/miniature/paths.py -> the repository
FIXTURES = REPO_ROOT / "tests" / "miniature" / "data"
PAPER_CONFIG = REPO_ROOT / "config" / "paper.yaml"
