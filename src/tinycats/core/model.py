"""TinyDiT: a class-conditional diffusion transformer (Peebles & Xie, "Scalable Diffusion Models
with Transformers", 2023), sized for cats.

What it keeps from DiT, each because a simpler choice fails: a fixed 2-D sin-cos position embedding
(without one, patches do not know where they are); adaLN-Zero conditioning with the modulation
and output layers initialised to zero (every block starts as the identity, so deep stacks train
from step one); a null label for classifier-free guidance. Attention goes through
`F.scaled_dot_product_attention`, which picks the fused kernel for the device.

The module is a `PyTorchModelHubMixin`, so `save_pretrained` / `from_pretrained` write and read the
Hub format (config.json + model.safetensors) with no extra code. This file deliberately does not
use `from __future__ import annotations`: the mixin reads the `config: ModelConfig` annotation at
run time to rebuild the dataclass from config.json.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from tinycats.breeds import null_index
from tinycats.config import ModelConfig
from tinycats.core import patches


def sincos_pos_embed(dim: int, grid: int) -> torch.Tensor:
    """[grid*grid, dim] fixed 2-D embedding: half the channels encode the row, half the column."""
    coords = np.arange(grid, dtype=np.float64)
    rows, cols = np.meshgrid(coords, coords, indexing="ij")

    def embed_1d(pos: np.ndarray, d: int) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2))
        angles = np.outer(pos.reshape(-1), omega)
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    emb = np.concatenate([embed_1d(rows, dim // 2), embed_1d(cols, dim // 2)], axis=1)
    return torch.from_numpy(emb).float()


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class TimestepEmbedder(nn.Module):
    """t in [0, 1] -> vector, through sinusoids of 1000·t (the frequency range DiT was tuned for)."""

    def __init__(self, hidden: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = 1000.0 * t.float()[:, None] * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ / √d) v over [N, heads, T, d].

    Through SDPA's fused kernel, except for bf16 on a CPU: there its flash-attention backward
    issues a few tiny GEMMs per block and took 43 % of a bf16 training step at 64 tokens, where two
    batched matmuls and a float32 softmax take about 9 % (docs/performance.md). fp32 keeps SDPA, so fp32
    runs compute as they always did."""
    if q.device.type != "cpu" or q.dtype != torch.bfloat16:
        return F.scaled_dot_product_attention(q, k, v)
    scores = (q @ k.transpose(-2, -1)).float() * q.shape[-1] ** -0.5
    return scores.softmax(-1).to(v.dtype) @ v


class Attention(nn.Module):
    """Multi-head self-attention; with `qk_norm`, queries and keys are RMS-normalised per head
    (learned scale) before the dot product, which bounds the attention logits however large the
    weights grow: SD3's and JiT's remedy for unstable training at high learning rates."""

    def __init__(self, hidden: int, heads: int, qk_norm: bool = False) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.q_norm = nn.RMSNorm(hidden // heads, eps=1e-6) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(hidden // heads, eps=1e-6) if qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = attention(self.q_norm(q), self.k_norm(k), v)
        return self.proj(out.transpose(1, 2).reshape(n, t, d))


class SwiGLU(nn.Module):
    """silu(x W₁) ⊙ (x W₂) W₃ (Shazeer 2020), with W₁ and W₂ as one matmul. `inner` is 2/3 of the
    GELU MLP's width, so parameters and FLOPs stay those of the MLP it replaces."""

    def __init__(self, hidden: int, inner: int) -> None:
        super().__init__()
        self.gate_up = nn.Linear(hidden, 2 * inner)
        self.down = nn.Linear(inner, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


def mlp(hidden: int, mlp_ratio: float, activation: str) -> nn.Module:
    inner = int(hidden * mlp_ratio)
    if activation == "swiglu":
        return SwiGLU(hidden, 2 * inner // 3)
    gelu = nn.GELU(approximate="tanh" if activation == "gelu-tanh" else "none")
    return nn.Sequential(nn.Linear(hidden, inner), gelu, nn.Linear(inner, hidden))


class DiTBlock(nn.Module):
    """Pre-norm transformer block whose norms are shifted, scaled and gated by the condition."""

    def __init__(self, hidden: int, heads: int, mlp_ratio: float, activation: str, qk_norm: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden, heads, qk_norm)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = mlp(hidden, mlp_ratio, activation)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate1.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift1, scale1))
        return x + gate2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift2, scale2))


class FinalLayer(nn.Module):
    def __init__(self, hidden: int, out_per_token: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, out_per_token)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm(x), shift, scale))


class TinyDiT(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="tinycats",
    tags=["diffusion", "flow-matching", "class-conditional", "cats"],
):
    """Maps (x_t, t, label) to the network output: the clean image for prediction "x", the
    velocity for "v" (see flow.py for what the sampler does with it)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c, p, d = config.in_channels, config.patch_size, config.hidden_size
        self.grid = config.image_size // p
        self.x_embed = patches.embedding(config.embed, c, p, d, config.embed_width)
        self.t_embed = TimestepEmbedder(d)
        # One row per class plus the null label used by classifier-free guidance.
        self.y_embed = nn.Embedding(null_index(config.class_names) + 1, d)
        self.register_buffer("pos_embed", sincos_pos_embed(d, self.grid)[None], persistent=False)
        block = (d, config.num_heads, config.mlp_ratio, config.activation, config.qk_norm)
        self.blocks = nn.ModuleList(DiTBlock(*block) for _ in range(config.depth))
        self.final = FinalLayer(d, p * p * patches.values_per_pixel(config.decoder, c, config.pixel_features))
        self.refine = patches.refinement(config.decoder, c, config.pixel_features)
        self._init_weights()

    @property
    def null_label(self) -> int:
        return null_index(self.config.class_names)

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:  # the bottleneck embedding's first layer has none
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.y_embed.weight, std=0.02)
        for layer in (self.t_embed.mlp[0], self.t_embed.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
        # adaLN-Zero: every block and the output start at zero, so the net starts as identity + 0.
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final.adaLN_modulation[-1].bias)
        if self.refine is None or isinstance(self.refine, nn.Conv2d):  # "pixel" zeroes its last convolution instead
            nn.init.zeros_(self.final.linear.weight)
            nn.init.zeros_(self.final.linear.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        h = patches.embed(self.x_embed, x, cfg.patch_size) + self.pos_embed
        c = self.t_embed(t) + self.y_embed(labels)
        for block in self.blocks:
            h = block(h, c)
        return patches.decode(self.final(h, c), self.refine, cfg.patch_size, cfg.image_size)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
