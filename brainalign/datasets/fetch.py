"""Fetch a dataset's raw files: download from the public source, or copy a shipped local copy, checksums verified.

Why this shape: a raw file that is truncated or corrupted must never reach ``prepare`` (it would give a plausible
but wrong score), so every file is hashed before it is accepted, and a bad download is deleted, not kept.

* Download (no ``local_dir``): each adapter ``REMOTE_FILES`` entry ``(filename, url, checksum, size)`` is fetched
  with urllib into a persistent ``<out_dir>.download/<filename>.part`` file, retried with exponential backoff, and
  resumed with an HTTP ``Range`` request after a dropped connection. Size and checksum (``sha1:``/``sha256:``) are
  checked *before* the rename; on mismatch the part file is deleted and a one-line error names file, expected and
  actual. ``spec["base_url"]`` replaces every url by ``base_url/filename`` (mirrors, tests).
* Local copy (``local_dir``): the files listed in ``local_dir/CHECKSUMS`` (``sha256sum`` format) are copied and
  verified; without a manifest, the adapter's ``REMOTE_FILES`` with a known checksum are verified by filename.
  A relative ``local_dir`` is read from the working directory, else from ``base_dir`` (see :func:`resolve_local_dir`).
* Unpublished checksums (``checksum`` None): pin one with ``options: {checksums: {filename: "sha256:..."}}`` in
  the config entry; otherwise the sha256 of the first download is recorded in ``fetch.json`` ("trust on first
  use") and a warning is logged with the line to pin it.

``out_dir`` is written atomically and ends with ``fetch.json`` (files, sha256, expected checksum, source).
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from brainalign.datasets.checksums import parse_checksum
from brainalign.datasets.options import common_option_default, dataset_options
from brainalign.errors import BrainalignError
from brainalign.io import atomic_path, file_hash, write_json

log = logging.getLogger("brainalign.datasets")

MANIFEST = "CHECKSUMS"
FETCH_RECORD = "fetch.json"
CHUNK = 1 << 20
NO_RETRY_HTTP = {400, 401, 403, 404, 405, 410, 451}


def verify_file(path: Path, checksum: str | None, size: int | None = None, where: str | None = None) -> str:
    """Check size and checksum of ``path``; return its sha256. Raises a one-line error on any mismatch."""
    where = where or str(path)
    if not path.is_file():
        raise BrainalignError(f"{where}: file missing")
    actual_size = path.stat().st_size
    if size is not None and actual_size != int(size):
        raise BrainalignError(f"{where}: size mismatch: expected {int(size)} bytes, got {actual_size} (truncated or corrupted download)")
    sha256 = file_hash(path, "sha256")
    if checksum:
        algorithm, expected = parse_checksum(checksum, where)
        actual = sha256 if algorithm == "sha256" else file_hash(path, algorithm)
        if actual != expected:
            raise BrainalignError(f"{where}: {algorithm} mismatch: expected {expected}, got {actual} "
                                  "(corrupted, truncated or changed file)")
    return sha256


def read_manifest(path: Path) -> list[tuple[str, str]]:
    """Parse a ``sha256sum``-style manifest into ``[(relative path, "sha256:<hex>")]``."""
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise BrainalignError(f"{path}:{number}: expected '<sha256>  <relative path>', got {line!r}")
        digest, name = parts[0], parts[1].strip().lstrip("*")
        entries.append((name, f"sha256:{parse_checksum('sha256:' + digest, f'{path}:{number}')[1]}"))
    return entries


def write_manifest(directory: str | os.PathLike, exclude: tuple[str, ...] = ()) -> Path:
    """Write ``directory/CHECKSUMS`` (sha256 of every file below it, sorted); used to pin shipped data."""
    directory = Path(directory)
    lines = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel == MANIFEST or rel in exclude:
            continue
        lines.append(f"{file_hash(path)}  {rel}")
    (directory / MANIFEST).write_text("\n".join(lines) + "\n")
    return directory / MANIFEST


def resolve_local_dir(local_dir: str, base_dir: str | os.PathLike | None = None) -> Path:
    """``local_dir`` as given if it exists (absolute or relative to the working directory), else relative to
    ``base_dir`` when one is given. The workflow's fetch job passes the folder holding the Snakefile, so a config's
    ``local_dir: resources/data/...`` is found also when Snakemake runs with ``--directory`` somewhere else."""
    path = Path(local_dir)
    if path.is_dir() or path.is_absolute() or base_dir is None:
        return path
    return Path(base_dir) / path


def _pinned_checksums(spec: dict) -> dict:
    return dict((spec.get("options") or {}).get("checksums") or {})


def copy_local(spec: dict, adapter, dest: Path, base_dir: str | os.PathLike | None = None) -> list[dict]:
    """Copy and verify the files of ``spec['local_dir']`` (see :func:`resolve_local_dir`) into ``dest``; return the
    per-file records."""
    source = resolve_local_dir(spec["local_dir"], base_dir)
    if not source.is_dir():
        raise BrainalignError(f"{spec['name']}: local_dir {source} does not exist")
    pinned = _pinned_checksums(spec)
    manifest = source / MANIFEST
    if manifest.is_file():
        entries = read_manifest(manifest)
    else:
        entries = [(name, pinned.get(name, checksum)) for name, _url, checksum, *_ in adapter_remote_files(adapter, spec.get("options"))]
        if not any(checksum for _, checksum in entries):
            raise BrainalignError(
                f"{manifest}: missing; expected a sha256 manifest of the local files (write one with "
                f"python -m brainalign.datasets.fetch {source})"
            )
    records = []
    for name, checksum in entries:
        src = source / name
        if not src.is_file():
            raise BrainalignError(f"{src}: listed in {manifest.name if manifest.is_file() else 'the adapter'} but missing from local_dir")
        sha256 = verify_file(src, checksum, where=str(src))
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        records.append({"path": name, "sha256": sha256, "expected": checksum, "size": src.stat().st_size, "source": str(src)})
    return records


def download(url: str, dest: Path, checksum: str | None = None, size: int | None = None,
             retries: int | None = None, backoff: float | None = None, timeout: float | None = None) -> str:
    """Download ``url`` to ``dest`` via ``dest.part`` (resumed with Range), verify, then rename; return sha256.

    Transient failures (dropped connection, timeout, 5xx) are retried ``retries`` times with backoff
    ``backoff * 2**attempt`` seconds (None: the schema's ``fetch_retries``, ``fetch_backoff_s``,
    ``fetch_timeout_s``); client errors (404, 403, ...) fail at once. A file failing its size or checksum check is
    deleted, so a bad download is never used or resumed.
    """
    retries = common_option_default("fetch_retries") if retries is None else retries
    backoff = common_option_default("fetch_backoff_s") if backoff is None else backoff
    timeout = common_option_default("fetch_timeout_s") if timeout is None else timeout
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error = None
    for attempt in range(retries + 1):
        if attempt:
            wait = backoff * 2 ** (attempt - 1)
            log.warning("%s: attempt %d failed (%s); retrying in %.1f s", url, attempt, last_error, wait)
            time.sleep(wait)
        try:
            _download_once(url, part, timeout)
            break
        except urllib.error.HTTPError as error:
            if error.code in NO_RETRY_HTTP:
                raise BrainalignError(f"{url}: HTTP {error.code} {error.reason}; expected the file {dest.name} "
                                      "(check the url or base_url)") from None
            last_error = f"HTTP {error.code}"
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError) as error:
            last_error = f"{type(error).__name__}: {error}"
    else:
        raise BrainalignError(f"{url}: download failed after {retries + 1} attempts ({last_error}); partial data kept in {part} for resume")
    try:
        sha256 = verify_file(part, checksum, size, where=f"{dest.name} from {url}")
    except BrainalignError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return sha256


def _download_once(url: str, part: Path, timeout: float) -> None:
    """One HTTP request: resume ``part`` from its current size if the server honours Range."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "brainalign-fetch"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing left to send: the part file is already complete
            return
        raise
    with response:
        resumed = have and response.status == 206 and response.headers.get("Content-Range", "").startswith(f"bytes {have}-")
        expected = response.headers.get("Content-Length")
        received = 0
        with open(part, "ab" if resumed else "wb") as handle:
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                handle.write(block)
                received += len(block)
        if expected is not None and received != int(expected):
            raise http.client.IncompleteRead(b"", int(expected) - received)


def adapter_remote_files(adapter, options: dict | None) -> list:
    """The files to fetch: ``adapter.remote_files(options)`` where the adapter's options choose them (SyntaxGym's
    suites), else ``REMOTE_FILES``."""
    chooser = getattr(adapter, "remote_files", None)
    return list(chooser(options or {}) if chooser is not None else adapter.REMOTE_FILES)


def download_all(spec: dict, adapter, dest: Path, cache: Path) -> list[dict]:
    """Download every ``REMOTE_FILES`` entry into ``cache`` (kept for resume), then copy into ``dest``."""
    options = dataset_options(spec, adapter)
    pinned = _pinned_checksums(spec)
    base_url = spec.get("base_url")
    remote = adapter_remote_files(adapter, options)
    if not remote:
        raise BrainalignError(f"config.datasets ({spec['name']}): adapter {adapter.NAME} has no download source; set local_dir")
    records = []
    for name, url, checksum, *rest in remote:
        size = rest[0] if rest else None
        if name in pinned:  # the config pins another file (a mirror's version): the adapter's size is not its size
            checksum, size = pinned[name], None
        if base_url:
            url = f"{base_url.rstrip('/')}/{name}"
        if not url:
            raise BrainalignError(f"{spec['name']}: no public url for {name}; set local_dir or base_url")
        cached = cache / name
        if cached.is_file():
            try:
                sha256 = verify_file(cached, checksum, size)
            except BrainalignError as error:
                log.warning("%s; downloading again", error)
                cached.unlink()
        if not cached.is_file():
            sha256 = download(url, cached, checksum, size, retries=options["fetch_retries"],
                              backoff=options["fetch_backoff_s"], timeout=options["fetch_timeout_s"])
        if not checksum:
            log.warning("%s: no published checksum; recorded sha256:%s (pin it with options: {checksums: {%s: \"sha256:%s\"}})",
                        name, sha256, name, sha256)
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, target)
        records.append({"path": name, "sha256": sha256, "expected": checksum, "size": cached.stat().st_size, "source": url,
                        "verified": bool(checksum)})
    return records


def fetch_dataset(spec: dict, out_dir, base_dir: str | os.PathLike | None = None) -> None:
    """Step function of rule ``fetch_dataset``: raw files of one dataset into ``out_dir`` + ``fetch.json``.

    ``base_dir``: where a relative ``local_dir`` that is not below the working directory is looked up (the
    workflow passes the folder holding its Snakefile)."""
    from brainalign.datasets.registry import get_adapter

    adapter = get_adapter(spec["adapter"])
    out_dir = Path(out_dir)
    cache = out_dir.with_name(out_dir.name + ".download")
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        if spec.get("local_dir"):
            records = copy_local(spec, adapter, tmp, base_dir)
            source = f"local_dir {spec['local_dir']}"
        else:
            records = download_all(spec, adapter, tmp, cache)
            source = spec.get("base_url") or "public source urls of the adapter"
        write_json({"dataset": spec["name"], "adapter": adapter.NAME, "source": source, "files": records}, tmp / FETCH_RECORD)
    if cache.is_dir():
        shutil.rmtree(cache)
    log.info("fetched %s: %d files from %s", spec["name"], len(records), source)


if __name__ == "__main__":
    import sys

    for folder in sys.argv[1:]:
        print(write_manifest(folder))
