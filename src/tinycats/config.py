"""Settings as dataclasses, and the presets in configs/*.yaml that fill them.

A run is described by three sections: `model` (the network and its prediction target), `train`
(optimisation and logging) and `sample` (the sampler the model recommends). A preset YAML file
names any of their fields; command-line flags override the file; the resolved settings are stored
in every checkpoint, so a checkpoint alone says how it was made and how to sample from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tinycats.breeds import CLASS_NAMES
from tinycats.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# The allowed values of the settings that have a fixed set: the CLI's choices are these.
PREDICTIONS = ("x", "v")
AUGMENTATION_LEVELS = ("none", "basic", "full")
TIME_SAMPLINGS = ("logit-normal", "uniform")
LR_SCHEDULES = ("cosine", "constant")
PRECISIONS = ("auto", "fp32", "bf16")
SAMPLERS = ("euler", "heun")  # core/solvers.py implements one solver per name
EMBEDS = ("linear", "conv", "bottleneck")  # core/patches.py: how pixels become tokens
DECODERS = ("linear", "conv", "pixel")  # ... and tokens pixels
# The MLP's: DiT's tanh-approximate GELU, the exact (erf) GELU, or SwiGLU (LLaMA's, LightningDiT's) at 2/3 the width.
ACTIVATIONS = ("gelu-tanh", "gelu", "swiglu")

# Architecture presets. tinydit-128 is the record's network (DiT-S/16 at 128 px, 64 tokens).
# Every preset uses the exact GELU: on the AMX Xeon it costs a quarter of the tanh form's time
# (docs/performance.md); a checkpoint that names no activation is DiT's tanh form, as it was trained.
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "tinydit-128": dict(image_size=128, patch_size=16, hidden_size=384, depth=12, num_heads=6, activation="gelu"),
    "tinydit-256": dict(image_size=256, patch_size=16, hidden_size=512, depth=12, num_heads=8, activation="gelu"),
    # CPU sizes: 64 tokens like the record's network, at 32 px.
    "tinydit-s": dict(image_size=32, patch_size=4, hidden_size=192, depth=6, num_heads=3, activation="gelu"),
    "tinydit-xs": dict(image_size=32, patch_size=4, hidden_size=96, depth=4, num_heads=3, activation="gelu"),
    # The same network at 64 px / patch 8 (still 64 tokens): the demo's (configs/cpu-demo.yaml).
    "tinydit-xs-64": dict(image_size=64, patch_size=8, hidden_size=96, depth=4, num_heads=3, activation="gelu"),
    # For tests: two blocks, 16 tokens.
    "tinydit-test": dict(image_size=16, patch_size=4, hidden_size=32, depth=2, num_heads=2, activation="gelu"),
}


@dataclass
class ModelConfig:
    """The network. `class_names` travels with the weights; the null label is len(class_names)."""

    preset: str = "tinydit-s"
    image_size: int = 32
    in_channels: int = 3
    patch_size: int = 4
    hidden_size: int = 192
    depth: int = 6
    num_heads: int = 3
    mlp_ratio: float = 4.0
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    prediction: str = "x"  # "x": the network predicts the clean image (JiT); "v": the velocity
    t_eps: float = 0.05  # floor of (1 - t) when turning an x-prediction into a velocity
    embed: str = "linear"  # patch embedding (core/patches.py); a checkpoint without the field means "linear"
    decoder: str = "linear"  # patch decoder; likewise
    embed_width: int = 32  # inner width of the "bottleneck" embedding
    pixel_features: int = 16  # features per pixel of the "pixel" decoder (K)
    activation: str = "gelu-tanh"  # the MLP's; a checkpoint without the field means DiT's "gelu-tanh"
    time_shift: float = 1.0  # SD3's α for training times and sampling grids (core/solvers.py); 1 = none
    qk_norm: bool = False  # RMSNorm on each head's queries and keys (SD3, JiT); without the field: none

    def __post_init__(self) -> None:
        sizes = ("image_size", "patch_size", "hidden_size", "depth", "num_heads", "embed_width", "pixel_features")
        small = [name for name in sizes if getattr(self, name) < 1]
        if not self.time_shift > 0:
            raise ConfigError(f"invalid model setting time_shift={self.time_shift!r}: it must be > 0 (1 = no shift)")
        if small or not self.class_names:
            raise ConfigError(f"invalid model setting {small[0] if small else 'class_names'}: it must be >= 1")
        for name, allowed in (("embed", EMBEDS), ("decoder", DECODERS), ("activation", ACTIVATIONS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"model setting {name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if self.embed == "conv" and self.patch_size % 2:
            raise ConfigError(f"embed 'conv' needs an even patch size, not {self.patch_size}")
        if self.prediction not in PREDICTIONS:
            raise ConfigError(f"prediction must be 'x' or 'v', not {self.prediction!r}")
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"image size {self.image_size} is not a multiple of patch size {self.patch_size}: "
                f"use e.g. {max(1, round(self.image_size / self.patch_size)) * self.patch_size}"
            )
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"width {self.hidden_size} is not divisible by {self.num_heads} heads")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass
class TrainConfig:
    """Optimisation, data and logging. `batch_size` is global: summed over all processes."""

    steps: int = 1000
    batch_size: int = 64
    gradient_accumulation_steps: int = 1
    lr: float = 1e-4
    warmup_steps: int = 0
    lr_schedule: str = "cosine"  # "cosine" decays to min_lr_ratio * lr at the last step
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    augmentation_level: str = "basic"
    ema_beta: float = 0.9999
    ema_sigma_rel: float = 0.0  # > 0: EDM2's power-function EMA of this relative width instead of ema_beta
    label_dropout: float = 0.1
    time_sampling: str = "logit-normal"  # or "uniform"
    logit_mean: float = -0.8
    logit_std: float = 0.8
    checkpoint_interval: int = 0  # 0: only at the end
    keep_last: int = 0  # keep only the newest K checkpoints (0: all); does not change the training
    keep_every: int = 0  # ...and also every step that is a multiple of this (milestones)
    sample_interval: int = 0  # 0: only at the end
    log_interval: int = 10
    seed: int = 0
    precision: str = "auto"  # "auto": bf16 on CUDA, on a CPU what training/precision.py measures faster; or "fp32" / "bf16"
    compile: bool = False
    skip_bad_images: bool = False

    def __post_init__(self) -> None:
        self.adam_betas = tuple(self.adam_betas)  # YAML gives a list
        rules = {  # setting: (holds, what it must be)
            "steps": (self.steps >= 1, ">= 1"),
            "batch_size": (self.batch_size >= 1, ">= 1"),
            "gradient_accumulation_steps": (self.gradient_accumulation_steps >= 1, ">= 1"),
            "lr": (self.lr > 0, "> 0"),
            "warmup_steps": (self.warmup_steps >= 0, ">= 0"),
            "min_lr_ratio": (0 <= self.min_lr_ratio <= 1, "in [0, 1]"),
            "weight_decay": (self.weight_decay >= 0, ">= 0"),
            "grad_clip": (self.grad_clip > 0, "> 0"),
            "ema_beta": (0 <= self.ema_beta < 1, "in [0, 1), e.g. 0.9999"),
            "ema_sigma_rel": (0 <= self.ema_sigma_rel < 12**-0.5, "0 (off) or in (0, 0.288), e.g. 0.1 (EDM2's range: 0.05-0.15)"),
            "label_dropout": (0 <= self.label_dropout < 1, "in [0, 1)"),
            "augmentation_level": (self.augmentation_level in AUGMENTATION_LEVELS, f"one of {', '.join(AUGMENTATION_LEVELS)}"),
            "time_sampling": (self.time_sampling in TIME_SAMPLINGS, f"one of {', '.join(TIME_SAMPLINGS)}"),
            "logit_std": (self.logit_std > 0, "> 0"),
            "lr_schedule": (self.lr_schedule in LR_SCHEDULES, f"one of {', '.join(LR_SCHEDULES)}"),
            "precision": (self.precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
            "checkpoint_interval": (self.checkpoint_interval >= 0, ">= 0 (0: only at the end)"),
            "sample_interval": (self.sample_interval >= 0, ">= 0 (0: only at the end)"),
            "log_interval": (self.log_interval >= 1, ">= 1"),
            "keep_last": (self.keep_last >= 0, ">= 0 (0: keep every checkpoint)"),
            "keep_every": (
                self.keep_every >= 0 and (not self.keep_every or self.keep_last > 0),
                ">= 0, and given with keep_last (without it every checkpoint is kept anyway)",
            ),
        }
        bad = [name for name, (holds, _) in rules.items() if not holds]
        if bad:
            raise ConfigError(f"invalid train setting {bad[0]}={getattr(self, bad[0])!r}: it must be {rules[bad[0]][1]}")
        if self.keep_every and self.checkpoint_interval and self.keep_every % self.checkpoint_interval:
            raise ConfigError(
                f"keep_every {self.keep_every} is not a multiple of checkpoint_interval {self.checkpoint_interval}: "
                "no milestone would ever be saved"
            )


@dataclass
class SampleConfig:
    """The sampler a model recommends; `tinycats sample` flags override it."""

    sampler: str = "euler"
    steps: int = 25
    cfg_scale: float = 2.0
    guidance_interval: tuple[float, float] = (0.0, 1.0)  # guide only while lo <= t <= hi

    def __post_init__(self) -> None:
        self.guidance_interval = tuple(self.guidance_interval)
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {', '.join(SAMPLERS)}, not {self.sampler!r}")
        if self.steps < 1:
            raise ConfigError(f"sampling steps must be >= 1, not {self.steps}")

    def override(self, **changes: Any) -> SampleConfig:
        """These settings with every change that is not None applied: how a flag or argument
        overrides the sampler a model recommends (unset ones keep the recommendation)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists/dicts/numbers only, so checkpoints load with weights_only=True."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), dict) for k in ("model", "train", "sample")):
            raise ConfigError("settings must have model, train and sample sections")
        return cls(
            model=_build(ModelConfig, raw["model"]),
            train=_build(TrainConfig, raw["train"]),
            sample=_build(SampleConfig, raw["sample"]),
        )


def preset_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def load_config(name_or_path: str | None, overrides: dict[str, dict[str, Any]] | None = None) -> RunConfig:
    """Resolve a preset (a name in configs/ or a YAML path), then apply `overrides` per section.

    Overrides of `model` may name a different `preset`; its architecture then replaces the file's.
    """
    raw: dict[str, dict[str, Any]] = {"model": {}, "train": {}, "sample": {}}
    if name_or_path:
        source = _find_config(name_or_path)
        loaded = _read_yaml(source)
        unknown = set(loaded) - set(raw)
        if unknown:
            raise ConfigError(f"{source}: unknown section {sorted(unknown)[0]!r}; use model/train/sample")
        for section, values in loaded.items():
            if not isinstance(values or {}, dict):
                raise ConfigError(f"{source}: section {section!r} must be a mapping of settings, not {values!r}")
            raw[section].update(values or {})
    for section, values in (overrides or {}).items():
        raw[section].update({k: v for k, v in values.items() if v is not None})
    model_raw = dict(raw["model"])
    preset = model_raw.pop("preset", ModelConfig.preset)
    if preset not in MODEL_PRESETS:
        raise ConfigError(f"unknown model preset {preset!r}; choose one of: {', '.join(MODEL_PRESETS)}")
    return RunConfig(
        model=_build(ModelConfig, {**MODEL_PRESETS[preset], "preset": preset, **model_raw}),
        train=_build(TrainConfig, raw["train"]),
        sample=_build(SampleConfig, raw["sample"]),
    )


def _find_config(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    named = CONFIG_DIR / f"{name_or_path}.yaml"
    if named.is_file():
        return named
    raise ConfigError(f"no config {name_or_path!r}: give a YAML file or one of: {', '.join(preset_names())}")


def _read_yaml(source: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(source.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"{source} is not readable YAML{at} ({type(exc).__name__}): fix the file") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{source} must be a YAML mapping with model/train/sample sections")
    return loaded


# What a setting's value may be, by the type of its default: YAML and JSON give ints for floats
# and lists for tuples.
_ACCEPTS = {
    bool: ((bool,), "true or false"),
    int: ((int,), "an integer"),
    float: ((int, float), "a number"),
    str: ((str,), "text"),
    tuple: ((list, tuple), "a list"),
    list: ((list, tuple), "a list"),
}


def _build(cls: type, values: dict[str, Any]) -> Any:
    """`cls(**values)`, refusing unknown names and values of the wrong kind by name."""
    section = cls.__name__.removesuffix("Config").lower()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {section} setting {unknown[0]!r}; known: {', '.join(sorted(fields))}")
    for name, value in values.items():
        f = fields[name]
        kind = type(f.default if f.default is not dataclasses.MISSING else f.default_factory())
        accepted, described = _ACCEPTS[kind]
        if not isinstance(value, accepted) or (isinstance(value, bool) and kind is not bool):
            raise ConfigError(f"{section} setting {name}={value!r} must be {described}")
    return cls(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def resume_config(saved: dict[str, Any], overrides: dict[str, dict[str, Any]]) -> RunConfig:
    """The config of a resumed run: the checkpoint's, with the given train/sample settings
    changed (e.g. more --steps). The network cannot change under a checkpoint's weights."""
    cfg = RunConfig.from_dict(saved)
    for key, value in overrides.get("model", {}).items():
        if value is not None and getattr(cfg.model, key) != value:
            raise ConfigError(f"cannot change model {key} ({getattr(cfg.model, key)!r} -> {value!r}) when resuming a checkpoint")
    for section in ("train", "sample"):
        current = asdict(getattr(cfg, section))
        current.update({k: v for k, v in overrides.get(section, {}).items() if v is not None})
        setattr(cfg, section, _build(type(getattr(cfg, section)), current))
    return cfg
