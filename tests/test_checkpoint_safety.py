"""A run's checkpoints under a full disk, a bounded disk budget and a change of data."""

import os
import resource
import shutil
import signal
import subprocess
import sys

import pytest
import yaml

from tinycats import checkpoint
from tinycats.cli import main
from tinycats.training.loop import train

from conftest import make_folder, tiny_config


def _files(folder):
    """Every file but the run lock (which names its latest holder), temp files included."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != checkpoint.RunLock.NAME}


def _config_file(tmp_path, **train):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(**train).to_dict()))
    return path


def test_a_checkpoint_that_does_not_fit_stops_the_run_and_leaves_the_others_as_they_were(image_folder, tmp_path):
    ck, out = tmp_path / "ck", tmp_path / "out"
    config = _config_file(tmp_path, steps=4, checkpoint_interval=2)
    base = [sys.executable, "-m", "tinycats", "train", str(image_folder), "--config", str(config), "--device", "cpu"]
    base += ["--checkpoint-dir", str(ck), "--log-dir", str(out), "--no-progress"]
    subprocess.run(base, check=True, capture_output=True)
    before = _files(ck)
    limit = (ck / "dit_step_4.pt").stat().st_size - 1000  # the EMA file fits, the full state does not

    def small_files():  # what a full disk looks like to one file: EFBIG past the limit
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    run = subprocess.run([*base, "--resume", "auto", "--steps", "6"], capture_output=True, text=True, preexec_fn=small_files)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("tinycats:")]
    assert len(errors) == 1, run.stderr
    assert f"cannot write dit_step_6.pt in {ck} (File too large): it needs about" in errors[0]
    assert "MB free there" in errors[0] and "untouched" in errors[0]
    assert _files(ck) == before  # no step-6 file of either kind, no temp file, the others byte-identical


def test_keep_last_bounds_the_checkpoints_and_keep_every_keeps_milestones(image_folder, tmp_path):
    ck = tmp_path / "ck"
    cfg = tiny_config(steps=10, checkpoint_interval=2, keep_last=2, keep_every=4)
    train(cfg, image_folder, ck, tmp_path / "out", progress=False)
    names = sorted(p.name for p in ck.glob("dit_step_*.pt"))
    assert names == sorted(f"dit_step_{s}{kind}.pt" for s in (4, 8, 10) for kind in ("", "_ema"))
    assert "removed dit_step_2.pt, dit_step_2_ema.pt (--keep-last 2)" in (tmp_path / "out" / "training.log").read_text()
    assert checkpoint.load_latest(ck)[0].name == "dit_step_10.pt"


def test_pruning_never_touches_other_files_and_keep_last_zero_keeps_all(tmp_path):
    for step in (1, 2, 3):
        for path in (checkpoint.train_path(tmp_path, step), checkpoint.ema_path(tmp_path, step)):
            path.write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "dit_step_9_backup.pt").write_text("mine too")
    assert checkpoint.prune(tmp_path, 0) == []
    removed = checkpoint.prune(tmp_path, 1)
    assert sorted(p.name for p in removed) == ["dit_step_1.pt", "dit_step_1_ema.pt", "dit_step_2.pt", "dit_step_2_ema.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dit_step_3.pt",
        "dit_step_3_ema.pt",
        "dit_step_9_backup.pt",
        "notes.txt",
    ]


@pytest.mark.parametrize(
    "change, expected, bombay",
    [
        (lambda data: (data / "train" / "Bombay" / "Bombay_0.png").unlink(), "Bombay 6 -> 5", 5),
        (lambda data: shutil.rmtree(data / "train" / "Bombay"), "Bombay 6 -> 0", 0),  # the class list stays Oxford's
        (
            lambda data: (data / "train" / "Other" / "Other_1.png").write_bytes(b"\x89PNG other"),
            "same counts, other files or sizes",
            6,
        ),
    ],
)
def test_resuming_on_other_data_is_refused_unless_allowed(tmp_path, capsys, change, expected, bombay):
    data = make_folder(tmp_path / "data")
    ck, out = tmp_path / "ck", tmp_path / "out"
    config = _config_file(tmp_path, steps=2, checkpoint_interval=2)
    argv = ["train", str(data), "--config", str(config), "--checkpoint-dir", str(ck), "--log-dir", str(out), "--no-progress"]
    assert main(argv) == 0
    change(data)
    before, log = _files(ck), (out / "training.log").read_text()
    capsys.readouterr()
    assert main([*argv, "--resume", "auto", "--steps", "4"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{data} is not the data the checkpoint was trained on ({expected}" in err[0]
    assert "--allow-data-change" in err[0]
    assert _files(ck) == before and (out / "training.log").read_text() == log
    assert main([*argv, "--resume", "auto", "--steps", "4", "--allow-data-change", "--skip-bad-images"]) == 0
    assert "not an exact resume" in (out / "training.log").read_text()
    assert checkpoint.load(ck / "dit_step_4.pt")["data_fingerprint"]["per_class"]["Bombay"] == bombay


def test_a_copy_of_the_data_elsewhere_still_resumes(image_folder, tmp_path):
    ck = tmp_path / "ck"
    train(tiny_config(steps=2), image_folder, ck, tmp_path / "out", progress=False)
    copy = shutil.copytree(image_folder, tmp_path / "moved" / "cats")
    os.utime(next((copy / "train" / "Other").iterdir()), (0, 0))  # times are not part of the fingerprint
    state = checkpoint.load(ck / "dit_step_2.pt")
    result = train(tiny_config(steps=4), copy, ck, tmp_path / "out", resume=state, progress=False)
    assert result.step == 4


def test_the_records_run_keeps_five_of_its_eight_checkpoints_with_keep_last_2_keep_every_100k(tmp_path):
    """docs/training.md's worked example: 400k steps, a checkpoint every 50k."""
    most = 0
    for step in range(50_000, 400_001, 50_000):
        for path in (checkpoint.train_path(tmp_path, step), checkpoint.ema_path(tmp_path, step)):
            path.write_bytes(b"x")
        most = max(most, len(list(tmp_path.glob("dit_step_*_ema.pt"))))
        checkpoint.prune(tmp_path, keep_last=2, keep_every=100_000)
    assert [checkpoint.step_of(p) for p in checkpoint.training_states(tmp_path)] == [400_000, 350_000, 300_000, 200_000, 100_000]
    assert most == 5  # pairs on disk at the fullest moment, just before a prune
