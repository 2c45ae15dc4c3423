"""dcgan-faces: the embedded default, a 100-d DCGAN face generator shipped in the PyPI package gan-face-generate."""

from __future__ import annotations

import importlib.resources
import importlib.util
from pathlib import Path

import torch
from torch import nn

from evostim.generators.base import GeneratorSpec
from evostim.generators.errors import GeneratorWeightsMissing

__all__ = ["SPEC"]

LATENT_DIM = 100


class _UnitRange(nn.Module):
    """Wraps a tanh-output generator: codes (B, d) -> images (B, 3, H, W) in [0, 1]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        images: torch.Tensor = self.net(codes[:, :, None, None])
        return images.add(1.0).mul_(0.5)


def _build(device: torch.device, weights_path: Path | None) -> nn.Module:  # weights ship in the package
    if importlib.util.find_spec("gan_face_generate") is None:
        raise GeneratorWeightsMissing(
            "dcgan-faces needs the package gan-face-generate: pip install --no-deps gan-face-generate"
        )
    from gan_face_generate.models import Generator  # torch-only module of the package

    weights = importlib.resources.files("gan_face_generate") / "weights.tar"
    if not weights.is_file():
        raise GeneratorWeightsMissing(f"dcgan-faces weights not found at {weights}")
    with importlib.resources.as_file(weights) as path:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    net = Generator(ngpu=0, nc=3, nz=LATENT_DIM, ngf=64)
    net.load_state_dict(checkpoint["netG_state_dict"])
    return _UnitRange(net).to(device)


SPEC = GeneratorSpec(
    name="dcgan-faces",
    latent_dim=LATENT_DIM,
    image_size=64,
    typical_norm=float(LATENT_DIM) ** 0.5,  # codes are drawn from N(0, I_100)
    licence="code MIT (gan-face-generate); weights trained on DigiFace-1M: non-commercial research only",
    description="DCGAN trained on DigiFace-1M faces, 100-d N(0, I) latent, 64x64 RGB",
    build=_build,
)
