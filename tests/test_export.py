import contextlib
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import tinycats
from tinycats import checkpoint
from tinycats.breeds import CLASS_NAMES
from tinycats.cli import main
from tinycats.core.model import TinyDiT
from tinycats.export.onnx import FP32_TOLERANCE, ExportError, export_onnx

from conftest import make_checkpoint


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The CLI's export of an x-prediction checkpoint, with --quantize --verify, and what it printed."""
    root = tmp_path_factory.mktemp("export")
    ckpt = make_checkpoint(root / "dit_step_7_ema.pt")
    out = root / "web" / "generator.onnx"
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["export-onnx", "--checkpoint", str(ckpt), "--output", str(out), "--quantize", "--verify"]) == 0
    return ckpt, out, text.getvalue()


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_export_writes_self_contained_files_with_metadata(exported):
    ckpt, out, printed = exported
    names = {"generator.onnx", "generator.json", "generator_int8.onnx"}
    assert {p.name for p in out.parent.iterdir()} == names  # no external weight files
    proto = onnx.load(str(out))
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["tinycats"])
    side = json.loads((out.parent / "generator.json").read_text())
    files = side.pop("files")
    assert side == {k: v for k, v in meta.items() if k != "quantization"}
    for kind, name in (("fp32", "generator.onnx"), ("int8", "generator_int8.onnx")):
        data = (out.parent / name).read_bytes()
        assert files[kind]["path"] == name and files[kind]["bytes"] == len(data)
        assert files[kind]["sha256"] == hashlib.sha256(data).hexdigest()
    assert files["fp32"]["quantization"] == "none" and files["int8"]["quantization"].startswith("int8")
    weights = checkpoint.load(ckpt)["model"]
    assert meta["weights_sha256"] == checkpoint.weights_sha256(weights)
    assert meta["class_names"] == list(CLASS_NAMES) and meta["null_index"] == 13
    assert meta["image_size"] == 16 and meta["channels"] == 3 and meta["prediction"] == "x"
    assert (meta["recommended_sampler"], meta["recommended_steps"], meta["recommended_cfg_scale"]) == ("heun", 3, 2.5)
    assert meta["recommended_guidance_interval"] == [0.1, 0.9]
    assert meta["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert meta["tinycats_version"] == tinycats.__version__ and meta["quantization"] == "none"
    assert "t = 0 is noise, t = 1 is data" in meta["time_convention"]
    assert list(meta["inputs"]) == ["x", "t", "label", "cfg_scale"] and meta["outputs"]["v"]["shape"] == ["batch", 3, 16, 16]
    graph = proto.graph
    assert [i.name for i in graph.input] == ["x", "t", "label", "cfg_scale"] and [o.name for o in graph.output] == ["v"]
    assert all(v.type.tensor_type.shape.dim[0].dim_param for v in [*graph.input, *graph.output])  # dynamic batch
    dtypes = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]}
    f32, i64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    assert dtypes == {"x": f32, "t": f32, "label": i64, "cfg_scale": f32, "v": f32}
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in [*graph.input, *graph.output]}
    assert ranks == {"x": 4, "t": 1, "label": 1, "cfg_scale": 1, "v": 4}
    int8_meta = json.loads(
        {p.key: p.value for p in onnx.load(str(out.parent / "generator_int8.onnx")).metadata_props}["tinycats"]
    )
    assert int8_meta["quantization"].startswith("int8") and int8_meta["weights_sha256"] == meta["weights_sha256"]
    assert (out.parent / "generator_int8.onnx").stat().st_size < out.stat().st_size / 2
    assert f"generator.onnx ({out.stat().st_size / 1e6:.2f} MB)" in printed


def test_verify_prints_measured_errors(exported):
    _, _, printed = exported
    fp32 = float(re.search(r"fp32: max \|v_onnx - v_torch\| = (\S+)", printed).group(1))
    int8 = float(re.search(r"int8: max \|v_onnx - v_torch\| = (\S+)", printed).group(1))
    assert 0 <= fp32 <= FP32_TOLERANCE
    assert fp32 < int8 < 1.0  # quantised weights really changed the output, but not wildly
    assert re.search(r"int8: final images vs PyTorch \(same seed and sampler\): max \d+ levels, mean \S+ levels", printed)


def reference_velocity(model: TinyDiT, x, t, labels, scale):
    """Guidance computed independently: two separate forwards and the velocity formula of flow.py."""

    def v(lab):
        out = model(x, t, lab)
        if model.config.prediction == "v":
            return out
        return (out - x) / (1 - t).clamp_min(model.config.t_eps).reshape(-1, 1, 1, 1)

    v_cond, v_null = v(labels), v(torch.full_like(labels, 13))
    return v_null + scale.reshape(-1, 1, 1, 1) * (v_cond - v_null)


@pytest.mark.parametrize(
    "prediction, patches",
    [
        ("x", {}),
        ("v", {}),
        ("x", {"embed": "conv", "decoder": "pixel"}),
        ("x", {"decoder": "conv"}),
        ("x", {"embed": "bottleneck", "decoder": "pixel", "pixel_features": 4}),
        ("x", {"qk_norm": True, "activation": "swiglu"}),
    ],
)
def test_graph_output_is_the_guided_velocity_at_any_batch_size(tmp_path, prediction, patches):
    ckpt = make_checkpoint(tmp_path / "ema.pt", prediction, **patches)
    out = export_onnx(ckpt, tmp_path / "g.onnx").onnx
    model = tinycats.load_generator(ckpt, device="cpu")
    sess = session(out)
    g = torch.Generator().manual_seed(1)
    for batch in (1, 5):
        x = torch.randn(batch, 3, 16, 16, generator=g)
        t = torch.rand(batch, generator=g) * 0.9
        labels = torch.randint(0, 13, (batch,), generator=g)
        scale = torch.linspace(1.0, 4.0, batch)  # a different scale per sample
        with torch.inference_mode():
            expected = reference_velocity(model, x, t, labels, scale).numpy()
        got = sess.run(None, {"x": x.numpy(), "t": t.numpy(), "label": labels.numpy(), "cfg_scale": scale.numpy()})[0]
        assert got.shape == (batch, 3, 16, 16)
        assert np.abs(got - expected).max() <= FP32_TOLERANCE
        assert np.abs(expected).mean() > 0.1  # a non-trivial output


def test_missing_or_foreign_checkpoint_is_an_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "g.onnx"
    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        export_onnx(tmp_path / "nope.pt", out)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    assert main(["export-onnx", "--checkpoint", str(foreign), "--output", str(out)]) == 2
    assert "not a tinycats checkpoint" in capsys.readouterr().err
    assert not out.exists()


def test_too_old_opset_is_refused(tmp_path):
    with pytest.raises(ExportError, match="opset 18 or newer"):
        export_onnx(make_checkpoint(tmp_path / "ema.pt"), tmp_path / "g.onnx", opset=17)
