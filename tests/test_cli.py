import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tinycats.cli import build_parser, main

# --no-compile: the default preset (cpu-demo) compiles, which costs more than these tiny runs (tests/test_precision.py
# trains compiled).
TINY = ["--model", "tinydit-test", "--batch-size", "4", "--log-interval", "1", "--lr", "1e-3", "--no-compile"]


def all_parsers(parser: argparse.ArgumentParser, path=()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from all_parsers(child, (*path, name))


def test_every_flag_of_every_command_is_explained(capsys):
    for path, parser in all_parsers(build_parser()):
        for action in parser._actions:
            if action.option_strings or action.dest not in ("command", "data_command"):
                assert action.help, f"tinycats {' '.join(path)}: {action.dest} has no help"
        with pytest.raises(SystemExit) as exit_info:
            main([*path, "--help"])
        assert exit_info.value.code == 0
        assert "usage: tinycats" in capsys.readouterr().out


def test_train_then_sample_through_the_cli(image_folder, tmp_path, capsys):
    args = [
        "train",
        str(image_folder),
        *TINY,
        "--steps",
        "4",
        "--checkpoint-dir",
        str(tmp_path / "ck"),
        "--log-dir",
        str(tmp_path / "out"),
    ]
    assert main(args) == 0
    ema = tmp_path / "ck" / "dit_step_4_ema.pt"
    assert ema.is_file()
    out = tmp_path / "samples"
    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(ema),
                "--breed",
                "siamese",
                "--breed",
                "Other",
                "--num-samples",
                "3",
                "--steps",
                "2",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (out / "Siamese").iterdir()) == ["Siamese_0.png", "Siamese_1.png", "Siamese_2.png"]
    assert (out / "grids" / "Other.png").is_file() and (out / "overview.png").is_file()
    assert "wrote 6 pictures of 2 breed(s)" in capsys.readouterr().out


def test_resume_refuses_ema_only_files_and_model_changes(image_folder, tmp_path, capsys):
    base = ["train", str(image_folder), *TINY, "--checkpoint-dir", str(tmp_path / "ck"), "--log-dir", str(tmp_path / "out")]
    assert main([*base, "--steps", "2"]) == 0
    assert main([*base, "--steps", "4", "--resume", str(tmp_path / "ck" / "dit_step_2_ema.pt")]) == 2
    assert "EMA weights only" in capsys.readouterr().err
    assert main([*base, "--steps", "4", "--resume", "auto", "--model", "tinydit-xs"]) == 2
    assert "cannot change model preset" in capsys.readouterr().err
    assert main([*base, "--steps", "4", "--resume", "auto"]) == 0
    assert (tmp_path / "ck" / "dit_step_4.pt").is_file()


def test_print_config_shows_flags_over_the_preset(capsys):
    assert main(["train", "data", "--config", "cpu-demo", "--lr", "5e-5", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["train"]["lr"] == 5e-5 and printed["model"]["preset"] == "tinydit-xs-64"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_a_checkpoint_and_stops_cleanly(image_folder, tmp_path, signum):
    ck = tmp_path / "ck"
    cmd = [
        sys.executable,
        "-m",
        "tinycats",
        "train",
        str(image_folder),
        *TINY,
        "--steps",
        "100000",
        "--checkpoint-dir",
        str(ck),
        "--log-dir",
        str(tmp_path / "out"),
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    for line in proc.stderr:  # wait until training is under way
        if line.startswith("step 3/") or time.time() > deadline:
            break
    proc.send_signal(signum)
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 128 + signum, rest
    saved = sorted(Path(ck).glob("dit_step_*.pt"))
    assert len(saved) == 2  # the full state and the EMA weights of the step it stopped at
    assert "stopped at step" in (tmp_path / "out" / "training.log").read_text()
    assert "--resume" in rest and "Traceback" not in rest
