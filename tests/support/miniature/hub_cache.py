"""A folder of model files laid out as a Hugging Face cache entry, and revisions resolved in it (what the
miniature's Hub stand-in serves and what an offline compute node reads)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

from brainalign.io import file_hash

COMMIT_HEX = re.compile(r"^[0-9a-f]{40}$")


def repo_folder(hub_cache: Path, repo_id: str) -> Path:
    return Path(hub_cache) / ("models--" + repo_id.replace("/", "--"))


def add_to_hub_cache(hub_cache: Path, repo_id: str, revision: str, folder: Path) -> str:
    """Lay ``folder`` out as a Hugging Face cache entry (``blobs/``, ``snapshots/<commit>/``, ``refs/<revision>``).

    The commit is ``revision`` itself when the config pins a 40-hex commit, else a hash of the repo id and
    file contents. Blob names are the files' sha256 (the Hub's ETag of LFS files). Returns the commit."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    digest = hashlib.sha1(repo_id.encode())
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + file_hash(path).encode())
    commit = revision if COMMIT_HEX.match(revision) else digest.hexdigest()
    root = repo_folder(hub_cache, repo_id)
    snapshot = root / "snapshots" / commit
    for path in files:
        sha = file_hash(path)
        blob = root / "blobs" / sha
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            shutil.copyfile(path, blob)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    if not COMMIT_HEX.match(revision):
        (root / "refs" / revision).write_text(commit)
    return commit


def resolve_revision(hub_cache: Path, repo_id: str, revision: str) -> str | None:
    root = repo_folder(hub_cache, repo_id)
    if COMMIT_HEX.match(revision):
        return revision if (root / "snapshots" / revision).is_dir() else None
    ref = root / "refs" / revision
    return ref.read_text().strip() if ref.is_file() else None
