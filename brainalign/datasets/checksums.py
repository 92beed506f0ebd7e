"""A checksum as the config and the adapters write it (``"sha256:<hex>"``, ``"sha1:<hex>"``, ``"md5:<hex>"``): read
by fetch when it verifies a download and by the options check when it loads a config."""

from __future__ import annotations

from brainalign.errors import BrainalignError


def parse_checksum(checksum: str, where: str) -> tuple[str, str]:
    """``"sha1:<hex>"`` -> ``("sha1", "<hex>")``; anything else is a BrainalignError naming ``where``."""
    algorithm, _, value = str(checksum).partition(":")
    algorithm = algorithm.lower()
    lengths = {"sha1": 40, "sha256": 64, "md5": 32}
    if algorithm not in lengths or len(value) != lengths[algorithm] or any(c not in "0123456789abcdef" for c in value.lower()):
        raise BrainalignError(f"{where}: checksum {checksum!r} is not 'sha1:<40 hex>' or 'sha256:<64 hex>'")
    return algorithm, value.lower()
