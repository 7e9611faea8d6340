"""The Modal app's definition, checked offline: nothing here contacts Modal."""

import importlib
import sys

import modal
import pytest

from tinycats.cli import build_parser


@pytest.fixture
def app_module(monkeypatch):
    """Import the app with App.function spied on, to see what it asks Modal for."""
    captured = {}
    real = modal.App.function

    def spy(self, **kwargs):
        captured.update(kwargs)
        return real(self, **kwargs)

    monkeypatch.setattr(modal.App, "function", spy)
    sys.modules.pop("tinycats.cloud.modal_app", None)
    module = importlib.import_module("tinycats.cloud.modal_app")
    return module, captured


def test_the_function_asks_for_a_gpu_the_volume_a_long_timeout_and_retries(app_module):
    module, asked = app_module
    assert asked["gpu"] == "H100"
    assert set(asked["volumes"]) == {"/vol"} and asked["volumes"]["/vol"] is module.volume
    assert asked["timeout"] == 24 * 3600
    assert isinstance(asked["retries"], modal.Retries) and module.RETRIES.max_retries >= 10
    assert module.app.name == "tinycats"


def test_the_image_carries_the_tested_versions_and_the_package(app_module):
    module, _ = app_module
    from pathlib import Path

    pins = dict(line.split("==") for line in Path("constraints.txt").read_text().splitlines() if "==" in line)
    for name, version in pins.items():
        assert f"{name}=={version}" in module.REQUIREMENTS
    assert isinstance(module.image, modal.Image)


def test_remote_arguments_are_valid_train_flags_with_paths_on_the_volume(app_module):
    module, _ = app_module
    flags = {"config": "high-accuracy", "steps": 400000, "lr": 5e-5, "warmup_steps": -1, "augmentation_level": ""}
    argv = module.remote_train_args("cats", "ha", flags)
    assert argv[:5] == ["/vol/data/cats", "--checkpoint-dir", "/vol/runs/ha/checkpoints", "--log-dir", "/vol/runs/ha/outputs"]
    assert "--warmup-steps" not in argv and "--augmentation-level" not in argv  # unset: the preset decides
    args = build_parser().parse_args(["train", *argv, "--resume", "auto"])
    assert args.steps == 400000 and args.lr == 5e-5 and args.config == "high-accuracy" and args.resume == "auto"


def test_final_checkpoint_is_the_highest_step(app_module):
    module, _ = app_module
    names = [f"runs/x/checkpoints/dit_step_{n}{s}.pt" for n in (50000, 400000, 100000) for s in ("", "_ema")]
    assert module.final_ema(names) == "runs/x/checkpoints/dit_step_400000_ema.pt"
