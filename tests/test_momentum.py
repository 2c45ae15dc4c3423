"""sphere-cma's momentum (round 38): the sphere's maps it moves by, the move it carries, its state, and metric-cma's
pass-through across a refresh."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from evostim import optimizers
from evostim.optimizers import Host, InvalidParameter
from evostim.optimizers.geometry import exp_map, log_map, parallel_transport, unit
from evostim.optimizers.sphere_cma import SphereCMA
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
    carried = parallel_transport(vector, origin, point)
    assert abs(float(carried @ point)) < 1e-12 and np.linalg.norm(carried) == pytest.approx(np.linalg.norm(vector))
    # The move itself, carried along its own great circle, still points away from where it came from.
    np.testing.assert_allclose(parallel_transport(tangent, origin, point), -log_map(point, origin), atol=1e-12)


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
            np.testing.assert_allclose(parallel_transport(optimizer.velocity, new, old), log_map(old, new), atol=1e-12)
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
    plain = optimizers.SphereCMA.create(12, population_size=10, seed=4, mirrored=True, adapt_angle=True)
    climb(plain, target, 4)
    # Drawn by the code before momentum existed (863817d): without it a search moves exactly as it did.
    drawn_before = [101.80115476130106, -105.1307424029496, 45.541848397331925]
    np.testing.assert_array_equal(plain.ask().codes[0, :3], drawn_before)
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
    length = float(np.linalg.norm(optimizer.inner.velocity))
    in_codes = (optimizer.inner.velocity * optimizer._search.scales) @ optimizer._search.basis
    refreshed = optimizer.ask()  # new coordinates: the last move re-expressed in them, as the step-size path is
    inner, search = optimizer.inner, optimizer._search
    assert inner.mean is not None and length > 0
    expected = (search.basis @ in_codes) / search.scales
    expected -= (expected @ inner.mean) * inner.mean / float(inner.mean @ inner.mean)  # tangent at the new mean
    np.testing.assert_allclose(inner.velocity, expected * (length / np.linalg.norm(expected)), atol=1e-12)
    optimizer.tell(refreshed.ids, objective(refreshed.codes))
    restored = through_json(optimizer)
    assert isinstance(restored, optimizers.MetricCMA)
    np.testing.assert_array_equal(restored.ask().codes, optimizer.ask().codes)
    with pytest.raises(InvalidParameter, match="momentum"):
        optimizers.MetricCMA.create(DIM, population_size=8, seed=0, basis=basis(DIM, 6), momentum=1.5)


def test_what_momentum_carries_on_never_cuts_a_generation_s_own_move_and_a_jump_leaves_nothing_to_carry() -> None:
    rng = np.random.default_rng(2)
    target = unit(rng.standard_normal(12))
    moved = {}
    for momentum in (0.0, 1e-9):  # one parent, extrapolated 1.5 times, from a 90° warm-up: a move past 90°
        optimizer = SphereCMA.create(12, population_size=10, seed=5, sphere_norm=1.0, mu=1, learning_rate=1.5,
                                     warmup_generations=3, momentum=momentum)  # fmt: skip
        climb(optimizer, target, 2)
        moved[momentum] = optimizer.mean
    assert moved[0.0] is not None and moved[1e-9] is not None
    np.testing.assert_allclose(moved[1e-9], moved[0.0], atol=1e-6)
    jumper = SphereCMA.create(12, population_size=10, seed=5, sphere_norm=1.0, mirrored=True, wide_samples=2,
                              momentum=0.5)  # fmt: skip
    for _ in range(6):
        population = jumper.ask()
        scores = population.codes @ target
        wide = np.isin(np.arange(10), [0, 5])  # the wide pair (row i and its mirror i + half)
        if jumper.generation == 4:
            assert np.any(jumper.velocity)
            scores[wide] = 10.0
        jumper.tell(population.ids, scores)
        if jumper.generation == 5:
            assert not np.any(jumper.velocity)  # the mean jumped onto the wide winner: no move to carry on
