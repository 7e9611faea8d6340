"""The exported generator's contract, shared by the exporter, the ONNX-only sampler, the benchmark
and the Hub checks: the graph's input and output names, where its metadata lives, and how its
files are named beside each other. No torch, no onnx, no onnxruntime."""

from __future__ import annotations

from pathlib import Path

METADATA_FORMAT = "tinycats-onnx-v1"
METADATA_KEY = "tinycats"  # the metadata_props entry holding the JSON metadata
INPUT_NAMES = ("x", "t", "label", "cfg_scale")
OUTPUT_NAME = "v"


def int8_path(fp32: str | Path) -> Path:
    """generator.onnx -> generator_int8.onnx"""
    fp32 = Path(fp32)
    return fp32.with_name(f"{fp32.stem}_int8{fp32.suffix}")


def sidecar_path(onnx_path: str | Path) -> Path:
    """generator.onnx -> generator.json"""
    return Path(onnx_path).with_suffix(".json")
