"""deepsim-fc6: the DeePSiM fc6 generator (Dosovitskiy & Brox 2016), used by every monkey evolution study since 2019.

A 4,096-d code (AlexNet fc6 space) goes through three fully connected layers and a stack of up-convolutions to a
256 x 256 BGR image around the ImageNet mean pixel; this module returns RGB in [0, 1]. Weights are the lab's
file (the Caffe model converted to a PyTorch state dict, as in the Ponce lab's ports); none ship with evostim.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from evostim.generators.base import GaussianPrior, GeneratorSpec
from evostim.generators.weights import FileWeights, load_state_dict_file

__all__ = ["SPEC", "DeepSimFc6"]

LATENT_DIM = 4096
# The Caffe model's output is BGR minus the ImageNet mean pixel; here in RGB order.
MEAN_PIXEL_RGB = (123.0, 117.0, 104.0)


def _up(in_channels: int, out_channels: int, kernel: int) -> nn.ConvTranspose2d:
    stride = 2 if kernel == 4 else 1  # 4x4 up-convolutions double the size, 3x3 ones keep it
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=kernel, stride=stride, padding=1)


class DeepSimFc6(nn.Module):
    """codes (B, 4096) -> images (B, 3, 256, 256), RGB in [0, 1]; layer names match the published ports."""

    def __init__(self) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for name in ("defc7", "defc6", "defc5"):
            layers[name] = nn.Linear(LATENT_DIM, LATENT_DIM)
            layers[f"relu_{name}"] = nn.LeakyReLU(0.3)
        layers["reshape"] = nn.Unflatten(1, (256, 4, 4))
        stack = [
            ("deconv5", 256, 256, 4), ("conv5_1", 256, 512, 3), ("deconv4", 512, 256, 4), ("conv4_1", 256, 256, 3),
            ("deconv3", 256, 128, 4), ("conv3_1", 128, 128, 3), ("deconv2", 128, 64, 4), ("deconv1", 64, 32, 4),
        ]  # fmt: skip
        for name, cin, cout, kernel in stack:  # 4 -> 8 -> 16 -> 32 -> 64 -> 128 -> 256 pixels
            layers[name] = _up(cin, cout, kernel)
            layers[f"relu_{name}"] = nn.LeakyReLU(0.3)
        layers["deconv0"] = _up(32, 3, 4)
        self.G = nn.Sequential(layers)
        self.register_buffer("mean_pixel", torch.tensor(MEAN_PIXEL_RGB).view(1, 3, 1, 1), persistent=False)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        bgr = self.G(codes)
        rgb = bgr.flip(1) + self.mean_pixel
        images: torch.Tensor = rgb.clamp(0.0, 255.0) / 255.0
        return images


def _file_key(key: str) -> str:
    """Keys as the ports save them: bare ("defc7.weight"), under "G.", or Caffe-converted ("defc7.1.weight")."""
    key = key.removeprefix("G.").replace(".1.", ".")
    return f"G.{key}"


def _build(device: torch.device, weights: Path | None) -> nn.Module:
    module = DeepSimFc6()
    if weights is None:
        raise ValueError("deepsim-fc6 needs a weights file")
    load_state_dict_file(module, weights, rename=_file_key, label="deepsim-fc6")
    return module.to(device)


SPEC = GeneratorSpec(
    name="deepsim-fc6",
    latent_dim=LATENT_DIM,
    image_size=256,
    licence="architecture: Dosovitskiy & Brox 2016 (DeePSiM); weights: the lab's own copy of the released model",
    description="DeePSiM fc6 up-convolutional generator, 4,096-d AlexNet-fc6 code, 256x256 RGB (lab weights)",
    build=_build,
    weights=FileWeights("deepsim-fc6.pt"),
    # Codes of norm 300, the norm evolutions use for fc6 codes (Wang & Ponce 2022's sphere).
    prior=GaussianPrior.with_norm(300.0, LATENT_DIM),
)
