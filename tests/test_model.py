import math

import torch
import torch.nn.functional as F

from tinycats.config import MODEL_PRESETS, ModelConfig
from tinycats.core.model import Attention, TinyDiT, count_parameters, mlp, sincos_pos_embed
from tinycats.core.patches import patchify, unpatchify


def test_patchify_maps_each_patch_to_its_own_pixel_block():
    p, grid = 4, 3
    # Pixel (y, x) of channel c carries (patch index, c): every pixel of block (r, q) knows its patch.
    ys, xs = torch.meshgrid(torch.arange(p * grid), torch.arange(p * grid), indexing="ij")
    patch_id = (ys // p) * grid + (xs // p)
    images = torch.stack([patch_id * 10 + c for c in range(3)]).float()[None]
    tokens = patchify(images, p)
    assert tokens.shape == (1, grid * grid, p * p * 3)
    for k in range(grid * grid):
        values = tokens[0, k].reshape(p, p, 3)
        for c in range(3):
            assert torch.all(values[..., c] == k * 10 + c)


def test_unpatchify_is_the_exact_inverse():
    x = torch.randn(2, 3, 16, 24)
    assert torch.equal(unpatchify(patchify(x, 4), 4, 3, 16, 24), x)
    tokens = torch.randn(2, 12, 48)
    assert torch.equal(patchify(unpatchify(tokens, 4, 3, 12, 16), 4), tokens)


def test_pos_embed_matches_the_formula_and_separates_positions():
    dim, grid = 16, 4
    emb = sincos_pos_embed(dim, grid)
    row, col = 2, 3
    k = row * grid + col
    quarter = dim // 4
    omega = [1 / 10000 ** (i / quarter) for i in range(quarter)]
    expected = [math.sin(row * w) for w in omega] + [math.cos(row * w) for w in omega]
    expected += [math.sin(col * w) for w in omega] + [math.cos(col * w) for w in omega]
    assert torch.allclose(emb[k], torch.tensor(expected), atol=1e-6)
    distances = torch.cdist(emb, emb) + torch.eye(grid * grid) * 1e3
    assert distances.min() > 0.1  # no two positions share an embedding


def test_adaln_zero_blocks_start_as_identity_and_output_starts_at_zero():
    model = TinyDiT(ModelConfig(**MODEL_PRESETS["tinydit-test"]))
    x, t, y = torch.randn(3, 3, 16, 16), torch.rand(3), torch.tensor([0, 5, 13])
    assert torch.equal(model(x, t, y), torch.zeros_like(x))
    h, c = torch.randn(3, 16, 32), torch.randn(3, 32)
    for block in model.blocks:
        assert torch.equal(block(h, c), h)
    assert model.y_embed.num_embeddings == 14 and model.null_label == 13


def test_fused_attention_equals_the_textbook_formula():
    torch.manual_seed(0)
    attn = Attention(32, 4)
    x = torch.randn(2, 9, 32)
    q, k, v = attn.qkv(x).reshape(2, 9, 3, 4, 8).permute(2, 0, 3, 1, 4)
    weights = F.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), dim=-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(2, 9, 32))
    assert torch.allclose(attn(x), expected, atol=1e-5)


def test_qk_norm_attention_is_the_formula_with_rms_normalised_queries_and_keys():
    torch.manual_seed(0)
    attn = Attention(32, 4, qk_norm=True)
    for norm in (attn.q_norm, attn.k_norm):
        norm.weight.data.uniform_(0.5, 2.0)
    x = torch.randn(2, 9, 32) * 5
    q, k, v = attn.qkv(x).reshape(2, 9, 3, 4, 8).permute(2, 0, 3, 1, 4)

    def rms(a: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return a / a.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt() * weight

    q, k = rms(q, attn.q_norm.weight), rms(k, attn.k_norm.weight)
    weights = F.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), dim=-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(2, 9, 32))
    assert torch.allclose(attn(x), expected, atol=1e-5)
    assert not torch.allclose(Attention(32, 4)(x), expected, atol=1e-2)  # the norm changes the result


def test_swiglu_is_the_formula_at_the_gelu_mlps_size():
    torch.manual_seed(0)
    gelu, swiglu = mlp(96, 4.0, "gelu"), mlp(96, 4.0, "swiglu")
    assert swiglu.down.in_features == 256  # 2/3 of 384
    assert abs(count_parameters(swiglu) - count_parameters(gelu)) < 0.01 * count_parameters(gelu)
    x = torch.randn(5, 96)
    w, bias = swiglu.gate_up.weight, swiglu.gate_up.bias
    a, b = x @ w[:256].T + bias[:256], x @ w[256:].T + bias[256:]
    expected = (a * torch.sigmoid(a) * b) @ swiglu.down.weight.T + swiglu.down.bias
    assert torch.allclose(swiglu(x), expected, atol=1e-5)


def test_the_block_options_add_no_weights_when_off():
    """Checkpoints from before qk_norm and swiglu hold exactly the weights a model without them has."""
    plain = TinyDiT(ModelConfig(**MODEL_PRESETS["tinydit-test"]))
    keys = set(plain.state_dict())
    assert not any("norm" in k and "attn" in k for k in keys)
    both = TinyDiT(ModelConfig(**{**MODEL_PRESETS["tinydit-test"], "activation": "swiglu", "qk_norm": True})).state_dict()
    assert {k for k in both if ".attn.q_norm." in k or ".attn.k_norm." in k} and "blocks.0.mlp.gate_up.weight" in both


def test_record_architecture_size():
    model = TinyDiT(ModelConfig(**MODEL_PRESETS["tinydit-128"]))
    assert 32e6 < count_parameters(model) < 34e6  # the record's "about 33M"
    assert model.grid == 8  # 64 tokens of 16x16 pixels


def test_class_list_sets_the_label_table():
    model = TinyDiT(ModelConfig(**MODEL_PRESETS["tinydit-test"], class_names=["a", "b"]))
    assert model.null_label == 2 and model.y_embed.num_embeddings == 3


def test_hub_format_round_trip(tmp_path):
    torch.manual_seed(0)
    model = TinyDiT(ModelConfig(**MODEL_PRESETS["tinydit-test"], prediction="v"))
    for p in model.parameters():
        p.data.normal_()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").is_file() and (tmp_path / "model.safetensors").is_file()
    loaded = TinyDiT.from_pretrained(tmp_path)
    assert isinstance(loaded.config, ModelConfig) and loaded.config == model.config
    x, t, y = torch.randn(2, 3, 16, 16), torch.rand(2), torch.tensor([1, 13])
    assert torch.equal(loaded(x, t, y), model(x, t, y))
