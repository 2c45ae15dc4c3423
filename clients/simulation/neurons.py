"""Simulated neurons: a unit of a pretrained CNN with a spiking response model.

A unit is (network, layer, channel, spatial position); its firing is
``expected count = baseline + gain * relu(activation)`` per presentation, and each repetition draws
Poisson spike counts (or Gaussian, for rate-like scores). Seeded and deterministic.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray

from evostim.clients.simulation.mtcnn import MTCNN_LAYERS, MtcnnFeatures, load_mtcnn

__all__ = ["DEFAULT_UNITS", "CnnUnit", "ResponseModel", "SimulatedNeuron", "UnitSpec"]

# Units whose activation varies widely across random dcgan-faces images (checked on 3,000 faces).
DEFAULT_UNITS = ("onet.conv3.9", "onet.conv4.113", "onet.dense5.135", "onet.conv2.52", "rnet.conv3.18")

_UNIT_NAME = re.compile(r"^(?P<net>[a-z]+)\.(?P<layer>[a-z0-9_]+)\.(?P<channel>\d+)(@(?P<y>\d+),(?P<x>\d+))?$")


@dataclass(frozen=True)
class UnitSpec:
    """A unit by name: ``net.layer.channel`` or ``net.layer.channel@y,x`` (default: the map's centre)."""

    net: str
    layer: str
    channel: int
    position: tuple[int, int] | None = None

    @classmethod
    def parse(cls, name: str) -> UnitSpec:
        match = _UNIT_NAME.match(name)
        if match is None:
            raise ValueError(f"unit name {name!r} is not of the form net.layer.channel[@y,x], e.g. onet.conv4.113")
        net, layer = match["net"], match["layer"]
        if net not in MTCNN_LAYERS or layer not in MTCNN_LAYERS[net]:
            known = ", ".join(f"{n}.{layer_name}" for n, layers in MTCNN_LAYERS.items() for layer_name in layers)
            raise ValueError(f"unknown layer {net}.{layer}; known: {known}")
        position = (int(match["y"]), int(match["x"])) if match["y"] is not None else None
        return cls(net, layer, int(match["channel"]), position)

    @property
    def name(self) -> str:
        suffix = "" if self.position is None else f"@{self.position[0]},{self.position[1]}"
        return f"{self.net}.{self.layer}.{self.channel}{suffix}"


@functools.cache
def _network(net: str) -> MtcnnFeatures:
    return load_mtcnn(net)


class CnnUnit:
    """The activation of one CNN unit: images (B, 3, H, W) in [0, 1] -> activations (B,)."""

    def __init__(self, spec: UnitSpec) -> None:
        self.spec = spec
        self._network = _network(spec.net)

    def activation(self, images: torch.Tensor) -> NDArray[np.float64]:
        with torch.inference_mode():
            output = self._network(images.float())[self.spec.layer]
        if output.shape[1] <= self.spec.channel:
            raise ValueError(f"{self.spec.name}: layer has only {output.shape[1]} channels")
        channel = output[:, self.spec.channel]
        if channel.ndim == 3:
            y, x = self.spec.position or (channel.shape[1] // 2, channel.shape[2] // 2)
            channel = channel[:, y, x]
        activations: NDArray[np.float64] = channel.double().numpy()
        return activations


@dataclass(frozen=True)
class ResponseModel:
    """expected count = baseline + gain * relu(activation); noise per repetition."""

    gain: float
    baseline: float = 2.0
    noise: Literal["poisson", "gaussian"] = "poisson"
    gaussian_sd: float = 0.0

    @classmethod
    def calibrated(
        cls,
        activations: NDArray[np.float64],
        *,
        peak_count: float = 20.0,
        baseline: float = 2.0,
        noise: Literal["poisson", "gaussian"] = "poisson",
    ) -> ResponseModel:
        """A gain that maps the 99th percentile of ``activations`` (e.g. over random images) to ``peak_count``."""
        reference = float(np.percentile(np.maximum(activations, 0.0), 99))
        if reference <= 0:
            raise ValueError("the unit is silent on the calibration images: pick another unit")
        return cls(gain=(peak_count - baseline) / reference, baseline=baseline, noise=noise)

    def expected(self, activations: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.baseline + self.gain * np.maximum(activations, 0.0)

    def sample(
        self, activations: NDArray[np.float64], repetitions: int, rng: np.random.Generator
    ) -> NDArray[np.float64]:
        """Counts (B, repetitions) for activations (B,)."""
        rate = self.expected(activations)[:, None].repeat(repetitions, axis=1)
        if self.noise == "poisson":
            return rng.poisson(rate).astype(np.float64)
        return np.maximum(rate + self.gaussian_sd * rng.standard_normal(rate.shape), 0.0)


class SimulatedNeuron:
    """A seeded spiking neuron: ``respond(images, repetitions)`` -> counts (B, repetitions)."""

    def __init__(self, unit: CnnUnit, model: ResponseModel, *, seed: int) -> None:
        self.unit = unit
        self.model = model
        self._rng = np.random.default_rng(seed)

    def expected(self, images: torch.Tensor) -> NDArray[np.float64]:
        """Noise-free expected counts (B,)."""
        return self.model.expected(self.unit.activation(images))

    def respond(self, images: torch.Tensor, repetitions: int = 1) -> NDArray[np.float64]:
        return self.model.sample(self.unit.activation(images), repetitions, self._rng)
