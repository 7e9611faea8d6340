"""`tinycats web`'s server under hostile requests: a real server on loopback, raw request lines.

It serves an allow-list (the page's regular files; config.json, the sidecar and the files it names),
follows no link but the Hub cache's own into blobs/, lists no folder, answers GET and HEAD only,
and refuses everything else with the same 404, which names nothing on disk.
"""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path

import pytest

from tinycats.errors import HubError
from tinycats.web import ISOLATION_HEADERS, make_server, serve_in_background, server_json

from conftest import declared_urls, fake_metadata

SIDECAR = {"format": "tinycats-onnx-v1", "files": {"fp32": {"path": "generator.onnx"}, "int8": {"path": "generator_int8.onnx"}}}
MODEL_FILES = {
    "config.json": b'{"format": "tinycats-hub-v1"}',
    "onnx/generator.json": json.dumps(SIDECAR).encode(),
    "onnx/generator.onnx": b"fp32 graph",
    "onnx/generator_int8.onnx": b"int8 graph",
    "README.md": b"card",  # in the repo, but not what the page reads
}
PAGE_FILES = {"index.html": b"<!doctype html>", "app.js": b"// app", "ort/ort.wasm": b"\0asm"}


def write(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def secret(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    write(outside, {"secret.txt": b"TOP SECRET", "sub/also.txt": b"ALSO SECRET"})
    return outside


@pytest.fixture()
def server(tmp_path):
    outside = secret(tmp_path)
    model = write(tmp_path / "model", MODEL_FILES)
    page = write(tmp_path / "page", PAGE_FILES)
    for folder in (model, model / "onnx", page):
        (folder / "leak.txt").symlink_to(outside / "secret.txt")
        (folder / "etcdir").symlink_to(outside, target_is_directory=True)
    (model / "onnx" / "generator_int8.onnx").unlink()  # named by the sidecar, but a link out: refused
    (model / "onnx" / "generator_int8.onnx").symlink_to(outside / "secret.txt")
    # a sidecar that names files outside its folder, absolutely and by climbing
    hostile = {**SIDECAR["files"], "abs": {"path": str(outside / "secret.txt")}, "up": {"path": "../../outside/secret.txt"}}
    (model / "onnx" / "generator.json").write_text(json.dumps({**SIDECAR, "files": hostile}))
    httpd = make_server(str(model), port=0, page=page)
    serve_in_background(httpd)
    yield httpd.server_address[1], tmp_path
    httpd.shutdown()


def request(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), body


def test_the_page_and_what_the_sidecar_names_are_served_with_the_isolation_headers(server):
    port, _ = server
    expected = {"/": PAGE_FILES["index.html"], "/app.js": b"// app", "/ort/ort.wasm": b"\0asm",
                "/model/config.json": MODEL_FILES["config.json"], "/model/onnx/generator.onnx?v=1": b"fp32 graph",
                "/model/onnx/generator%2Eonnx": b"fp32 graph"}  # fmt: skip
    for path, data in expected.items():
        status, headers, body = request(port, path)
        assert (status, body) == (200, data), path
        assert all(headers[key] == value for key, value in ISOLATION_HEADERS.items())
    assert request(port, "/model/onnx/generator.json")[0] == 200
    status, headers, body = request(port, "/model/onnx/generator.onnx", "HEAD")
    assert (status, body, headers["Content-Length"]) == (200, b"", str(len(b"fp32 graph")))


def test_server_json_names_the_model_route_and_the_projects_links(server, monkeypatch):
    port, _ = server
    status, headers, body = request(port, "/server.json")
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert json.loads(body) == {"model": "/model/", "links": declared_urls()}  # pyproject.toml's [project.urls]
    links = {"Source": "https://example.org/tinycats"}
    monkeypatch.setattr("tinycats.about.metadata", lambda name: fake_metadata({**links, "Chat": "irc://example.org"}))
    assert json.loads(server_json("https://hub.example/OWNER/REPO/resolve/abc/")) == {
        "model": "https://hub.example/OWNER/REPO/resolve/abc/", "links": links}  # only http(s) URLs


def test_an_install_without_the_built_page_says_how_to_get_it(tmp_path):
    model = write(tmp_path / "model", MODEL_FILES)
    with pytest.raises(HubError, match=r"the browser page is not built .*run `make web`.*install the wheel"):
        make_server(str(model), port=0, page=tmp_path / "no-page")


HOSTILE = [
    "/model/leak.txt", "/model/etcdir/secret.txt", "/model/onnx/leak.txt", "/model/onnx/etcdir/sub/also.txt",
    "/leak.txt", "/etcdir/secret.txt", "/model/onnx/generator_int8.onnx",  # links out of the folders
    "/model/", "/model", "/model/onnx/", "/ort/", "/ort",  # listings
    "/model/README.md", "/model/onnx/../README.md",  # in the folder but not for the page
    "/../outside/secret.txt", "/model/../../outside/secret.txt", "/%2e%2e/outside/secret.txt",
    "/model/%2E%2E/%2E%2E/outside/secret.txt",
    "/model/..%2f..%2foutside/secret.txt", "/%252e%252e/outside/secret.txt", "//etc/passwd", "/model//onnx/generator.json",
    "/model/onnx/./generator.json", "/index.html/../../outside/secret.txt", "/model/%00", "/nothing-here",
    "/model/../outside/secret.txt", "/model/outside/secret.txt", "/model/onnx/../../outside/secret.txt",  # the sidecar's "up"
]  # fmt: skip


@pytest.mark.parametrize("path", HOSTILE)
def test_links_out_listings_and_traversal_are_one_404_that_names_nothing(server, path):
    port, root = server
    status, headers, body = request(port, path)
    assert status == 404 and body == b"not found\n", (path, status, body[:200])
    assert "SECRET" not in body.decode() and str(root) not in json.dumps(headers)
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"


def test_a_sidecar_path_outside_the_folder_is_not_served(server):
    port, root = server
    absolute = str(root / "outside" / "secret.txt")
    for path in (f"/model/{absolute}", f"/model//{absolute.lstrip('/')}", absolute):
        status, _, body = request(port, path)
        assert status == 404 and b"SECRET" not in body, path


def test_a_file_turned_into_a_link_after_the_start_is_refused(server):
    port, root = server
    assert request(port, "/app.js")[0] == 200
    (root / "page" / "app.js").unlink()
    (root / "page" / "app.js").symlink_to(root / "outside" / "secret.txt")
    assert request(port, "/app.js")[::2] == (404, b"not found\n")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_and_head_are_answered(server, method):
    port, _ = server
    status, headers, body = request(port, "/model/onnx/generator.json", method)
    assert status == 405 and headers["Allow"] == "GET, HEAD" and body == b""


def test_a_hub_cache_snapshot_serves_its_links_into_blobs_and_no_others(tmp_path):
    """huggingface_hub's cache: snapshots/REV/<file> is a link to ../../blobs/<hash> (two levels up
    more for onnx/…). Those are the repo's own files; a link elsewhere is still refused."""
    outside = secret(tmp_path)
    repo = tmp_path / "hub" / "models--owner--toy"
    snapshot = repo / "snapshots" / "0123abcd"
    (snapshot / "onnx").mkdir(parents=True)
    (repo / "blobs").mkdir()
    for rel, data in MODEL_FILES.items():
        blob = repo / "blobs" / f"blob{len(rel)}{len(data)}"
        blob.write_bytes(data)
        (snapshot / rel).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / rel).symlink_to(os.path.relpath(blob, (snapshot / rel).parent))
    (snapshot / "onnx" / "generator_int8.onnx").unlink()
    (snapshot / "onnx" / "generator_int8.onnx").symlink_to(outside / "secret.txt")
    page = write(tmp_path / "page", PAGE_FILES)
    httpd = make_server(str(snapshot), port=0, page=page)
    serve_in_background(httpd)
    port = httpd.server_address[1]
    try:
        assert request(port, "/model/onnx/generator.onnx")[::2] == (200, b"fp32 graph")
        assert request(port, "/model/onnx/generator.json")[::2] == (200, MODEL_FILES["onnx/generator.json"])
        assert request(port, "/model/onnx/generator_int8.onnx")[::2] == (404, b"not found\n")
        assert request(port, "/model/README.md")[0] == 404
    finally:
        httpd.shutdown()
