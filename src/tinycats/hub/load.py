"""Reading a published model: hf://OWNER/REPO[@REVISION] or a local copy of the repo folder
(`hf download OWNER/REPO --local-dir DIR`, `snapshot_download`), the same way.

A folder is read with safetensors and strict key matching, so a folder whose weights do not fit its
config fails instead of sampling from half-initialised layers; the sampler it recommends comes from
config.json, so a Hub model samples exactly like the checkpoint it was published from.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from tinycats.config import ModelConfig, SampleConfig
from tinycats.errors import HubError
from tinycats.hub import layout
from tinycats.hub.net import network_errors


def local_folder(ref: str) -> Path:
    """The local snapshot of hf://OWNER/REPO[@REVISION] holding config.json + model.safetensors,
    downloaded on first use and read from the Hub cache after (HF_HUB_OFFLINE=1 works then)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    repo_id, revision = layout.parse_ref(ref)
    fetch = f"`hf download {repo_id}{' --revision ' + revision if revision else ''} --local-dir DIR` and pass DIR"
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=[layout.CONFIG, layout.WEIGHTS]))
    except RevisionNotFoundError as exc:
        raise HubError(f"{ref}: the Hub has no revision {revision!r} of {repo_id}") from exc
    except RepositoryNotFoundError as exc:
        raise HubError(f"{ref}: no such model repo on the Hub (or it is private: log in with `hf auth login`)") from exc
    except (LocalEntryNotFoundError, *network_errors()) as exc:
        raise HubError(
            f"{ref} is not in the local Hub cache and the Hub cannot be reached; on a connected machine run {fetch}"
        ) from exc


def read_json(path: Path, shown: str) -> dict[str, Any]:
    """A JSON object file; `shown` names it in the one-line error."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HubError(f"{shown} is not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise HubError(f"{shown} is not a JSON object")
    return data


def read_config(folder: Path) -> dict[str, Any]:
    """config.json of a tinycats repo folder, checked to be one."""
    path = folder / layout.CONFIG
    if not path.is_file():
        raise HubError(f"{folder} has no {layout.CONFIG}: it is not a tinycats model folder (see docs/hub.md)")
    config = read_json(path, str(path))
    if config.get("format") != layout.HUB_FORMAT:
        raise HubError(
            f"{path} is not a tinycats config (format {config.get('format')!r}, expected {layout.HUB_FORMAT!r}): "
            "stage a model folder with `tinycats upload --generator CKPT --dry-run DIR`"
        )
    return config


def _build(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise HubError(f"{where} must be an object, not {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in values.items() if k in known})
    except (TypeError, ValueError) as exc:
        raise HubError(f"{where}: {exc}") from exc


def model_config(config: dict[str, Any], folder: Path) -> ModelConfig:
    return _build(ModelConfig, config, str(folder / layout.CONFIG))


def sample_config(config: dict[str, Any], folder: Path) -> SampleConfig:
    return _build(SampleConfig, config.get("sample"), f"{folder / layout.CONFIG}: field 'sample'")


def load_model(folder: str | Path):
    """The TinyDiT of a repo folder (EMA weights, strict), with `.sample_config` from config.json."""
    import safetensors.torch

    from tinycats.core.model import TinyDiT

    folder = Path(folder)
    config = read_config(folder)
    model = TinyDiT(model_config(config, folder))
    weights = folder / layout.WEIGHTS
    if not weights.is_file():
        raise HubError(f"{folder} has no {layout.WEIGHTS}")
    try:
        safetensors.torch.load_model(model, str(weights), strict=True)
    except (RuntimeError, OSError, safetensors.SafetensorError) as exc:
        raise HubError(f"{weights} does not hold this config's weights ({str(exc).splitlines()[0]})") from exc
    model.sample_config = sample_config(config, folder)
    return model
