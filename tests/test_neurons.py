"""Simulated neurons: units that vary across faces, a calibrated Poisson response, seeded noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evostim import generators
from evostim.clients.simulation.neurons import DEFAULT_UNITS, CnnUnit, ResponseModel, SimulatedNeuron, UnitSpec


@pytest.fixture(scope="module")
def faces(dcgan: generators.ImageGenerator) -> torch.Tensor:
    return dcgan.decode(np.random.default_rng(7).standard_normal((300, 100)))


@pytest.mark.parametrize("name", DEFAULT_UNITS)
def test_each_default_unit_responds_with_a_wide_spread_to_random_faces(name: str, faces: torch.Tensor) -> None:
    activations = CnnUnit(UnitSpec.parse(name)).activation(faces)
    assert activations.shape == (300,)
    spread = np.percentile(activations, 95) - np.percentile(activations, 5)
    assert spread > 0.5
    assert np.percentile(activations, 99) > 0.5  # above the relu: the unit can fire


def test_calibration_maps_the_99th_percentile_to_the_peak_count(faces: torch.Tensor) -> None:
    unit = CnnUnit(UnitSpec.parse("onet.conv4.113"))
    activations = unit.activation(faces)
    model = ResponseModel.calibrated(activations, peak_count=20.0, baseline=2.0)
    assert np.percentile(model.expected(activations), 99) == pytest.approx(20.0, rel=1e-6)
    assert model.expected(np.array([-1.0]))[0] == 2.0  # below threshold: the baseline rate


def test_poisson_counts_are_seeded_and_centred_on_the_expected_count(faces: torch.Tensor) -> None:
    unit = CnnUnit(UnitSpec.parse("onet.conv3.9"))
    model = ResponseModel.calibrated(unit.activation(faces))
    first = SimulatedNeuron(unit, model, seed=3).respond(faces[:20], repetitions=200)
    again = SimulatedNeuron(unit, model, seed=3).respond(faces[:20], repetitions=200)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (20, 200) and np.all(first == np.round(first)) and first.min() >= 0
    expected = model.expected(unit.activation(faces[:20]))
    np.testing.assert_allclose(first.mean(axis=1), expected, rtol=0.2, atol=0.5)


@pytest.mark.parametrize("name", ["onet.conv9.1", "alexnet.fc6.1", "onet.conv3", "onet.conv3.x"])
def test_if_bad_unit_names_are_refused_with_the_expected_form(name: str) -> None:
    with pytest.raises(ValueError, match="net"):
        UnitSpec.parse(name)


def test_unit_names_round_trip() -> None:
    assert UnitSpec.parse("onet.conv3.9@2,5").name == "onet.conv3.9@2,5"
    assert UnitSpec.parse("rnet.dense4.54").position is None
