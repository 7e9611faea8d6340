"""The Modal app's definition, checked offline: nothing here contacts Modal."""

import contextlib
import importlib
import importlib.metadata
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import modal
import pytest
from modal.cli.run import _get_click_command_for_local_entrypoint
from modal.file_pattern_matcher import FilePatternMatcher
from modal.mount import _MountedPythonModule

from tinycats.config import load_config
from tinycats.errors import DataError, TrainingDiverged, TrainingInterrupted
from tinycats.training import launch


def train_spec(tmp_path, checkpoint_dir: str) -> dict:
    return {"data_dir": str(tmp_path / "data"), "checkpoint_dir": checkpoint_dir, "log_dir": str(tmp_path / "out"),
            "config": "cpu-demo", "flags": {}}  # fmt: skip


@pytest.fixture
def app_module(monkeypatch):
    """Import the app with App.function and the Image builder spied on, to see what it asks Modal for."""
    asked, built = {}, []
    real_function, real_slim = modal.App.function, modal.Image.debian_slim

    def spy_function(self, **kwargs):
        asked.update(kwargs)
        return real_function(self, **kwargs)

    def spy_slim(**kwargs):
        built.append(("debian_slim", (), kwargs, image := real_slim(**kwargs)))
        return image

    def spy_method(name):
        real = getattr(modal.Image, name)

        def spy(self, *args, **kwargs):
            built.append((name, args, kwargs, image := real(self, *args, **kwargs)))
            return image

        return spy

    monkeypatch.setattr(modal.App, "function", spy_function)
    monkeypatch.setattr(modal.Image, "debian_slim", staticmethod(spy_slim))
    for name in ("pip_install", "add_local_python_source"):
        monkeypatch.setattr(modal.Image, name, spy_method(name))
    sys.modules.pop("tinycats.cloud.modal_app", None)
    module = importlib.import_module("tinycats.cloud.modal_app")
    return module, asked, built


class FakeVolume:
    """The part of modal.Volume that upload_data uses, kept in a dict of path -> bytes."""

    def __init__(self, files=None, fail_upload=False):
        self.files, self.log, self.fail_upload = dict(files or {}), [], fail_upload

    def read_file(self, path):
        if path not in self.files:
            raise FileNotFoundError(path)
        yield self.files[path]

    def remove_file(self, path, recursive=False):
        gone = [p for p in self.files if p == path or p.startswith(path + "/")]
        if not gone:
            raise FileNotFoundError(path)
        for p in gone:
            del self.files[p]
        self.log.append(("remove", path))

    @contextlib.contextmanager
    def batch_upload(self, force=False):
        yield self

    def put_directory(self, local, remote):
        for i, p in enumerate(sorted(Path(local).rglob("*"))):
            if self.fail_upload and i == 1:
                raise ConnectionError("interrupted")
            if p.is_file():
                self.files[f"{remote}/{p.relative_to(local).as_posix()}"] = p.read_bytes()
        self.log.append(("put_directory", remote))

    def put_file(self, fileobj, remote):
        self.files[remote] = fileobj.read()
        self.log.append(("put_file", remote))


def test_the_function_asks_for_a_gpu_the_volume_a_timeout_and_retries_within_modals_limits(app_module):
    module, asked, _ = app_module
    assert asked["gpu"] == "H100"
    assert set(asked["volumes"]) == {"/vol"} and asked["volumes"]["/vol"] is module.volume
    assert asked["timeout"] == 24 * 3600  # Modal's maximum per attempt
    assert asked["retries"] is module.RETRIES and module.RETRIES.max_retries == 10  # Modal's cap
    assert module.app.name == "tinycats"


def test_the_image_is_built_from_the_pinned_requirements_and_the_package_with_its_configs(app_module):
    module, _, built = app_module
    pins = dict(requirement.split("==") for requirement in module.REQUIREMENTS)
    main = {"torch", "torchvision", "numpy", "pillow", "pyyaml", "tqdm", "safetensors", "huggingface_hub", "tensorboard"}
    assert set(pins) == main
    assert all(importlib.metadata.version(name) == version for name, version in pins.items())  # the tested versions
    constraints = Path("constraints.txt").read_text().splitlines()
    assert all(f"{name}=={pins[name]}" in constraints for name in ("torch", "torchvision"))
    assert [step[:3] for step in built] == [
        ("debian_slim", (), {"python_version": module.PYTHON_VERSION}),
        ("pip_install", module.REQUIREMENTS, {}),
        ("add_local_python_source", (module.SOURCE,), {"ignore": module.SOURCE_IGNORE}),
    ]
    assert built[-1][3] is module.image and module.PYTHON_VERSION == "3.11"
    # What the client would mount for the package: the presets (YAML) too, but no byte code.
    ignore = FilePatternMatcher(*module.SOURCE_IGNORE)
    mounted = {str(remote) for _, remote in _MountedPythonModule(module.SOURCE, ignore=ignore).get_files_to_upload()}
    assert {"/root/tinycats/training/loop.py", "/root/tinycats/configs/high-accuracy.yaml"} <= mounted
    assert not any("__pycache__" in path for path in mounted)


def test_the_remote_spec_has_paths_on_the_volume_and_only_the_given_flags(app_module):
    module, _, _ = app_module
    flags = {"steps": 400000, "lr": 5e-5, "warmup_steps": None, "compile": False}
    spec = module.remote_spec("cats", "ha", "high-accuracy", flags)
    paths = (spec["data_dir"], spec["checkpoint_dir"], spec["log_dir"])
    assert paths == ("/vol/data/cats", "/vol/runs/ha/checkpoints", "/vol/runs/ha/outputs")
    assert spec["flags"] == {"steps": 400000, "lr": 5e-5, "compile": False}  # warm-up not given: the preset decides
    cfg = load_config(spec["config"], launch.overrides(spec["flags"]))
    assert (cfg.train.steps, cfg.train.lr, cfg.train.compile, cfg.train.warmup_steps) == (400000, 5e-5, False, 15000)


def test_the_entrypoint_takes_the_records_flags_and_passes_them_to_training(app_module, monkeypatch):
    module, _, _ = app_module
    record = "--config option-c --image-size 256 --model tinydit-256 --compile --ema-beta 0.9995 --seed 7 --resume none"
    cli = _get_click_command_for_local_entrypoint(module.app, module.main).make_context("main", record.split())
    calls = []
    remote = SimpleNamespace(remote=lambda spec, resume: calls.append((spec, resume)) or {"status": "done", "step": 0})
    monkeypatch.setattr(module, "train_remote", SimpleNamespace(with_options=lambda gpu: remote))
    monkeypatch.setattr(module, "upload_data", lambda local, name: None)
    monkeypatch.setattr(module, "_listing", lambda path: [])
    with pytest.raises(SystemExit, match="no checkpoint"):  # the fake run saved none
        module.main(**cli.params)
    ((spec, resume),) = calls
    assert spec["config"] == "option-c"
    assert spec["flags"] == {"image_size": 256, "model": "tinydit-256", "compile": True, "ema_beta": 0.9995, "seed": 7}
    assert resume == "none"  # and no --steps: the preset decides


def test_a_bad_setting_stops_before_a_gpu_starts(app_module, monkeypatch):
    module, _, _ = app_module
    monkeypatch.setattr(module, "train_remote", SimpleNamespace(with_options=lambda gpu: pytest.fail("a GPU was asked for")))
    with pytest.raises(SystemExit, match="invalid train setting augmentation_level"):
        module.main(augmentation_level="extreme")


def test_resume_none_or_a_path_needs_a_new_run_and_an_existing_file(app_module, monkeypatch):
    module, _, _ = app_module
    listing = {"runs/old/checkpoints": ["runs/old/checkpoints/dit_step_50000.pt"]}
    monkeypatch.setattr(module, "_listing", lambda path: listing.get(path, []))
    assert module.volume_resume("runs/old/checkpoints/dit_step_50000.pt", "new") == "/vol/runs/old/checkpoints/dit_step_50000.pt"
    assert module.volume_resume("/vol/runs/old/checkpoints/dit_step_50000.pt", "new").startswith("/vol/runs/old/")
    assert module.volume_resume("none", "new") == "none" and module.volume_resume("auto", "old") == "auto"
    with pytest.raises(SystemExit, match="already has checkpoints"):
        module.volume_resume("none", "old")
    with pytest.raises(SystemExit, match="no such file"):
        module.volume_resume("runs/old/checkpoints/dit_step_1.pt", "new")


@pytest.mark.filterwarnings("ignore:The train_remote function is executing locally")
@pytest.mark.parametrize("error", [TrainingDiverged("loss is nan at step 812"), DataError("classes differ")])
def test_a_diverged_run_or_bad_input_is_final_and_not_retried(app_module, monkeypatch, tmp_path, error):
    module, _, _ = app_module

    def diverge(*args, **kwargs):
        raise error

    monkeypatch.setattr("tinycats.training.loop.train", diverge)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    commits = []
    monkeypatch.setattr(module, "volume", SimpleNamespace(commit=lambda: commits.append(1)))
    run = train_spec(tmp_path, str(tmp_path / "ckpt"))
    outcome = module.train_remote.local(run, "auto")  # the remote function's own code, run here: it must not raise
    assert outcome == {"status": "failed", "error": f"{type(error).__name__}: {error}"} and commits
    remote = SimpleNamespace(remote=lambda argv, resume: outcome)
    monkeypatch.setattr(module, "train_remote", SimpleNamespace(with_options=lambda gpu: remote))
    monkeypatch.setattr(module, "upload_data", lambda local, name: None)
    with pytest.raises(SystemExit, match=r"^tinycats: error: training failed for good \(not retried\): "):
        module.main()


@pytest.mark.filterwarnings("ignore:The train_remote function is executing locally")
def test_a_bug_is_not_taken_for_bad_input_and_is_retried(app_module, monkeypatch, tmp_path):
    module, _, _ = app_module

    def bug(*args, **kwargs):
        raise ValueError("a programming error, not the user's")

    monkeypatch.setattr("tinycats.training.loop.train", bug)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr(module, "volume", SimpleNamespace(commit=lambda: None))
    run = train_spec(tmp_path, str(tmp_path / "ckpt"))
    with pytest.raises(ValueError, match="programming error"):  # raised, so Modal retries the container
        module.train_remote.local(run, "auto")


@pytest.mark.filterwarnings("ignore:The train_remote function is executing locally")
def test_a_container_without_its_gpu_is_retried_not_run_on_the_cpu(app_module, monkeypatch, tmp_path):
    module, _, _ = app_module
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr("tinycats.training.loop.train", lambda *a, **k: pytest.fail("trained without a GPU"))
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        module.train_remote.local([str(tmp_path / "data")], "auto")


def test_a_preemption_is_raised_so_modal_retries_and_every_retry_resumes_the_latest_checkpoint(app_module, monkeypatch, tmp_path):
    module, _, _ = app_module
    starts, loaded, latest = [], [], {}

    def preempted(cfg, data_dir, checkpoint_dir, log_dir, state, *rest, **options):
        starts.append(state)
        raise TrainingInterrupted(15, None)

    monkeypatch.setattr("tinycats.training.loop.train", preempted)
    monkeypatch.setattr(
        "tinycats.checkpoint.training_states", lambda directory: [latest[directory]] if directory in latest else []
    )
    monkeypatch.setattr("tinycats.checkpoint.load", lambda path: loaded.append(str(path)) or {"format": "ema"})  # then stops
    run = train_spec(tmp_path, "/vol/runs/new/checkpoints")
    with pytest.raises(TrainingInterrupted):
        module.train_on_volume(run, "none", commit=lambda: None)
    assert starts == [None] and loaded == []  # "none": a fresh start while the run has no checkpoint of its own
    module.train_on_volume(run, "/vol/runs/old/checkpoints/dit_step_50000.pt", commit=lambda: None)
    latest["/vol/runs/new/checkpoints"] = "/vol/runs/new/checkpoints/dit_step_60000.pt"
    module.train_on_volume(run, "/vol/runs/old/checkpoints/dit_step_50000.pt", commit=lambda: None)  # a retry
    assert loaded == ["/vol/runs/old/checkpoints/dit_step_50000.pt", "/vol/runs/new/checkpoints/dit_step_60000.pt"]


def test_upload_is_verified_by_a_manifest_written_last(app_module, monkeypatch, tmp_path):
    module, _, _ = app_module
    local = tmp_path / "cats"
    for name, data in {"Bengal/a.jpg": b"aa", "Sphynx/b.jpg": b"bbb"}.items():
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_bytes(data)
    fake = FakeVolume(fail_upload=True)
    monkeypatch.setattr(module, "volume", fake)
    with pytest.raises(ConnectionError):
        module.upload_data(local, "cats")
    assert "data/cats.manifest.json" not in fake.files  # interrupted: no manifest, so the next run uploads again
    fake.fail_upload = False
    module.upload_data(local, "cats")
    assert fake.log[-2:] == [("put_directory", "data/cats"), ("put_file", "data/cats.manifest.json")]
    assert json.loads(fake.files["data/cats.manifest.json"]) == {"Bengal/a.jpg": 2, "Sphynx/b.jpg": 3}
    fake.log.clear()
    module.upload_data(local, "cats")
    assert fake.log == []  # the same data: kept
    shutil.rmtree(local / "Sphynx")
    (local / "Bengal/a.jpg").write_bytes(b"changed")
    module.upload_data(local, "cats")
    assert fake.log[:2] == [("remove", "data/cats.manifest.json"), ("remove", "data/cats")]
    assert sorted(fake.files) == ["data/cats.manifest.json", "data/cats/Bengal/a.jpg"]  # the stale class is gone
    module.upload_data(tmp_path / "elsewhere" / "cats", "cats")  # no local copy: the volume's complete one is used
    with pytest.raises(SystemExit, match="does not exist"):
        module.upload_data(tmp_path / "dogs", "dogs")


def test_final_checkpoint_is_the_highest_step(app_module):
    module, _, _ = app_module
    names = [f"runs/x/checkpoints/dit_step_{n}{s}.pt" for n in (50000, 400000, 100000) for s in ("", "_ema")]
    assert module.final_ema(names) == "runs/x/checkpoints/dit_step_400000_ema.pt"
