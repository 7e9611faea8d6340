"""Export the EMA network to ONNX as ONE guided sampling step, with its metadata, and check it.

The graph maps (x [B,3,H,W], t [B], label [B], cfg_scale [B]) to the guided *velocity* v [B,3,H,W]:
the network output is turned into a velocity inside the graph (flow.to_velocity), and
classifier-free guidance runs inside it as one batched forward of the conditional and null halves,
v = v_null + cfg_scale * (v_cond - v_null). A caller only integrates dx/dt = v from t = 0 to 1 and
must not apply guidance again. cfg_scale is per sample, so one call can mix scales; 1 gives the
conditional velocity.

We use the dynamo exporter (torch.export): it is PyTorch's default and maintained exporter (the
TorchScript one is deprecated and warns that it will be removed), it traces the real Python with
symbolic shapes and reports where a shape would be specialised; the file is written in one piece
(`external_data=False`). Exporting stops with an error rather than produce a file with a fixed
batch size or with weights that are not the checkpoint's.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import tinycats
from tinycats.checkpoint import sha256, weights_sha256
from tinycats.core.model import TinyDiT
from tinycats.core.sampling import GuidedStep, sample
from tinycats.errors import ExportError
from tinycats.export.contract import INPUT_NAMES, METADATA_FORMAT, METADATA_KEY, OUTPUT_NAME, int8_path, sidecar_path
from tinycats.generator import load_generator, weights_file
from tinycats.pictures import to_uint8

DEFAULT_OPSET = 20
FP32_TOLERANCE = 1e-4
TIME_CONVENTION = "t = 0 is noise, t = 1 is data; x_t = t*x + (1-t)*eps; v = x - eps; integrate dx/dt = v from t = 0 to 1"
INT8_QUANTIZATION = "int8 dynamic (QUInt8 weights and activations)"
GUIDANCE = "inside the graph: v = v_null + cfg_scale * (v_cond - v_null); cfg_scale = 1 is conditional; do not guide again"


@dataclass
class Drift:
    """How far the final images of a whole sampling run (same seed, same sampler) moved."""

    max_abs: float  # uint8 levels
    mean_abs: float  # uint8 levels
    max_abs_float: float  # on the [-1, 1] scale


@dataclass
class Verification:
    fp32_max_error: float  # max |v_onnx - v_torch| of one guided step on random inputs
    velocity_max: float  # max |v_torch| on those inputs, the scale of the errors
    int8_max_error: float | None
    drift: dict[str, Drift]  # "fp32" / "int8" -> final images vs PyTorch


@dataclass
class Exported:
    onnx: Path
    metadata: Path
    int8: Path | None
    sizes: dict[str, int]  # file name -> bytes
    verification: Verification | None = None


def metadata(model: TinyDiT, checkpoint: str | Path, opset: int, quantization: str) -> dict[str, Any]:
    """Everything a caller needs besides the graph: classes, shapes, conventions, the sampler."""
    cfg, rec = model.config, model.sample_config
    size, ch = cfg.image_size, cfg.in_channels
    return {
        "format": METADATA_FORMAT,
        "tinycats_version": tinycats.__version__,
        "class_names": list(cfg.class_names),
        "null_index": model.null_label,
        "image_size": size,
        "channels": ch,
        "prediction": cfg.prediction,
        "output": "velocity",
        "time_convention": TIME_CONVENTION,
        "time_shift": cfg.time_shift,
        "guidance": GUIDANCE,
        "recommended_sampler": rec.sampler,
        "recommended_steps": rec.steps,
        "recommended_cfg_scale": rec.cfg_scale,
        "recommended_guidance_interval": list(rec.guidance_interval),
        "checkpoint": Path(str(checkpoint)).name,
        "checkpoint_sha256": sha256(weights_file(checkpoint)),
        "weights_sha256": weights_sha256(model.state_dict()),
        "opset": opset,
        "quantization": quantization,
        "inputs": {
            "x": {"shape": ["batch", ch, size, size], "dtype": "float32"},
            "t": {"shape": ["batch"], "dtype": "float32"},
            "label": {"shape": ["batch"], "dtype": "int64"},
            "cfg_scale": {"shape": ["batch"], "dtype": "float32"},
        },
        "outputs": {OUTPUT_NAME: {"shape": ["batch", ch, size, size], "dtype": "float32"}},
    }


def write_metadata(onnx_path: Path, meta: dict[str, Any]) -> None:
    """As JSON into the model's metadata_props under the key "tinycats" (other keys, such as the
    quantiser's, are kept), so the file describes itself wherever it is copied."""
    import onnx

    proto = onnx.load(str(onnx_path))
    others = [(p.key, p.value) for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    for key, value in [*others, (METADATA_KEY, json.dumps(meta))]:
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(onnx_path))


def sidecar(meta: dict[str, Any], files: dict[str, Path]) -> dict[str, Any]:
    """The JSON a browser fetches before any ONNX file: the fp32 file's metadata, and for each
    precision ("fp32", "int8") the file's name relative to the sidecar, its sha256, size and
    quantisation. A file cannot carry its own hash, so these live beside the graphs."""
    quantization = {"fp32": "none", "int8": INT8_QUANTIZATION}
    entries = {
        kind: {"path": path.name, "sha256": sha256(path), "bytes": path.stat().st_size, "quantization": quantization[kind]}
        for kind, path in files.items()
    }
    return {**{k: v for k, v in meta.items() if k != "quantization"}, "files": entries}


def write_sidecar(fp32: Path, meta: dict[str, Any], files: dict[str, Path]) -> Path:
    """Write `sidecar(meta, files)` to <fp32 stem>.json; every file must sit in fp32's folder."""
    if any(path.parent != fp32.parent for path in files.values()):
        raise ExportError(f"the ONNX files {', '.join(map(str, files.values()))} must share one folder with their sidecar")
    path = sidecar_path(fp32)
    path.write_text(json.dumps(sidecar(meta, files), indent=2) + "\n")
    return path


def example_inputs(shape: tuple[int, int, int], num_classes: int, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random but plausible inputs of one step: noise-like x, t in [0, 1], real labels, scales in [1, 4]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *shape, generator=g)
    t = torch.rand(batch, generator=g)
    label = torch.randint(0, num_classes, (batch,), generator=g)
    return x, t, label, 1 + 3 * torch.rand(batch, generator=g)


def image_shape(model: TinyDiT) -> tuple[int, int, int]:
    return model.config.in_channels, model.config.image_size, model.config.image_size


def export_graph(model: TinyDiT, path: Path, opset: int) -> None:
    step = GuidedStep(model).eval()
    batch = torch.export.Dim("batch")
    with torch.inference_mode(), warnings.catch_warnings():
        # Naming one Dim for all four inputs is right; torch warns that it merges the names.
        warnings.filterwarnings("ignore", message="# The axis name")
        torch.onnx.export(
            step,
            example_inputs(image_shape(model), model.config.num_classes, batch=2),  # 1 would be specialised
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_shapes={name: {0: batch} for name in INPUT_NAMES},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    import onnx

    graph = onnx.load(str(path)).graph
    fixed = [v.name for v in [*graph.input, *graph.output] if not v.type.tensor_type.shape.dim[0].dim_param]
    if fixed:
        raise ExportError(f"the exported graph has a fixed batch size for {', '.join(fixed)}; the export is unusable")


def quantize_int8(fp32: Path, int8: Path) -> None:
    """Dynamic quantisation: uint8 weights and activations (U8U8), activations quantised per call.
    The graph is first shape-inferred and optimised by onnxruntime's pre-processing, which lets
    more MatMuls be quantised.

    Not the quantiser's default signed int8 weights: U8S8 products can saturate in onnxruntime's
    x86 kernels on CPUs without VNNI, so the drift depends on the machine. Measured on the demo model
    on an EPYC without VNNI (13 classes x 4 images, Euler 10, against fp32): signed weights 6.05
    levels of 255 on average (max 108), U8U8 1.34 (max 29, what another machine had measured for
    signed weights); on a tiny test model 1.15 vs 0.011. onnxruntime-web's WASM kernels agree
    with U8U8 (tests/test_web.py)."""
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

    prepared = int8.with_name(f".{int8.stem}.pre.onnx")
    try:
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=False)
        quantize_dynamic(str(prepared), str(int8), weight_type=QuantType.QUInt8)
    finally:
        prepared.unlink(missing_ok=True)


def export_onnx(
    checkpoint: str | Path, output: str | Path, quantize: bool = False, opset: int = DEFAULT_OPSET, verify: bool = False
) -> Exported:
    """Write OUTPUT (fp32) + OUTPUT.json and, with `quantize`, OUTPUT_int8.onnx + its json;
    with `verify`, compare them with PyTorch (`verify_export`). Everything is checked before the
    output folder is made."""
    output = Path(output)
    if opset < 18:
        raise ExportError(f"--opset {opset} is too old: the exporter writes opset 18 or newer")
    if output.suffix != ".onnx":
        raise ExportError(f"--output {output} must end in .onnx: its metadata goes beside it as {sidecar_path(output).name}")
    model = load_generator(checkpoint, device="cpu")  # raises on a missing or foreign checkpoint
    output.parent.mkdir(parents=True, exist_ok=True)
    export_graph(model, output, opset)
    meta = metadata(model, checkpoint, opset, "none")
    write_metadata(output, meta)
    files = {"fp32": output}
    int8 = None
    if quantize:
        int8 = int8_path(output)
        quantize_int8(output, int8)
        write_metadata(int8, {**meta, "quantization": INT8_QUANTIZATION})  # hashed once, not per file
        files["int8"] = int8
    written = [*files.values(), write_sidecar(output, meta, files)]
    exported = Exported(output, sidecar_path(output), int8, {p.name: p.stat().st_size for p in written})
    if verify:
        exported.verification = verify_export(model, exported)
    return exported


def verify_export(model: TinyDiT, exported: Exported, seed: int = 0) -> Verification:
    """ONNX Runtime against PyTorch: one guided step on random inputs (fp32 must agree to
    FP32_TOLERANCE), and whole sampling runs of one picture per class with the recommended sampler."""
    inputs = example_inputs(image_shape(model), model.config.num_classes, batch=3, seed=seed + 1)  # not the traced 2
    with torch.inference_mode():
        reference = GuidedStep(model).eval()(*inputs).numpy()
    feed = {name: tensor.numpy() for name, tensor in zip(INPUT_NAMES, inputs)}
    labels = list(range(model.config.num_classes))
    settings = model.sample_config
    torch_images = sample(model, labels, settings, seed=seed).numpy()
    errors, drift = {}, {}
    for kind, path in (("fp32", exported.onnx), ("int8", exported.int8)):
        if path is None:
            continue
        from tinycats.export import onnx_sampler

        generator = onnx_sampler.load(path)
        errors[kind] = float(np.abs(generator.session.run(None, feed)[0] - reference).max())
        drift[kind] = image_drift(onnx_sampler.sample(generator, labels, settings, seed=seed), torch_images)
    if not errors["fp32"] <= FP32_TOLERANCE:
        raise ExportError(f"ONNX and PyTorch differ by {errors['fp32']:.2e} (> {FP32_TOLERANCE:.0e}) on one step: do not ship it")
    return Verification(errors["fp32"], float(np.abs(reference).max()), errors.get("int8"), drift)


def image_drift(images: np.ndarray, reference: np.ndarray) -> Drift:
    levels = np.abs(to_uint8(images).astype(np.int16) - to_uint8(reference).astype(np.int16))
    return Drift(float(levels.max()), float(levels.mean()), float(np.abs(images - reference).max()))
