"""In-silico units for method work: CNN units seen through a generator, synthetic high-dimensional units, noise.

A *panel* scores many codes for many units at once: ``activations(unit_of_row, codes)`` decodes every code once
and runs each CNN once over the images of its units, so a sweep's runs share one decode and one forward pass per
generation. The noise models and the response model that turns activations into spike counts (baseline 2, the 99th
percentile of random images -> 20 spikes) are the simulated neuron's (evostim.clients.simulation.neurons); here,
``calibrate`` finds each unit's gain on random images.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator, Sequence
from typing import Literal, Protocol

import numpy as np
import torch
from numpy.typing import NDArray

from evostim.clients.simulation.mtcnn import load_mtcnn
from evostim.clients.simulation.neurons import NOISE_LEVELS, UnitSpec, calibrated_gains
from evostim.generators import generator_spec, load_generator, resolve_device
from evostim.generators.host import generator_host
from evostim.generators.inference import inference_copy

__all__ = [
    "CNN_UNITS",
    "NOISE_LEVELS",
    "CnnPanel",
    "Panel",
    "Precision",
    "SyntheticPanel",
    "calibrate",
    "check_units",
    "make_panel",
    "native_bf16",
    "panel_space",
    "synthetic_unit_names",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Precision = Literal["fp32", "bf16"]

# 24 units over 7 layers of the two shipped CNNs (channels picked to spread over each layer).
CNN_UNITS = (
    "onet.conv2.52", "onet.conv2.7", "onet.conv2.30",
    "onet.conv3.9", "onet.conv3.21", "onet.conv3.40", "onet.conv3.55",
    "onet.conv4.113", "onet.conv4.17", "onet.conv4.64", "onet.conv4.90",
    "onet.dense5.135", "onet.dense5.40", "onet.dense5.77", "onet.dense5.200",
    "rnet.conv2.11", "rnet.conv2.30",
    "rnet.conv3.18", "rnet.conv3.5", "rnet.conv3.44",
    "rnet.dense4.3", "rnet.dense4.60", "rnet.dense4.99", "rnet.dense4.120",
)  # fmt: skip


class Panel(Protocol):
    """What the engine needs of a set of units."""

    names: list[str]
    dim: int
    code_norm: float

    def activations(self, unit_of_row: IntArray, codes: FloatArray) -> FloatArray: ...

    def activation_matrix(self, codes: FloatArray) -> FloatArray: ...

    def random_codes(self, count: int, seed: int) -> FloatArray: ...


def native_bf16(device: str = "auto") -> bool:
    """Whether ``device`` computes bfloat16 natively: CUDA, or a CPU with AVX512-BF16 or AMX. Elsewhere (an AVX2-only
    CPU) autocast emulates it: measured on an AMD EPYC here, 3 images/s against 239/s in fp32."""
    resolved = resolve_device(device)
    if resolved.type != "cpu":
        return True
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def _prior_codes(count: int, seed: int, dim: int, code_norm: float) -> FloatArray:
    codes: FloatArray = np.random.default_rng(seed).standard_normal((count, dim)) * (code_norm / math.sqrt(dim))
    return codes


def _at_position(values: torch.Tensor, spec: UnitSpec) -> torch.Tensor:
    """A convolutional unit's value at its position (default: the centre of its map); a dense unit's as it is."""
    if values.ndim != 3:
        return values
    y, x = spec.position or (values.shape[1] // 2, values.shape[2] // 2)
    return values[:, y, x]


class CnnPanel:
    """Units of the shipped CNNs (MTCNN ONet/RNet/PNet, e.g. ``"onet.conv3.9"``) seen through a generator.

    The generator runs as ``inference_copy`` of the session's network (the same images to ~1e-6), on CUDA when
    present (``device="auto"``). ``precision="bf16"`` runs the generator and the CNNs under autocast (bfloat16;
    AVX512-BF16 or AMX on a CPU): 1.6x faster here, but pixels differ from fp32 by 0.24/255 on average and up to
    ~10/255, so it is a slightly different problem; fp32, the default, matches what a session renders.
    """

    def __init__(
        self,
        units: Sequence[str],
        generator: str = "dcgan-faces",
        precision: Precision = "fp32",
        device: str = "auto",
    ) -> None:
        self.units = [UnitSpec.parse(u) for u in units]
        self.names = list(units)
        spec = generator_spec(generator)
        self.dim, self.code_norm = spec.latent_dim, spec.typical_norm
        self.precision = precision
        self.device = resolve_device(device)
        # The session's network rewritten for batch decoding: the same images to ~1e-6, 11% faster in fp32.
        module = load_generator(generator, str(self.device)).module
        self._decoder = inference_copy(module)
        self.host = generator_host(spec, lambda: module)  # what optimizers need from the generator
        self._networks = {net: load_mtcnn(net).to(self.device) for net in sorted({u.net for u in self.units})}

    @contextlib.contextmanager
    def _compute(self) -> Iterator[None]:
        with torch.inference_mode():
            if self.precision == "bf16":
                with torch.autocast(self.device.type, dtype=torch.bfloat16):
                    yield
            else:
                yield

    def _images(self, codes: FloatArray) -> torch.Tensor:
        images: torch.Tensor = self._decoder(torch.as_tensor(codes, dtype=torch.float32, device=self.device))
        return images.float().clamp_(0.0, 1.0)

    def activations(self, unit_of_row: IntArray, codes: FloatArray, chunk: int | None = None) -> FloatArray:
        """Clean activation (n,) of unit ``unit_of_row[i]`` on the image of ``codes[i]`` (n, d), ``chunk`` images
        at a time: on a CPU 40 (a batch's activations stay in the core's L2 cache: fp32, 2.5 ms per image at 40
        against 3.3 at 320 here), on a GPU 4,096."""
        chunk = chunk or (40 if self.device.type == "cpu" else 4096)
        out = np.empty(len(codes))
        for start in range(0, len(codes), chunk):
            rows = slice(start, start + chunk)
            with self._compute():
                images = self._images(codes[rows])
                self._score_chunk(unit_of_row[rows], images, out[rows])
        return out

    def _score_chunk(self, units: IntArray, images: torch.Tensor, out: FloatArray) -> None:
        for net, network in self._networks.items():
            mine = np.flatnonzero([self.units[u].net == net for u in units])
            if len(mine) == 0:
                continue
            layers = network(images[torch.from_numpy(mine).to(self.device)])
            for unit in np.unique(units[mine]):
                spec = self.units[unit]
                of_unit = units[mine] == unit
                values = _at_position(layers[spec.layer][torch.from_numpy(of_unit).to(self.device), spec.channel], spec)
                out[mine[of_unit]] = values.double().cpu().numpy()

    def activation_matrix(self, codes: FloatArray, chunk: int = 1000) -> FloatArray:
        """Clean activations (n, units) of every unit on every code's image (one decode per image)."""
        out = np.empty((len(codes), len(self.units)))
        for start in range(0, len(codes), chunk):
            with self._compute():
                images = self._images(codes[start : start + chunk])
                layers = {net: network(images) for net, network in self._networks.items()}
                for index, spec in enumerate(self.units):
                    values = _at_position(layers[spec.net][spec.layer][:, spec.channel], spec)
                    out[start : start + chunk, index] = values.double().cpu().numpy()
        return out

    def random_codes(self, count: int, seed: int) -> FloatArray:
        return _prior_codes(count, seed, self.dim, self.code_norm)


def synthetic_unit_names(count: int) -> list[str]:
    """The names of the first ``count`` synthetic units: ``bump<i>.k<dimensions of its projection>``."""
    return [f"bump{index}.k{(8, 16, 32)[index % 3]}" for index in range(count)]


class SyntheticPanel:
    """4,096-d units with fc6's code scale: a Gaussian bump in a random k-d projection (k in 8..32)."""

    def __init__(self, count: int, seed: int = 0, dim: int = 4096, code_norm: float = 300.0) -> None:
        self.dim, self.code_norm = dim, code_norm
        scale = code_norm / math.sqrt(dim)  # per-coordinate spread of prior codes
        rng = np.random.default_rng(seed)
        self.names: list[str] = []
        self._projections: list[FloatArray] = []
        self._centers: list[FloatArray] = []
        self._radii: list[float] = []
        for index, name in enumerate(synthetic_unit_names(count)):
            k = (8, 16, 32)[index % 3]
            self.names.append(name)
            self._projections.append(np.linalg.qr(rng.standard_normal((dim, k)))[0])
            self._centers.append(rng.standard_normal(k) * 2 * scale)
            self._radii.append(math.sqrt(k) * scale)

    def activations(self, unit_of_row: IntArray, codes: FloatArray) -> FloatArray:
        out = np.empty(len(codes))
        for unit in np.unique(unit_of_row):
            rows = unit_of_row == unit
            offset = codes[rows] @ self._projections[unit] - self._centers[unit]
            out[rows] = np.exp(-0.5 * np.sum(offset**2, axis=1) / self._radii[unit] ** 2)
        return out

    def activation_matrix(self, codes: FloatArray) -> FloatArray:
        units = range(len(self.names))
        return np.stack([self.activations(np.full(len(codes), u, dtype=np.int64), codes) for u in units], axis=1)

    def random_codes(self, count: int, seed: int) -> FloatArray:
        return _prior_codes(count, seed, self.dim, self.code_norm)


def panel_space(kind: str) -> tuple[int, float]:
    """(latent dimension, prior code norm) of a panel kind, without loading it."""
    if kind == "synthetic":
        return 4096, 300.0
    spec = generator_spec("dcgan-faces")
    return spec.latent_dim, spec.typical_norm


def check_units(kind: str, units: Sequence[str]) -> None:
    """A ValueError (one line) for a unit the panel does not have, without loading anything: a CNN unit's layer,
    channel and position (``onet.conv3.99``: "onet.conv3 has 64 channels, 0..63"), a synthetic unit's name."""
    if kind == "cnn":
        for unit in units:
            UnitSpec.parse(unit)
    elif kind == "synthetic":
        bump = re.compile(r"^bump(\d{1,6})\.k\d+$")
        unknown = [u for u in units if not (m := bump.match(u)) or synthetic_unit_names(int(m[1]) + 1)[-1] != u]
        if unknown:
            raise ValueError(f"unknown synthetic units {unknown}; they are named like {synthetic_unit_names(3)}")
    else:
        raise ValueError(f"unknown panel {kind!r}: cnn or synthetic")


def make_panel(kind: str, units: Sequence[str], precision: Precision = "fp32") -> CnnPanel | SyntheticPanel:
    """``cnn`` with unit names (``onet.conv3.9``), or ``synthetic`` with ``bumpN`` names (the first N+1 bumps)."""
    check_units(kind, units)
    if kind == "cnn":
        return CnnPanel(units, precision=precision)
    return SyntheticPanel(max(int(u.split(".")[0].removeprefix("bump")) for u in units) + 1)


def calibrate(panel: Panel, count: int, seed: int = 12345) -> tuple[FloatArray, FloatArray]:
    """Per unit: the max over ``count`` random prior codes, and the gain of its spike counts (p99 -> 20 spikes)."""
    activations = panel.activation_matrix(panel.random_codes(count, seed=seed))
    gains = calibrated_gains(activations, panel.names)
    maxima: FloatArray = activations.max(axis=0)
    return maxima, gains
