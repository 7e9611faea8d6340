"""The browser generator in real Chromium (Debian's, driven by playwright-core), offline.

The page is served by `tinycats web`'s server; the model comes from a second loopback origin laid
out like the Hub (/OWNER/REPO/resolve/REV/…, with CORS headers), so the page makes the real
cross-origin fetch. The canvas is compared with the Python ONNX sampler's image for the same
settings. `make test` installs Chromium and the npm packages; in CI this test never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode, urlparse

import numpy as np
import pytest

from tinycats.config import SampleConfig
from tinycats.data.synth import write_dataset
from tinycats.export import onnx_sampler
from tinycats.hub import layout
from tinycats.hub.stage import StageInputs, stage
from tinycats.pictures import to_uint8
from tinycats.training.loop import train
from tinycats.web import PAGE_DIR, make_server, serve_in_background

from conftest import make_checkpoint, tiny_config

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
READY = (
    Path(CHROMIUM).is_file()
    and (ROOT / "web" / "node_modules" / "playwright-core").is_dir()
    and (PAGE_DIR / "index.html").is_file()
)
if not READY and not os.environ.get("CI"):
    pytest.skip("needs chromium, web/node_modules and web/dist: `make test` installs and builds them", allow_module_level=True)

REPO, REV = "tinycats-test/toy", "0123abcd"
SHIFTED = "tinycats-test/shifted"  # a time-shifted model (ModelConfig.time_shift = 2)


class HubHandler(SimpleHTTPRequestHandler):
    """/OWNER/REPO/resolve/REV/<file> from folders[REPO] with the Hub's CORS header; logs paths."""

    def __init__(self, *args, folders: dict[str, Path], seen: list[str], **kwargs) -> None:
        self.folders, self.seen = folders, seen
        super().__init__(*args, directory=str(next(iter(folders.values()))), **kwargs)

    def translate_path(self, path: str) -> str:
        self.seen.append(path)
        parts = urlparse(path).path.split("/")
        repo = "/".join(parts[1:3])
        if repo not in self.folders or parts[3:5] != ["resolve", REV]:
            return "/nonexistent"
        self.directory = str(self.folders[repo])
        return super().translate_path("/" + "/".join(parts[5:]))

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> SimpleNamespace:
    """A 4-step toy model staged as a repo folder, a broken-hash and a missing-file variant, the
    fake Hub serving all three, and the page server for the good one."""
    root = tmp_path_factory.mktemp("web")
    data = root / "cats"
    write_dataset(data, per_class=6, test_per_class=0, image_size=16, seed=0, progress=False)
    result = train(tiny_config(steps=4), data, root / "ck", root / "out", device="cpu", progress=False)
    from tinycats.export.onnx import export_onnx

    exported = export_onnx(result.ema_checkpoint, root / "export" / "generator.onnx", quantize=True)
    good = root / "hub"
    stage(StageInputs(result.ema_checkpoint, exported.onnx), good)
    # A time-shifted model whose every weight is random (four training steps leave the output
    # nearly independent of t, which would hide a wrong time grid): fp32 only.
    shifted_ckpt = make_checkpoint(root / "shifted-ck" / "dit_step_7_ema.pt", time_shift=2.0)
    shifted = root / "shifted"
    stage(StageInputs(shifted_ckpt, export_onnx(shifted_ckpt, root / "shifted-export" / "generator.onnx").onnx), shifted)
    bad_hash, missing = root / "bad-hash", root / "missing"
    shutil.copytree(good, bad_hash)
    sidecar = json.loads((bad_hash / layout.SIDECAR).read_text())
    sidecar["files"]["fp32"]["sha256"] = "0" * 64
    (bad_hash / layout.SIDECAR).write_text(json.dumps(sidecar))
    shutil.copytree(good, missing)
    (missing / layout.ONNX["fp32"]).unlink()
    seen: list[str] = []
    folders = {REPO: good, "tinycats-test/bad-hash": bad_hash, "tinycats-test/missing": missing, SHIFTED: shifted}
    hub = ThreadingHTTPServer(("127.0.0.1", 0), partial(HubHandler, folders=folders, seen=seen))
    serve_in_background(hub)
    page = make_server(str(good), port=0)
    serve_in_background(page)
    yield SimpleNamespace(
        folder=good, shifted=shifted, seen=seen, page=f"http://127.0.0.1:{page.server_address[1]}/",
        hub=lambda repo=REPO: f"http://127.0.0.1:{hub.server_address[1]}/{repo}/resolve/{REV}/",
    )  # fmt: skip
    hub.shutdown()
    page.shutdown()


def drive(urls: list[str], screenshot: Path | None = None) -> list[dict]:
    args = json.dumps({"urls": urls, "timeoutMs": 120_000, "screenshot": str(screenshot) if screenshot else None})
    run = subprocess.run(["node", "e2e/drive.mjs", args], cwd=ROOT / "web", capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def page_url(site, **params: object) -> str:
    return site.page + "?" + urlencode({"generate": 1, **params})


def python_image(
    folder: Path, precision: str, breed: int, seed: int, steps: int, sampler: str, cfg: float, shift: float | None = None
) -> np.ndarray:
    """The Python ONNX sampler's image; `shift` replaces the sidecar's time shift."""
    generator = onnx_sampler.load(folder / layout.ONNX[precision])
    if shift is not None:
        generator.metadata["time_shift"] = shift
    settings = SampleConfig(
        sampler=sampler, steps=steps, cfg_scale=cfg, guidance_interval=generator.sample_config.guidance_interval
    )
    return to_uint8(onnx_sampler.sample(generator, [breed], settings, seed=seed))[0]


def canvas_rgb(result: dict) -> np.ndarray:
    rgba = np.asarray(result["pixels"], dtype=np.uint8).reshape(result["height"], result["width"], 4)
    return rgba[..., :3]


@pytest.fixture(scope="module")
def runs(site):
    settings = {"breed": "Siamese", "seed": 3, "steps": 4, "sampler": "heun", "cfg": 2.5, "n": 2}
    urls = {
        "fp32": page_url(site, model=site.hub(), precision="fp32", **settings),
        "int8": page_url(site, model=site.hub(), precision="int8", **settings),
        "shifted": page_url(site, model=site.hub(SHIFTED), precision="fp32", **settings),
        "again": page_url(site, model=site.hub(), precision="fp32", **settings),
        "local": site.page + "?generate=1&seed=1",  # the default model: the folder `tinycats web --model` serves
        "bad_hash": page_url(site, model=site.hub("tinycats-test/bad-hash")),
        "missing": page_url(site, model=site.hub("tinycats-test/missing")),
        "bad_breed": page_url(site, model=site.hub(), breed="Tiger"),
    }
    return dict(zip(urls, drive(list(urls.values())))), settings


def test_fp32_in_the_browser_is_the_python_onnx_image(site, runs):
    results, s = runs
    r = results["fp32"]
    assert r["state"] == "done", r["message"]
    expected = python_image(site.folder, "fp32", 10, s["seed"], s["steps"], s["sampler"], s["cfg"])
    got = canvas_rgb(r)
    assert got.shape == expected.shape == (16, 16, 3)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2


def test_a_time_shifted_model_walks_the_same_grid_in_the_browser(site, runs):
    results, s = runs
    r = results["shifted"]
    assert r["state"] == "done", r["message"]
    got = canvas_rgb(r)
    expected = python_image(site.shifted, "fp32", 10, s["seed"], s["steps"], s["sampler"], s["cfg"])
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2
    unshifted = python_image(site.shifted, "fp32", 10, s["seed"], s["steps"], s["sampler"], s["cfg"], shift=1.0)
    assert np.abs(got.astype(int) - unshifted.astype(int)).max() > 8  # the page walked the shifted grid


def test_int8_in_the_browser_is_the_python_int8_image(site, runs):
    results, s = runs
    r = results["int8"]
    assert r["state"] == "done", r["message"]
    expected = python_image(site.folder, "int8", 10, s["seed"], s["steps"], s["sampler"], s["cfg"])
    assert np.abs(canvas_rgb(r).astype(int) - expected.astype(int)).mean() <= 1


def test_isolated_multithreaded_wasm_loopback_only_and_no_console_errors(runs):
    results, _ = runs
    for name in ("fp32", "int8", "again", "local"):
        r = results[name]
        assert r["isolated"] is True, name
        threads = int(r["status"].split(" thread(s)")[0].rsplit("· ", 1)[-1])
        assert threads > 1, r["status"]
        assert r["status"].startswith("WASM (") and ("WebGPU" in r["status"] or "navigator.gpu" in r["status"]), r["status"]
        assert r["consoleErrors"] == [], r["consoleErrors"]
    hosts = {urlparse(u).hostname for r in results.values() for u in r["requests"] if not u.startswith(("data:", "blob:"))}
    assert hosts == {"127.0.0.1"}


def test_a_second_visit_loads_from_the_cache(runs):
    results, _ = runs
    assert "downloaded" in results["fp32"]["status"] and "from the cache" in results["again"]["status"]
    assert np.array_equal(canvas_rgb(results["again"]), canvas_rgb(results["fp32"]))


def test_the_default_model_is_the_served_folder(site, runs):
    results, _ = runs
    r = results["local"]
    assert r["state"] == "done", r["message"]
    meta = json.loads((site.folder / layout.SIDECAR).read_text())
    settings = (meta["recommended_sampler"], meta["recommended_steps"], meta["recommended_cfg_scale"])
    expected = python_image(site.folder, "fp32", 0, 1, settings[1], settings[0], settings[2])
    assert np.abs(canvas_rgb(r).astype(int) - expected.astype(int)).max() <= 2


@pytest.mark.parametrize(("name", "words"), [("bad_hash", "sha256"), ("missing", "404"), ("bad_breed", "unknown breed")])
def test_failures_end_in_error_with_a_visible_message(runs, name, words):
    results, _ = runs
    r = results[name]
    assert r["state"] == "error" and words in r["message"] and r["messageVisible"], r["message"]
