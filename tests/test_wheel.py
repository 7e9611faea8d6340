"""The wheel as a user gets it: the sdist is built, then the wheel from the sdist (what `python -m
build` does, so a file the sdist forgets is missing from the wheel too), installed into a fresh
virtual environment outside the checkout and run from a folder outside it: `tinycats --help`,
every preset, `tinycats sample` from a staged Hub folder and `tinycats web` serving the page that
travels in the wheel.

Offline: the wheel goes in with `pip --no-deps --no-index`, and the dependencies (torch, ...) come
from a folder of links to this environment's packages, every one but tinycats (its editable
install's path file is not among them), so the one tinycats the fresh environment can import is
the wheel's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import urllib.request
import zipfile
from email.parser import Parser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import tinycats
from tinycats.cli import main
from tinycats.config import preset_names
from tinycats.export.onnx import export_onnx
from tinycats.hub import layout
from tinycats.hub.stage import StageInputs, stage
from tinycats.web import ISOLATION_HEADERS, PAGE_DIR

from conftest import make_checkpoint

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
if not (PAGE_DIR / "index.html").is_file() and not os.environ.get("CI"):
    pytest.skip("needs the built page (`make web`; `make test` builds it)", allow_module_level=True)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def clean_copy(target: Path) -> Path:
    """What a fresh clone holds once `make web` ran: the files git tracks or would add, and the built
    page. Nothing else: an old egg-info's file list, say, would put its files into the sdist."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")  # fmt: skip
    page = [p.relative_to(ROOT).as_posix() for p in PAGE_DIR.rglob("*") if p.is_file()]
    for rel in filter(None, [*listed, *page]):
        source, copy = ROOT / rel, target / rel
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            copy.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, copy)
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> SimpleNamespace:
    source, out = clean_copy(tmp_path_factory.mktemp("checkout") / "tinycats"), tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, [p.name for p in out.iterdir()]
    return SimpleNamespace(wheel=wheels[0], sdist=sdists[0])


@pytest.fixture(scope="module")
def venv(built, tmp_path_factory) -> SimpleNamespace:
    """A fresh venv holding the wheel, with the dependencies linked in; a work folder outside the checkout."""
    root = tmp_path_factory.mktemp("user")
    env_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=300)
    deps = root / "deps"
    deps.mkdir()
    here = Path(sysconfig.get_paths()["purelib"])
    for entry in here.iterdir():
        if not entry.name.startswith(("tinycats", "__editable__")) and entry.suffix != ".pth":
            (deps / entry.name).symlink_to(entry)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
    (site / "dependencies.pth").write_text(f"{deps}\n")
    pip = [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--disable-pip-version-check", built.wheel]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    work = root / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}/usr/bin:/bin"
    return SimpleNamespace(root=root, bin=env_dir / "bin", site=site, work=work, env=env)


def run(venv, *argv: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=venv.work, env=venv.env, capture_output=True, text=True, timeout=timeout)


def test_the_wheel_carries_the_page_and_the_presets_and_no_tests(built):
    assert built.wheel.name == f"tinycats-{tinycats.__version__}-py3-none-any.whl"  # the name the model card gives
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        page = {p.relative_to(PAGE_DIR).as_posix(): p for p in PAGE_DIR.rglob("*") if p.is_file()}
        assert {"index.html", "app.js", "worker.js", "ort/ort.wasm.min.mjs", "ort/ort-wasm-simd-threaded.wasm"} <= set(page)
        for rel, path in page.items():
            assert digest(wheel.read(f"tinycats/page/{rel}")) == digest(path.read_bytes()), rel
        presets = {f"tinycats/configs/{name}.yaml" for name in preset_names()}
        assert presets <= names and len(presets) == 6
        assert not any(n.startswith(("tests/", "benchmarks/", "web/")) for n in names)
    with tarfile.open(built.sdist) as sdist:  # the wheel was built from it, so it holds the page too
        assert f"tinycats-{tinycats.__version__}/src/tinycats/page/index.html" in sdist.getnames()


def test_the_metadata_declares_what_pyproject_says(built):
    with zipfile.ZipFile(built.wheel) as wheel:
        info = f"tinycats-{tinycats.__version__}.dist-info/METADATA"
        meta = Parser().parsestr(wheel.read(info).decode())
    project = PYPROJECT["project"]
    assert meta["Version"] == tinycats.__version__ and meta["Requires-Python"] == project["requires-python"]
    assert meta.get_all("Classifier") == project["classifiers"]
    assert set(meta.get_all("Provides-Extra")) == set(project["optional-dependencies"])
    urls = dict(entry.split(", ", 1) for entry in meta.get_all("Project-URL") or [])
    assert urls == project.get("urls", {})  # set once, in pyproject.toml; the card and the page read these


def test_it_runs_from_the_fresh_environment_alone(venv):
    where = run(venv, str(venv.bin / "python"), "-c", "import sys, tinycats, tinycats.web as w\n"
                "print(tinycats.__file__); print(w.PAGE_DIR); print(sys.path)")  # fmt: skip
    assert where.returncode == 0, where.stderr
    module, page, path = where.stdout.splitlines()
    assert Path(module).is_relative_to(venv.site) and Path(page).is_relative_to(venv.site), where.stdout
    assert str(ROOT) not in path
    helped = run(venv, str(venv.bin / "tinycats"), "--help")
    assert helped.returncode == 0 and "sample" in helped.stdout and "web" in helped.stdout, helped.stderr


def test_every_preset_resolves_in_the_installed_package(venv, capsys):
    for name in preset_names():
        shown = run(venv, str(venv.bin / "tinycats"), "train", "data", "--config", name, "--print-config")
        assert shown.returncode == 0, shown.stderr
        capsys.readouterr()
        assert main(["train", "data", "--config", name, "--print-config"]) == 0
        assert shown.stdout == capsys.readouterr().out, name


@pytest.fixture(scope="module")
def hub_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("staged")
    ckpt = make_checkpoint(root / "ck" / "dit_step_7_ema.pt")
    stage(StageInputs(ckpt, export_onnx(ckpt, root / "export" / "generator.onnx").onnx), root / "hub")
    return root / "hub"


def test_sample_from_a_staged_hub_folder_draws_what_the_checkout_draws(venv, hub_folder, tmp_path):
    args = ["sample", "--checkpoint", str(hub_folder), "--breed", "Siamese", "--num-samples", "2", "--seed", "3"]
    done = run(venv, str(venv.bin / "tinycats"), *args, "--output-dir", "out")
    assert done.returncode == 0, done.stderr[-3000:]
    assert main([*args, "--output-dir", str(tmp_path / "here")]) == 0
    for i in range(2):
        got = np.asarray(Image.open(venv.work / "out" / "Siamese" / f"Siamese_{i}.png"))
        assert np.array_equal(got, np.asarray(Image.open(tmp_path / "here" / "Siamese" / f"Siamese_{i}.png")))
        assert got.std() > 5


def test_web_serves_the_page_from_the_wheel_with_the_isolation_headers(venv, hub_folder):
    server = subprocess.Popen([str(venv.bin / "tinycats"), "web", "--model", str(hub_folder), "--port", "0"],
                              cwd=venv.work, env=venv.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = server.stdout.readline()
        assert "serving the tinycats page at http://127.0.0.1:" in line, line + server.stderr.read()
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        for rel in ("", "index.html", "app.js", "worker.js", "ort/ort.wasm.min.mjs"):
            with urllib.request.urlopen(url + rel, timeout=30) as answer:
                assert digest(answer.read()) == digest((PAGE_DIR / (rel or "index.html")).read_bytes()), rel
                assert {k: answer.headers[k] for k in ISOLATION_HEADERS} == ISOLATION_HEADERS
        with urllib.request.urlopen(url + "model/" + layout.SIDECAR, timeout=30) as answer:
            assert answer.read() == (hub_folder / layout.SIDECAR).read_bytes()
    finally:
        server.terminate()
        server.wait(timeout=30)
