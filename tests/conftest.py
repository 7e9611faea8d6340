"""Fixtures built by the tests themselves: tiny image folders, tiny configs."""

from __future__ import annotations

from email.message import Message
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
from PIL import Image

from tinycats import checkpoint
from tinycats.config import RunConfig, load_config
from tinycats.core.model import TinyDiT

# Three classes with clearly different colours, so a few steps of training have something to learn.
COLOURS = {"Bengal": (220, 140, 40), "Bombay": (20, 20, 20), "Other": (60, 120, 220)}


def make_folder(root: Path, per_class: int = 6, size: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        folder = root / "train" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (size, size + 4, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{name}_{i}.png")
    return root


@pytest.fixture(autouse=True)
def machine_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets a cache folder of its own (what the precision probe keeps, downloads), and
    the processes it starts share it, as runs on one machine do."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "data")


def tiny_config(**train: object) -> RunConfig:
    settings = {"steps": 6, "batch_size": 4, "log_interval": 2, "lr": 1e-3, "ema_beta": 0.99, **train}
    return load_config(None, {"model": {"preset": "tinydit-test"}, "train": settings, "sample": {"steps": 4}})


RECOMMENDED = {"sampler": "heun", "steps": 3, "cfg_scale": 2.5, "guidance_interval": [0.1, 0.9]}


def make_checkpoint(path: Path, prediction: str = "x", **model: str) -> Path:
    """A tiny EMA checkpoint whose weights are random everywhere (a fresh TinyDiT's adaLN-Zero
    layers are zero, which would make every output the same), so outputs depend on x, t and label."""
    cfg = load_config(None, {"model": {"preset": "tinydit-test", "prediction": prediction, **model}, "sample": RECOMMENDED})
    torch.manual_seed(0)
    model = TinyDiT(cfg.model)
    for p in model.parameters():
        p.data.normal_(0, 0.1)
    state = {"format": checkpoint.EMA_FORMAT, "step": 7, "model": model.state_dict(), "config": cfg.to_dict()}
    return checkpoint.save_atomic(state, path)


class HubHandler(SimpleHTTPRequestHandler):
    """A loopback stand-in for the Hub's file server (tests/test_web.py, tests/test_space.py):
    /OWNER/REPO/resolve/REVISION/<file> from folders[REPO] with the Hub's CORS header; logs paths."""

    def __init__(self, *args, folders: dict[str, Path], seen: list[str], revision: str, **kwargs) -> None:
        self.folders, self.seen, self.revision = folders, seen, revision
        super().__init__(*args, directory=str(next(iter(folders.values()))), **kwargs)

    def translate_path(self, path: str) -> str:
        self.seen.append(path)
        parts = urlparse(path).path.split("/")
        repo = "/".join(parts[1:3])
        if repo not in self.folders or parts[3:5] != ["resolve", self.revision]:
            return "/nonexistent"
        self.directory = str(self.folders[repo])
        return super().translate_path("/" + "/".join(parts[5:]))

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def log_message(self, *args: object) -> None:
        return


def fake_metadata(links: dict[str, str]) -> Message:
    """Package metadata as importlib.metadata returns it, with pyproject.toml's [project.urls]."""
    message = Message()
    for label, url in links.items():
        message["Project-URL"] = f"{label}, {url}"
    return message


def declared_urls() -> dict[str, str]:
    """pyproject.toml's [project.urls]: what the installed metadata, the card and the page must say."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    return pyproject["project"].get("urls", {})
