"""The patch embedding and decoder variants: how they start, what they see, that they learn, and
that a checkpoint from before they existed loads and computes exactly as it did."""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from tinycats.config import ModelConfig, load_config
from tinycats.core import patches
from tinycats.core.model import TinyDiT
from tinycats.training.loop import train

from conftest import tiny_config

FIXTURE = Path(__file__).parent / "fixtures" / "tinydit-test-linear-decoder.safetensors"


def model(**patches) -> TinyDiT:
    torch.manual_seed(0)
    return TinyDiT(load_config(None, {"model": {"preset": "tinydit-test", **patches}}).model)


def randomised(net: TinyDiT, keep_zero: tuple[str, ...] = ()) -> TinyDiT:
    for name, p in net.named_parameters():
        if not name.startswith(keep_zero):
            p.data.normal_(0, 0.1)
    return net


def probe(g: torch.Generator):
    return torch.randn(3, 3, 16, 16, generator=g), torch.rand(3, generator=g), torch.tensor([0, 5, 12])


def test_a_checkpoint_from_before_the_variants_loads_strictly_and_computes_the_same():
    with safe_open(FIXTURE, "pt") as f:
        config = json.loads(f.metadata()["config"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
    assert "embed" not in config and "decoder" not in config  # written by the code before them
    net = TinyDiT(ModelConfig(**config))
    net.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("probe.")}, strict=True)
    with torch.no_grad():
        out = net(tensors["probe.x"], tensors["probe.t"], tensors["probe.y"])
    # The fixture's output was computed on another processor, whose fp32 kernels round differently:
    # allow 8 ulps of the largest output (1.4e-6 of 2.2 measured between an EPYC and a Xeon), 20x
    # below what computing GELU's exact form instead of the tanh one changes here (4.7e-5).
    ulps = 8 * torch.finfo(torch.float32).eps * tensors["probe.out"].abs().max()
    assert torch.allclose(out, tensors["probe.out"], atol=float(ulps), rtol=0)


@pytest.mark.parametrize(
    "embed, decoder", [("linear", "linear"), ("conv", "conv"), ("linear", "pixel"), ("bottleneck", "linear")]
)
def test_every_variant_starts_at_zero_output(embed, decoder):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        assert model(embed=embed, decoder=decoder)(*probe(g)).abs().max() == 0  # adaLN-Zero's start


def test_the_conv_decoder_starts_as_the_linear_one():
    linear = randomised(model())
    conv = model(decoder="conv")
    missing, unexpected = conv.load_state_dict(linear.state_dict(), strict=False)
    assert sorted(missing) == ["refine.bias", "refine.weight"] and not unexpected  # the refinement stays at zero
    g = torch.Generator().manual_seed(1)
    x, t, y = probe(g)
    with torch.no_grad():
        assert torch.equal(conv(x, t, y), linear(x, t, y))


def test_the_conv_embedding_sees_across_patch_borders_and_the_linear_one_does_not():
    x = torch.randn(1, 3, 16, 16)
    nudged = x.clone()
    nudged[0, :, 0, 4] += 1.0  # the first pixel of the second patch (patch 4)
    for embed, sees in (("linear", False), ("conv", True)):
        layer = randomised(model(embed=embed)).x_embed
        change = (patches.embed(layer, nudged, 4) - patches.embed(layer, x, 4))[0, 0].abs().max()
        assert bool(change > 0) == sees  # token 0 is the first patch: only the overlapping kernel reaches pixel (0, 4)


def test_the_bottleneck_embedding_is_a_rank_limited_linear_map_of_each_patch():
    net = randomised(model(embed="bottleneck", embed_width=5))
    first, second = net.x_embed
    x = torch.randn(2, 3, 16, 16)
    rows = x.reshape(2, 3, 4, 4, 4, 4).permute(0, 2, 4, 3, 5, 1).reshape(2, 16, 48)  # patch (r, c), pixel (i, j, ch)
    expected = rows @ (second.weight @ first.weight).T + second.bias
    with torch.no_grad():
        assert torch.allclose(patches.embed(net.x_embed, x, 4), expected, atol=1e-5)
    assert first.bias is None and torch.linalg.matrix_rank(second.weight @ first.weight) == 5


def test_pixel_features_sets_the_pixel_decoders_width():
    net = model(decoder="pixel", pixel_features=8)
    assert net.final.linear.out_features == 4 * 4 * 8 and net.refine[0].in_channels == 8
    assert model(decoder="pixel").refine[0].in_channels == 16  # the default older pixel checkpoints were trained with


@pytest.mark.parametrize("embed, decoder", [("conv", "conv"), ("linear", "pixel"), ("bottleneck", "linear")])
def test_every_variant_learns(image_folder, tmp_path, embed, decoder):
    cfg = tiny_config(steps=40, log_interval=10, batch_size=8, lr=3e-3)
    cfg.model.embed, cfg.model.decoder = embed, decoder
    train(cfg, image_folder, tmp_path / "ck", tmp_path / "out", progress=False)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.7 * losses[0]


def test_unknown_variants_and_odd_patches_are_refused():
    with pytest.raises(ValueError, match="decoder must be one of linear, conv, pixel"):
        load_config(None, {"model": {"preset": "tinydit-test", "decoder": "fancy"}})
    with pytest.raises(ValueError, match="embed 'conv' needs an even patch size"):
        load_config(None, {"model": {"preset": "tinydit-test", "embed": "conv", "patch_size": 1}})
    with pytest.raises(ValueError, match="invalid model setting pixel_features: it must be >= 1"):
        load_config(None, {"model": {"preset": "tinydit-test", "decoder": "pixel", "pixel_features": 0}})
