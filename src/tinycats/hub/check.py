"""Checks of a staged (or downloaded) repo folder, run before anything is sent.

Every file must describe the same network: the ONNX graphs were exported from these very weights,
the evaluation and benchmark reports were measured on them, and the class names agree everywhere.
Identity is `checkpoint.weights_sha256` of the weights, so a report made from dit_step_N_ema.pt
matches the model.safetensors published from dit_step_N.pt. Each failure is one line naming the
file (the user's own file where the folder was just staged from it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tinycats.checkpoint import sha256, weights_sha256
from tinycats.errors import HubError
from tinycats.evaluate.report import check_report
from tinycats.export.contract import METADATA_FORMAT, METADATA_KEY
from tinycats.hub import layout
from tinycats.hub.load import model_config, read_config, read_json


def read_sidecar(path: Path, shown: str) -> dict[str, Any]:
    """onnx/generator.json, checked to be one written by `tinycats export-onnx` (what the browser
    page reads first)."""
    side = read_json(path, shown)
    if side.get("format") != METADATA_FORMAT:
        raise HubError(
            f"{shown}: format {side.get('format')!r}, expected {METADATA_FORMAT!r}: export the model with `tinycats export-onnx`"
        )
    return side


def check(folder: str | Path, origins: dict[str, Path] | None = None, card: bool = True) -> dict[str, int]:
    """Raise HubError on the first inconsistency; return {relative path: bytes} of every file.

    `origins` maps a staged name to the file it was copied from, for the messages."""
    folder = Path(folder)
    origins = origins or {}

    def name(rel: str) -> str:
        return str(origins.get(rel, folder / rel))

    files = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    pickles = [rel for rel in files if rel.endswith(layout.PICKLE_SUFFIXES)]
    if pickles:
        raise HubError(f"{folder / pickles[0]} is a pickle: the Hub repo holds safetensors and ONNX only")
    config = read_config(folder)
    classes = list(model_config(config, folder).class_names)
    digest = _weights_digest(folder, config)
    if any(rel in files for rel in (*layout.ONNX.values(), layout.SIDECAR)):
        _check_onnx(folder, digest, classes, name)
    if layout.EVALUATION in files:
        check_evaluation(read_json(folder / layout.EVALUATION, name(layout.EVALUATION)), digest, classes, name(layout.EVALUATION))
    if layout.BENCHMARK in files:
        check_benchmark(read_json(folder / layout.BENCHMARK, name(layout.BENCHMARK)), digest, name(layout.BENCHMARK))
    allowed = {layout.OVERVIEW, *(layout.breed_grid(c) for c in classes)}
    strays = [rel for rel in files if rel.startswith(layout.SAMPLES_DIR + "/") and rel not in allowed]
    if strays:
        raise HubError(f"{name(strays[0])}: not a class of this model ({', '.join(classes)}) nor the overview")
    if card and not files.get(layout.CARD):
        raise HubError(f"{folder} has no {layout.CARD} (the model card), or an empty one")
    return files


def _weights_digest(folder: Path, config: dict[str, Any]) -> str:
    from tinycats.hub.load import load_model

    # Strict: every tensor of the config's network and nothing else, read once and hashed.
    digest = weights_sha256(load_model(folder).state_dict())
    if config.get("weights_sha256") != digest:
        raise HubError(f"{folder / layout.CONFIG}: weights_sha256 does not match {layout.WEIGHTS} ({digest[:12]}…)")
    return digest


def same_weights(found: Any, digest: str, shown: str, what: str) -> None:
    if found is None:
        raise HubError(f"{shown} names no weights_sha256 (made by an older tinycats): {what} again")
    if found != digest:
        raise HubError(f"{shown} is about other weights ({str(found)[:12]}…), not this generator's ({digest[:12]}…)")


def _check_onnx(folder: Path, digest: str, classes: list[str], name) -> None:
    import onnx

    if not (folder / layout.SIDECAR).is_file() or not (folder / layout.ONNX["fp32"]).is_file():
        raise HubError(f"{folder}: the ONNX files need {layout.ONNX['fp32']} and its sidecar {layout.SIDECAR}")
    side = read_sidecar(folder / layout.SIDECAR, name(layout.SIDECAR))
    if side.get("class_names") != classes:
        raise HubError(f"{name(layout.SIDECAR)}: class_names {side.get('class_names')} differ from {layout.CONFIG}'s {classes}")
    same_weights(side.get("weights_sha256"), digest, name(layout.SIDECAR), "export it")
    entries = side.get("files") or {}
    for kind, rel in layout.ONNX.items():
        path = folder / rel
        if not path.is_file():
            continue
        entry = entries.get(kind)
        if not isinstance(entry, dict) or (folder / layout.SIDECAR).parent / str(entry.get("path")) != path:
            raise HubError(f"{name(layout.SIDECAR)}: files.{kind} does not name {path.name}")
        if entry.get("sha256") != sha256(path) or entry.get("bytes") != path.stat().st_size:
            raise HubError(f"{name(layout.SIDECAR)}: the sha256 or size of files.{kind} does not match {rel}")
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        meta = json.loads(props.get(METADATA_KEY, "{}"))
        same_weights(meta.get("weights_sha256"), digest, name(rel), "export it")
        if meta.get("class_names") != classes:
            raise HubError(f"{name(rel)}: class_names {meta.get('class_names')} differ from {layout.CONFIG}'s {classes}")
    missing = [kind for kind in entries if not (folder / layout.ONNX.get(kind, "?")).is_file()]
    if missing:
        raise HubError(f"{name(layout.SIDECAR)} lists a {missing[0]} file that the folder does not hold")


def check_evaluation(report: dict[str, Any], digest: str, classes: list[str], shown: str) -> None:
    check_report(report, shown, HubError)
    same_weights(report["checkpoint"].get("weights_sha256"), digest, shown, "run `tinycats evaluate`")
    if not {"n_real", "n_generated"} <= set(report["data"]):
        raise HubError(f"{shown} has no data section with n_real / n_generated")
    found = report["model_config"].get("class_names")
    if found != classes:
        raise HubError(f"{shown}: class_names {found} differ from the generator's {classes}")


def check_benchmark(report: dict[str, Any], digest: str, shown: str) -> None:
    if not isinstance(report.get("results"), list) or not isinstance(report.get("model"), dict):
        raise HubError(f"{shown} is not a tinycats benchmark report (no model / results)")
    same_weights(report["model"].get("weights_sha256"), digest, shown, "run `tinycats benchmark`")
