"""``python -m tests.support.miniature OUT_DIR`` (build) and ``python -m tests.support.miniature serve OUT_DIR``."""

from tests.support.miniature.cli import main

raise SystemExit(main())
