"""The embedded generator: shapes, range, determinism, clear errors."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from evostim import generators
from evostim.generators import BadLatentCodes, UnknownGenerator
from evostim.server.media.images import encode_batch, encode_image
from tests.test_api import assert_problem


def test_dcgan_faces_decodes_batches_to_unit_range_images(dcgan: generators.ImageGenerator) -> None:
    codes = np.random.default_rng(0).standard_normal((5, 100))
    images = dcgan.decode(codes)
    assert tuple(images.shape) == (5, 3, 64, 64)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert float(images.std()) > 0.1  # real pictures, not a constant
    pixels = dcgan.decode_uint8(codes)
    assert pixels.shape == (5, 64, 64, 3) and pixels.dtype == np.uint8


def test_decoding_is_deterministic_and_batch_independent(dcgan: generators.ImageGenerator) -> None:
    codes = np.random.default_rng(1).standard_normal((4, 100))
    batch = dcgan.decode(codes)
    np.testing.assert_array_equal(batch.numpy(), dcgan.decode(codes).numpy())
    np.testing.assert_allclose(dcgan.decode(codes[2:3]).numpy()[0], batch.numpy()[2], atol=1e-5)


def test_different_codes_give_different_faces(dcgan: generators.ImageGenerator) -> None:
    images = dcgan.decode(np.random.default_rng(2).standard_normal((2, 100))).numpy()
    assert np.abs(images[0] - images[1]).mean() > 0.05


@pytest.mark.parametrize("shape", [(3, 99), (100,), (2, 3, 100)])
def test_if_codes_of_the_wrong_shape_are_refused(dcgan: generators.ImageGenerator, shape: tuple[int, ...]) -> None:
    with pytest.raises(BadLatentCodes, match="100"):
        dcgan.decode(np.zeros(shape))


def test_if_non_finite_codes_are_refused(dcgan: generators.ImageGenerator) -> None:
    codes = np.zeros((1, 100))
    codes[0, 3] = np.inf
    with pytest.raises(BadLatentCodes, match="finite"):
        dcgan.decode(codes)


def test_if_unknown_generator_names_the_known_ones() -> None:
    with pytest.raises(UnknownGenerator, match="dcgan-faces"):
        generators.load_generator("stylegan9")


def test_the_generator_is_loaded_once_per_process(dcgan: generators.ImageGenerator) -> None:
    assert generators.load_generator("dcgan-faces", "cpu") is dcgan
    assert dcgan.spec.typical_norm == pytest.approx(10.0)


def test_device_pixels_are_the_rounded_float_images(dcgan: generators.ImageGenerator) -> None:
    codes = np.random.default_rng(3).standard_normal((3, 100))
    pixels = dcgan.decode_pixels(codes)
    assert pixels.dtype == torch.uint8 and tuple(pixels.shape) == (3, 3, 64, 64)
    expected = dcgan.decode(codes).mul(255).round().to(torch.uint8)
    assert torch.equal(pixels, expected)
    assert dcgan.half_precision_error is None  # fp32 on the CPU


@pytest.mark.parametrize("fmt", ["jpg", "png", "bmp"])
def test_batch_encoding_gives_the_same_files_as_one_by_one(dcgan: generators.ImageGenerator, fmt: str) -> None:
    pixels = dcgan.decode_pixels(np.random.default_rng(4).standard_normal((5, 100)))
    batch = encode_batch(pixels, fmt, size=32)  # type: ignore[arg-type]
    one_by_one = [encode_image(image, fmt, 32) for image in pixels.permute(0, 2, 3, 1).numpy()]  # type: ignore[arg-type]
    assert batch == one_by_one
    assert Image.open(io.BytesIO(batch[0])).size == (32, 32)


def test_without_its_weights_package_dcgan_faces_is_listed_unavailable_and_a_session_on_it_is_a_problem(
    make_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = generators.generator_spec("dcgan-faces")
    assert isinstance(spec.weights, generators.PackageWeights)
    absent = dataclasses.replace(spec, weights=dataclasses.replace(spec.weights, module="evostim_absent_pkg"))
    monkeypatch.setitem(generators.GENERATORS, "dcgan-faces", absent)
    api: TestClient = make_api()
    listed = {entry["name"]: entry for entry in api.get("/v1/generators").json()["data"]}
    assert not listed["dcgan-faces"]["available"]
    assert "pip install --no-deps gan-face-generate==1.1.1" in listed["dcgan-faces"]["unavailable_reason"]
    response = api.post("/v1/sessions", json={"generator": "dcgan-faces", "population_size": 4})
    problem = assert_problem(response, 422, "gan-face-generate", "pip install --no-deps")
    assert problem["type"] == "/problems/generator-unavailable" and problem["package"] == "gan-face-generate"
    assert api.get("/v1/sessions").json()["total"] == 0
