"""metric-cma's restart of a search that stalls (``restart_after``, optimizers/metric_cma_restart.py)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from evostim import optimizers
from evostim.optimizers import Host, InvalidParameter
from evostim.optimizers.metric_cma_restart import RISE
from tests.test_optimizers import DIM, FloatArray, basis, objective, through_json


def flat(codes: FloatArray) -> FloatArray:
    """A neuron that never responds more to any image: the best never rises after the first generation."""
    return np.ones(len(codes))


def metric_cma(**params: Any) -> optimizers.MetricCMA:
    optimizer = optimizers.MetricCMA.create(DIM, population_size=8, seed=3, basis=basis(DIM, 5), **params)
    assert isinstance(optimizer, optimizers.MetricCMA)
    return optimizer


def step(optimizer: optimizers.MetricCMA, score: Any = objective) -> FloatArray:
    population = optimizer.ask()
    optimizer.tell(population.ids, score(population.codes))
    return population.codes


def test_a_stalled_search_begins_again_wide_at_its_mean_and_anneals_over_what_is_left() -> None:
    optimizer = metric_cma(restart_after=4, restart_angle=30, decay_generations=20)
    for _ in range(5):  # the first generation sets the best, four more without a rise
        step(optimizer, flat)
    stalled = optimizer.inner
    assert isinstance(stalled, optimizers.SphereCMA) and stalled.mean is not None
    mean, left = stalled.mean.copy(), 20 - stalled.generation
    optimizer.ask()
    fresh = optimizer.inner
    assert isinstance(fresh, optimizers.SphereCMA) and fresh is not stalled and fresh.mean is not None
    assert fresh.settings["decay_generations"] == left == 15
    assert math.isclose(fresh.settings["angle_start"], 30) and math.isclose(math.degrees(fresh.angle(left - 1)), 2)
    np.testing.assert_allclose(fresh.mean / np.linalg.norm(fresh.mean), mean / np.linalg.norm(mean))
    assert math.isclose(math.degrees(fresh.step_angle()), 30)  # its first samples drawn wide


def test_no_restart_while_the_best_rises_or_too_few_generations_are_left() -> None:
    rising = metric_cma(restart_after=3, decay_generations=30)

    def better(codes: FloatArray) -> FloatArray:  # each generation's best 2 x RISE above the last
        return np.full(len(codes), (1 + 2 * RISE) ** rising.inner.generation)

    for _ in range(12):
        step(rising, better)
    assert rising.inner.generation == 12  # one search all along: never restarted
    late = metric_cma(restart_after=4, decay_generations=9)  # a stall at generation 5 leaves 4 < 2 x 4
    for _ in range(9):
        step(late, flat)
    assert late.inner.generation == 9


def test_off_by_default_the_stored_state_and_the_codes_are_as_before() -> None:
    plain, told = metric_cma(starts=2), metric_cma(starts=2, restart_after=None)
    for _ in range(8):
        np.testing.assert_array_equal(step(plain, flat), step(told, flat))
    assert "stall" not in plain.state_dict()["algorithm"]


def test_restored_across_restarts_it_continues_bit_identically() -> None:
    host = Host(metric_at=lambda code, window: np.diag(np.arange(1.0, DIM + 1)))

    def shown(restore: bool) -> list[FloatArray]:
        optimizer: optimizers.Optimizer = optimizers.MetricCMA.create(
            DIM, population_size=8, seed=5, basis=basis(DIM, 5), host=host, starts=2, trial_generations=1,
            refresh_every=3, restart_after=2, decay_generations=24,
        )  # fmt: skip
        codes = []
        for _ in range(14):
            optimizer = through_json(optimizer) if restore else optimizer
            assert isinstance(optimizer, optimizers.MetricCMA)
            codes.append(step(optimizer, flat))
        assert "stall" in optimizer.state_dict()["algorithm"]
        return codes

    np.testing.assert_array_equal(shown(restore=True), shown(restore=False))


def test_restarts_need_sphere_cma_inside() -> None:
    with pytest.raises(InvalidParameter, match="restart_after: only with sphere-cma inside"):
        metric_cma(inner="cholesky-cma", restart_after=5)
