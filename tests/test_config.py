import pytest

from tinycats.config import MODEL_PRESETS, load_config, preset_names, resume_config
from tinycats.errors import ConfigError

# ADR-036's table: steps, batch, accumulation, lr, warm-up, augmentation, EMA, model, image size.
RECORD = {
    "current": (200_000, 256, 1, 1e-4, 10_000, "basic", 0.9999, "tinydit-128", 128),
    "high-accuracy": (400_000, 256, 2, 5e-5, 15_000, "full", 0.9999, "tinydit-128", 128),
    "option-a": (300_000, 256, 1, 1e-4, 10_000, "full", 0.9999, "tinydit-128", 128),
    "option-b": (500_000, 256, 2, 3e-5, 20_000, "full", 0.9999, "tinydit-128", 128),
    "option-c": (1_000_000, 256, 2, 2e-5, 25_000, "full", 0.9999, "tinydit-256", 256),
}


@pytest.mark.parametrize("name", sorted(RECORD))
def test_presets_reproduce_the_record(name):
    cfg = load_config(name)
    t = cfg.train
    got = (t.steps, t.batch_size, t.gradient_accumulation_steps, t.lr, t.warmup_steps, t.augmentation_level, t.ema_beta)
    assert (*got, cfg.model.preset, cfg.model.image_size) == RECORD[name]
    assert t.checkpoint_interval == 50_000


def test_every_preset_file_loads():
    assert set(RECORD) | {"cpu-demo"} <= set(preset_names())
    for name in preset_names():
        load_config(name)


def test_flags_override_the_file_and_model_presets_fill_the_architecture():
    cfg = load_config("high-accuracy", {"train": {"lr": 1e-3, "steps": None}, "model": {"preset": "tinydit-256"}})
    assert cfg.train.lr == 1e-3 and cfg.train.steps == 400_000  # None means "not given"
    assert cfg.model.hidden_size == MODEL_PRESETS["tinydit-256"]["hidden_size"] == 512


def test_unknown_settings_are_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  learning_rate: 0.1\n")
    with pytest.raises(ValueError, match="unknown train setting 'learning_rate'"):
        load_config(str(bad))
    with pytest.raises(ValueError, match="unknown model preset"):
        load_config(None, {"model": {"preset": "tinydit-huge"}})
    with pytest.raises(ValueError, match="invalid train setting augmentation_level"):
        load_config(None, {"train": {"augmentation_level": "extreme"}})


def test_resume_keeps_the_network_and_takes_new_train_settings():
    saved = load_config("cpu-demo").to_dict()
    cfg = resume_config(saved, {"train": {"steps": 5000}, "model": {"preset": None}})
    assert cfg.train.steps == 5000 and cfg.model.preset == "tinydit-xs-64"
    with pytest.raises(ValueError, match="cannot change model image_size"):
        resume_config(saved, {"model": {"image_size": 32}})


@pytest.mark.parametrize(
    "text, message",
    [
        ("train: {steps: 10\n", r"bad\.yaml is not readable YAML at line 2"),
        ("- steps\n- 10\n", "must be a YAML mapping with model/train/sample sections"),
        ("train: 10\n", "section 'train' must be a mapping of settings, not 10"),
        ("train:\n  steps: many\n", "train setting steps='many' must be an integer"),
        ("train:\n  lr: fast\n", "train setting lr='fast' must be a number"),
        ("train:\n  compile: 1\n", "train setting compile=1 must be true or false"),
        ("model:\n  class_names: Bengal\n", "model setting class_names='Bengal' must be a list"),
        ("train:\n  log_interval: 0\n", "log_interval=0: it must be >= 1"),
        ("train:\n  keep_every: 100\n", "keep_every=100: it must be >= 0, and given with keep_last"),
        ("train:\n  keep_last: 2\n  keep_every: 70\n  checkpoint_interval: 50\n", "not a multiple of checkpoint_interval 50"),
        ("model:\n  image_size: 30\n  patch_size: 4\n", "not a multiple of patch size 4: use e.g. 32"),
        ("sample:\n  steps: 0\n", "sampling steps must be >= 1"),
    ],
)
def test_a_broken_preset_file_is_one_error_naming_the_setting(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(str(path))
    assert "\n" not in str(caught.value)
