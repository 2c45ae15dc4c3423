"""What every generator declares, and the decode contract: codes (B, d) -> images (B, 3, H, W) in [0, 1]."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from evostim.generators.errors import BadLatentCodes, GeneratorWeightsMissing
from evostim.generators.inference import inference_copy
from evostim.generators.weights import FileWeights, WeightsSource

__all__ = ["HALF_PRECISION_TOLERANCE", "GaussianPrior", "GeneratorSpec", "ImageGenerator"]

# Largest pixel difference (0-255 scale) from fp32 that half-precision decoding may introduce.
HALF_PRECISION_TOLERANCE = 2.0


_DEVICE_LOCKS: dict[str, threading.Lock] = {}
_DEVICE_LOCKS_GUARD = threading.Lock()


def _device_lock(device: torch.device) -> threading.Lock:
    with _DEVICE_LOCKS_GUARD:
        return _DEVICE_LOCKS.setdefault(str(device), threading.Lock())


@dataclass(frozen=True)
class GaussianPrior:
    """The codes a generator expects: N(0, std^2 I_d), so a typical code has norm std * sqrt(d)."""

    std: float = 1.0

    @classmethod
    def with_norm(cls, norm: float, dim: int) -> GaussianPrior:
        """The isotropic Gaussian whose codes in ``dim`` dimensions have norm about ``norm``."""
        return cls(std=norm / math.sqrt(dim))

    def typical_norm(self, dim: int) -> float:
        return self.std * math.sqrt(dim)

    def sample(self, rng: np.random.Generator, count: int, dim: int) -> NDArray[np.float64]:
        """``count`` codes (count, dim) drawn from the prior."""
        return rng.standard_normal((count, dim)) * self.std


@dataclass(frozen=True, kw_only=True)
class GeneratorSpec:
    """A registered generator: its geometry, where its weights come from, its prior, and how to build it.

    ``build(device, weights)`` returns a module mapping codes (B, d) to images (B, 3, H, W) in [0, 1];
    ``weights`` is the path ``weights.locate`` found (a file in an installed package or in the lab's weights
    folder), or None for ``NoWeights``. ``prior`` is the code distribution: its ``typical_norm`` sets the
    optimizers' step sizes (published for fc6 codes of norm 300 in 4,096 d) and the default code-norm sphere.
    """

    name: str
    latent_dim: int
    image_size: int
    licence: str
    description: str
    build: Callable[[torch.device, Path | None], nn.Module]
    weights: WeightsSource
    prior: GaussianPrior = GaussianPrior()
    # What its sessions run when they name no optimizer (None: evostim's default, cholesky-cma): set only where
    # another optimizer was measured better on held-out units with this generator.
    default_optimizer: str | None = None

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.image_size < 1 or not self.prior.std > 0:
            raise ValueError(f"generator {self.name!r}: latent_dim, image_size and the prior's std must be positive")

    @property
    def typical_norm(self) -> float:
        """Norm of a code drawn from the prior."""
        return self.prior.typical_norm(self.latent_dim)

    @property
    def weights_file(self) -> str | None:
        """The file expected in the lab's weights folder, or None when the weights are not the lab's."""
        return self.weights.filename if isinstance(self.weights, FileWeights) else None

    def sample_prior(self, rng: np.random.Generator, count: int) -> NDArray[np.float64]:
        """``count`` prior codes (count, latent_dim)."""
        return self.prior.sample(rng, count, self.latent_dim)

    def locate_weights(self, weights_dir: Path) -> Path | None:
        """The weights' path, or raise GeneratorWeightsMissing saying what to install or where to put the file."""
        return self.weights.locate(self.name, weights_dir)

    def unavailable_reason(self, weights_dir: Path) -> str | None:
        """Why a session cannot use this generator now (None: it can); looks at files only, loads nothing."""
        try:
            self.locate_weights(weights_dir)
        except GeneratorWeightsMissing as error:
            return str(error)
        return None


class ImageGenerator:
    """A loaded generator: batched, inference-mode decoding on one device, shared by all sessions."""

    def __init__(self, spec: GeneratorSpec, module: nn.Module, device: torch.device) -> None:
        self.spec = spec
        self.device = device
        # Channels-last convolution kernels: 1.7x faster decoding of dcgan-faces on this CPU (1.87 -> 1.11 ms
        # per image); the same layout suits cuDNN's tensor-core kernels.
        self._module = module.eval().to(device).to(memory_format=torch.channels_last)
        self._decoder = self._faster_on_cpu()
        # One decode at a time per device, whatever the model: concurrent sessions queue here instead of
        # oversubscribing the CPU cores or running the GPU out of memory with two batches at once.
        self._lock = _device_lock(device)
        # On CUDA, decode in half precision when it stays within HALF_PRECISION_TOLERANCE of fp32 (measured
        # once on prior codes). The CPU stays in fp32: bf16 moved dcgan-faces' pixels by up to 4 gray levels.
        self.half_precision_error: float | None = None
        self._autocast_dtype: torch.dtype | None = None
        if device.type == "cuda":
            self._choose_precision()

    def _faster_on_cpu(self) -> nn.Module:
        """On the CPU, decode with ``inference_copy`` (BatchNorms folded, a DCGAN's last layer rewritten for oneDNN;
        batch-invariant, so a code's image does not depend on the codes decoded beside it): dcgan-faces 46-49 ->
        33-38 ms a generation of 44 on a 2-core CPU (medians), less time for 50 sessions' generations queued at
        the decode lock. Its images may differ from the network as loaded by float round-off (11 pixels of 540,000
        by one gray level, measured); it is kept only where 4 prior codes' images stay within one gray level, else
        the network decodes as loaded. On a GPU the rewrites gain little and would hold a second copy of weights."""
        if self.device.type != "cpu":
            return self._module
        try:
            faster = inference_copy(self._module, batch_invariant=True)
        except Exception:  # a lab's module that cannot be copied or folded decodes as loaded
            return self._module
        if [type(m) for m in faster.modules()] == [type(m) for m in self._module.modules()]:
            return self._module  # nothing to rewrite (no DCGAN blocks): no second copy of the weights
        codes = torch.as_tensor(self.spec.sample_prior(np.random.default_rng(0), 4), dtype=torch.float32)
        with torch.inference_mode():
            loaded, rewritten = (net(codes).clamp(0, 1).mul(255).round() for net in (self._module, faster))
        return faster if float((loaded - rewritten).abs().max()) <= 1.0 else self._module

    def _choose_precision(self) -> None:
        codes = torch.as_tensor(self.spec.sample_prior(np.random.default_rng(0), 16), dtype=torch.float32)
        with self._lock, torch.inference_mode():
            reference = self._module(codes.to(self.device)).clamp(0, 1)
            for dtype in (torch.float16, torch.bfloat16):
                with torch.autocast("cuda", dtype=dtype):
                    lowered = self._module(codes.to(self.device)).float().clamp(0, 1)
                error = float((lowered - reference).abs().max()) * 255
                if error <= HALF_PRECISION_TOLERANCE:
                    self._autocast_dtype, self.half_precision_error = dtype, error
                    return

    @property
    def module(self) -> nn.Module:
        """The torch module (codes -> images in [0, 1]), for gradient tools such as ``generators.metric``."""
        return self._module

    @property
    def decoder(self) -> nn.Module:
        """The module that decodes: ``module``, or on the CPU its faster copy (``inference_copy``)."""
        return self._decoder

    @property
    def latent_dim(self) -> int:
        return self.spec.latent_dim

    @property
    def image_size(self) -> int:
        return self.spec.image_size

    def check_codes(self, codes: NDArray[np.floating] | torch.Tensor) -> None:
        """Raise BadLatentCodes where ``codes`` (B, d) would not decode: their shape, or not finite in float32."""
        self._checked(codes)

    def _checked(self, codes: NDArray[np.floating] | torch.Tensor) -> torch.Tensor:
        batch = torch.as_tensor(codes, dtype=torch.float32)
        if batch.ndim != 2 or batch.shape[1] != self.latent_dim:
            raise BadLatentCodes(
                f"{self.spec.name} expects codes of shape (B, {self.latent_dim}), got {tuple(batch.shape)}"
            )
        if not torch.isfinite(batch).all():
            raise BadLatentCodes("latent codes must be finite")
        return batch

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1], float32, on the generator's device (call under the lock)."""
        if self._autocast_dtype is None:
            images: torch.Tensor = self._decoder(batch.to(self.device))
        else:
            with torch.autocast(self.device.type, dtype=self._autocast_dtype):
                images = self._decoder(batch.to(self.device))
        return images.float().clamp_(0.0, 1.0)

    def decode(self, codes: NDArray[np.floating] | torch.Tensor) -> torch.Tensor:
        """Decode codes (B, d) to float images (B, 3, H, W) in [0, 1] on the CPU."""
        batch = self._checked(codes)
        with self._lock, torch.inference_mode():
            images = self._forward(batch).cpu()
        return images.clone()  # a normal tensor, usable outside inference mode

    def decode_pixels(self, codes: NDArray[np.floating] | torch.Tensor) -> torch.Tensor:
        """Decode codes (B, d) to uint8 images (B, 3, H, W) left on the generator's device (for GPU encoding)."""
        batch = self._checked(codes)
        with self._lock, torch.inference_mode():
            pixels = self._forward(batch).mul_(255).round_().to(torch.uint8)
        return pixels.clone()

    def decode_uint8(self, codes: NDArray[np.floating] | torch.Tensor) -> NDArray[np.uint8]:
        """Decode codes (B, d) to uint8 images (B, H, W, 3) on the CPU, ready to encode."""
        pixels = self.decode_pixels(codes)
        return pixels.permute(0, 2, 3, 1).contiguous().cpu().numpy()
