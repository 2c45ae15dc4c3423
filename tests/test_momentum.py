"""sphere-cma's momentum (round 38): the sphere's maps it moves by, the move it carries, its state, and metric-cma's
pass-through across a refresh."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from evostim import optimizers
from evostim.optimizers import Host, InvalidParameter
from evostim.optimizers.geometry import exp_map, log_map, transported, unit
from tests.test_optimizers import DIM, basis, climb, objective, through_json


def test_the_sphere_maps_invert_each_other_and_transport_keeps_a_tangent_vector_tangent_and_its_length() -> None:
    rng = np.random.default_rng(0)
    origin, point = unit(rng.standard_normal(8)), unit(rng.standard_normal(8))
    tangent = log_map(origin, point)
    assert abs(float(tangent @ origin)) < 1e-12
    assert np.linalg.norm(tangent) == pytest.approx(math.acos(float(origin @ point)))
    np.testing.assert_allclose(exp_map(origin, tangent), point, atol=1e-12)
    assert not np.any(log_map(origin, origin)) and np.array_equal(exp_map(origin, np.zeros(8)), origin)
    vector = rng.standard_normal(8)
    vector -= (vector @ origin) * origin
    carried = transported(vector, origin, point)
    assert abs(float(carried @ point)) < 1e-12 and np.linalg.norm(carried) == pytest.approx(np.linalg.norm(vector))
    # The move itself, carried along its own great circle, still points away from where it came from.
    np.testing.assert_allclose(transported(tangent, origin, point), -log_map(point, origin), atol=1e-12)


def test_momentum_carries_the_last_move_on_and_speeds_up_a_long_climb() -> None:
    rng = np.random.default_rng(7)
    target = unit(rng.standard_normal(35))
    start = list(-target + 0.3 * rng.standard_normal(35))  # far from the optimum, with a 5° step: a long climb
    reached = {}
    for momentum in (0.0, 0.5):
        optimizer = optimizers.SphereCMA.create(35, population_size=39, seed=0, sphere_norm=1.0, mean=start,
                                                angle_start=5.0, angle_end=5.0, mirrored=True,
                                                momentum=momentum)  # fmt: skip
        climb(optimizer, target, 2)
        old, carried = optimizer.mean, optimizer.velocity
        assert old is not None
        population = optimizer.ask()
        optimizer.tell(population.ids, population.codes @ target)
        new = optimizer.mean
        assert new is not None
        if momentum:  # the move is this generation's own step plus half the last move (tangent at the new mean)
            assert np.linalg.norm(carried) > 0 and abs(float(optimizer.velocity @ new)) < 1e-12
            np.testing.assert_allclose(transported(optimizer.velocity, new, old), log_map(old, new), atol=1e-12)
            own = log_map(old, new) - momentum * carried
            assert float(own @ log_map(old, target)) > 0  # what is left is still a step uphill
        else:
            assert not np.any(carried) and not np.any(optimizer.velocity)
        climb(optimizer, target, 20)
        assert optimizer.mean is not None
        reached[momentum] = float(optimizer.mean @ target)
    assert reached[0.5] > reached[0.0] + 0.1, reached


def test_momentum_is_stored_restored_and_carried_when_a_host_moves_the_mean() -> None:
    target = np.eye(12)[0]
    optimizer = optimizers.SphereCMA.create(12, population_size=10, seed=3, momentum=0.6, mirrored=True)
    climb(optimizer, target, 5)
    restored = through_json(optimizer)
    assert isinstance(restored, optimizers.SphereCMA)
    np.testing.assert_array_equal(restored.velocity, optimizer.velocity)
    climb(optimizer, target, 3)
    climb(restored, target, 3)
    np.testing.assert_array_equal(restored.ask().codes, optimizer.ask().codes)
    length = np.linalg.norm(optimizer.velocity)
    optimizer.move_mean(np.eye(12)[1])  # re-expressed coordinates: the move keeps its angle, tangent
    assert np.linalg.norm(optimizer.velocity) == pytest.approx(length) and abs(optimizer.velocity[1]) < 1e-12
    plain = optimizers.SphereCMA.create(12, population_size=10, seed=3, mirrored=True)
    told = optimizers.SphereCMA.create(12, population_size=10, seed=3, mirrored=True, momentum=0.0)
    climb(plain, target, 4)
    climb(told, target, 4)
    np.testing.assert_array_equal(told.ask().codes, plain.ask().codes)
    assert "velocity" not in json.dumps(plain.state_dict()["algorithm"])
    for refused in (1.0, -0.1):
        with pytest.raises(InvalidParameter, match="momentum"):
            optimizers.SphereCMA.create(12, population_size=10, seed=3, momentum=refused)


def test_metric_cma_passes_momentum_on_and_carries_the_last_move_across_a_refresh() -> None:
    local = np.diag(np.arange(DIM, 0, -1.0))
    optimizer = optimizers.MetricCMA.create(DIM, population_size=8, seed=0, sphere_norm=3.0, basis=basis(DIM, 6),
                                            dimensions=4, refresh_every=2, momentum=0.5,
                                            host=Host(metric_at=lambda code, window: local))  # fmt: skip
    assert isinstance(optimizer.inner, optimizers.SphereCMA) and optimizer.inner.settings["momentum"] == 0.5
    for _ in range(2):
        population = optimizer.ask()
        optimizer.tell(population.ids, objective(population.codes))
    before = (optimizer.inner.velocity * optimizer._search.scales) @ optimizer._search.basis
    refreshed = optimizer.ask()  # new coordinates: the last move points the same way among the codes
    inner = optimizer.inner
    assert inner.mean is not None and np.any(inner.velocity) and abs(float(inner.velocity @ inner.mean)) < 1e-9
    after = (inner.velocity * optimizer._search.scales) @ optimizer._search.basis
    assert float(after @ before) > 0
    optimizer.tell(refreshed.ids, objective(refreshed.codes))
    restored = through_json(optimizer)
    assert isinstance(restored, optimizers.MetricCMA)
    np.testing.assert_array_equal(restored.ask().codes, optimizer.ask().codes)
    with pytest.raises(InvalidParameter, match="momentum"):
        optimizers.MetricCMA.create(DIM, population_size=8, seed=0, basis=basis(DIM, 6), momentum=1.5)
