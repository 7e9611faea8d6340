"""A model file whose pickle would run code is refused by every command that loads one, and the
code never runs: each loader uses weights_only=True or safetensors."""

import dataclasses
import json
import shutil

import pytest
import torch

from tinycats import checkpoint
from tinycats.cli import main
from tinycats.hub import layout

from conftest import make_checkpoint, make_folder


class Payload:
    """Unpickling this calls open(marker, "w"): the marker file appearing means code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    marker = root / "code-ran"
    evil = root / "dit_step_9.pt"
    state = {"format": checkpoint.TRAIN_FORMAT, "step": 9, "model": {"w": torch.zeros(2)}, "extra": Payload(marker)}
    torch.save(state, evil)
    assert not marker.exists()
    (root / "auto").mkdir()
    shutil.copy(evil, root / "auto" / "dit_step_9.pt")
    good = make_checkpoint(root / "good_ema.pt")
    cfg = checkpoint.run_config(checkpoint.load(good))
    hub = root / "hub"
    hub.mkdir()
    shutil.copy(evil, hub / layout.WEIGHTS)  # a pickle under the safetensors name, beside a good config
    config = {**dataclasses.asdict(cfg.model), "sample": dataclasses.asdict(cfg.sample), "format": layout.HUB_FORMAT}
    (hub / layout.CONFIG).write_text(json.dumps(config))
    data = make_folder(root / "data", per_class=2)
    return {
        "root": root,
        "marker": marker,
        "evil": evil,
        "good": good,
        "data": data,
        "image": next((data / "train" / "Bengal").iterdir()),
    }


CASES = {
    "train --resume": ["train", "{data}", "--resume", "{evil}", "--checkpoint-dir", "{root}/ck1"],
    "train --resume auto": ["train", "{data}", "--resume", "auto", "--checkpoint-dir", "{root}/auto"],
    "sample": ["sample", "--checkpoint", "{evil}", "--output-dir", "{root}/s"],
    "sample a Hub folder": ["sample", "--checkpoint", "{root}/hub", "--output-dir", "{root}/s"],
    "evaluate --checkpoint": ["evaluate", "--checkpoint", "{evil}", "--real-dir", "{data}", "--report-path", "{root}/r.json"],
    "evaluate --classifier": [
        "evaluate", "--checkpoint", "{good}", "--real-dir", "{data}", "--classifier", "{evil}", "--report-path", "{root}/r.json",
    ],
    "evaluate --inception-weights": [
        "evaluate", "--checkpoint", "{good}", "--real-dir", "{data}", "--compute-fid", "--inception-weights", "{evil}",
        "--report-path", "{root}/r.json",
    ],
    "export-onnx": ["export-onnx", "--checkpoint", "{evil}", "--output", "{root}/g.onnx"],
    "benchmark": ["benchmark", "--model", "{evil}", "--num-runs", "1"],
    "classify": ["classify", "--checkpoint", "{evil}", "{image}"],
    "train-classifier --pretrained-weights": [
        "train-classifier", "{data}", "--backbone", "resnet18", "--pretrained-weights", "{evil}", "--output", "{root}/c.pt",
    ],
    "upload --generator": ["upload", "--generator", "{evil}", "--repo-id", "me/cats", "--dry-run", "{root}/staged"],
}  # fmt: skip


@pytest.mark.parametrize("argv", CASES.values(), ids=CASES.keys())
def test_a_pickle_that_runs_code_is_refused_and_never_runs(world, argv, capsys):
    filled = [arg.format(**world) for arg in argv]
    assert main(filled) != 0
    err = capsys.readouterr().err.strip().splitlines()
    warnings, errors = err[:-1], err[-1:]  # --resume auto names each file it passes over, then refuses
    assert errors[0].startswith("tinycats: error:") and all(line.startswith("warning: skipping") for line in warnings), err
    named = world["root"] / "hub" / layout.WEIGHTS if "hub" in " ".join(filled) else world["evil"].name
    assert str(named) in err[0]
    assert not world["marker"].exists()
