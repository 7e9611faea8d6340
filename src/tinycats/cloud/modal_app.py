"""Train on a cloud GPU with Modal, with the record's flags:

    modal run src/tinycats/cloud/modal_app.py --data-dir data/cats --config high-accuracy \\
        --steps 400000 --batch-size 256 --gradient-accumulation-steps 2 --lr 5e-5 \\
        --warmup-steps 15000 --augmentation-level full --checkpoint-interval 50000 [--gpu H100]

The local data folder is uploaded once to the Modal Volume `tinycats` (under data/<name>);
checkpoints and logs live on the volume under runs/<run-name>/. The remote function always trains
with `--resume auto`, and Modal retries it after a pre-emption or a crash, so every attempt
continues exactly from the latest checkpoint; the volume is committed after each checkpoint so
nothing saved is lost with the container. At the end the final EMA weights and the logs are
downloaded into ./checkpoints and ./outputs.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import modal

APP_NAME = "tinycats"
VOLUME_NAME = "tinycats"
VOLUME_PATH = "/vol"
DEFAULT_GPU = "H100"
TIMEOUT_S = 24 * 60 * 60  # Modal's limit for one attempt; retries continue from the last checkpoint
RETRIES = modal.Retries(max_retries=20, initial_delay=30.0, backoff_coefficient=1.0)
# The CUDA wheels of the versions the project is tested with.
REQUIREMENTS = (
    "torch==2.14.1",
    "torchvision==0.29.1",
    "numpy",
    "pillow",
    "pyyaml",
    "tqdm",
    "safetensors",
    "huggingface_hub",
    "tensorboard",
)

image = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install(*REQUIREMENTS)
    # ignore=[] keeps configs/*.yaml, which the default (Python files only) would leave behind.
    .add_local_python_source("tinycats", ignore=["**/__pycache__/**"])
)
volume = modal.Volume.from_name(VOLUME_NAME, create_if_missing=True)
app = modal.App(APP_NAME, image=image)


@app.function(gpu=DEFAULT_GPU, volumes={VOLUME_PATH: volume}, timeout=TIMEOUT_S, retries=RETRIES)
def train_remote(train_args: list[str]) -> int:
    """`tinycats train` on the volume, resuming from the run's latest checkpoint."""
    from tinycats.cli import build_parser
    from tinycats.cli.train_cmd import run

    args = build_parser().parse_args(["train", *train_args, "--resume", "auto", "--no-progress"])
    code = run(args, on_checkpoint=lambda path: volume.commit())
    volume.commit()
    return code


def remote_train_args(data_name: str, run_name: str, flags: dict[str, object]) -> list[str]:
    """The `tinycats train` argument list for the container: paths on the volume, given flags only."""
    run_dir = f"{VOLUME_PATH}/runs/{run_name}"
    argv = [f"{VOLUME_PATH}/data/{data_name}", "--checkpoint-dir", f"{run_dir}/checkpoints", "--log-dir", f"{run_dir}/outputs"]
    for name, value in flags.items():
        if value not in (None, "", -1):
            argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def upload_data(local: Path, data_name: str) -> None:
    """Copy the local ImageFolder to the volume once; an existing copy is kept."""
    if _listing(f"data/{data_name}"):
        print(f"data/{data_name} is already on volume {VOLUME_NAME}; not uploading again")
        return
    if not local.is_dir():
        raise SystemExit(f"{local} does not exist: get the data first (tinycats data download --out {local})")
    print(f"uploading {local} to volume {VOLUME_NAME}:data/{data_name} ...")
    with volume.batch_upload() as batch:
        batch.put_directory(str(local), f"data/{data_name}")


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
    return max(emas, key=lambda n: int(Path(n).name.split("_")[2]))


@app.local_entrypoint()
def main(
    data_dir: str = "data/cats",
    config: str = "high-accuracy",
    run_name: str = "high-accuracy",
    gpu: str = DEFAULT_GPU,
    steps: int = -1,
    batch_size: int = -1,
    gradient_accumulation_steps: int = -1,
    lr: float = -1,
    warmup_steps: int = -1,
    augmentation_level: str = "",
    checkpoint_interval: int = -1,
    sample_interval: int = -1,
    ema_beta: float = -1,
    seed: int = -1,
) -> None:
    """Flags left at -1 or "" keep the preset's value."""
    local = Path(data_dir)
    upload_data(local, local.name)
    flags = {
        "config": config, "steps": steps, "batch_size": batch_size, "gradient_accumulation_steps": gradient_accumulation_steps,
        "lr": lr, "warmup_steps": warmup_steps, "augmentation_level": augmentation_level,
        "checkpoint_interval": checkpoint_interval, "sample_interval": sample_interval, "ema_beta": ema_beta, "seed": seed,
    }  # fmt: skip
    argv = remote_train_args(local.name, run_name, flags)
    print(f"training on {gpu}: tinycats train {shlex.join(argv)} --resume auto")
    code = train_remote.with_options(gpu=gpu).remote(argv)
    if code != 0:
        raise SystemExit(code)
    final = final_ema(_listing(f"runs/{run_name}/checkpoints"))
    download(final, Path("checkpoints") / Path(final).name)
    for name in ("training.log", "metrics.jsonl"):
        download(f"runs/{run_name}/outputs/{name}", Path("outputs") / name)
