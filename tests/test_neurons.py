"""Simulated neurons: units that vary across faces, a calibrated response, seeded noise models, drift."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evostim import generators
from evostim.clients.simulation.neurons import (
    DEFAULT_UNITS,
    NOISE_LEVELS,
    CnnUnit,
    Noise,
    Recording,
    ResponseModel,
    SimulatedNeuron,
    UnitSpec,
)


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


@pytest.mark.parametrize("name", ["pnet.conv3.28", "pnet.conv4_1.1", "onet.dense6_1.1", "rnet.dense5_2.2"])
def test_the_foreign_units_pnet_and_the_heads_vary_across_faces(name: str, faces: torch.Tensor) -> None:
    activations = CnnUnit(UnitSpec.parse(name)).activation(faces)
    assert activations.shape == (300,) and np.isfinite(activations).all()
    assert np.percentile(activations, 95) - np.percentile(activations, 5) > 0.1


def test_a_head_is_named_as_its_network_names_it_and_has_its_width() -> None:
    assert UnitSpec.parse("onet.dense6_3.9").channel == 9  # the tenth landmark coordinate
    with pytest.raises(ValueError, match=r"onet\.dense6_1 has 2 units"):
        UnitSpec.parse("onet.dense6_1.2")
    with pytest.raises(ValueError, match=r"pnet\.conv4_1's map is 1x1"):
        UnitSpec.parse("pnet.conv4_1.0@1,1")


# -- the noise models (numpy only: the same code measures the HTTP loop's neuron and the sweep engine's runs) ------
CLEAN = np.array([-0.5, 0.0, 0.3, 1.7, 4.2])
# What the sweep engine's NoiseModel(level, gain=0.7).observe drew at f8641b1 from default_rng(123), twice: the
# results committed under benchmarks/results/ were made with these models, so they must not change by a bit.
BEFORE = {
    "0": [[-0.5, 0.0, 0.3, 1.7, 4.2], [-0.5, 0.0, 0.3, 1.7, 4.2]],
    "0.2": [
        [-0.4010878649652149, 0.0, 0.3772755156773549, 1.7659513025050884, 4.97299395569748],
        [-0.5577103791257252, 0.0, 0.33251713322461757, 1.5923575466036226, 3.9291931424264734],
    ],
    "0.5": [
        [-0.2527196624130373, 0.0, 0.49318878919338727, 1.8648782562627213, 6.1324848892437],
        [-0.6442759478143129, 0.0, 0.381292833061544, 1.4308938665090563, 3.522982856066184],
    ],
    "poisson": [[1.0, 1.0, 3.0, 5.0, 7.0], [2.0, 0.0, 6.0, 5.0, 3.0]],
}


@pytest.mark.parametrize("level", NOISE_LEVELS)
def test_the_published_noise_levels_draw_bit_for_bit_what_they_drew_before(level: str) -> None:
    recording = Recording(ResponseModel(0.7, noise=level), seed=123, generations=2)
    assert [recording.observe(CLEAN, generation).tolist() for generation in range(2)] == BEFORE[level]


@pytest.mark.parametrize("fano", [1.5, 2.0, 3.0])
def test_negative_binomial_counts_keep_the_mean_and_have_the_named_fano_factor(fano: float) -> None:
    model = ResponseModel(2.0, noise=f"negbin:{fano}")
    activations = np.array([0.0, 1.5, 4.0, 9.0])  # expected counts 2, 5, 10, 20
    counts = model.sample(activations, 40_000, np.random.default_rng(5))
    assert np.all(counts == np.round(counts)) and counts.min() >= 0
    np.testing.assert_allclose(counts.mean(axis=1), model.expected(activations), rtol=0.02)
    np.testing.assert_allclose(counts.var(axis=1) / counts.mean(axis=1), fano, rtol=0.05)


def test_a_fano_factor_of_one_draws_exactly_as_poisson() -> None:
    activations = np.array([0.0, 1.0, 5.0])
    poisson = ResponseModel(1.0).sample(activations, 50, np.random.default_rng(1))
    np.testing.assert_array_equal(
        ResponseModel(1.0, noise="negbin:1").sample(activations, 50, np.random.default_rng(1)), poisson
    )


@pytest.mark.parametrize("generations", [20, 40, 75])
def test_the_drift_declines_by_30_to_50_percent_over_the_session_with_slow_fluctuations(generations: int) -> None:
    model = ResponseModel(1.0, noise="drift")
    ends, largest_steps, smoothness, wander = [], [], [], []
    for seed in range(200):
        recording = Recording(model, seed=seed, generations=generations)
        log_gain = np.log([recording.gain_at(g) for g in range(generations)])
        assert log_gain[0] == 0.0 and recording.gain_at(generations + 5) == recording.gain_at(generations - 1)
        ends.append(np.exp(log_gain[-1]))
        largest_steps.append(np.abs(np.diff(log_gain)).max())
        steps = np.diff(log_gain - log_gain[-1] * np.arange(generations) / (generations - 1))  # around the trend
        smoothness.append(np.corrcoef(steps[:-1], steps[1:])[0, 1])  # white noise: about 0; a smooth walk: high
        wander.append(np.std(steps.cumsum()))
    assert min(ends) >= 0.5 and max(ends) <= 0.7 and np.ptp(ends) > 0.15  # drawn per run over the whole range
    assert max(largest_steps) < 0.08  # never more than 8% from one generation to the next
    assert np.median(smoothness) > 0.5 and np.median(wander) > 0.015


def test_a_recording_is_seeded_its_drift_and_references_in_streams_of_their_own() -> None:
    model = ResponseModel(1.0, noise="recorded")
    first, again = (Recording(model, seed=9, generations=30) for _ in range(2))
    again.observe_references(CLEAN, 0)  # the references draw from their own stream: the scores stay the same
    assert [first.gain_at(g) for g in range(30)] == [again.gain_at(g) for g in range(30)]
    np.testing.assert_array_equal(first.observe(CLEAN, 3), again.observe(CLEAN, 3))
    other = Recording(model, seed=10, generations=30)
    assert first.gain_at(29) != other.gain_at(29)
    assert Recording(ResponseModel(1.0, noise="negbin:1.5"), seed=9, generations=30).gain_at(29) == 1.0


@pytest.mark.parametrize(
    ("name", "sigma", "fano", "drift"),
    [
        ("0.5", 0.5, 1.0, False),
        ("poisson", None, 1.0, False),
        ("negbin:2", None, 2.0, False),
        ("drift", None, 1.0, True),
        ("negbin:1.2+drift", None, 1.2, True),
        ("recorded", None, 1.5, True),
    ],
)
def test_noise_models_are_named_by_what_they_do(name: str, sigma: float | None, fano: float, drift: bool) -> None:
    assert Noise.parse(name) == Noise(name, sigma=sigma, fano=fano, drift=drift)


@pytest.mark.parametrize("name", ["gaussian", "negbin:0.5", "negbin:x", "-0.1", "nan", "0.5+drift", "poisson+adapt"])
def test_an_unknown_noise_model_is_refused_naming_the_known_ones(name: str) -> None:
    with pytest.raises(ValueError, match=r"known: 0, 0\.2, 0\.5"):
        ResponseModel(1.0, noise=name)


def test_a_drifting_simulated_neuron_needs_the_session_s_length_and_drifts_one_generation_a_response(
    faces: torch.Tensor,
) -> None:
    unit = CnnUnit(UnitSpec.parse("onet.conv3.9"))
    model = ResponseModel.calibrated(unit.activation(faces), noise="drift")
    with pytest.raises(ValueError, match="planned generations"):
        SimulatedNeuron(unit, model, seed=0)
    neuron = SimulatedNeuron(unit, model, seed=0, generations=10)
    early = neuron.respond(faces[:50], repetitions=400).mean()
    for _ in range(8):
        neuron.respond(faces[:1])
    late = neuron.respond(faces[:50], repetitions=400).mean()
    assert neuron.generation == 10
    assert late / early == pytest.approx(neuron.recording.gain_at(9), rel=0.03)
