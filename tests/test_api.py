import pytest
import torch
from PIL import Image

import tinycats
from tinycats import checkpoint
from tinycats.errors import HubError
from tinycats.hub.stage import StageInputs, stage
from tinycats.training.loop import train

from conftest import tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from conftest import make_folder

    root = tmp_path_factory.mktemp("api")
    data = make_folder(root / "data")
    train(tiny_config(steps=3), data, root / "ck", root / "out", progress=False)
    return root / "ck"


def test_load_generator_reads_either_checkpoint_and_uses_the_ema_weights(trained):
    from_ema = tinycats.load_generator(checkpoint.ema_path(trained, 3), device="cpu")
    from_full = tinycats.load_generator(checkpoint.train_path(trained, 3), device="cpu")
    full = checkpoint.load(checkpoint.train_path(trained, 3))
    for name, value in from_full.state_dict().items():
        assert torch.equal(value, from_ema.state_dict()[name])
        assert torch.equal(value, full["ema"]["model"][name])
    assert not all(torch.equal(full["ema"]["model"][k], full["model"][k]) for k in full["model"])  # EMA != raw
    assert from_ema.config.class_names[3] == "Bombay" and from_ema.sample_config.steps == 4
    assert not from_ema.training


def test_generate_returns_pictures_of_the_requested_breeds(trained):
    model = tinycats.load_generator(checkpoint.ema_path(trained, 3), device="cpu")
    images = tinycats.generate(model, ["Siamese", "british shorthair", 12], num_steps=2, sampler="heun", seed=1)
    assert len(images) == 3 and all(isinstance(i, Image.Image) and i.size == (16, 16) for i in images)
    again = tinycats.generate(model, ["Siamese"], num_steps=2, sampler="heun", seed=1)
    assert again[0].tobytes() == images[0].tobytes()
    with pytest.raises(ValueError, match="unknown breed 'Tiger'"):
        tinycats.generate(model, ["Tiger"])
    with pytest.raises(ValueError, match="out of range"):
        tinycats.generate(model, [13])


def test_hub_folder_loads_the_same_network(trained, tmp_path):
    model = tinycats.load_generator(checkpoint.ema_path(trained, 3), device="cpu")
    stage(StageInputs(checkpoint.ema_path(trained, 3)), tmp_path / "hub")
    again = tinycats.load_generator(tmp_path / "hub", device="cpu")
    x, t, y = torch.randn(2, 3, 16, 16), torch.rand(2), torch.tensor([0, 13])
    assert torch.equal(again(x, t, y), model(x, t, y)) and again.sample_config == model.sample_config


def test_a_bare_save_pretrained_folder_is_refused_clearly(trained, tmp_path):
    tinycats.load_generator(checkpoint.ema_path(trained, 3), device="cpu").save_pretrained(tmp_path / "bare")
    with pytest.raises(HubError, match=r"is not a tinycats config.*--dry-run DIR"):
        tinycats.load_generator(tmp_path / "bare")
