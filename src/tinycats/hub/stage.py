"""Staging: build the exact repo folder that would be committed, from a checkpoint and whatever
else the user gives (ONNX files, reports, sample pictures), then check it.

The folder is built under a hidden sibling name and renamed into place only after `check` passed,
so OUT is either a complete, consistent repo or untouched. Only files that were given are there:
no default numbers, no placeholder reports.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import tinycats
from tinycats import checkpoint
from tinycats.config import RunConfig
from tinycats.errors import HubError
from tinycats.hub import layout
from tinycats.hub.card import build_card
from tinycats.hub.check import check, check_benchmark, check_evaluation, same_weights
from tinycats.hub.load import read_json


@dataclass
class StageInputs:
    """The record's upload flags: --generator, --onnx-generator, --evaluation-report, ..."""

    generator: Path
    onnx_generator: Path | None = None
    evaluation_report: Path | None = None
    benchmark_report: Path | None = None
    samples_dir: Path | None = None
    repo_id: str | None = None
    space_id: str | None = None  # the Space that will show it (`tinycats space`): the card links it


def stage(inputs: StageInputs, out: str | Path) -> dict[str, int]:
    """Write the repo folder OUT; return {relative path: bytes}. Raises HubError, leaving OUT as it was."""
    from tinycats.core.model import TinyDiT, count_parameters

    out = Path(out)
    if out.exists() and not (out / layout.CONFIG).is_file():
        raise HubError(f"{out} exists and is not a staged tinycats repo: choose another folder")
    _require_files(inputs)
    state = checkpoint.load(inputs.generator)
    run = checkpoint.run_config(state)
    model = TinyDiT(run.model)
    model.load_state_dict(checkpoint.ema_weights(state), strict=True)
    digest = checkpoint.weights_sha256(model.state_dict())
    onnx_meta = _check_inputs(inputs, digest, list(run.model.class_names))
    build = out.with_name(f".{out.name}.staging-{os.getpid()}")
    shutil.rmtree(build, ignore_errors=True)
    origins: dict[str, Path] = {}
    try:
        build.mkdir(parents=True)
        (build / layout.CARD).touch()  # save_pretrained keeps an existing card; ours is written last
        model.save_pretrained(build, config=hub_config(run, state, digest))
        if onnx_meta:
            _stage_onnx(inputs.onnx_generator, onnx_meta, build, origins)
        for source, rel in ((inputs.evaluation_report, layout.EVALUATION), (inputs.benchmark_report, layout.BENCHMARK)):
            if source:
                _copy(source, build / rel)
                origins[rel] = source
        if inputs.samples_dir:
            _stage_samples(inputs.samples_dir, list(run.model.class_names), build, origins)
        files = check(build, origins, card=False)  # every file proven consistent before the card reads them
        _write_card(build, count_parameters(model), inputs.repo_id, inputs.space_id)
        files[layout.CARD] = (build / layout.CARD).stat().st_size
        shutil.rmtree(out, ignore_errors=True)
        os.replace(build, out)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return files


def hub_config(run: RunConfig, state: dict, digest: str) -> dict:
    """config.json: the ModelConfig fields at the top level (what PyTorchModelHubMixin reads), the
    recommended sampler, the training settings and data of the run, and the weights' identity."""
    plain = run.to_dict()
    return {
        **plain["model"],
        "format": layout.HUB_FORMAT,
        "tinycats_version": tinycats.__version__,
        "sample": plain["sample"],
        "training": {**plain["train"], "steps_done": int(state["step"])},
        "data": state.get("data"),
        "weights_sha256": digest,
    }


def _require_files(inputs: StageInputs) -> None:
    for flag, value in asdict(inputs).items():
        if flag in ("repo_id", "space_id", "samples_dir") or value is None:
            continue
        if not Path(value).is_file():
            raise HubError(f"--{flag.replace('_', '-')} {value} does not exist")
    if inputs.samples_dir and not (Path(inputs.samples_dir) / "overview.png").is_file():
        raise HubError(
            f"--samples-dir {inputs.samples_dir} has no overview.png: write it with `tinycats sample --output-dir DIR`"
        )


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _check_inputs(inputs: StageInputs, digest: str, classes: list[str]) -> dict | None:
    """The given ONNX file and reports, checked against the weights before anything is written (in
    `check`'s order; it proves the staged folder again); the ONNX file's metadata, if one is given."""
    from tinycats.export import onnx_sampler

    meta = None
    if inputs.onnx_generator:
        try:
            meta = onnx_sampler.load(inputs.onnx_generator).metadata
        except onnx_sampler.OnnxModelError as exc:
            raise HubError(f"--onnx-generator: {exc}") from exc
        same_weights(meta.get("weights_sha256"), digest, str(inputs.onnx_generator), "export it")
    if inputs.evaluation_report:
        shown = str(inputs.evaluation_report)
        check_evaluation(read_json(inputs.evaluation_report, shown), digest, classes, shown)
    if inputs.benchmark_report:
        shown = str(inputs.benchmark_report)
        check_benchmark(read_json(inputs.benchmark_report, shown), digest, shown)
    return meta


def _stage_onnx(fp32: Path, meta: dict, build: Path, origins: dict[str, Path]) -> None:
    """The fp32 graph, its _int8 sibling when there is one, and a sidecar naming them as the layout does."""
    from tinycats.export.contract import int8_path
    from tinycats.export.onnx import write_sidecar

    sources = {"fp32": Path(fp32), "int8": int8_path(fp32)}
    staged = {}
    for kind, source in sources.items():
        if source.is_file():
            staged[kind] = build / layout.ONNX[kind]
            _copy(source, staged[kind])
            origins[layout.ONNX[kind]] = source
    write_sidecar(staged["fp32"], meta, staged)
    origins[layout.SIDECAR] = Path(fp32)  # the sidecar is made from the graph's own metadata
    from tinycats.hub.portable import sampler_source

    (build / layout.SAMPLER).write_text(sampler_source())


def _stage_samples(samples_dir: Path, classes: list[str], build: Path, origins: dict[str, Path]) -> None:
    """overview.png and grids/<Class>.png of a `tinycats sample` output folder."""
    samples_dir = Path(samples_dir)
    _copy(samples_dir / "overview.png", build / layout.OVERVIEW)
    origins[layout.OVERVIEW] = samples_dir / "overview.png"
    for grid in sorted((samples_dir / "grids").glob("*.png")):
        rel = layout.breed_grid(grid.stem)
        _copy(grid, build / rel)
        origins[rel] = grid


def _write_card(build: Path, parameters: int, repo_id: str | None, space_id: str | None) -> None:
    config = json.loads((build / layout.CONFIG).read_text())
    reports = {
        key: json.loads((build / rel).read_text()) if (build / rel).is_file() else None
        for key, rel in (("evaluation", layout.EVALUATION), ("benchmark", layout.BENCHMARK))
    }
    files = sorted({p.relative_to(build).as_posix() for p in build.rglob("*") if p.is_file()} | {layout.CARD})
    build_card(config, parameters, files, repo_id=repo_id, space_id=space_id, **reports).save(build / layout.CARD)
