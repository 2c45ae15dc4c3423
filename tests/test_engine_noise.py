"""The sweep engine's noise: recorded-like neurons seeded per run, reference images, drift correction."""

from __future__ import annotations

import numpy as np
import pytest

from evostim.clients.sweeps.engine import RunResult, RunSpec, evolve
from evostim.clients.sweeps.panels import FloatArray, IntArray, SyntheticPanel

NOISES = ("poisson", "negbin:1.5", "drift", "recorded")


def _values(result: RunResult) -> tuple[list[float], ...]:
    return result.best_clean, result.best_observed, result.mean_observed, result.reference_mean


@pytest.fixture(scope="module")
def panel() -> SyntheticPanel:
    return SyntheticPanel(3, dim=64, code_norm=8.0)


def test_a_run_draws_the_same_noise_and_drift_alone_or_in_any_batch(panel: SyntheticPanel) -> None:
    specs = [
        RunSpec("cholesky-cma", unit, noise, seed, 6, population=8, references=references, drift_correction=correct)
        for unit in panel.names
        for noise in NOISES
        for seed in (0, 1)
        for references, correct in ((0, False), (4, False), (4, True))
    ]
    gains = dict.fromkeys(panel.names, 1000.0)  # tens of spikes on the bumps
    together = evolve(panel, specs, gains)
    reversed_batch = evolve(panel, specs[::-1], gains)[::-1]
    for spec, result, other in zip(specs, together, reversed_batch, strict=True):
        (alone,) = evolve(panel, [spec], gains)
        assert _values(alone) == _values(result) == _values(other), spec
        assert len(result.reference_mean) == (6 if spec.references else 0)


def test_references_without_correction_leave_what_the_optimizer_is_told_unchanged(panel: SyntheticPanel) -> None:
    plain, shown = (
        RunSpec("cholesky-cma", panel.names[0], "recorded", 3, 5, population=8, references=r) for r in (0, 6)
    )
    gains = dict.fromkeys(panel.names, 1000.0)  # tens of spikes on the bumps
    (without,), (with_references,) = evolve(panel, [plain], gains), evolve(panel, [shown], gains)
    assert without.best_observed == with_references.best_observed and without.best_code == with_references.best_code
    assert plain.key != shown.key  # references are part of a run's identity; runs without them keep their keys:
    assert RunSpec("cholesky-cma", "onet.conv3.9", "poisson", 0, 75).key == "835bb9adf8ab657a"  # as at f8641b1


@pytest.mark.parametrize(
    ("noise", "references", "message"),
    [("recorded", 0, "references >= 1"), ("0.5", 4, "spiking noise model"), ("lognormal", 0, "unknown noise")],
)
def test_a_run_that_cannot_be_measured_as_asked_is_refused(noise: str, references: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RunSpec("cholesky-cma", "u", noise, 0, 5, references=references, drift_correction=noise != "lognormal")


class _Improving:
    """A toy panel: every evolved image of generation t has the clean activation 1 + 0.005 t (+ a small spread), so
    the undrifted ranking of generations is their order; the reference images (the prior's codes, marked by a
    first coordinate of exactly 1000) always 1."""

    def __init__(self) -> None:
        self.names, self.dim, self.code_norm = ["toy"], 4, 2.0
        self.generation = -1

    def activations(self, unit_of_row: IntArray, codes: FloatArray) -> FloatArray:
        if np.all(codes[:, 0] == 1000.0):
            return np.ones(len(codes))
        self.generation += 1
        return np.asarray(1.0 + 0.005 * self.generation + 1e-4 * np.arange(len(codes)), dtype=np.float64)

    def activation_matrix(self, codes: FloatArray) -> FloatArray:
        raise NotImplementedError

    def random_codes(self, count: int, seed: int) -> FloatArray:
        return np.full((count, self.dim), 1000.0)


def _rank_correlation(values: list[float]) -> float:
    """Spearman's correlation of ``values`` with their order."""
    ranks = np.argsort(np.argsort(values))
    return float(np.corrcoef(np.arange(len(values)), ranks)[0, 1])


def test_drift_correction_takes_the_decline_out_of_what_is_told_on_a_toy() -> None:
    generations, gains = 40, {"toy": 10_000.0}  # ~10,000 spikes an image: 1% Poisson noise
    results = {}
    for correct in (False, True):
        spec = RunSpec(
            "cholesky-cma", "toy", "drift", 0, generations, population=8, references=20, drift_correction=correct
        )
        (results[correct],) = evolve(_Improving(), [spec], gains)

    # The images gain 20% over the run. Uncorrected, the decline of 30-50% outweighs it: the told scores fall and the
    # best-told image is an early one. Corrected by the references' trend (evostim.drift: shrunk towards no drift
    # early on, so not all of the decline is taken out), the told scores rise and the best-told image is a late one.
    def late_over_early(result: RunResult) -> float:
        return float(np.mean(result.mean_observed[-10:]) / np.mean(result.mean_observed[:10]))

    assert late_over_early(results[True]) > 1.0 and late_over_early(results[False]) < 0.8
    assert _rank_correlation(results[False].mean_observed) < 0.0
    last = 1.0 + 0.005 * (generations - 1)
    assert results[True].best_clean[-1] > last - 0.02 > results[False].best_clean[-1]  # the best image: a late one


def test_a_sweep_grid_takes_the_recorded_models_and_refuses_a_correction_it_cannot_make() -> None:
    from evostim.clients.sweeps.grid import SweepConfig, validated

    grid = {"units": ["bump0.k8"], "panel": "synthetic", "noise": ["recorded", "negbin:2"], "seeds": 1}
    config = SweepConfig.model_validate({**grid, "references": 4, "drift_correction": True})
    assert {(spec.noise, spec.references, spec.drift_correction) for spec in config.specs()} == {
        ("recorded", 4, True),
        ("negbin:2", 4, True),
    }
    with pytest.raises(ValueError, match="needs references >= 1"):
        validated({**grid, "drift_correction": True})
    with pytest.raises(ValueError, match="a spiking noise model"):
        validated({**grid, "noise": ["0.5"], "references": 4, "drift_correction": True})
    with pytest.raises(ValueError, match=r"noise: unknown noise model 'adapt'"):
        validated({**grid, "noise": ["adapt"]})
