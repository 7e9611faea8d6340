"""torchrun with 2 gloo processes on the CPU follows the 1-process trajectory of the same global batch."""

import json
import os
import subprocess
import sys

import pytest
import torch

from tinycats import checkpoint
from tinycats.config import load_config
from tinycats.training.distributed import Context
from tinycats.training.loop import Batches, train

from conftest import tiny_config

# --no-compile: the default preset (cpu-demo) compiles; the one-process reference below runs eager.
# fp32 on both sides: "auto" probes per process count and thread count, and a CPU near bf16's
# threshold could pick differently for the two; this test is about the trajectory, not the probe.
ARGS = ["--model", "tinydit-test", "--batch-size", "8", "--lr", "1e-3", "--warmup-steps", "0", "--log-interval", "1"]
ARGS += ["--no-compile", "--precision", "fp32"]


def losses(log_dir):
    return [json.loads(line)["loss"] for line in (log_dir / "metrics.jsonl").read_text().splitlines()]


def torchrun(nproc, data, ck, log, *extra):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "tinycats",
        "train",
        str(data),
        *ARGS,
        "--checkpoint-dir",
        str(ck),
        "--log-dir",
        str(log),
        "--no-progress",
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_each_process_takes_a_disjoint_slice_of_the_global_batch(image_folder):
    from tinycats.data.folder import build_cache, scan

    data = build_cache(scan(image_folder), 16, progress=False)
    cfg = tiny_config(batch_size=6, augmentation_level="none", label_dropout=0.0)
    whole = Batches(cfg, data.images, data.labels, Context(), torch.device("cpu"))(position=10)
    parts = [Batches(cfg, data.images, data.labels, Context(rank, 2), torch.device("cpu"))(position=10) for rank in (0, 1)]
    for i in range(4):  # images, labels, noise, times: the halves put together are the whole batch
        assert torch.equal(torch.cat([parts[0][i], parts[1][i]]), whole[i])


def test_two_processes_follow_the_one_process_trajectory_and_resume_across_process_counts(image_folder, tmp_path):
    two = torchrun(2, image_folder, tmp_path / "ck2", tmp_path / "log2", "--steps", "6", "--checkpoint-interval", "3")
    assert two.stdout.count("trained to step 6") == 1  # only rank 0 speaks
    assert sorted(p.name for p in (tmp_path / "ck2").iterdir() if not p.name.startswith(".")) == [
        "dit_step_3.pt",
        "dit_step_3_ema.pt",
        "dit_step_6.pt",
        "dit_step_6_ema.pt",
    ]
    assert len(losses(tmp_path / "log2")) == 6  # one writer
    one = tiny_config(steps=6, batch_size=8, lr=1e-3, warmup_steps=0, log_interval=1, checkpoint_interval=3, precision="fp32")
    demo = load_config("cpu-demo").model  # the CLI's default preset names these; --model sets sizes
    one.model.decoder, one.model.activation, one.model.pixel_features = demo.decoder, demo.activation, demo.pixel_features
    train(one, image_folder, tmp_path / "ck1", tmp_path / "log1", progress=False)
    assert losses(tmp_path / "log2") == pytest.approx(losses(tmp_path / "log1"), rel=1e-4)
    # resume the 2-process run on 1 process: it continues on the same trajectory
    state = checkpoint.load(tmp_path / "ck2" / "dit_step_3.pt")
    assert state["world_size"] == 2
    train(one, image_folder, tmp_path / "ck3", tmp_path / "log3", resume=state, progress=False)
    assert losses(tmp_path / "log3") == pytest.approx(losses(tmp_path / "log2")[3:], rel=1e-4)
    # and the other way: the 1-process run resumed on 2 processes
    resume = str(tmp_path / "ck1" / "dit_step_3.pt")
    torchrun(2, image_folder, tmp_path / "ck4", tmp_path / "log4", "--steps", "6", "--resume", resume)
    assert losses(tmp_path / "log4") == pytest.approx(losses(tmp_path / "log1")[3:], rel=1e-4)
