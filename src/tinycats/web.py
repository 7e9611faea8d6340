"""`tinycats web`: serve the browser page (tinycats/page: package data built from web/ by
web/build.mjs, so a wheel carries it) and, for a local model, the
repo folder it reads, with the headers that make the page cross-origin isolated
(Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy: require-corp), so ONNX
Runtime's WASM backend runs multi-threaded.

    /              the page (index.html, app.js, worker.js, ort/…)
    /model/…       the local repo folder given with --model DIR (docs/hub.md)
    /server.json   {"model": URL, "links": {...}}: the page's default `model` (/model/ or the Hub's
                   resolve URL) and the project's URLs from the package metadata (tinycats/about.py)

It is safe to leave running: it serves an allow-list fixed at start, not a folder. The page's
regular files; of the model folder only config.json, the sidecar and the files the sidecar names.
No directory listings, GET and HEAD only, and every other path (a symlink out of the folders, `..`
in any spelling, a listing) is the same 404, which names nothing on disk. The one link followed
is the Hugging Face cache's own: a snapshot's files point into the repo's `blobs/` folder.

An hf://OWNER/REPO[@REVISION] model is not proxied: the page fetches it from the Hub itself
(the Hub answers with CORS headers), exactly as it does on any static host.
"""

from __future__ import annotations

import json
import mimetypes
import os
import posixpath
import shutil
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from tinycats.errors import HubError
from tinycats.hub import layout
from tinycats.hub.check import read_sidecar

PAGE_DIR = Path(__file__).resolve().parent / "page"
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")


def model_url(model: str) -> str:
    """The page's default `model`: the Hub's resolve URL for hf://, else the local /model/ route."""
    if layout.is_ref(model):
        from huggingface_hub import constants

        repo_id, revision = layout.parse_ref(model)
        return f"{constants.ENDPOINT}/{repo_id}/resolve/{revision or 'main'}/"
    return "/model/"


def server_json(model: str) -> bytes:
    """/server.json: the page's default model URL, and the project's links (none where pyproject.toml
    sets none), which the page shows under its controls."""
    from tinycats.about import project_urls

    return json.dumps({"model": model, "links": project_urls()}).encode() + b"\n"


Entry = tuple[Path, str, "Path | None"]  # (root, relative path, the Hub cache's blobs folder or None)


def _regular(root: Path, rel: str, blobs: Path | None = None) -> Path | None:
    """root/rel when it is a regular file reached through no link, or (with `blobs`) whose one link
    is the file itself and points into `blobs`; else None. Checked at start and on every request."""
    path = root
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or any(part in ("", ".", "..") for part in parts):
        return None
    for part in parts[:-1]:
        path = path / part
        if path.is_symlink() or not path.is_dir():
            return None
    path = path / parts[-1]
    if path.is_symlink():
        target = path.resolve()
        return target if blobs is not None and target.is_relative_to(blobs) and target.is_file() else None
    return path if path.is_file() else None


def require_page(page: Path) -> None:
    """A source checkout has the page only once web/build.mjs ran; a wheel always carries it."""
    if not (page / "index.html").is_file():
        raise HubError(
            f"the browser page is not built ({page / 'index.html'} is missing): in a source checkout run `make web` "
            "(npm ci + web/build.mjs), or install the wheel, which carries it (`make wheel`)"
        )


def page_files(page: Path) -> dict[str, Entry]:
    """URL path -> entry for every regular file of the built page ("/" is index.html)."""
    root = page.resolve()
    files: dict[str, Entry] = {}
    for folder, _, names in os.walk(root):  # links to folders are not walked, links to files are refused
        for name in names:
            rel = (Path(folder) / name).relative_to(root).as_posix()
            if _regular(root, rel) is not None:
                files["/" + rel] = (root, rel, None)
    files["/"] = files["/index.html"]
    return files


def model_files(model_dir: Path, sidecar: dict) -> dict[str, Entry]:
    """URL path -> entry for what the page may read of a repo folder: config.json, the sidecar and
    the files it names. In a Hub cache snapshot (…/snapshots/REV) links into …/blobs are followed
    (a `blobs` that is itself a link is not trusted)."""
    root = model_dir.resolve()
    blobs = root.parent.parent / "blobs" if root.parent.name == "snapshots" else None
    blobs = blobs if blobs is not None and blobs.is_dir() and not blobs.is_symlink() else None
    names = {layout.CONFIG, layout.SIDECAR}
    for entry in sidecar.get("files", {}).values():
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            names.add(posixpath.normpath(posixpath.join(posixpath.dirname(layout.SIDECAR), entry["path"])))
    return {f"/model/{name}": (root, name, blobs) for name in names if _regular(root, name, blobs) is not None}


class Handler(BaseHTTPRequestHandler):
    """The allow-listed files, /server.json, isolation headers on every answer."""

    def __init__(self, *args, files: dict[str, Entry], defaults: bytes, **kwargs) -> None:
        self.files, self.defaults = files, defaults  # (`self.server` is the HTTP server's own)
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        route = unquote(urlsplit(self.path).path)  # an exact match after decoding: no spelling of .. is listed
        if route == "/server.json":
            self._send(200, self.defaults, "application/json", body)
            return
        path = _regular(*self.files[route]) if route in self.files else None  # again: a file may have become a link
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW) if path is not None else None
        except OSError:
            fd = None
        if fd is None:
            self._send(404, b"not found\n", "text/plain; charset=utf-8", body)
            return
        with os.fdopen(fd, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self._headers(200, size, mimetypes.guess_type(path.name)[0] or "application/octet-stream")
            if body:
                self._write(lambda: shutil.copyfileobj(f, self.wfile))

    def _headers(self, status: int, length: int, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, status: int, data: bytes, content_type: str, body: bool) -> None:
        self._headers(status, len(data), content_type)
        if body:
            self._write(lambda: self.wfile.write(data))

    def _write(self, write) -> None:
        try:
            write()
        except (BrokenPipeError, ConnectionResetError):  # the browser stopped reading: nothing to answer
            self.close_connection = True

    def _refuse(self) -> None:
        self.send_response(405)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    def end_headers(self) -> None:
        for key, value in ISOLATION_HEADERS.items():
            self.send_header(key, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # one quiet line per request is noise here
        return


def make_server(model: str, port: int = 8000, host: str = "127.0.0.1", page: Path = PAGE_DIR) -> ThreadingHTTPServer:
    """A server for the page and `model` (a repo folder or hf://…), not yet serving. A local
    folder's sidecar is read here: the page would otherwise fail in the browser, after the start."""
    files: dict[str, Path] = {}
    if not layout.is_ref(model):
        model_dir = Path(model)
        sidecar = model_dir / layout.SIDECAR
        if not sidecar.is_file():
            raise HubError(
                f"{model_dir} has no {layout.SIDECAR}: give a repo folder with ONNX files "
                "(`tinycats demo` writes demo/hub, or `tinycats upload ... --dry-run DIR`)"
            )
        files = model_files(model_dir, read_sidecar(sidecar, str(sidecar)))
    defaults = server_json(model_url(model))  # model_url checks an hf:// reference
    require_page(page)
    handler = partial(Handler, files={**page_files(page), **files}, defaults=defaults)
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise HubError(f"cannot listen on {host}:{port} ({exc.strerror}): choose another --port") from exc


def serve_in_background(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread
