"""Sampling from an exported generator.onnx with onnxruntime and numpy alone: no PyTorch.

The graph is one guided step (see export.py): it returns the guided velocity, so this module only
integrates dx/dt = v from t = 0 (noise) to t = 1 (image) and never applies guidance itself. It uses
the same solvers, time grid and initial noise (`tinycats.core.solvers`, `tinycats.core.noise`) as the PyTorch sampler, so the
same seed gives the same pictures from either backend, up to float rounding.

    gen = load("generator.onnx")
    images = sample(gen, [10, 3], gen.sample_config, seed=0)   # float [-1, 1], NCHW
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    import onnxruntime as ort
except ImportError as exc:
    raise ImportError("ONNX sampling needs onnxruntime: pip install 'tinycats[onnx]'") from exc
from tqdm.auto import tqdm

from tinycats.config import SampleConfig
from tinycats.core.noise import initial_noise
from tinycats.core.solvers import SOLVERS
from tinycats.errors import OnnxModelError, UsageError
from tinycats.export.contract import METADATA_FORMAT, METADATA_KEY


@dataclass
class OnnxGenerator:
    """An onnxruntime session and the metadata export.py wrote next to the graph."""

    session: ort.InferenceSession
    metadata: dict[str, Any]

    @property
    def class_names(self) -> list[str]:
        return list(self.metadata["class_names"])

    @property
    def null_label(self) -> int:
        return int(self.metadata["null_index"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        size = int(self.metadata["image_size"])
        return int(self.metadata["channels"]), size, size

    @property
    def time_shift(self) -> float:
        """The model's time shift; a sidecar written before the setting existed means none."""
        return float(self.metadata.get("time_shift", 1.0))

    @property
    def sample_config(self) -> SampleConfig:
        """The sampler the checkpoint recommended when it was exported."""
        m = self.metadata
        return SampleConfig(
            sampler=m["recommended_sampler"],
            steps=m["recommended_steps"],
            cfg_scale=m["recommended_cfg_scale"],
            guidance_interval=tuple(m["recommended_guidance_interval"]),
        )

    def velocity(self, x: np.ndarray, t: float, labels: np.ndarray, cfg_scale: np.ndarray) -> np.ndarray:
        """The guided velocity at time t for a batch; cfg_scale is per sample."""
        n = x.shape[0]
        feed = {"x": x, "t": np.full(n, t, dtype=np.float32), "label": labels, "cfg_scale": cfg_scale}
        return self.session.run(None, feed)[0]


def read_metadata(path: str | Path, session: ort.InferenceSession | None = None) -> dict[str, Any]:
    """The JSON in the model's metadata_props; the sidecar <name>.json if it is missing."""
    path = Path(path)
    props = (session or ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])).get_modelmeta().custom_metadata_map
    sidecar = path.with_suffix(".json")
    if METADATA_KEY not in props and not sidecar.is_file():
        raise OnnxModelError(f"{path} carries no tinycats metadata (nor a {sidecar.name}): export it with `tinycats export-onnx`")
    try:
        return json.loads(props[METADATA_KEY] if METADATA_KEY in props else sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise OnnxModelError(f"the tinycats metadata of {path} is not JSON ({exc}): export it again") from exc


def load(path: str | Path, threads: int | None = None) -> OnnxGenerator:
    """Open a generator exported by `tinycats export-onnx` on the CPU (`threads`: intra-op threads,
    default onnxruntime's choice)."""
    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f"ONNX model {path} does not exist: make one with `tinycats export-onnx`")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
        raise OnnxModelError(
            f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc}); export one with `tinycats export-onnx`"
        ) from exc
    meta = read_metadata(path, session)
    if meta.get("format") != METADATA_FORMAT:
        raise OnnxModelError(
            f"{path} has metadata format {meta.get('format')!r}; this tinycats reads {METADATA_FORMAT}: export it again"
        )
    return OnnxGenerator(session, meta)


def velocity_fn(generator: OnnxGenerator, labels: np.ndarray, cfg_scale: float, interval: tuple[float, float]):
    """A function (x, t) -> guided velocity. Outside the guidance interval the scale is 1, which
    the graph turns into the conditional velocity (what the PyTorch sampler computes there)."""
    lo, hi = interval
    guide = np.full(len(labels), cfg_scale, dtype=np.float32)
    plain = np.ones(len(labels), dtype=np.float32)

    def fn(x: np.ndarray, t: float) -> np.ndarray:
        return generator.velocity(x, t, labels, guide if lo <= t <= hi else plain)

    return fn


def sample(
    generator: OnnxGenerator,
    labels: Sequence[int],
    settings: SampleConfig,
    seed: int = 0,
    batch_size: int = 64,
    indices: Sequence[int] | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Images in [-1, 1], [N, C, H, W] float32. Image k starts from the noise of (seed, indices[k])
    (default indices 0, 1, 2, ...), exactly as in `tinycats.core.sampling.sample`."""
    indices = list(range(len(labels))) if indices is None else list(indices)
    bad = [b for b in labels if not 0 <= b < len(generator.class_names)]
    if bad:
        raise UsageError(f"class index {bad[0]} out of range 0..{len(generator.class_names) - 1}")
    solver = SOLVERS[settings.sampler]
    out = []
    starts = range(0, len(labels), batch_size)
    for start in tqdm(starts, desc="sampling (onnx)", unit="batch", disable=not progress):
        x = initial_noise(seed, indices[start : start + batch_size], generator.image_shape)
        y = np.asarray(labels[start : start + batch_size], dtype=np.int64)
        fn = velocity_fn(generator, y, settings.cfg_scale, settings.guidance_interval)
        out.append(np.clip(solver(fn, x, settings.steps, generator.time_shift), -1, 1))
    return np.concatenate(out) if out else np.empty((0, *generator.image_shape), dtype=np.float32)
