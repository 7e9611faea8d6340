"""A staged repo's onnx/sample.py run where only onnxruntime, numpy and Pillow can be imported.

The interpreter starts with `-S` (no site-packages, so neither torch nor tinycats, which is
installed there) and a path holding links to those three packages alone, as in a venv where a user
ran `pip install onnxruntime numpy pillow`. Its PNG must equal `tinycats sample --onnx`'s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinycats.cli import main
from tinycats.export.onnx import export_onnx
from tinycats.hub import layout
from tinycats.hub.stage import StageInputs, stage

from conftest import make_checkpoint

ONLY = ("numpy", "numpy.libs", "onnxruntime", "PIL", "pillow.libs")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """Random weights everywhere and a time shift, so that the label, t and the grid all matter."""
    root = tmp_path_factory.mktemp("standalone")
    ckpt = make_checkpoint(root / "ck" / "dit_step_7_ema.pt", time_shift=2.0)
    stage(StageInputs(ckpt, export_onnx(ckpt, root / "export" / "generator.onnx", quantize=True).onnx), root / "hub")
    return root / "hub"


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> list[str]:
    import numpy

    site = Path(numpy.__file__).resolve().parents[1]
    shim = tmp_path_factory.mktemp("only-three")
    for name in ONLY:
        if (site / name).exists():
            (shim / name).symlink_to(site / name)
    return [sys.executable, "-S", "-s"], {"PYTHONPATH": str(shim), "PATH": "/usr/bin:/bin"}


def run_bare(bare_python, *args: str) -> subprocess.CompletedProcess:
    cmd, env = bare_python
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=300)


def test_the_bare_interpreter_has_no_torch_and_no_tinycats(bare_python):
    done = run_bare(bare_python, "-c", "import onnxruntime, numpy, PIL\nfor m in ('torch', 'tinycats'):\n"
                                       "    try:\n        __import__(m); print(m)\n    except ImportError: pass")  # fmt: skip
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


@pytest.mark.parametrize(("breed", "seed", "extra"), [("Siamese", 3, []), ("Bombay", 0, ["--sampler", "heun", "--steps", "3"])])
def test_onnx_sample_py_draws_what_tinycats_sample_onnx_draws(repo, bare_python, tmp_path, breed, seed, extra):
    out = tmp_path / "bare.png"
    done = run_bare(bare_python, str(repo / layout.SAMPLER), "--breed", breed, "--seed", str(seed), "--output", str(out), *extra)
    assert done.returncode == 0, done.stderr[-2000:]
    cli = ["sample", "--onnx", str(repo / layout.ONNX["fp32"]), "--breed", breed, "--seed", str(seed), "--num-samples", "1"]
    assert main([*cli, "--output-dir", str(tmp_path / "cli"), *extra]) == 0
    expected = np.asarray(Image.open(tmp_path / "cli" / breed / f"{breed}_0.png"))
    got = np.asarray(Image.open(out))
    assert got.shape == expected.shape and np.array_equal(got, expected)
    assert got.std() > 5  # a picture, not a flat field


def test_its_settings_default_to_the_sidecar_and_bad_breeds_are_refused(repo, bare_python, tmp_path):
    meta = json.loads((repo / layout.SIDECAR).read_text())
    done = run_bare(bare_python, str(repo / layout.SAMPLER), "--breed", "siamese", "--output", str(tmp_path / "s.png"))
    m = meta
    said = f"Siamese, seed 0, {m['recommended_sampler']} {m['recommended_steps']} steps, cfg {m['recommended_cfg_scale']}"
    assert done.returncode == 0 and said in done.stdout, done.stdout + done.stderr
    help_text = run_bare(bare_python, str(repo / layout.SAMPLER), "--help").stdout
    assert "--breed" in help_text and "Siamese" in help_text
    done = run_bare(bare_python, str(repo / layout.SAMPLER), "--breed", "Tiger", "--output", "x.png")
    assert done.returncode == 2 and "unknown breed 'Tiger'" in done.stderr and meta["class_names"][0] in done.stderr


def test_the_staged_file_is_tinycats_own_noise_and_solvers(repo):
    from tinycats.core import noise, solvers

    text = (repo / layout.SAMPLER).read_text()
    assert "from tinycats" not in text and "import tinycats" not in text and "import torch" not in text
    for fn in (noise.standard_normal, noise.initial_noise, solvers.euler, solvers.heun, solvers.shift_time):
        import inspect

        assert inspect.getsource(fn) in text
