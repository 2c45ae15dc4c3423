"""biggan-deep-256: class-conditional BigGAN-deep (Brock, Donahue & Simonyan 2019) at 256 x 256.

The code searched is the generator's 256-d conditioning vector: 128-d noise followed by a 128-d class embedding
(the embedding of an ImageNet class is a good starting code; evolving both halves reaches images between
classes). Batch-norm statistics are the precomputed ones for the truncation setting (default 0.7, as the
Ponce lab uses). Weights: the lab's `biggan-deep-256` state dict in the layout of the pytorch-pretrained-biggan
port (its TensorFlow Hub conversion); spectral-normalized layers are folded into plain weights on load.
A `biggan-deep-256.json` config beside the weights (the port's config.json) overrides the architecture below.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from evostim.generators.base import GaussianPrior, GeneratorSpec
from evostim.generators.weights import FileWeights, load_state_dict_file

__all__ = ["SPEC", "BigGanConfig", "BigGanDeep"]

TRUNCATION = 0.7
# (upsample, in, out) channel multipliers: two blocks per resolution, 4x4 -> 256x256.
DEEP_256_LAYERS = (
    (False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8), (True, 8, 8),
    (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1),
)  # fmt: skip


@dataclass(frozen=True)
class BigGanConfig:
    """Architecture of BigGAN-deep 256: (upsample, in, out) channel multipliers of the 12 residual blocks."""

    z_dim: int = 128
    channel_width: int = 128
    num_classes: int = 1000
    layers: tuple[tuple[bool, int, int], ...] = DEEP_256_LAYERS
    attention_layer_position: int = 8  # before the 9th block, at 64 x 64
    eps: float = 1e-4
    n_stats: int = 51  # batch-norm statistics precomputed for 51 truncations in [0, 1]

    @classmethod
    def from_file(cls, path: Path) -> BigGanConfig:
        raw = json.loads(path.read_text())
        return cls(
            z_dim=raw.get("z_dim", 128),
            channel_width=raw.get("channel_width", 128),
            num_classes=raw.get("num_classes", 1000),
            layers=tuple((bool(u), int(i), int(o)) for u, i, o in raw["layers"]),
            attention_layer_position=raw.get("attention_layer_position", 8),
            eps=raw.get("eps", 1e-4),
            n_stats=raw.get("n_stats", 51),
        )


class TruncatedBatchNorm(nn.Module):
    """Batch norm with statistics looked up (interpolated) for the truncation; class-conditional gain and bias."""

    running_means: torch.Tensor
    running_vars: torch.Tensor

    def __init__(self, channels: int, condition_dim: int | None, n_stats: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("running_means", torch.zeros(n_stats, channels))
        self.register_buffer("running_vars", torch.ones(n_stats, channels))
        self.conditional = condition_dim is not None
        if condition_dim is not None:
            self.scale = nn.Linear(condition_dim, channels, bias=False)
            self.offset = nn.Linear(condition_dim, channels, bias=False)
        else:
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))

    def statistics(self, truncation: float) -> tuple[torch.Tensor, torch.Tensor]:
        position = truncation * (self.running_means.shape[0] - 1)
        low = math.floor(position)
        high = min(low + 1, self.running_means.shape[0] - 1)
        fraction = position - low
        mean = self.running_means[low] * (1 - fraction) + self.running_means[high] * fraction
        var = self.running_vars[low] * (1 - fraction) + self.running_vars[high] * fraction
        return mean, var

    def forward(self, x: torch.Tensor, truncation: float, condition: torch.Tensor | None = None) -> torch.Tensor:
        mean, var = self.statistics(truncation)
        normalized = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + self.eps)
        if self.conditional and condition is not None:
            gain = 1 + self.scale(condition)[:, :, None, None]
            out: torch.Tensor = normalized * gain + self.offset(condition)[:, :, None, None]
        else:
            out = normalized * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return out


class SelfAttention(nn.Module):
    """Non-local block (SAGAN) with 2x2-pooled keys and values."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.snconv1x1_theta = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.snconv1x1_phi = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.snconv1x1_g = nn.Conv2d(channels, channels // 2, 1, bias=False)
        self.snconv1x1_o_conv = nn.Conv2d(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        queries = self.snconv1x1_theta(x).flatten(2)  # (B, C/8, HW)
        keys = F.max_pool2d(self.snconv1x1_phi(x), 2).flatten(2)  # (B, C/8, HW/4)
        values = F.max_pool2d(self.snconv1x1_g(x), 2).flatten(2)  # (B, C/2, HW/4)
        attention = torch.softmax(queries.transpose(1, 2) @ keys, dim=-1)  # (B, HW, HW/4)
        attended = (values @ attention.transpose(1, 2)).view(batch, channels // 2, height, width)
        out: torch.Tensor = x + self.gamma * self.snconv1x1_o_conv(attended)
        return out


class GenBlock(nn.Module):
    """Bottleneck residual block: BN-ReLU-1x1 (reduce 4x), [upsample], two BN-ReLU-3x3, BN-ReLU-1x1 (expand)."""

    def __init__(self, cin: int, cout: int, condition_dim: int, up_sample: bool, n_stats: int, eps: float) -> None:
        super().__init__()
        middle = cin // 4
        self.up_sample = up_sample
        self.bn_0 = TruncatedBatchNorm(cin, condition_dim, n_stats, eps)
        self.conv_0 = nn.Conv2d(cin, middle, 1)
        self.bn_1 = TruncatedBatchNorm(middle, condition_dim, n_stats, eps)
        self.conv_1 = nn.Conv2d(middle, middle, 3, padding=1)
        self.bn_2 = TruncatedBatchNorm(middle, condition_dim, n_stats, eps)
        self.conv_2 = nn.Conv2d(middle, middle, 3, padding=1)
        self.bn_3 = TruncatedBatchNorm(middle, condition_dim, n_stats, eps)
        self.conv_3 = nn.Conv2d(middle, cout, 1)
        self.drop_channels = cin != cout

    def forward(self, x: torch.Tensor, condition: torch.Tensor, truncation: float) -> torch.Tensor:
        h = self.conv_0(F.relu(self.bn_0(x, truncation, condition)))
        h = F.relu(self.bn_1(h, truncation, condition))
        if self.up_sample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv_1(h)
        h = self.conv_2(F.relu(self.bn_2(h, truncation, condition)))
        h = self.conv_3(F.relu(self.bn_3(h, truncation, condition)))
        skip = x[:, : x.shape[1] // 2] if self.drop_channels else x  # BigGAN-deep drops channels, no 1x1 conv
        if self.up_sample:
            skip = F.interpolate(skip, scale_factor=2, mode="nearest")
        out: torch.Tensor = h + skip
        return out


class Generator(nn.Module):
    def __init__(self, config: BigGanConfig) -> None:
        super().__init__()
        ch, condition_dim = config.channel_width, 2 * config.z_dim
        self.channel_width = ch
        self.gen_z = nn.Linear(condition_dim, 4 * 4 * 16 * ch)
        layers: list[nn.Module] = []
        for index, (up_sample, cin, cout) in enumerate(config.layers):
            if index == config.attention_layer_position:
                layers.append(SelfAttention(ch * cin))
            layers.append(GenBlock(ch * cin, ch * cout, condition_dim, up_sample, config.n_stats, config.eps))
        self.layers = nn.ModuleList(layers)
        self.bn = TruncatedBatchNorm(ch, None, config.n_stats, config.eps)
        self.conv_to_rgb = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, condition: torch.Tensor, truncation: float) -> torch.Tensor:
        # The TF-converted weights produce the first map in (B, H, W, C) order.
        x = self.gen_z(condition).view(-1, 4, 4, 16 * self.channel_width).permute(0, 3, 1, 2).contiguous()
        for layer in self.layers:
            x = layer(x, condition, truncation) if isinstance(layer, GenBlock) else layer(x)
        x = self.conv_to_rgb(F.relu(self.bn(x, truncation)))
        return torch.tanh(x[:, :3])


class BigGanDeep(nn.Module):
    """codes (B, 256) = [noise (128) | class embedding (128)] -> images (B, 3, 256, 256) in [0, 1]."""

    def __init__(self, config: BigGanConfig | None = None, truncation: float = TRUNCATION) -> None:
        super().__init__()
        config = config or BigGanConfig()
        if not 0 < truncation <= 1:
            raise ValueError(f"truncation must be in (0, 1], got {truncation}")
        self.truncation = truncation
        # one-hot class -> embedding: a code's second half is such an embedding; kept so the weights file loads whole
        self.embeddings = nn.Linear(config.num_classes, config.z_dim, bias=False)
        self.generator = Generator(config)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        images: torch.Tensor = (self.generator(codes, self.truncation) + 1) / 2
        return images


def fold_spectral_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each (weight_orig, weight_u, weight_v) triple by the normalized weight W / (u^T W v).

    The port saves torch's spectral_norm parametrization; at inference its u and v are fixed, so folding is exact.
    """
    folded = {}
    for key, value in state.items():
        if key.endswith("weight_orig"):
            prefix = key.removesuffix("weight_orig")  # "layer." (or "" for a bare layer)
            matrix = value.reshape(value.shape[0], -1)
            sigma = torch.dot(state[f"{prefix}weight_u"], matrix @ state[f"{prefix}weight_v"])
            folded[f"{prefix}weight"] = value / sigma
        elif not key.endswith(("weight_u", "weight_v")):
            folded[key] = value
    return folded


def _build(device: torch.device, weights: Path | None) -> nn.Module:
    if weights is None:
        raise ValueError("biggan-deep-256 needs a weights file")
    config_file = weights.with_suffix(".json")
    module = BigGanDeep(BigGanConfig.from_file(config_file) if config_file.is_file() else None)
    load_state_dict_file(module, weights, label="biggan-deep-256", transform=fold_spectral_norm)
    return module.to(device)


SPEC = GeneratorSpec(
    name="biggan-deep-256",
    latent_dim=256,
    image_size=256,
    licence="architecture: Brock et al. 2019 (BigGAN-deep); weights: DeepMind's release (Apache 2.0) via the lab",
    description="BigGAN-deep 256x256, code = 128-d noise + 128-d class embedding, truncation 0.7 (lab weights)",
    build=_build,
    weights=FileWeights("biggan-deep-256.pt"),
    # Noise from N(0, I_128) truncated at 0.7 has norm about 7; class embeddings have norm of a few units.
    prior=GaussianPrior.with_norm(8.0, 256),
)
