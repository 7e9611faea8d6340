import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

import tinycats
from tinycats.cli import main
from tinycats.config import SampleConfig
from tinycats.core.noise import initial_noise
from tinycats.core.sampling import sample
from tinycats.export import onnx_sampler
from tinycats.export.onnx import export_onnx
from tinycats.pictures import to_uint8

from conftest import make_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    ckpt = make_checkpoint(root / "dit_step_7_ema.pt")
    return ckpt, export_onnx(ckpt, root / "generator.onnx").onnx


def test_onnx_sampling_path_never_imports_torch(files, tmp_path):
    _, onnx_path = files
    out = tmp_path / "samples"
    code = f"""
import sys
sys.modules["torch"] = None  # any `import torch` now fails
from tinycats.cli import main
code = main(["sample", "--onnx", {str(onnx_path)!r}, "--breed", "Bombay", "--num-samples", "2", "--steps", "2",
             "--output-dir", {str(out)!r}])
assert code == 0, code
assert main(["sample", "--onnx", "missing.onnx"]) == 2  # the error path stays torch-free too
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules if sys.modules[m] is not None)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "ONNX model missing.onnx does not exist" in result.stderr
    assert sorted(p.name for p in (out / "Bombay").iterdir()) == ["Bombay_0.png", "Bombay_1.png"]


@pytest.mark.parametrize(
    "settings",
    [
        SampleConfig(sampler="euler", steps=6, cfg_scale=2.5),
        SampleConfig(sampler="heun", steps=4, cfg_scale=3.0),
        SampleConfig(sampler="heun", steps=5, cfg_scale=3.0, guidance_interval=(0.3, 0.8)),
    ],
)
def test_same_seed_gives_the_pytorch_images(files, settings):
    ckpt, onnx_path = files
    labels = [0, 5, 12, 3, 3]
    expected = sample(tinycats.load_generator(ckpt, device="cpu"), labels, settings, seed=4).numpy()
    got = onnx_sampler.sample(onnx_sampler.load(onnx_path), labels, settings, seed=4, batch_size=2)
    # Measured: max |difference| 5e-6 to 1e-5 on [-1, 1]; ~1 value in 7,000 rounds to the next uint8 level.
    assert np.abs(got - expected).max() <= 1e-4
    levels = np.abs(to_uint8(got).astype(int) - to_uint8(expected).astype(int))
    assert levels.max() <= 1 and (levels == 0).mean() > 0.999
    assert expected.std() > 0.1  # non-trivial pictures
    assert np.abs(expected[1] - expected[3]).mean() > 0.01  # the label changes the picture


def test_a_time_shift_reaches_both_samplers_the_same_way(tmp_path):
    """The sidecar carries the model's time_shift and the ONNX-only sampler walks the same shifted
    grid as the PyTorch one; the shift really moves the picture."""
    shifted = make_checkpoint(tmp_path / "shifted" / "dit_step_7_ema.pt", time_shift=2.5)
    exported = export_onnx(shifted, tmp_path / "shifted" / "generator.onnx").onnx
    assert onnx_sampler.load(exported).time_shift == 2.5
    settings, labels = SampleConfig(sampler="heun", steps=4, cfg_scale=2.0), [0, 7, 12]
    expected = sample(tinycats.load_generator(shifted, device="cpu"), labels, settings, seed=3).numpy()
    got = onnx_sampler.sample(onnx_sampler.load(exported), labels, settings, seed=3)
    assert np.abs(got - expected).max() <= 1e-4
    plain = make_checkpoint(tmp_path / "plain" / "dit_step_7_ema.pt")  # the same weights (seed 0), no shift
    unshifted = sample(tinycats.load_generator(plain, device="cpu"), labels, settings, seed=3).numpy()
    assert np.abs(unshifted - expected).mean() > 0.01


def torch_velocity(model, x, t, labels):
    """The velocity of an x-prediction model, computed here, not by tinycats.flow."""
    out = model(x, t, labels)
    return (out - x) / (1 - t).clamp_min(model.config.t_eps).reshape(-1, 1, 1, 1)


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_guidance_is_applied_once(files, scale):
    """One Euler step from t = 0 is x0 + v_null + s (v_cond - v_null), computed by hand."""
    ckpt, onnx_path = files
    model = tinycats.load_generator(ckpt, device="cpu")
    labels = [2, 9]
    x0 = torch.from_numpy(initial_noise(1, range(2), (3, 16, 16)))
    t = torch.zeros(2)
    with torch.inference_mode():
        v_cond = torch_velocity(model, x0, t, torch.tensor(labels))
        v_null = torch_velocity(model, x0, t, torch.tensor([13, 13]))
    expected = (x0 + v_null + scale * (v_cond - v_null)).clamp(-1, 1).numpy()
    got = onnx_sampler.sample(onnx_sampler.load(onnx_path), labels, SampleConfig("euler", 1, scale), seed=1)
    assert np.abs(got - expected).max() <= 1e-4
    twice = (x0 + v_null + scale * (v_null + scale * (v_cond - v_null) - v_null)).clamp(-1, 1).numpy()
    assert scale == 1.0 or np.abs(got - twice).max() > 1e-2  # guiding twice would be visible


class RecordingSession:
    def __init__(self) -> None:
        self.calls: list[tuple[float, list[float]]] = []

    def run(self, outputs, feed):
        self.calls.append((float(feed["t"][0]), feed["cfg_scale"].tolist()))
        return [np.zeros_like(feed["x"])]


def test_guidance_interval_sends_scale_one_outside_it(files):
    meta = onnx_sampler.load(files[1]).metadata
    recorder = RecordingSession()
    generator = onnx_sampler.OnnxGenerator(recorder, meta)
    settings = SampleConfig(sampler="euler", steps=4, cfg_scale=3.0, guidance_interval=(0.3, 0.8))
    onnx_sampler.sample(generator, [1, 2], settings)
    assert recorder.calls == [(0.0, [1.0, 1.0]), (0.25, [1.0, 1.0]), (0.5, [3.0, 3.0]), (0.75, [3.0, 3.0])]


def test_cli_writes_the_same_files_as_the_pytorch_path(files, tmp_path):
    ckpt, onnx_path = files
    common = ["--breed", "Siamese", "--breed", "Other", "--num-samples", "3", "--steps", "3", "--seed", "2"]
    assert main(["sample", "--checkpoint", str(ckpt), "--output-dir", str(tmp_path / "pt"), *common]) == 0
    assert main(["sample", "--onnx", str(onnx_path), "--output-dir", str(tmp_path / "ox"), *common]) == 0
    written = sorted(p.relative_to(tmp_path / "pt") for p in (tmp_path / "pt").rglob("*.png"))
    assert written == sorted(p.relative_to(tmp_path / "ox") for p in (tmp_path / "ox").rglob("*.png"))
    assert Path("Siamese/Siamese_2.png") in written and Path("grids/Other.png") in written and Path("overview.png") in written
    for rel in written:
        a = np.asarray(Image.open(tmp_path / "pt" / rel), dtype=int)
        b = np.asarray(Image.open(tmp_path / "ox" / rel), dtype=int)
        assert np.abs(a - b).max() <= 1


def test_metadata_falls_back_to_the_sidecar_then_fails_clearly(files, tmp_path):
    proto = onnx.load(str(files[1]))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(onnx_sampler.OnnxModelError, match="no tinycats metadata"):
        onnx_sampler.load(bare)
    (tmp_path / "bare.json").write_text(files[1].with_suffix(".json").read_text())
    assert onnx_sampler.load(bare).class_names[10] == "Siamese"
    with pytest.raises(onnx_sampler.OnnxModelError, match="does not exist"):
        onnx_sampler.load(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="out of range"):
        onnx_sampler.sample(onnx_sampler.load(bare), [13], SampleConfig())
