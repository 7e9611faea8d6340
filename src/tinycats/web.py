"""`tinycats web`: serve the browser page (web/dist, built from web/) and, for a local model, the
repo folder it reads, with the headers that make the page cross-origin isolated
(Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy: require-corp), so ONNX
Runtime's WASM backend runs multi-threaded.

    /              the page (index.html, app.js, worker.js, ort/…)
    /model/…       the local repo folder given with --model DIR (docs/hub.md)
    /server.json   {"model": URL}: the page's default `model` (/model/ or the Hub's resolve URL)

An hf://OWNER/REPO[@REVISION] model is not proxied: the page fetches it from the Hub itself
(the Hub answers with CORS headers), exactly as it does on any static host.
"""

from __future__ import annotations

import json
import mimetypes
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tinycats.errors import HubError
from tinycats.hub import layout
from tinycats.hub.check import read_sidecar

PAGE_DIR = Path(__file__).resolve().parents[2] / "web" / "dist"
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


class Handler(SimpleHTTPRequestHandler):
    """Static files from the page folder, /model/ from the model folder, isolation headers on all."""

    def __init__(self, *args, page: Path, model_dir: Path | None, default_model: str, **kwargs) -> None:
        self.page, self.model_dir, self.default_model = page, model_dir, default_model
        super().__init__(*args, directory=str(page), **kwargs)

    def translate_path(self, path: str) -> str:
        route = path.split("?", 1)[0].split("#", 1)[0]
        if self.model_dir is not None and route.startswith("/model/"):
            self.directory = str(self.model_dir)
            return super().translate_path(path[len("/model") :])
        self.directory = str(self.page)
        return super().translate_path(path)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/server.json":
            body = json.dumps({"model": self.default_model}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

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
    model_dir = None
    if not layout.is_ref(model):
        model_dir = Path(model)
        sidecar = model_dir / layout.SIDECAR
        if not sidecar.is_file():
            raise HubError(
                f"{model_dir} has no {layout.SIDECAR}: give a repo folder with ONNX files "
                "(`tinycats demo` writes demo/hub, or `tinycats upload ... --dry-run DIR`)"
            )
        read_sidecar(sidecar, str(sidecar))
    default_model = model_url(model)  # checks an hf:// reference
    if not (page / "index.html").is_file():
        raise HubError(f"the page is not built ({page}/index.html is missing): run `make web` (npm ci && npm run build in web/)")
    handler = partial(Handler, page=page, model_dir=model_dir, default_model=default_model)
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise HubError(f"cannot listen on {host}:{port} ({exc.strerror}): choose another --port") from exc


def serve_in_background(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread
