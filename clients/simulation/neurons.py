"""Simulated neurons: a unit of a pretrained CNN with a spiking response model, as a recording gives one.

A unit is (network, layer, channel, spatial position); its firing is
``expected count = baseline + gain * relu(activation)`` per presentation. One response model serves the closed loop
over HTTP (``SimulatedNeuron``) and the batched sweep engine (``Recording``, numpy only), under a noise model named
by a string (``Noise.parse``): the published benchmark's multiplicative Gaussian levels, Poisson spike counts,
over-dispersed (negative binomial) counts, and a responsiveness that drifts down over the session. Seeded and
deterministic.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from evostim.clients.simulation.mtcnn import MTCNN_LAYERS, MTCNN_MAP_SIZES, MTCNN_WIDTHS, MtcnnFeatures, load_mtcnn

__all__ = [
    "DEFAULT_UNITS",
    "DRIFT",
    "NOISE_LEVELS",
    "RECORDED_NOISE",
    "Calibration",
    "CnnUnit",
    "Drift",
    "Noise",
    "Recording",
    "ResponseModel",
    "SimulatedNeuron",
    "UnitSpec",
    "calibrated_gains",
    "noise_order",
]

FloatArray = NDArray[np.float64]

# Units whose activation varies widely across random dcgan-faces images (checked on 3,000 faces).
DEFAULT_UNITS = ("onet.conv3.9", "onet.conv4.113", "onet.dense5.135", "onet.conv2.52", "rnet.conv3.18")
# The published benchmark's noise levels (Wang & Ponce, GECCO 2022): the default of sweeps.
NOISE_LEVELS = ("0", "0.2", "0.5", "poisson")
# Neurons as a recording gives them: over-dispersed counts, a drifting gain, and both ("negbin:1.5+drift").
RECORDED_NOISE = ("negbin:1.5", "drift", "recorded")
_ALIASES = {"drift": "poisson+drift", "recorded": "negbin:1.5+drift"}
_KNOWN = "0, 0.2, 0.5 (any level >= 0), poisson, negbin:F (F >= 1), drift, negbin:F+drift, recorded"
BASELINE = 2.0  # spikes per presentation at or below the unit's threshold
PEAK_COUNT = 20.0  # expected count at the 99th percentile of the unit's activations on random images
_DRIFT_STREAM, _REFERENCE_STREAM = 1, 2  # a run's noise seed spawns these streams beside its scores' own

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
        _check_in_layer(name, f"{net}.{layer}", int(match["channel"]), position)
        return cls(net, layer, int(match["channel"]), position)

    @property
    def name(self) -> str:
        suffix = "" if self.position is None else f"@{self.position[0]},{self.position[1]}"
        return f"{self.net}.{self.layer}.{self.channel}{suffix}"


def _check_in_layer(name: str, layer: str, channel: int, position: tuple[int, int] | None) -> None:
    """A channel the layer has, at a position on its map (checked without loading the network)."""
    width, side = MTCNN_WIDTHS[layer], MTCNN_MAP_SIZES[layer]
    if channel >= width:
        raise ValueError(f"unit {name}: {layer} has {width} {'channels' if side else 'units'}, 0..{width - 1}")
    if position is not None and not side:
        raise ValueError(f"unit {name}: {layer} is a dense layer, without positions; name it {layer}.{channel}")
    if position is not None and max(position) >= side:
        raise ValueError(f"unit {name}: {layer}'s map is {side}x{side}, positions 0..{side - 1}")


@functools.cache
def _network(net: str) -> MtcnnFeatures:
    return load_mtcnn(net)


class CnnUnit:
    """The activation of one CNN unit: images (B, 3, H, W) in [0, 1] -> activations (B,)."""

    def __init__(self, spec: UnitSpec) -> None:
        self.spec = spec
        self._network = _network(spec.net)

    def activation(self, images: torch.Tensor) -> FloatArray:
        with torch.inference_mode():
            output = self._network(images.float())[self.spec.layer]
        if output.shape[1] <= self.spec.channel:
            raise ValueError(f"{self.spec.name}: layer has only {output.shape[1]} channels")
        channel = output[:, self.spec.channel]
        if channel.ndim == 3:
            y, x = self.spec.position or (channel.shape[1] // 2, channel.shape[2] // 2)
            channel = channel[:, y, x]
        activations: FloatArray = channel.double().numpy()
        return activations


# -- the noise models -----------------------------------------------------------------------------------------
def _number(text: str, name: str, *, least: float) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < least:
        raise ValueError(f"unknown noise model {name!r}; known: {_KNOWN}")
    return value


@dataclass(frozen=True)
class Noise:
    """A noise model by name: what a measurement of a unit adds to its clean activation.

    - ``"0"``, ``"0.2"``, ``"0.5"`` (any level sigma >= 0): the published benchmark's score, the activation itself
      times max(0, 1 + sigma * N(0, 1)).
    - ``"poisson"``: spike counts, Poisson with the expected count (Fano factor 1).
    - ``"negbin:F"`` (F >= 1): over-dispersed counts, negative binomial with the same mean and variance F x mean
      (a Gamma-Poisson mixture; F = 1 draws exactly as Poisson).
    - ``"drift"``: Poisson counts from a neuron whose responsiveness drifts down over the session (``Drift``);
      ``"negbin:F+drift"``: both.
    - ``"recorded"``: ``"negbin:1.5+drift"``, a neuron as a recording gives it.
    """

    name: str
    sigma: float | None = None  # a Gaussian level; None for spike counts
    fano: float = 1.0  # spike counts: variance / mean
    drift: bool = False

    @classmethod
    def parse(cls, name: str) -> Noise:
        counts, plus, extra = _ALIASES.get(name, name).partition("+")
        if plus and extra != "drift":
            raise ValueError(f"unknown noise model {name!r}; known: {_KNOWN}")
        if counts == "poisson":
            return cls(name, drift=bool(plus))
        if counts.startswith("negbin:"):
            return cls(name, fano=_number(counts.removeprefix("negbin:"), name, least=1.0), drift=bool(plus))
        if plus:  # the Gaussian levels score activations, not a neuron's firing: nothing drifts
            raise ValueError(f"unknown noise model {name!r}; known: {_KNOWN}")
        return cls(name, sigma=_number(counts, name, least=0.0))

    @property
    def counts(self) -> bool:
        """Whether the scores are spike counts (every model but the Gaussian levels)."""
        return self.sigma is None


def noise_order(name: str) -> tuple[int, str]:
    """A sort key: the published levels in their order, then the recorded-like models, then any other by name."""
    known = (*NOISE_LEVELS, *RECORDED_NOISE)
    return (known.index(name), "") if name in known else (len(known), name)


@dataclass(frozen=True)
class Drift:
    """A neuron's responsiveness over a session of G generations: a multiplicative gain, 1 at generation 0, that
    declines log-linearly by a fraction drawn uniformly from ``decline`` at the last generation, with slow
    fluctuations around that trend: a twice-filtered AR(1) on the log gain (time constant ``time_constant``
    generations, stationary standard deviation ``fluctuation``), pinned to the trend at both ends."""

    decline: tuple[float, float] = (0.3, 0.5)
    time_constant: float = 10.0
    fluctuation: float = 0.15

    def gains(self, generations: int, rng: np.random.Generator) -> FloatArray:
        """The gain at each generation (G,)."""
        decline = rng.uniform(*self.decline)
        position = np.arange(generations) / max(generations - 1, 1)  # 0 at the first generation, 1 at the last
        wander = self._fluctuations(generations, rng)
        wander -= wander[0] + (wander[-1] - wander[0]) * position  # pinned: exactly the drawn decline at the end
        gains: FloatArray = np.exp(math.log1p(-decline) * position + wander)
        return gains

    def _fluctuations(self, generations: int, rng: np.random.Generator) -> FloatArray:
        """Smooth noise (G,): white noise through the same AR(1) filter twice, after a burn-in of 5 time
        constants; scaled to the stationary standard deviation ``fluctuation``."""
        rho = math.exp(-1.0 / self.time_constant)
        burn = math.ceil(5 * self.time_constant)
        series = rng.standard_normal(burn + generations)
        for _ in range(2):
            for index in range(1, len(series)):
                series[index] += rho * series[index - 1]
        scale = self.fluctuation * math.sqrt((1 - rho**2) ** 3 / (1 + rho**2))  # the cascade's variance: 1 / this
        fluctuations: FloatArray = series[burn:] * scale
        return fluctuations


DRIFT = Drift()


def calibrated_gains(
    activations: FloatArray, names: Sequence[str], *, peak_count: float = PEAK_COUNT, baseline: float = BASELINE
) -> FloatArray:
    """Per unit (a column of ``activations`` (n, units), e.g. over random images): the gain that maps its 99th
    percentile to ``peak_count`` spikes over ``baseline``."""
    p99 = np.percentile(np.maximum(activations, 0.0), 99, axis=0)
    silent = [name for name, value in zip(names, p99, strict=True) if value <= 0]
    if silent:
        raise ValueError(f"units silent on random images, pick others: {silent}")
    gains: FloatArray = (peak_count - baseline) / p99
    return gains


@dataclass(frozen=True)
class ResponseModel:
    """expected count = baseline + gain * relu(activation); each presentation draws a score under ``noise``
    (a ``Noise`` name), times the neuron's drifting gain where the model drifts."""

    gain: float
    baseline: float = BASELINE
    noise: str = "poisson"

    def __post_init__(self) -> None:
        Noise.parse(self.noise)  # an unknown name stops here, naming the known ones

    @classmethod
    def calibrated(
        cls,
        activations: FloatArray,
        *,
        peak_count: float = PEAK_COUNT,
        baseline: float = BASELINE,
        noise: str = "poisson",
    ) -> ResponseModel:
        """A gain that maps the 99th percentile of ``activations`` (n,) (e.g. over random images) to
        ``peak_count``."""
        (gain,) = calibrated_gains(activations[:, None], ["the unit"], peak_count=peak_count, baseline=baseline)
        return cls(gain=float(gain), baseline=baseline, noise=noise)

    @property
    def kind(self) -> Noise:
        return Noise.parse(self.noise)

    def expected(self, activations: FloatArray) -> FloatArray:
        """The noise-free score (B,) of activations (B,): the expected count (before any drift), or for the
        Gaussian levels the activation itself."""
        if not self.kind.counts:
            return np.asarray(activations, dtype=np.float64)
        expected: FloatArray = self.baseline + self.gain * np.maximum(activations, 0.0)
        return expected

    def sample(
        self, activations: FloatArray, repetitions: int, rng: np.random.Generator, drift: float = 1.0
    ) -> FloatArray:
        """Scores (B, repetitions) of activations (B,), ``drift``: the neuron's gain now (a drifting model)."""
        kind = self.kind
        mean = self.expected(activations)[:, None].repeat(repetitions, axis=1)
        if kind.sigma is not None:
            noisy: FloatArray = mean * np.maximum(0.0, 1.0 + kind.sigma * rng.standard_normal(mean.shape))
            return noisy
        if kind.drift:
            mean = mean * drift
        if kind.fano == 1.0:
            counts: FloatArray = rng.poisson(mean).astype(np.float64)
            return counts
        # Negative binomial as a Gamma-Poisson mixture: Gamma(shape m / (F - 1), scale F - 1) has mean m and
        # variance m (F - 1); the Poisson adds m: variance F m, for any mean.
        rates = rng.gamma(mean / (kind.fano - 1.0), kind.fano - 1.0)
        overdispersed: FloatArray = rng.poisson(rates).astype(np.float64)
        return overdispersed


class Recording:
    """One neuron recorded over a session of ``generations`` generations: its response model, its gain at each
    generation (``Drift``, drawn from ``seed``; 1 throughout where the model does not drift), and seeded noise
    streams, one for the scores and one for the reference images a sweep shows apart from them."""

    def __init__(self, model: ResponseModel, *, seed: int, generations: int) -> None:
        if generations < 1:
            raise ValueError(f"a recording lasts at least one generation, not {generations}")
        self.model = model
        self._rng = np.random.default_rng(seed)
        self._reference_rng = np.random.default_rng([seed, _REFERENCE_STREAM])
        drifts = model.kind.drift
        self._gains = DRIFT.gains(generations, np.random.default_rng([seed, _DRIFT_STREAM])) if drifts else None

    def gain_at(self, generation: int) -> float:
        """The neuron's gain at ``generation`` (after the planned last one: the last one's)."""
        return 1.0 if self._gains is None else float(self._gains[min(generation, len(self._gains) - 1)])

    def sample(self, activations: FloatArray, repetitions: int, generation: int) -> FloatArray:
        """Scores (B, repetitions) of activations (B,) at ``generation``."""
        return self.model.sample(activations, repetitions, self._rng, self.gain_at(generation))

    def observe(self, activations: FloatArray, generation: int) -> FloatArray:
        """One score (B,) per activation (B,) at ``generation``."""
        return self.sample(activations, 1, generation)[:, 0]

    def observe_references(self, activations: FloatArray, generation: int) -> FloatArray:
        """One score (R,) per reference image's activation (R,) at ``generation``, from the references' stream."""
        return self.model.sample(activations, 1, self._reference_rng, self.gain_at(generation))[:, 0]


def _check_length(noise: str, generations: int | None) -> None:
    if generations is None and Noise.parse(noise).drift:
        raise ValueError(f"noise {noise!r} drifts over the session: give its planned generations")


@dataclass(frozen=True)
class Calibration:
    """What a neuron was calibrated on: ``images`` random images of ``generator``, the best expected count over them
    (a chance reference for the evolution: the best of that many random images)."""

    generator: str
    images: int
    best_expected: float


class SimulatedNeuron:
    """A seeded spiking neuron: ``respond(images, repetitions)`` -> counts (B, repetitions), one call a
    generation. A drifting model needs the session's planned ``generations``. ``SimulatedNeuron.calibrated(unit)``
    makes one as the demo does."""

    def __init__(self, unit: CnnUnit, model: ResponseModel, *, seed: int, generations: int | None = None) -> None:
        _check_length(model.noise, generations)
        self.unit = unit
        self.model = model
        self.recording = Recording(model, seed=seed, generations=generations or 1)
        self.generation = 0  # the generation its next response belongs to
        self.calibration: Calibration | None = None

    @classmethod
    def calibrated(
        cls,
        unit: str = "onet.conv3.9",
        *,
        noise: str = "poisson",
        seed: int = 0,
        generations: int | None = None,
        generator: str = "dcgan-faces",
        images: int = 1000,
    ) -> SimulatedNeuron:
        """A unit of the shipped CNNs (``net.layer.channel[@y,x]``, e.g. ``onet.conv3.9``) as a spiking neuron,
        its gain set so that its 99th-percentile response to ``images`` random images of ``generator`` is 20 spikes
        over a baseline of 2, under ``noise`` (``Noise``: poisson, negbin:1.5, recorded, ...; a drifting one needs
        the session's planned ``generations``). Seeded by ``seed``: the same images, the same spikes.
        ``neuron.calibration.best_expected`` is the best expected count over those random images."""
        from evostim.generators import load_generator  # the generator only here: a neuron built by hand needs none

        spec = UnitSpec.parse(unit)  # a unit the network lacks stops here, naming the valid range
        _check_length(noise, generations)  # and a drifting noise model without the session's length
        cnn = CnnUnit(spec)  # its network's weights first: a missing package stops it before the generator loads
        decoder = load_generator(generator, "cpu")
        codes = np.random.default_rng(10_000 + seed).standard_normal((images, decoder.latent_dim))
        activations = cnn.activation(decoder.decode(codes))
        model = ResponseModel.calibrated(activations, noise=noise)
        neuron = cls(cnn, model, seed=seed, generations=generations)
        neuron.calibration = Calibration(generator, images, float(model.expected(activations).max()))
        return neuron

    def expected(self, images: torch.Tensor) -> FloatArray:
        """Noise-free expected counts (B,), before any drift."""
        return self.model.expected(self.unit.activation(images))

    def respond(self, images: torch.Tensor, repetitions: int = 1) -> FloatArray:
        counts = self.recording.sample(self.unit.activation(images), repetitions, self.generation)
        self.generation += 1
        return counts
