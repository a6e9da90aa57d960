"""A stand-in for the Hugging Face hub on 127.0.0.1: just what ``huggingface_hub.snapshot_download`` 0.36 asks of a
dataset repository, read from its source (``hf_api.dataset_info``, ``file_download.get_hf_file_metadata`` and
``http_get``):

* ``GET /api/datasets/<repo>/revision/<rev>``: ``{"id", "sha", "siblings": [{"rfilename"}]}``; an unknown revision
  is a 404 with ``X-Error-Code: RevisionNotFound``, an unknown repository one with ``RepoNotFound``.
* ``HEAD /datasets/<repo>/resolve/<rev>/<path>``: ``X-Repo-Commit``, ``ETag`` (the sha256 of the file, quoted, as
  the hub gives an LFS file's), ``Content-Length``; an unknown file is a 404 with ``EntryNotFound``.
* ``GET`` of the same: the bytes, or from ``Range: bytes=N-`` a 206 with ``Content-Range`` (how an interrupted
  download resumes).

Every request is recorded (method, path, Range header). ``stall[path] = n`` makes a GET of ``path`` send ``n`` bytes
and then hold the rest until :meth:`StubHub.release` (to interrupt a download half-way, or hold a fetch while another
process waits for it).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

REPO_ID = "bliberatori/ConViS-Bench"


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive of ``members`` (name -> content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def tar_bytes(members: dict[str, bytes], mode: str = "w:gz", links: dict[str, str] | None = None) -> bytes:
    """A tar archive of ``members`` (name -> content), plus symlink members ``links`` (name -> target)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


def demo_repo(demo: Path) -> dict[str, bytes]:
    """The bundled demo set as a hub repository would hold it: the annotation files as they are, the videos packed
    in ``videos.zip`` (members ``videos/v01.mp4`` ..., the paths ``ConVIS.jsonl`` names)."""
    files = {name: (demo / name).read_bytes() for name in ("ConVIS.jsonl", "ranked.json", "to_be_ranked.json")}
    files["videos.zip"] = zip_bytes({f"videos/{p.name}": p.read_bytes() for p in sorted((demo / "videos").iterdir())})
    files["README.md"] = b"# ConViS-Bench (test stand-in)\n"
    return files


class StubHub:
    """A thread serving ``commits`` (commit sha -> {path: bytes}); ``main`` names the commit of branch ``main``."""

    def __init__(self, commits: dict[str, dict[str, bytes]], main: str, repo_id: str = REPO_ID):
        self.commits = commits
        self.main = main
        self.repo_id = repo_id
        self.requests: list[tuple[str, str, str | None]] = []
        self.stall: dict[str, int] = {}
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "StubHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                hub._answer(self, "GET")

            def do_HEAD(self) -> None:
                hub._answer(self, "HEAD")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def release(self) -> None:
        """Let stalled downloads go on and stop stalling."""
        self.stall.clear()
        self._released.set()

    def gets(self, path: str) -> list[str | None]:
        """The Range headers of every GET of the file ``path`` (None: from the start)."""
        return [rng for method, p, rng in self.requests if method == "GET" and p.endswith("/" + path)
                and "/resolve/" in p]

    # --- answering ------------------------------------------------------------------------------------------

    def _commit(self, rev: str) -> str | None:
        rev = unquote(rev)
        return self.main if rev == "main" else (rev if rev in self.commits else None)

    @staticmethod
    def _error(handler, status: int, code: str) -> None:
        body = json.dumps({"error": code}).encode()
        handler.send_response(status)
        handler.send_header("X-Error-Code", code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    def _answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = urlparse(handler.path).path
        self.requests.append((method, path, handler.headers.get("Range")))
        api = f"/api/datasets/{self.repo_id}/revision/"
        resolve = f"/datasets/{self.repo_id}/resolve/"
        if path.startswith(api) and method == "GET":
            commit = self._commit(path[len(api):])
            if commit is None:
                return self._error(handler, 404, "RevisionNotFound")
            body = json.dumps({"id": self.repo_id, "sha": commit, "private": False,
                               "siblings": [{"rfilename": f} for f in sorted(self.commits[commit])]}).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return None
        if not path.startswith(resolve):
            return self._error(handler, 404, "RepoNotFound")
        rev, _, name = path[len(resolve):].partition("/")
        commit = self._commit(rev)
        if commit is None:
            return self._error(handler, 404, "RevisionNotFound")
        name = unquote(name)
        if name not in self.commits[commit]:
            return self._error(handler, 404, "EntryNotFound")
        self._send_file(handler, method, commit, name)
        return None

    def _send_file(self, handler: BaseHTTPRequestHandler, method: str, commit: str, name: str) -> None:
        content = self.commits[commit][name]
        start = 0
        rng = handler.headers.get("Range")
        if method == "GET" and rng and rng.startswith("bytes=") and rng[6:].split("-")[0].isdigit():
            start = int(rng[6:].split("-")[0])
        body = content[start:]
        handler.send_response(206 if start else 200)
        handler.send_header("X-Repo-Commit", commit)
        handler.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
        handler.send_header("Content-Length", str(len(body) if method == "GET" else len(content)))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
        handler.end_headers()
        if method == "HEAD":
            return
        stall = self.stall.get(name)
        try:
            if stall is not None and stall < len(body):
                handler.wfile.write(body[:stall])
                handler.wfile.flush()
                self._released.wait(timeout=120)
                body = body[stall:]  # the rest (a killed client makes this a broken pipe)
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
