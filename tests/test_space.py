"""`tinycats space`: the page staged as a static Hugging Face Space, and tested as deployed.

In Chromium, offline: the staged folder is served by a static server that sends exactly the
headers its README's YAML declares (parsed, nothing added by hand), the model comes from a second
loopback origin laid out like the Hub at the pinned commit; then the same folder with no headers.
The upload goes to a recording fake of HfApi.
"""

from __future__ import annotations

import json
import os
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import numpy as np
import pytest
import yaml

from tinycats.cli import main
from tinycats.config import SampleConfig
from tinycats.export import onnx_sampler
from tinycats.export.onnx import export_onnx
from tinycats.hub import layout
from tinycats.hub.space import SPACE_HEADERS, publish_space, stage_space
from tinycats.hub.stage import StageInputs, stage
from tinycats.pictures import to_uint8
from tinycats.web import PAGE_DIR, serve_in_background

from conftest import HubHandler, fake_metadata, make_checkpoint

ROOT = Path(__file__).resolve().parents[1]
REPO, COMMIT, SPACE = "tinycats-test/toy", "c0ffee" + "0" * 34, "tinycats-test/page"
BROWSER = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium")).is_file() and (PAGE_DIR / "index.html").is_file()
needs_browser = pytest.mark.skipif(not BROWSER and not os.environ.get("CI"), reason="needs chromium, the page (`make test`)")


def front_matter(readme: str) -> dict:
    _, header, _ = readme.split("---\n", 2)
    return yaml.safe_load(header)


LINKS = {"Source": "https://example.org/tinycats", "Documentation": "https://example.org/tinycats/docs"}


class StaticHandler(SimpleHTTPRequestHandler):
    """A static host: the folder's files with the given headers on every answer."""

    def __init__(self, *args, headers: dict[str, str], **kwargs) -> None:
        self.extra = headers
        super().__init__(*args, **kwargs)

    def end_headers(self) -> None:
        for key, value in self.extra.items():
            self.send_header(key, value)
        super().end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A random-weight model staged as a repo, the fake Hub serving it at COMMIT, the Space staged
    for it, and two static servers of that Space: with its README's headers and without any."""
    root = tmp_path_factory.mktemp("space")
    ckpt = make_checkpoint(root / "ck" / "dit_step_7_ema.pt")
    stage(StageInputs(ckpt, export_onnx(ckpt, root / "export" / "generator.onnx").onnx), root / "hub")
    hub = ThreadingHTTPServer(("127.0.0.1", 0), partial(HubHandler, folders={REPO: root / "hub"}, seen=[], revision=COMMIT))
    serve_in_background(hub)
    endpoint = f"http://127.0.0.1:{hub.server_address[1]}"
    patch = pytest.MonkeyPatch()
    patch.setattr("huggingface_hub.constants.ENDPOINT", endpoint)
    patch.setattr("tinycats.about.metadata", lambda name: fake_metadata(LINKS))  # as if pyproject.toml set them
    files = stage_space(f"hf://{REPO}@{COMMIT}", SPACE, root / "space")
    patch.undo()
    headers = front_matter((root / "space" / "README.md").read_text())["custom_headers"]
    serve = partial(StaticHandler, directory=str(root / "space"))
    hosts = [ThreadingHTTPServer(("127.0.0.1", 0), partial(serve, headers=h)) for h in (headers, {})]
    for host in hosts:
        serve_in_background(host)
    urls = [f"http://127.0.0.1:{h.server_address[1]}/" for h in hosts]
    yield SimpleNamespace(root=root, files=files, endpoint=endpoint, urls=urls)
    for server in (hub, *hosts):
        server.shutdown()


def test_the_space_declares_sdk_static_the_three_headers_and_the_pinned_model(deployed):
    space = deployed.root / "space"
    meta = front_matter((space / "README.md").read_text())
    assert meta["sdk"] == "static" and meta["app_file"] == "index.html" and (space / meta["app_file"]).is_file()
    assert meta["custom_headers"] == SPACE_HEADERS and meta["models"] == [REPO] and meta["title"]
    model = f"{deployed.endpoint}/{REPO}/resolve/{COMMIT}/"
    assert json.loads((space / "server.json").read_text()) == {"model": model, "links": LINKS}
    assert {"index.html", "app.js", "worker.js", "ort/ort.wasm.min.mjs", "server.json", "README.md"} <= set(deployed.files)


def drive(urls: list[str]) -> list[dict]:
    import subprocess

    run = subprocess.run(["node", "e2e/drive.mjs", json.dumps({"visits": urls, "timeoutMs": 240_000})],
                         cwd=ROOT / "web", capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@needs_browser
def test_as_deployed_it_is_isolated_threaded_and_draws_the_python_image_and_without_headers_one_thread(deployed):
    settings = {"generate": 1, "ep": "wasm", "precision": "fp32", "breed": "Siamese", "seed": 3, "steps": 4, "sampler": "heun"}
    with_headers, bare = drive([url + "?" + urlencode(settings) for url in deployed.urls])
    generator = onnx_sampler.load(deployed.root / "hub" / layout.ONNX["fp32"])
    cfg = SampleConfig(sampler="heun", steps=4, cfg_scale=generator.sample_config.cfg_scale,
                       guidance_interval=generator.sample_config.guidance_interval)  # fmt: skip
    expected = to_uint8(onnx_sampler.sample(generator, [10], cfg, seed=3))[0]
    for r in (with_headers, bare):
        assert r["state"] == "done", r["message"]
        got = np.asarray(r["pixels"], dtype=np.uint8).reshape(r["height"], r["width"], 4)[..., :3]
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2
        assert r["consoleErrors"] == [], r["consoleErrors"]
        assert r["links"] == [list(item) for item in LINKS.items()]  # the project's links, under the page
    assert with_headers["isolated"] is True
    threads = int(with_headers["status"].split(" thread(s)")[0].rsplit("· ", 1)[-1])
    assert threads > 1, with_headers["status"]
    assert bare["isolated"] is False and "· 1 thread(s)" in bare["status"] and "sends no COOP/COEP headers" in bare["status"]


class FakeHfApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", kw))
        return SimpleNamespace(commit_url=f"https://huggingface.co/spaces/{kw['repo_id']}/commit/{'d' * 40}")

    def model_info(self, repo_id, revision):
        self.calls.append(("model_info", {"repo_id": repo_id, "revision": revision}))
        return SimpleNamespace(sha="e" * 40)


def test_the_upload_is_one_commit_to_a_static_space(deployed):
    api = FakeHfApi()
    url = publish_space(deployed.root / "space", SPACE, api=api)
    assert api.calls == [
        ("create_repo", {"repo_id": SPACE, "repo_type": "space", "space_sdk": "static", "exist_ok": True}),
        ("upload_folder", {"repo_id": SPACE, "repo_type": "space", "folder_path": str(deployed.root / "space"),
                           "commit_message": "tinycats page"}),
    ]  # fmt: skip
    assert url.endswith("d" * 40)


def test_a_branch_is_pinned_to_its_commit_and_bad_input_is_one_line(tmp_path, capsys):
    api = FakeHfApi()
    stage_space(f"hf://{REPO}@main", SPACE, tmp_path / "space", api=api)
    assert api.calls == [("model_info", {"repo_id": REPO, "revision": "main"})]
    assert f"/{REPO}/resolve/{'e' * 40}/" in (tmp_path / "space" / "server.json").read_text()
    assert main(["space", "--model", "hf://not a ref", "--space-id", SPACE, "--dry-run", str(tmp_path / "x")]) == 2
    assert main(["space", "--model", f"hf://{REPO}@{COMMIT}", "--space-id", "no-owner", "--dry-run", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "is not a Hub model" in err[0] and "is not a Hub repo id" in err[1]
