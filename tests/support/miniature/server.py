"""One loopback HTTP server for the whole miniature: the datasets' raw files and a minimal Hugging Face Hub."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path

from brainalign.io import file_hash
from tests.support.miniature.hub_cache import repo_folder, resolve_revision


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class MiniatureServer:
    """One loopback HTTP server (127.0.0.1 only) for the whole miniature:

    * ``/data/<folder>/<file>``: the synthetic raw dataset files (what each dataset's ``base_url`` points at);
    * a minimal Hugging Face Hub stand-in over the HF cache ``hub_cache`` (``HF_ENDPOINT=<url>``):
      ``GET /api/models/<repo>/revision/<rev>`` (repo info with the commit sha), ``GET /api/models/<repo>/tree/<rev>``
      (file listing) and ``HEAD|GET /<repo>/resolve/<rev>/<file>`` (``X-Repo-Commit``, ``ETag``, Range requests),
      which is what ``huggingface_hub.snapshot_download`` asks for.

    Use as a context manager (``with MiniatureServer(out) as server: server.url``); it stops on exit. Every
    request is recorded in ``self.requests`` (method, path, status).
    """

    def __init__(self, root: Path, port: int = 0):
        self.root = Path(root)
        self.data_dir = self.root / "data"
        self.hub_cache = self.root / "hf" / "hub"
        self.port = port
        self.requests: list[tuple[str, str, int]] = []
        self._server = None
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        from http.server import ThreadingHTTPServer

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="miniature-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def _handler(self):
        from http.server import BaseHTTPRequestHandler
        from urllib.parse import unquote, urlsplit

        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet; requests are recorded instead
                pass

            def _send(self, status, body=b"", headers=None, head=False):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))  # HEAD: the length a GET would send
                self.end_headers()
                if not head:
                    self.wfile.write(body)
                owner.requests.append((self.command, self.path, status))

            def _json(self, obj, status=200, head=False, headers=None):
                self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})}, head)

            def _file(self, path: Path, extra: dict, head: bool):
                data = path.read_bytes()
                start, end, status = 0, len(data) - 1, 200
                match = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                if match:
                    start = int(match.group(1))
                    end = int(match.group(2)) if match.group(2) else len(data) - 1
                    if start >= len(data):
                        return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"}, head)
                    status = 206
                body = data[start:end + 1]
                headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", **extra}
                if status == 206:
                    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                self._send(status, body, headers, head)

            def _route(self, head: bool):
                path = unquote(urlsplit(self.path).path)
                if path.startswith("/data/"):
                    target = (owner.data_dir / path[len("/data/"):]).resolve()
                    if owner.data_dir.resolve() in target.parents and target.is_file():
                        return self._file(target, {}, head)
                    return self._send(404, b"not found", head=head)
                api = re.match(r"^/api/models/(.+?)/(revision|tree)/([^/]+)(/.*)?$", path)
                if api:
                    repo_id, what, revision = api.group(1), api.group(2), api.group(3)
                    commit = resolve_revision(owner.hub_cache, repo_id, revision)
                    if commit is None:
                        return self._json({"error": f"Repository {repo_id} or revision {revision} not found"}, 404, head,
                                          {"X-Error-Code": "RevisionNotFound" if repo_folder(owner.hub_cache, repo_id).is_dir()
                                           else "RepoNotFound"})
                    snapshot = repo_folder(owner.hub_cache, repo_id) / "snapshots" / commit
                    files = sorted(p for p in snapshot.rglob("*") if p.is_file())
                    if what == "revision":
                        return self._json({"id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                                           "siblings": [{"rfilename": p.relative_to(snapshot).as_posix()} for p in files]},
                                          head=head)
                    return self._json([{"type": "file", "path": p.relative_to(snapshot).as_posix(), "size": p.stat().st_size,
                                        "oid": _git_blob_sha1(p.read_bytes())} for p in files], head=head)
                resolve = re.match(r"^/(.+?)/resolve/([^/]+)/(.+)$", path)
                if resolve:
                    repo_id, revision, filename = resolve.groups()
                    commit = resolve_revision(owner.hub_cache, repo_id, revision)
                    if commit is None:
                        return self._send(404, b"", {"X-Error-Code": "RevisionNotFound"}, head)
                    target = repo_folder(owner.hub_cache, repo_id) / "snapshots" / commit / filename
                    if not target.is_file():
                        return self._send(404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, head)
                    return self._file(target, {"X-Repo-Commit": commit, "ETag": f'"{file_hash(target)}"'}, head)
                return self._send(404, b"not found", head=head)

            def do_GET(self):
                self._route(head=False)

            def do_HEAD(self):
                self._route(head=True)

        return Handler


def client_environment(server_url: str, hf_home: Path) -> dict:
    """Environment for the workflow's jobs: the Hub stand-in as ``HF_ENDPOINT`` and an empty client cache."""
    return {"HF_ENDPOINT": server_url, "HF_HOME": str(hf_home), "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0", "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost", "TOKENIZERS_PARALLELISM": "false"}
