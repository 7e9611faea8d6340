"""The browser generator in real Chromium (Debian's, driven by playwright-core), offline.

The page is served by `tinycats web`'s server; the model comes from a second loopback origin laid
out like the Hub (/OWNER/REPO/resolve/REV/…, with CORS headers), so the page makes the real
cross-origin fetch. The canvas is compared with the Python ONNX sampler's image for the same
settings. Chromium runs with SwiftShader behind WebGPU (web/e2e/drive.mjs), so the WebGPU runs
are real WebGPU on a CPU emulation: slow, and here for correctness only. `make test` installs
Chromium and the npm packages; in CI this test never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlencode, urlparse

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

from conftest import HubHandler, declared_urls, make_checkpoint, tiny_config

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


FAULT = Path(__file__).parent / "fixtures" / "webgpu_fault.js"


def faulty_page(root: Path, mode: str) -> Path:
    """A copy of the built page whose worker first runs tests/fixtures/webgpu_fault.js in `mode`."""
    page = root / f"page-{mode}"
    shutil.copytree(PAGE_DIR, page)
    (page / "fault.js").write_text(FAULT.read_text().replace("__MODE__", mode))
    worker = page / "worker.js"
    worker.write_text('import "./fault.js";\n' + worker.read_text())
    return page


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> SimpleNamespace:
    """A 4-step toy model staged as a repo folder, a broken-hash and a missing-file variant, the
    fake Hub serving all three, the page server for the good one, and two page servers whose
    WebGPU device is lost or fails mid-run."""
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
    hub = ThreadingHTTPServer(("127.0.0.1", 0), partial(HubHandler, folders=folders, seen=seen, revision=REV))
    servers = [hub, make_server(str(good), port=0)]
    servers += [make_server(str(good), port=0, page=faulty_page(root, mode)) for mode in ("lose", "fail")]
    for server in servers:
        serve_in_background(server)
    lose, fail = (f"http://127.0.0.1:{server.server_address[1]}/" for server in servers[2:])
    yield SimpleNamespace(
        folder=good, shifted=shifted, seen=seen, page=f"http://127.0.0.1:{servers[1].server_address[1]}/",
        lose=lose, fail=fail, hub=lambda repo=REPO: f"http://127.0.0.1:{hub.server_address[1]}/{repo}/resolve/{REV}/",
    )  # fmt: skip
    for server in servers:
        server.shutdown()


def drive(visits: list[str | dict]) -> list[dict]:
    args = json.dumps({"visits": visits, "timeoutMs": 240_000})
    run = subprocess.run(["node", "e2e/drive.mjs", args], cwd=ROOT / "web", capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def page_url(site, page: str | None = None, **params: object) -> str:
    return (page or site.page) + "?" + urlencode({"generate": 1, **params})


def python_image(
    folder: Path, precision: str, breed: int, seed: int, steps: int, sampler: str, cfg: float,
    shift: float | None = None, n: int = 1,
) -> np.ndarray:  # fmt: skip
    """The Python ONNX sampler's first image (all `n` with n > 1); `shift` replaces the sidecar's time shift."""
    generator = onnx_sampler.load(folder / layout.ONNX[precision])
    if shift is not None:
        generator.metadata["time_shift"] = shift
    settings = SampleConfig(
        sampler=sampler, steps=steps, cfg_scale=cfg, guidance_interval=generator.sample_config.guidance_interval
    )
    images = to_uint8(onnx_sampler.sample(generator, [breed] * n, settings, seed=seed))
    return images if n > 1 else images[0]


def canvas_rgb(result: dict) -> np.ndarray:
    side = round(len(result["pixels"]) ** 0.5 / 2)  # a square RGBA canvas
    rgba = np.asarray(result["pixels"], dtype=np.uint8).reshape(side, side, 4)
    return rgba[..., :3]


def levels_apart(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    diff = np.abs(a.astype(int) - b.astype(int))
    return float(diff.mean()), int(diff.max())


SETTINGS = {"breed": "Siamese", "seed": 3, "steps": 4, "sampler": "heun", "cfg": 2.5, "n": 2}


@pytest.fixture(scope="module")
def runs(site):
    s = SETTINGS
    gpu = {**s, "steps": 3, "n": 1}  # SwiftShader is a CPU emulation: few steps, one image
    visits = {
        "fp32": page_url(site, model=site.hub(), precision="fp32", ep="wasm", **s),
        "int8": page_url(site, model=site.hub(), precision="int8", ep="wasm", **s),
        "shifted": page_url(site, model=site.hub(SHIFTED), precision="fp32", ep="wasm", **s),
        "again": page_url(site, model=site.hub(), precision="fp32", ep="wasm", **s),
        "local": site.page + "?generate=1&seed=1",  # the default model, precision and ep
        "webgpu": page_url(site, model=site.hub(SHIFTED), ep="webgpu", **gpu),
        "every_breed": page_url(site, model=site.hub(), precision="fp32", ep="wasm", **{**s, "breed": "all"}),
        "keyboard": {"url": site.page + "?ep=wasm&precision=fp32&seed=5", "keys": ["Tab", "Tab", "ArrowDown", "Tab", "Enter"]},
        "phone": {"url": page_url(site, model=site.hub(), ep="wasm", **{**s, "breed": "all", "n": 1}), "viewport": [390, 844]},
        "lost": page_url(site, site.lose, model=site.hub(), ep="webgpu", **{**gpu, "steps": 4}),
        "failing": page_url(site, site.fail, model=site.hub(), ep="webgpu", **{**gpu, "steps": 4}),
        "bad_hash": page_url(site, model=site.hub("tinycats-test/bad-hash"), precision="fp32"),
        "missing": page_url(site, model=site.hub("tinycats-test/missing"), precision="fp32"),
        "bad_breed": page_url(site, model=site.hub(), breed="Tiger"),
        "bad_ep": page_url(site, model=site.hub(), ep="webgl"),
    }
    return dict(zip(visits, drive(list(visits.values())))), s


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
    for name in ("fp32", "int8", "again", "local", "every_breed", "keyboard", "phone"):
        r = results[name]
        assert r["state"] == "done", (name, r["message"])
        assert r["isolated"] is True, name
        threads = int(r["status"].split(" thread(s)")[0].rsplit("· ", 1)[-1])
        assert threads > 1, r["status"]
        assert r["dataset"]["ep"] == "wasm" and r["status"].startswith("WASM ("), r["status"]
        assert r["consoleErrors"] == [], (name, r["consoleErrors"])
    hosts = {urlparse(u).hostname for r in results.values() for u in r["requests"] if not u.startswith(("data:", "blob:"))}
    assert hosts == {"127.0.0.1"}


def test_the_page_shows_the_project_links_pyproject_sets_and_no_others(runs):
    """None today: server.json carries none and the page shows none (the Space test shows set ones)."""
    from tinycats.about import project_urls

    declared = declared_urls()
    assert project_urls() == declared
    results, _ = runs
    assert all(r["links"] == [list(item) for item in declared.items()] for r in results.values())


def test_a_second_visit_loads_from_the_cache(runs):
    results, _ = runs
    assert "downloaded" in results["fp32"]["status"] and "from the cache" in results["again"]["status"]
    assert np.array_equal(canvas_rgb(results["again"]), canvas_rgb(results["fp32"]))


def test_by_default_the_served_folder_runs_int8_on_wasm_past_the_software_adapter(site, runs):
    """ep=auto finds SwiftShader's adapter, says it is a CPU emulation and runs WASM; precision=auto
    then takes the int8 file."""
    results, _ = runs
    r = results["local"]
    assert r["state"] == "done", r["message"]
    assert r["dataset"]["ep"] == "wasm" and "CPU emulation" in r["status"] and "swiftshader" in r["status"].lower(), r["status"]
    assert r["dataset"]["precision"] == "int8" and "int8 file (int8: faster than fp32 on WASM)" in r["status"], r["status"]
    meta = json.loads((site.folder / layout.SIDECAR).read_text())
    settings = (meta["recommended_sampler"], meta["recommended_steps"], meta["recommended_cfg_scale"])
    expected = python_image(site.folder, "int8", 0, 1, settings[1], settings[0], settings[2])
    assert levels_apart(canvas_rgb(r), expected)[0] <= 1


def test_webgpu_runs_fp32_and_matches_the_python_onnx_image(site, runs):
    """ep=webgpu: the session is WebGPU alone, state stays on the device (gpu.js), precision=auto
    picks fp32; the image is within 0.5 level on average and 4 at most of the CPU's (docs/web.md).
    The model is the random-weight, time-shifted one, whose output depends strongly on x, t and
    the label, so a wrong input or grid on the device would show."""
    results, _ = runs
    r = results["webgpu"]
    assert r["state"] == "done", r["message"]
    assert r["dataset"]["ep"] == "webgpu" and r["status"].startswith("WebGPU (ep=webgpu on "), r["status"]
    assert r["dataset"]["precision"] == "fp32" and "WebGPU has no kernels" in r["status"], r["status"]
    assert r["consoleErrors"] == [], r["consoleErrors"]
    s = {**SETTINGS, "steps": 3}
    expected = python_image(site.shifted, "fp32", 10, s["seed"], s["steps"], s["sampler"], s["cfg"])
    mean, worst = levels_apart(canvas_rgb(r), expected)
    print(f"WebGPU (SwiftShader) against the Python ONNX sampler: mean {mean:.3f}, max {worst} levels")
    assert mean <= 0.5 and worst <= 4
    # not the same as any other breed's image: the page really drew this one
    other_breed = python_image(site.shifted, "fp32", 0, s["seed"], s["steps"], s["sampler"], s["cfg"])
    assert levels_apart(canvas_rgb(r), other_breed)[0] > 4


@pytest.mark.parametrize(("name", "words"), [("lost", "WebGPU device was lost"), ("failing", "injected fault")])
def test_a_device_lost_or_failing_mid_run_ends_in_error_with_the_message(runs, name, words):
    results, _ = runs
    r = results[name]
    assert r["dataset"]["ep"] == "webgpu", r["status"]
    assert r["state"] == "error" and words in r["message"] and r["messageVisible"], r["message"]


def test_every_breed_draws_a_row_each_from_the_same_noise(site, runs):
    results, s = runs
    r = results["every_breed"]
    assert r["state"] == "done", r["message"]
    names = json.loads((site.folder / layout.SIDECAR).read_text())["class_names"]
    assert [(c["breed"], c["index"]) for c in r["grid"]] == [(name, i) for name in names for i in range(s["n"])]
    for breed in (0, 10, len(names) - 1):
        expected = python_image(site.folder, "fp32", breed, s["seed"], s["steps"], s["sampler"], s["cfg"], n=s["n"])
        for i in range(s["n"]):
            assert levels_apart(canvas_rgb(r["grid"][breed * s["n"] + i]), expected[i])[1] <= 2, (breed, i)
    assert not np.array_equal(canvas_rgb(r["grid"][0]), canvas_rgb(r["grid"][s["n"]]))  # rows differ by breed


def test_the_url_always_holds_the_settings_that_drew_the_picture(runs):
    results, s = runs
    query = dict(parse_qsl(urlparse(results["every_breed"]["location"]).query))
    assert "generate" not in query
    expected = {**{k: str(v) for k, v in s.items()}, "breed": "all", "precision": "fp32", "ep": "wasm"}
    assert {k: query[k] for k in expected} == expected


def test_the_keyboard_alone_changes_the_breed_and_generates(site, runs):
    """Tab to the breed, arrow down to the next one, Tab to the seed, Enter: the form submits."""
    results, _ = runs
    r = results["keyboard"]
    assert r["state"] == "done", r["message"]
    names = json.loads((site.folder / layout.SIDECAR).read_text())["class_names"]
    query = dict(parse_qsl(urlparse(r["location"]).query))
    assert query["breed"] == names[1] and query["seed"] == "5"
    meta = json.loads((site.folder / layout.SIDECAR).read_text())
    settings = (meta["recommended_sampler"], meta["recommended_steps"], meta["recommended_cfg_scale"])
    expected = python_image(site.folder, "fp32", 1, 5, settings[1], settings[0], settings[2])
    assert levels_apart(canvas_rgb(r), expected)[1] <= 2


@pytest.mark.parametrize("name", ["every_breed", "phone", "fp32"])
def test_nothing_moves_when_the_images_arrive(runs, name):
    """Every box has its final place once generation starts (web/e2e/drive.mjs records them)."""
    results, _ = runs
    layout = results[name]["layout"]
    assert layout["generating"] == layout["done"], {k: (layout["generating"][k], layout["done"][k]) for k in layout["done"]}
    assert layout["done"]["grid"]["height"] > 0


def test_a_phone_wide_page_fits_its_screen(runs):
    results, _ = runs
    r = results["phone"]
    assert r["state"] == "done", r["message"]
    assert len(r["grid"]) == 13 and not r["overflowsViewport"]


@pytest.mark.parametrize(
    ("name", "words"), [("bad_hash", "sha256"), ("missing", "404"), ("bad_breed", "unknown breed"), ("bad_ep", "unknown ep")]
)
def test_failures_end_in_error_with_a_visible_message(runs, name, words):
    results, _ = runs
    r = results[name]
    assert r["state"] == "error" and words in r["message"] and r["messageVisible"], r["message"]
