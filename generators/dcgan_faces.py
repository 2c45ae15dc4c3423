"""dcgan-faces: the embedded default, a 100-d DCGAN face generator shipped in the PyPI package gan-face-generate."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from evostim.generators.base import GaussianPrior, GeneratorSpec
from evostim.generators.weights import PackageWeights

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


# The package's weights.tar; pinned because the checkpoint's layout is that release's.
WEIGHTS = PackageWeights(
    distribution="gan-face-generate", module="gan_face_generate", version="1.1.1", resource="weights.tar"
)


def _build(device: torch.device, weights: Path | None) -> nn.Module:
    if weights is None:
        raise ValueError("dcgan-faces needs the weights of the gan-face-generate package")
    from gan_face_generate.models import Generator  # torch-only module of the package (its __init__ is empty)

    checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    net = Generator(ngpu=0, nc=3, nz=LATENT_DIM, ngf=64)
    net.load_state_dict(checkpoint["netG_state_dict"])
    return _UnitRange(net).to(device)


SPEC = GeneratorSpec(
    name="dcgan-faces",
    latent_dim=LATENT_DIM,
    image_size=64,
    licence="code MIT (gan-face-generate); weights trained on DigiFace-1M: non-commercial research only",
    description="DCGAN trained on DigiFace-1M faces, 100-d N(0, I) latent, 64x64 RGB",
    build=_build,
    weights=WEIGHTS,
    prior=GaussianPrior(std=1.0),  # trained on codes from N(0, I_100): norm about 10
    # Half of cholesky-cma's evaluations or fewer at every noise level on held-out units, and higher at the full
    # budget (docs/sample_efficiency.md, round 13).
    default_optimizer="metric-cma",
)
