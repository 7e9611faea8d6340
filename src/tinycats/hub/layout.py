"""The layout of a published tinycats repo: every file name, in one place.

    README.md                     model card (YAML header + text)
    config.json                   ModelConfig fields + "sample" (the recommended sampler), "training",
                                  "data", "weights_sha256", "format"
    model.safetensors             EMA weights
    onnx/generator.onnx           one guided step, fp32
    onnx/generator_int8.onnx      dynamic int8
    onnx/generator.json           sidecar: metadata + each file's path, sha256 and size
    onnx/sample.py                the sampler for onnxruntime + numpy + Pillow alone (hub/portable.py)
    reports/evaluation_report.json, reports/benchmark_report.json
    samples/overview.png, samples/<Class>.png

The uploader, the loaders, the checks and the browser page (through the sidecar) all take the
names from here; nothing else spells them. No pickles (.pt, .bin, ...) and no optimizer state are
ever part of it.
"""

from __future__ import annotations

import re

from tinycats.errors import HubError

HUB_FORMAT = "tinycats-hub-v1"
PREFIX = "hf://"

CARD = "README.md"
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
ONNX = {"fp32": "onnx/generator.onnx", "int8": "onnx/generator_int8.onnx"}
SIDECAR = "onnx/generator.json"
SAMPLER = "onnx/sample.py"
EVALUATION = "reports/evaluation_report.json"
BENCHMARK = "reports/benchmark_report.json"
SAMPLES_DIR = "samples"
OVERVIEW = "samples/overview.png"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt")

_REF = re.compile(r"^hf://([\w.-]+/[\w.-]+)(?:@([\w./-]+))?$")


def breed_grid(class_name: str) -> str:
    return f"{SAMPLES_DIR}/{class_name}.png"


def is_ref(text: object) -> bool:
    return str(text).startswith(PREFIX)


def parse_ref(text: str) -> tuple[str, str | None]:
    """hf://OWNER/REPO[@REVISION] -> (OWNER/REPO, REVISION or None)."""
    match = _REF.match(text)
    if not match:
        raise HubError(f"{text!r} is not a Hub model: write hf://OWNER/REPO or hf://OWNER/REPO@REVISION")
    return match.group(1), match.group(2)
