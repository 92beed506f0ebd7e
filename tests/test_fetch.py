"""fetch_dataset / download against a threaded HTTP server on 127.0.0.1 (never the internet), and local copies
verified against CHECKSUMS manifests. Fixture files are random bytes: structural, not data."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from brainalign.datasets import ADAPTERS, fetch
from brainalign.datasets.fetch import download, fetch_dataset, read_manifest, write_manifest
from brainalign.errors import BrainalignError

PAYLOAD = np.random.default_rng(0).bytes(300_000)
SHA256 = "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()
SHA1 = "sha1:" + hashlib.sha1(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /good.bin with Range support; /drop.bin drops the connection on its first request."""

    requests: list = []
    dropped = {"done": False}

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        Handler.requests.append((self.path, self.headers.get("Range")))
        if self.path not in ("/good.bin", "/drop.bin", "/norange.bin"):
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and self.path != "/norange.bin":
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path == "/drop.bin" and not Handler.dropped["done"]:
            Handler.dropped["done"] = True
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def reset_handler():
    Handler.requests.clear()
    Handler.dropped["done"] = False


def test_download_happy_path_verifies_sha1_and_sha256(server, tmp_path):
    for checksum in (SHA1, SHA256):
        dest = tmp_path / checksum[:4] / "good.bin"
        sha = download(f"{server}/good.bin", dest, checksum, len(PAYLOAD), retries=0)
        assert dest.read_bytes() == PAYLOAD and sha == SHA256[7:]
        assert not dest.with_name("good.bin.part").exists()


def test_dropped_connection_is_retried_and_resumed_with_range(server, tmp_path):
    dest = tmp_path / "drop.bin"
    download(f"{server}/drop.bin", dest, SHA256, len(PAYLOAD), retries=2, backoff=0.01)
    assert dest.read_bytes() == PAYLOAD
    assert len(Handler.requests) == 2
    assert Handler.requests[0][1] is None
    assert Handler.requests[1][1] == f"bytes={len(PAYLOAD) // 3}-"  # resumed from where the drop happened


def test_resume_existing_part_file(server, tmp_path):
    dest = tmp_path / "good.bin"
    dest.with_name("good.bin.part").write_bytes(PAYLOAD[:1000])
    download(f"{server}/good.bin", dest, SHA256, retries=0)
    assert dest.read_bytes() == PAYLOAD and Handler.requests == [("/good.bin", "bytes=1000-")]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    dest = tmp_path / "norange.bin"
    dest.with_name("norange.bin.part").write_bytes(b"garbage")
    download(f"{server}/norange.bin", dest, SHA256, retries=0)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_is_an_error_and_no_file_is_left(server, tmp_path):
    dest = tmp_path / "good.bin"
    wrong = "sha256:" + "0" * 64
    with pytest.raises(BrainalignError, match=r"good.bin.*sha256 mismatch: expected 0{64}, got " + SHA256[7:]):
        download(f"{server}/good.bin", dest, wrong, retries=0)
    assert list(tmp_path.iterdir()) == []


def test_truncated_download_size_mismatch_detected(server, tmp_path):
    with pytest.raises(BrainalignError, match="size mismatch: expected 300001 bytes, got 300000"):
        download(f"{server}/good.bin", tmp_path / "good.bin", None, len(PAYLOAD) + 1, retries=0)
    assert list(tmp_path.iterdir()) == []


def test_404_is_an_immediate_error(server, tmp_path):
    with pytest.raises(BrainalignError, match="HTTP 404"):
        download(f"{server}/missing.bin", tmp_path / "missing.bin", SHA256, retries=3, backoff=10)
    assert len(Handler.requests) == 1  # not retried


def test_unreachable_host_fails_after_retries(tmp_path):
    with pytest.raises(BrainalignError, match="download failed after 2 attempts"):
        download("http://127.0.0.1:9/x.bin", tmp_path / "x.bin", None, retries=1, backoff=0.01, timeout=2)


@pytest.fixture
def fake_adapter(monkeypatch):
    """A registered adapter whose REMOTE_FILES point at the test server's files (registry entry restored after)."""
    module = types.SimpleNamespace(NAME="fake", KIND="sentence", REMOTE_FILES=[("good.bin", None, SHA1, len(PAYLOAD)),
                                                                               ("sub/drop.bin", None, None, None)])
    monkeypatch.setitem(ADAPTERS, "fake", module)
    return module


def test_fetch_dataset_download_writes_record(server, tmp_path, fake_adapter, monkeypatch):
    # base_url maps filename -> base_url/filename; serve sub/drop.bin from /drop.bin via a per-file pin
    fake_adapter.REMOTE_FILES[1] = ("drop.bin", None, None, None)
    spec = {"name": "fake", "adapter": "fake", "base_url": server, "options": {"fetch_backoff_s": 0.01}}
    out = tmp_path / "raw" / "fake"
    fetch_dataset(spec, out)
    record = json.loads((out / "fetch.json").read_text())
    assert {f["path"] for f in record["files"]} == {"good.bin", "drop.bin"}
    assert all(f["sha256"] == SHA256[7:] for f in record["files"])
    assert [f["verified"] for f in record["files"]] == [True, False]  # drop.bin: no published checksum -> recorded
    assert (out / "good.bin").read_bytes() == PAYLOAD
    assert not (tmp_path / "raw" / "fake.download").exists()


def test_fetch_dataset_pinned_checksum_mismatch(server, tmp_path, fake_adapter):
    fake_adapter.REMOTE_FILES[1] = ("drop.bin", None, None, None)
    spec = {"name": "fake", "adapter": "fake", "base_url": server,
            "options": {"checksums": {"drop.bin": "sha256:" + "1" * 64}, "fetch_backoff_s": 0.01}}
    with pytest.raises(BrainalignError, match="drop.bin.*sha256 mismatch"):
        fetch_dataset(spec, tmp_path / "raw" / "fake")
    assert not (tmp_path / "raw" / "fake").exists()
    assert not (tmp_path / "raw" / "fake.download" / "drop.bin").exists()


def _local_copy(tmp_path: Path) -> Path:
    src = tmp_path / "local"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.txt").write_text("beta\n")
    write_manifest(src)
    return src


def test_local_dir_copy_verified(tmp_path, fake_adapter):
    src = _local_copy(tmp_path)
    assert [name for name, _ in read_manifest(src / "CHECKSUMS")] == ["a.txt", "sub/b.txt"]
    fetch_dataset({"name": "fake", "adapter": "fake", "local_dir": str(src)}, tmp_path / "out")
    assert (tmp_path / "out" / "sub" / "b.txt").read_text() == "beta\n"
    assert json.loads((tmp_path / "out" / "fetch.json").read_text())["files"][0]["sha256"] == hashlib.sha256(b"alpha\n").hexdigest()


@pytest.mark.parametrize("damage", ["truncate", "corrupt", "delete"])
def test_local_dir_damage_detected(tmp_path, fake_adapter, damage):
    src = _local_copy(tmp_path)
    target = src / "sub" / "b.txt"
    if damage == "truncate":
        target.write_text("be")
    elif damage == "corrupt":
        target.write_text("BETA\n")
    else:
        target.unlink()
    expected = "missing from local_dir" if damage == "delete" else "sha256 mismatch: expected " + hashlib.sha256(b"beta\n").hexdigest()
    with pytest.raises(BrainalignError, match=expected):
        fetch_dataset({"name": "fake", "adapter": "fake", "local_dir": str(src)}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_relative_local_dir_is_read_from_the_working_directory_else_from_base_dir(tmp_path, fake_adapter, monkeypatch):
    """The package never reads the repository layout: a relative local_dir is found below the working directory
    (snakemake run from the repository), else below ``base_dir`` (the fetch job passes the repository)."""
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    src = _local_copy(repo)
    elsewhere.mkdir()
    spec = {"name": "fake", "adapter": "fake", "local_dir": "local"}
    monkeypatch.chdir(repo)
    fetch_dataset(spec, tmp_path / "from_cwd")
    assert (tmp_path / "from_cwd" / "sub" / "b.txt").read_text() == "beta\n"
    monkeypatch.chdir(elsewhere)
    assert fetch.resolve_local_dir("local", base_dir=repo) == src
    fetch_dataset(spec, tmp_path / "from_base", base_dir=repo)
    assert (tmp_path / "from_base" / "a.txt").read_text() == "alpha\n"
    with pytest.raises(BrainalignError, match="local_dir local does not exist"):
        fetch_dataset(spec, tmp_path / "nowhere")


def test_local_dir_without_manifest_and_without_checksums(tmp_path, fake_adapter):
    (tmp_path / "bare").mkdir()
    fake_adapter.REMOTE_FILES = [("x.bin", None, None, None)]
    with pytest.raises(BrainalignError, match="CHECKSUMS: missing"):
        fetch_dataset({"name": "fake", "adapter": "fake", "local_dir": str(tmp_path / "bare")}, tmp_path / "out")


def test_shipped_manifests_match_shipped_data(resources_data):
    """Every default dataset's local copy is pinned by a manifest that still matches (catches a damaged checkout)."""
    for name in ("tuckute2024", "pereira2018", "brennan2016", "naturalstories", "frank2013"):
        for rel, checksum in read_manifest(resources_data / name / "CHECKSUMS"):
            fetch.verify_file(resources_data / name / rel, checksum)


def test_paper_adapters_declare_real_sources():
    from brainalign.datasets import get_adapter

    assert get_adapter("pereira2018").REMOTE_FILES[0][2] == "sha1:f8434b4022f5b2c862f0ff2854d5b3f5f2a7fb96"
    assert get_adapter("blank2014").REMOTE_FILES[0][2] == "sha1:af1e868821b897cb1684e4c8dcd33977121ef552"
    for name in ("pereira2018", "blank2014", "wehbe2014", "futrell2018"):
        for filename, url, checksum, *_ in get_adapter(name).REMOTE_FILES:
            assert url.startswith("http") and filename
            if checksum:
                fetch.parse_checksum(checksum, name)
    with pytest.raises(BrainalignError, match="unknown dataset adapter 'nope'; known adapters: blank2014"):
        get_adapter("nope")


def test_offline_only_adapter_needs_local_dir(tmp_path):
    with pytest.raises(BrainalignError, match="brennan2016.*no download source; set local_dir"):
        fetch_dataset({"name": "brennan2016", "adapter": "brennan2016"}, tmp_path / "out")
