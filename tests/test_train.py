import errno
import json
import math
import re
import subprocess
import sys

import pytest
import torch

from tinycats import checkpoint
from tinycats.core import flow
from tinycats.errors import CheckpointError, TrainingDiverged
from tinycats.training import loop, optim
from tinycats.training.loop import train

from conftest import tiny_config


def read_metrics(log_dir):
    return [json.loads(line) for line in (log_dir / "metrics.jsonl").read_text().splitlines()]


def test_training_lowers_the_loss_and_writes_everything(image_folder, tmp_path):
    cfg = tiny_config(steps=60, log_interval=10, batch_size=8, lr=3e-3, checkpoint_interval=30, sample_interval=30)
    result = train(cfg, image_folder, tmp_path / "ck", tmp_path / "out", progress=False)
    losses = [m["loss"] for m in read_metrics(tmp_path / "out")]
    assert len(losses) == 6 and losses[-1] < 0.75 * losses[0]
    for step in (30, 60):
        assert checkpoint.train_path(tmp_path / "ck", step).is_file()
        assert checkpoint.ema_path(tmp_path / "ck", step).is_file()
        assert (tmp_path / "out" / "samples" / f"step_{step:07d}.png").is_file()
    assert result.step == 60 and "done: 60 steps" in (tmp_path / "out" / "training.log").read_text()
    first = read_metrics(tmp_path / "out")[0]
    assert set(first) >= {"step", "loss", "lr", "grad_norm", "img_per_s"}


def test_checkpoints_load_with_weights_only_and_hold_the_full_state(image_folder, tmp_path):
    train(tiny_config(steps=2), image_folder, tmp_path / "ck", tmp_path / "out", progress=False)
    full = torch.load(checkpoint.train_path(tmp_path / "ck", 2), weights_only=True)
    assert set(full) >= {"model", "ema", "optimizer", "scheduler", "step", "data_position", "rng", "config"}
    assert full["step"] == 2 and full["data_position"] == 2 * 4
    assert full["config"]["model"]["class_names"][12] == "Other"
    ema = torch.load(checkpoint.ema_path(tmp_path / "ck", 2), weights_only=True)
    assert set(ema) == {"format", "step", "model", "config", "data", checkpoint.CHECKSUM}
    assert ema.pop(checkpoint.CHECKSUM) == checkpoint.content_sha256(ema)
    assert ema["data"] == {
        "source": "image-folder",
        "name": f"an image folder ({image_folder.name})",
        "url": None,
        "folder": image_folder.name,
    }
    assert all(torch.equal(ema["model"][k], full["ema"]["model"][k]) for k in ema["model"])


@pytest.mark.parametrize("accumulation, augmentation", [(1, "basic"), (2, "full")])
def test_resume_continues_bitwise(image_folder, tmp_path, accumulation, augmentation):
    cfg = tiny_config(steps=8, checkpoint_interval=4, gradient_accumulation_steps=accumulation, augmentation_level=augmentation)
    train(cfg, image_folder, tmp_path / "a", tmp_path / "log_a", progress=False)
    state = checkpoint.load(checkpoint.train_path(tmp_path / "a", 4))
    resumed_cfg = tiny_config(
        steps=8, checkpoint_interval=4, gradient_accumulation_steps=accumulation, augmentation_level=augmentation
    )
    train(resumed_cfg, image_folder, tmp_path / "b", tmp_path / "log_b", resume=state, progress=False)
    a = checkpoint.load(checkpoint.train_path(tmp_path / "a", 8))
    b = checkpoint.load(checkpoint.train_path(tmp_path / "b", 8))
    for key in a["ema"]["model"]:
        assert torch.equal(a["ema"]["model"][key], b["ema"]["model"][key]), key
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["data_position"] == b["data_position"] == 8 * 4 * accumulation
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]
    # run b really started at step 4 (a fresh run would also reach these weights, deterministically)
    assert [m["step"] for m in read_metrics(tmp_path / "log_b")] == [6, 8]
    assert not checkpoint.train_path(tmp_path / "b", 4).exists()
    assert read_metrics(tmp_path / "log_a")[-1]["loss"] == read_metrics(tmp_path / "log_b")[-1]["loss"]


def test_a_new_lr_on_resume_takes_effect_from_the_first_resumed_step(image_folder, tmp_path):
    train(tiny_config(steps=4, checkpoint_interval=2, lr=1e-3), image_folder, tmp_path / "a", tmp_path / "log_a", progress=False)
    state = checkpoint.load(checkpoint.train_path(tmp_path / "a", 2))
    cfg = tiny_config(steps=4, log_interval=1, lr=1e-4)
    train(cfg, image_folder, tmp_path / "b", tmp_path / "log_b", resume=state, progress=False)
    logged = [m["lr"] for m in read_metrics(tmp_path / "log_b")]
    assert logged == pytest.approx([1e-4 * optim.lr_factor(s, cfg.train) for s in (2, 3)], rel=1e-6)
    resumed = checkpoint.load(checkpoint.train_path(tmp_path / "b", 4))
    assert resumed["scheduler"]["base_lrs"] == [1e-4]
    assert resumed["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-4 * optim.lr_factor(4, cfg.train))


def test_the_seed_decides_everything(image_folder, tmp_path):
    runs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        train(tiny_config(steps=2, seed=seed), image_folder, tmp_path / name, tmp_path / f"log_{name}", progress=False)
        runs[name] = checkpoint.load(checkpoint.train_path(tmp_path / name, 2))["model"]
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    assert not all(torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


def test_nan_loss_stops_with_the_last_good_checkpoint_intact(image_folder, tmp_path, monkeypatch):
    real_loss, calls = flow.loss, []

    def poisoned(*args, **kwargs):
        calls.append(1)
        value = real_loss(*args, **kwargs)
        return value * math.nan if len(calls) == 5 else value

    monkeypatch.setattr(flow, "loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"step 5.*dit_step_4\.pt"):
        cfg = tiny_config(steps=8, checkpoint_interval=2, precision="fp32")  # fp32: no probe calls the loss first
        train(cfg, image_folder, tmp_path / "ck", tmp_path / "out", progress=False)
    names = sorted(p.name for p in (tmp_path / "ck").iterdir() if not p.name.startswith("."))
    assert names == ["dit_step_2.pt", "dit_step_2_ema.pt", "dit_step_4.pt", "dit_step_4_ema.pt"]
    good = checkpoint.load(tmp_path / "ck" / "dit_step_4.pt")
    assert all(torch.isfinite(v).all() for v in good["model"].values())


def test_a_nonfinite_step_and_every_step_after_it_apply_no_update(image_folder, tmp_path, monkeypatch):
    """The host looks only every 4 steps; the NaN at step 5 must leave the weights and the EMA as
    step 4 left them through step 8, when the look stops the run."""
    real_loss, calls, made = flow.loss, [], {}

    def poisoned(*args, **kwargs):
        calls.append(1)
        value = real_loss(*args, **kwargs)
        return value * math.nan if len(calls) == 5 else value

    real_ema = loop.EMA

    def spy_ema(model, beta, sigma_rel):
        made["model"], made["ema"] = model, real_ema(model, beta, sigma_rel)
        return made["ema"]

    monkeypatch.setattr(flow, "loss", poisoned)
    monkeypatch.setattr(loop, "EMA", spy_ema)
    cfg = tiny_config(steps=8, checkpoint_interval=4, log_interval=4, precision="fp32")  # no probe calls the loss
    with pytest.raises(TrainingDiverged, match=r"step 5.*dit_step_4\.pt"):
        train(cfg, image_folder, tmp_path / "ck", tmp_path / "out", progress=False)
    assert len(calls) == 8  # steps 5-8 ran: nothing waited for the host
    saved = checkpoint.load(tmp_path / "ck" / "dit_step_4.pt")
    assert all(torch.equal(v, saved["model"][k]) for k, v in made["model"].state_dict().items())
    assert all(torch.equal(v, saved["ema"]["model"][k]) for k, v in made["ema"].model.state_dict().items())
    assert sorted(p.name for p in (tmp_path / "ck").iterdir() if not p.name.startswith(".")) == [
        "dit_step_4.pt",
        "dit_step_4_ema.pt",
    ]


def test_a_damaged_checkpoint_is_refused_by_name_and_resume_auto_takes_the_newest_good_one(image_folder, tmp_path, capsys):
    cfg = tiny_config(steps=4, checkpoint_interval=2)
    train(cfg, image_folder, tmp_path / "ck", tmp_path / "out", progress=False)
    newest = checkpoint.train_path(tmp_path / "ck", 4)
    state = torch.load(newest, weights_only=True)
    name = sorted(state["model"])[0]
    state["model"][name] = state["model"][name].clone()
    state["model"][name].view(-1)[0] += 1e-3  # one value changed, the stored checksum kept
    torch.save(state, newest)
    with pytest.raises(checkpoint.CheckpointError, match=r"dit_step_4\.pt is damaged"):
        checkpoint.load(newest)
    for broken, data in (("truncated", newest.read_bytes()[:1000]), ("foreign", b"not a checkpoint at all")):
        path = tmp_path / f"{broken}.pt"
        path.write_bytes(data)
        with pytest.raises(checkpoint.CheckpointError, match=re.escape(f"{broken}.pt is not a readable checkpoint")):
            checkpoint.load(path)
    path, resumed = checkpoint.load_latest(tmp_path / "ck", warn=print)
    assert path.name == "dit_step_2.pt" and resumed["step"] == 2
    assert "skipping dit_step_4.pt" in capsys.readouterr().out
    checkpoint.train_path(tmp_path / "ck", 2).write_bytes(b"")
    with pytest.raises(checkpoint.CheckpointError, match=r"no checkpoint .* loads"):
        checkpoint.load_latest(tmp_path / "ck", warn=print)


def test_one_writer_per_checkpoint_folder_and_a_killed_holder_blocks_nothing(image_folder, tmp_path):
    ck = tmp_path / "ck"
    code = (
        f"import time; from tinycats.checkpoint import RunLock; lock = RunLock({str(ck)!r}); lock.__enter__(); "
        "print('held', flush=True); time.sleep(120)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(checkpoint.CheckpointError, match=rf"is being written by tinycats train \(pid {holder.pid} on "):
            train(tiny_config(steps=2), image_folder, ck, tmp_path / "out", progress=False)
    finally:
        holder.kill()  # SIGKILL: no cleanup runs, the kernel drops the lock
        holder.wait()
    (ck / ".dit_step_2.pt.tmp-424242").write_bytes(b"half a checkpoint")  # what a killed writer leaves
    train(tiny_config(steps=2), image_folder, ck, tmp_path / "out", progress=False)
    assert not list(ck.glob(".*.tmp-*")) and (ck / "dit_step_2.pt").is_file()
    assert "removed 1 temporary file(s)" in (tmp_path / "out" / "training.log").read_text()


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "dit_step_1.pt"
    checkpoint.save_atomic({"format": checkpoint.EMA_FORMAT, "value": 1}, path)

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(CheckpointError, match=r"cannot write dit_step_1.pt in .*No space left on device.*needs about"):
        checkpoint.save_atomic({"format": checkpoint.EMA_FORMAT, "value": 2, "w": torch.zeros(250_000)}, path)
    monkeypatch.undo()
    assert checkpoint.load(path)["value"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["dit_step_1.pt"]


def test_load_rejects_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="not a readable checkpoint"):
        checkpoint.load(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(checkpoint.CheckpointError, match="not a tinycats checkpoint"):
        checkpoint.load(tmp_path / "foreign.pt")


def test_latest_picks_the_highest_step(tmp_path):
    for step in (5, 40, 100):
        checkpoint.train_path(tmp_path, step).write_bytes(b"")
        checkpoint.ema_path(tmp_path, step).write_bytes(b"")
    assert checkpoint.latest(tmp_path).name == "dit_step_100.pt"
    assert checkpoint.latest(tmp_path / "empty") is None


def test_logged_loss_is_the_mean_over_the_log_interval(image_folder, tmp_path):
    cfg = dict(steps=6, gradient_accumulation_steps=2, batch_size=4)
    train(tiny_config(log_interval=1, **cfg), image_folder, tmp_path / "a", tmp_path / "every", progress=False)
    train(tiny_config(log_interval=3, **cfg), image_folder, tmp_path / "b", tmp_path / "third", progress=False)
    per_step = [m["loss"] for m in read_metrics(tmp_path / "every")]
    per_three = [m["loss"] for m in read_metrics(tmp_path / "third")]
    assert per_three == pytest.approx([sum(per_step[:3]) / 3, sum(per_step[3:]) / 3], rel=1e-5)
    assert [m["step"] for m in read_metrics(tmp_path / "third")] == [3, 6]
