"""Train on a cloud GPU with Modal, with the record's flags:

    modal run src/tinycats/cloud/modal_app.py --data-dir data/cats --config high-accuracy \\
        --steps 400000 --batch-size 256 --gradient-accumulation-steps 2 --lr 5e-5 \\
        --warmup-steps 15000 --augmentation-level full --checkpoint-interval 50000 [--gpu H100]

The local data folder is uploaded to the Modal Volume `tinycats` (data/<name>) with a manifest written last, so an
interrupted or changed upload is redone. Checkpoints and logs live on the volume under runs/<run-name>/, committed
after each checkpoint. Modal retries the function after a pre-emption, a crash or a timeout, and every retry resumes
exactly from the latest checkpoint. A failure that a retry would only replay (a NaN/Inf loss, bad input) is returned
as a failed result instead, which ends the run at once. At the end the final EMA weights and the logs are downloaded
into ./checkpoints and ./outputs.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import modal

from tinycats.errors import TinycatsError, TrainingInterrupted

APP_NAME = "tinycats"
VOLUME_NAME = "tinycats"
VOLUME_PATH = "/vol"
DEFAULT_GPU = "H100"
TIMEOUT_S = 24 * 60 * 60  # Modal's maximum for one attempt (1 s to 24 h); each retry is a new attempt
# 10 is Modal's cap: older clients reject more ("Retries must be between 0 and 10"); the installed 1.6.4 checks only
# >= 0 and leaves the limit to the server. 11 attempts of 24 h exceed option C's projected 37-93 GPU-hours.
RETRIES = modal.Retries(max_retries=10, initial_delay=30.0, backoff_coefficient=1.0)
# A TinycatsError is the user's to fix (resume is exact: a retry would fail the same way), except a
# pre-emption's TrainingInterrupted, which a retry resumes.
PYTHON_VERSION = "3.11"
# The versions the project is tested with (constraints.txt, the dev venv), so that a cloud run is reproducible.
REQUIREMENTS = (
    "torch==2.14.1", "torchvision==0.29.1", "numpy==2.4.6", "pillow==13.0.0", "pyyaml==6.0.4", "tqdm==4.70.1",
    "safetensors==0.8.0", "huggingface_hub==2.4.0", "tensorboard==2.21.0",
)  # fmt: skip
SOURCE = "tinycats"
SOURCE_IGNORE = ["**/__pycache__/**"]  # replaces the default (every non-.py file), so configs/*.yaml come along

image = modal.Image.debian_slim(python_version=PYTHON_VERSION).pip_install(*REQUIREMENTS)
image = image.add_local_python_source(SOURCE, ignore=SOURCE_IGNORE)
volume = modal.Volume.from_name(VOLUME_NAME, create_if_missing=True)
app = modal.App(APP_NAME, image=image)


@app.function(gpu=DEFAULT_GPU, volumes={VOLUME_PATH: volume}, timeout=TIMEOUT_S, retries=RETRIES)
def train_remote(spec: dict[str, object], resume: str = "auto") -> dict[str, object]:
    """Training on the volume: see train_on_volume. A container without its GPU is an
    infrastructure fault: raised, so Modal retries it, rather than a run that trains on the CPU."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA GPU is visible in this container")
    return train_on_volume(spec, resume, volume.commit)


def train_on_volume(spec: dict[str, object], resume: str, commit: Callable[[], object]) -> dict[str, object]:
    """Train `spec` (see remote_spec) through the training API, committing the volume after every checkpoint.
    `resume` ("auto", "none" or a path) holds only while the run has no checkpoint of its own; once it has one, an
    attempt is a retry and continues from the latest. A TinycatsError comes back as {"status": "failed"} because
    raising it would make Modal retry; anything else (a pre-emption's TrainingInterrupted, a bug, a crash) is raised,
    so that Modal retries it."""
    from tinycats import checkpoint
    from tinycats.training import launch
    from tinycats.training.loop import train

    ckpt_dir = str(spec["checkpoint_dir"])
    if checkpoint.latest(ckpt_dir) is not None:
        resume = "auto"
    try:
        cfg, state = launch.resolve(spec["config"], spec["flags"], None if resume == "none" else resume, ckpt_dir)
        if state and state["step"] >= cfg.train.steps:
            return {"status": "done", "step": state["step"]}
        allow = bool(spec["flags"].get("allow_data_change"))
        folders = spec["data_dir"], ckpt_dir, spec["log_dir"]
        result = train(cfg, *folders, state, progress=False, on_checkpoint=lambda _: commit(), allow_data_change=allow)
        return {"status": "done", "step": result.step}
    except TrainingInterrupted:
        raise
    except TinycatsError as exc:
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    finally:
        commit()


def remote_spec(data_name: str, run_name: str, config: str, flags: dict[str, object]) -> dict[str, object]:
    """What the container trains: paths on the volume, the preset and the given flags (None: the preset decides)."""
    run_dir = f"{VOLUME_PATH}/runs/{run_name}"
    return {
        "data_dir": f"{VOLUME_PATH}/data/{data_name}",
        "checkpoint_dir": f"{run_dir}/checkpoints",
        "log_dir": f"{run_dir}/outputs",
        "config": config,
        "flags": {name: value for name, value in flags.items() if value is not None},
    }


def volume_resume(resume: str, run_name: str) -> str:
    """--resume as the container sees it. "none" and a path start runs/<run-name>, so it must have no checkpoint."""
    if resume == "auto":
        return resume
    if _listing(f"runs/{run_name}/checkpoints"):
        raise SystemExit(f"runs/{run_name} already has checkpoints: continue it with --resume auto, or pick a new --run-name")
    if resume == "none":
        return resume
    path = resume.removeprefix(VOLUME_PATH).lstrip("/")
    if path not in [p.lstrip("/") for p in _listing(str(PurePosixPath(path).parent))]:
        raise SystemExit(f"--resume {resume}: no such file on volume {VOLUME_NAME}")
    return f"{VOLUME_PATH}/{path}"


def manifest(local: Path) -> str:
    """Every file under `local` with its size, as JSON: what a complete upload of the folder holds."""
    return json.dumps({p.relative_to(local).as_posix(): p.stat().st_size for p in sorted(local.rglob("*")) if p.is_file()})


def upload_data(local: Path, data_name: str) -> None:
    """Upload the local ImageFolder unless the volume's manifest says it holds this very copy. The manifest is written
    last, so an interrupted upload has none and changed data has another; then the old copy is replaced."""
    remote, manifest_path = f"data/{data_name}", f"data/{data_name}.manifest.json"
    on_volume = _read(manifest_path)
    if not local.is_dir():
        if on_volume is None:
            raise SystemExit(f"{local} does not exist: get the data first (tinycats data download --out {local})")
        print(f"{local} is not here; training on the complete copy on volume {VOLUME_NAME}:{remote}")
        return
    wanted = manifest(local)
    if on_volume == wanted:
        print(f"{remote} on volume {VOLUME_NAME} matches {local}; not uploading again")
        return
    print(f"uploading {local} to volume {VOLUME_NAME}:{remote} ...")
    for path in (manifest_path, remote):  # the manifest first: an interruption from here on leaves none
        with contextlib.suppress(FileNotFoundError):
            volume.remove_file(path, recursive=True)
    with volume.batch_upload(force=True) as batch:
        batch.put_directory(str(local), remote)
    with volume.batch_upload(force=True) as batch:
        batch.put_file(io.BytesIO(wanted.encode()), manifest_path)


def _read(path: str) -> str | None:
    try:
        return b"".join(volume.read_file(path)).decode()
    except (FileNotFoundError, modal.exception.NotFoundError):
        return None


def _listing(path: str) -> list[str]:
    try:
        return [entry.path for entry in volume.listdir(path)]
    except (FileNotFoundError, modal.exception.NotFoundError):
        return []


def download(remote: str, local: Path) -> None:
    local.parent.mkdir(parents=True, exist_ok=True)
    with open(local, "wb") as f:
        volume.read_file_into_fileobj(remote, f)
    print(f"downloaded {local}")


def final_ema(names: list[str]) -> str:
    """The dit_step_N_ema.pt with the highest N."""
    emas = [n for n in names if n.endswith("_ema.pt")]
    if not emas:
        raise SystemExit("the run saved no checkpoint")
    from tinycats.checkpoint import step_of

    return max(emas, key=step_of)


@app.local_entrypoint()
def main(
    data_dir: str = "data/cats",
    config: str = "high-accuracy",
    run_name: str = "high-accuracy",
    gpu: str = DEFAULT_GPU,
    resume: str = "auto",
    model: str | None = None,
    image_size: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    gradient_accumulation_steps: int | None = None,
    lr: float | None = None,
    warmup_steps: int | None = None,
    augmentation_level: str | None = None,
    ema_beta: float | None = None,
    checkpoint_interval: int | None = None,
    keep_last: int | None = None,
    keep_every: int | None = None,
    sample_interval: int | None = None,
    seed: int | None = None,
    compile: bool | None = None,
    allow_data_change: bool | None = None,
) -> None:
    """Flags not given keep the preset's value. --resume: auto (continue runs/<run-name> if it has a checkpoint),
    none (a fresh run), or a dit_step_N.pt on the volume (e.g. runs/<other>/checkpoints/dit_step_N.pt).
    --allow-data-change: resume although the data on the volume changed (then not an exact resume)."""
    flags = {k: v for k, v in locals().items() if k not in ("data_dir", "config", "run_name", "gpu", "resume")}
    from tinycats.config import load_config
    from tinycats.training import launch

    local = Path(data_dir)
    spec = remote_spec(local.name, run_name, config, flags)
    try:
        load_config(config, launch.overrides(spec["flags"]))  # a bad setting stops here, before a GPU starts
    except TinycatsError as exc:
        raise SystemExit(f"tinycats: error: {exc}") from None
    remote_resume = volume_resume(resume, run_name)
    upload_data(local, local.name)
    shown = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in spec["flags"].items())
    print(f"training on {gpu}: --config {config} {shown} (resume: {remote_resume})")
    result = train_remote.with_options(gpu=gpu).remote(spec, remote_resume)
    if result["status"] != "done":
        raise SystemExit(f"tinycats: error: training failed for good (not retried): {result['error']}")
    final = final_ema(_listing(f"runs/{run_name}/checkpoints"))
    download(final, Path("checkpoints") / Path(final).name)
    for name in ("training.log", "metrics.jsonl"):
        download(f"runs/{run_name}/outputs/{name}", Path("outputs") / name)
