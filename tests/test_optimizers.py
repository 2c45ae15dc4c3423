"""Every registered optimizer: exact state round-trip, determinism, partial populations, errors, progress."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from evostim import optimizers
from evostim.optimizers import Host, InvalidParameter, Optimizer

DIM = 12


FloatArray = NDArray[np.float64]


def basis(dim: int, k: int, seed: int = 0) -> list[list[float]]:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, k)))
    rows: list[list[float]] = q.T.tolist()
    return rows


# The optimizers that search along a given basis (the generator's metric eigenvectors) and need one.
NEEDS_BASIS = ("metric-cma", "subspace")


def make(name: str, dim: int = DIM, population_size: int = 8, seed: int = 0, **params: Any) -> Optimizer:
    if name in NEEDS_BASIS:
        params.setdefault("basis", basis(dim, max(2, dim // 3)))
    return optimizers.create_optimizer(
        name, dim, population_size=population_size, seed=seed, code_norm=math.sqrt(dim), **params
    )


def objective(codes: FloatArray) -> FloatArray:
    """A smooth bump centred off the origin (to be maximized)."""
    values: FloatArray = -np.sum((codes - 0.7) ** 2, axis=1)
    return values


def through_json(optimizer: Optimizer) -> Optimizer:
    """The optimizer stored and restored, as a session does (with its host)."""
    return optimizers.optimizer_from_state(json.loads(json.dumps(optimizer.state_dict())), host=optimizer.host)


ALL = sorted(optimizers.OPTIMIZERS)


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**62),
    rounds=st.integers(0, 12),
    measured_fraction=st.floats(0.2, 1.0),
    reload_while_pending=st.booleans(),
)
def test_a_reloaded_optimizer_proposes_bit_identical_codes(
    name: str, seed: int, rounds: int, measured_fraction: float, reload_while_pending: bool
) -> None:
    rng = np.random.default_rng(seed % 2**32)
    original = make(name, seed=seed)
    for _ in range(rounds):
        population = original.ask()
        keep = max(1, int(measured_fraction * len(population.ids)))
        rows = rng.permutation(len(population.ids))[:keep]
        scores = objective(population.codes[rows]) + rng.normal(size=keep)
        scores[rng.random(keep) < 0.1] = np.nan  # a failed measurement now and then
        original.tell([population.ids[i] for i in rows], scores)
    if reload_while_pending:
        pending = original.ask()
        reloaded = through_json(original)
        scores = objective(pending.codes)
        original.tell(pending.ids, scores)
        reloaded.tell(pending.ids, scores)
    else:
        reloaded = through_json(original)
    assert reloaded.state_dict() == original.state_dict()
    for _ in range(2):
        mine, theirs = original.ask(), reloaded.ask()
        np.testing.assert_array_equal(mine.codes, theirs.codes)
        assert mine.ids == theirs.ids
        original.tell(mine.ids, objective(mine.codes))
        reloaded.tell(theirs.ids, objective(theirs.codes))


@pytest.mark.parametrize("name", ALL)
def test_two_optimizers_with_one_seed_agree_even_when_interleaved_with_others(name: str) -> None:
    first, second, other = make(name, seed=5), make(name, seed=5), make(name, seed=6)
    for _ in range(4):
        a, b, c = first.ask(), other.ask(), second.ask()
        np.testing.assert_array_equal(a.codes, c.codes)
        assert not np.array_equal(a.codes, b.codes)
        for optimizer, population in ((first, a), (other, b), (second, c)):
            optimizer.tell(population.ids, objective(population.codes))


@pytest.mark.parametrize("name", ALL)
def test_a_partial_population_is_learned_from_and_the_best_is_tracked(name: str) -> None:
    optimizer = make(name)
    population = optimizer.ask()
    scores = objective(population.codes[:3])
    optimizer.tell(population.ids[:3], scores)
    assert optimizer.generation == 1 and not optimizer.pending
    assert optimizer.best_score == scores.max()
    np.testing.assert_array_equal(optimizer.best_code, population.codes[int(np.argmax(scores))])
    assert optimizer.ask().codes.shape == (8, DIM)


@pytest.mark.parametrize("name", ALL)
def test_every_optimizer_lists_its_parameters_and_records_them_resolved(name: str) -> None:
    optimizer = make(name)
    assert set(optimizer.settings) == set(optimizers.parameter_names(type(optimizer)))
    json.dumps(optimizer.settings)  # plain data


@pytest.mark.parametrize("name", ALL)
def test_if_an_unknown_parameter_is_refused_with_the_accepted_ones(name: str) -> None:
    with pytest.raises(InvalidParameter, match="takes"):
        make(name, no_such_parameter=1)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("cholesky-cma", {"sigma": 0.0}, "sigma"),
        ("cholesky-cma", {"sigma": "wide"}, "cholesky-cma"),
        ("cholesky-cma", {"mu": 9}, "mu"),
        ("cholesky-cma", {"mean": [0.0, 1.0]}, "mean"),
        ("cholesky-cma", {"factor_update_every": 0}, "factor_update_every"),
        ("sep-cma", {"sigma": -1.0}, "sigma"),
        ("sep-cma", {"mean": [math.nan] * DIM}, "mean"),
        ("sphere-cma", {"learning_rate": 0.0}, "learning_rate"),
        ("sphere-cma", {"sphere_norm": -3.0}, "sphere_norm"),
        ("sphere-cma", {"angle_start": 190.0}, "angle_start"),
        ("sphere-cma", {"decay_generations": 0}, "decay_generations"),
        ("sphere-cma", {"mean": [0.0] * DIM}, "mean"),
        ("ga", {"mutation_rate": 1.5}, "mutation_rate"),
        ("ga", {"mutation_size": -0.1}, "mutation_size"),
        ("ga", {"selectivity": 0.0}, "selectivity"),
        ("ga", {"elites": 8}, "elites"),
        ("ga", {"heritability": 0.2}, "heritability"),
        ("subspace", {"basis": [[1.0, 0.0]]}, "shape"),
        ("subspace", {"basis": [[1.0] * DIM, [1.0] * DIM]}, "orthonormal"),
        ("subspace", {"basis": "eigenvectors"}, "basis"),
        ("subspace", {"inner": "subspace"}, "itself"),
        ("subspace", {"inner": "no-such"}, "no-such"),
        ("subspace", {"inner_params": {"sigma": 0.0}}, "sigma"),
        ("pycma", {"sigma": math.inf}, "sigma"),
    ],
)
def test_if_invalid_parameter_names_the_bad_parameter(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        make(name, **params)


def test_defaults_follow_the_space_s_code_norm_and_explicit_parameters_win() -> None:
    # fc6: d = 4,096, norm 300 -> the published values exactly.
    def fc6(name: str) -> Optimizer:
        return optimizers.create_optimizer(name, 4096, population_size=40, seed=0, code_norm=300.0)

    assert fc6("cholesky-cma").settings["sigma"] == 3.0
    assert fc6("ga").settings["mutation_size"] == 0.75
    assert fc6("sphere-cma").settings["sphere_norm"] == 300.0

    # A 100-d N(0, I) prior (norm 10): per-coordinate spread 1 instead of 300 / 64.
    def small(name: str, **params: Any) -> Optimizer:
        return optimizers.create_optimizer(name, 100, population_size=40, seed=0, code_norm=10.0, **params)

    assert small("cholesky-cma").settings["sigma"] == 0.64
    assert small("sphere-cma").settings["sphere_norm"] == 10.0
    assert small("ga", mutation_size=0.5).settings["mutation_size"] == 0.5


def test_sphere_cma_proposes_only_codes_of_the_sphere_norm_at_the_scheduled_angle() -> None:
    optimizer = optimizers.create_optimizer("sphere-cma", 50, population_size=10, seed=0, sphere_norm=7.0)
    assert isinstance(optimizer, optimizers.SphereCMA)
    for generation in range(5):
        population = optimizer.ask()
        np.testing.assert_allclose(np.linalg.norm(population.codes, axis=1), 7.0)
        if generation > 0:
            mean = optimizer.mean
            assert mean is not None
            cosines = population.codes @ mean / 49.0
            np.testing.assert_allclose(np.degrees(np.arccos(cosines)), np.degrees(optimizer.angle(generation)))
        optimizer.tell(population.ids, objective(population.codes))
    schedule = optimizers.SphereCMA.create(4, angle_start=50, angle_end=7.33, decay_generations=75)
    assert math.degrees(schedule.angle(0)) == pytest.approx(50)
    assert math.degrees(schedule.angle(74)) == pytest.approx(7.33)
    assert math.degrees(schedule.angle(500)) == pytest.approx(7.33)


def test_sphere_cma_replans_a_longer_schedule_once_the_search_outlives_its_own() -> None:
    """Past decay_generations the step goes on where the next, longer schedule stands (it widens, then anneals at
    that length); before it, the search is the unreplanned one, sample for sample."""
    replanned = optimizers.SphereCMA.create(4, angle_start=50, angle_end=2, decay_generations=37, replans=[77, 157])
    longer = optimizers.SphereCMA.create(4, angle_start=50, angle_end=2, decay_generations=77)
    assert math.degrees(replanned.angle(36)) == pytest.approx(2)
    assert [replanned.angle(g) for g in (37, 60, 76)] == [longer.angle(g) for g in (37, 60, 76)]
    assert math.degrees(replanned.angle(37)) == pytest.approx(10.43, abs=0.01)  # widened: 80-generation plan
    assert math.degrees(replanned.angle(156)) == pytest.approx(2) and replanned.angle(10**6) == replanned.angle(156)
    plain = optimizers.MetricCMA.create(DIM, population_size=8, seed=3, basis=basis(DIM, 4), decay_generations=6)
    told = optimizers.MetricCMA.create(DIM, population_size=8, seed=3, basis=basis(DIM, 4), decay_generations=6,
                                       replans=[12])  # fmt: skip
    for generation in range(8):
        first, second = plain.ask(), told.ask()
        assert np.array_equal(first.codes, second.codes) == (generation < 6)  # 6: the first replanned
        plain.tell(first.ids, objective(first.codes))
        told.tell(second.ids, objective(second.codes))
    for bad, message in (([37], "longer than decay_generations"), ([80, 79], "increasing"), ([1], "from 2")):
        with pytest.raises(InvalidParameter, match=message):
            optimizers.SphereCMA.create(4, decay_generations=37, replans=bad)


def test_sphere_cma_warms_up_at_its_warmup_angle_and_then_steps_where_its_schedule_would_have_been() -> None:
    optimizer = optimizers.create_optimizer("sphere-cma", 40, population_size=8, seed=0, sphere_norm=6.0,
                                            warmup_generations=3, warmup_angle=80.0)  # fmt: skip
    assert isinstance(optimizer, optimizers.SphereCMA)
    plain = optimizers.SphereCMA.create(40, population_size=8, seed=0, sphere_norm=6.0)
    for generation in range(5):
        population = optimizer.ask()
        if generation > 0:  # the first generation has no mean: uniform over the sphere either way
            mean = optimizer.mean
            assert mean is not None
            degrees = np.degrees(np.arccos(np.clip(population.codes @ mean / 36.0, -1, 1)))
            expected = 80.0 if generation < 3 else math.degrees(plain.angle(generation))
            np.testing.assert_allclose(degrees, expected)
        optimizer.tell(population.ids, objective(population.codes))
    told = optimizers.MetricCMA.create(DIM, population_size=6, seed=0, basis=basis(DIM, 4), warmup_generations=2)
    assert isinstance(told.inner, optimizers.SphereCMA)
    assert math.degrees(told.inner.angle(1)) == pytest.approx(90.0)
    assert told.inner.angle(2) == optimizers.SphereCMA.create(4, angle_end=2.0).angle(2)  # metric-cma's schedule


def test_sphere_cma_draws_its_wide_pairs_at_the_wide_angle_and_jumps_to_one_that_wins() -> None:
    optimizer = optimizers.create_optimizer("sphere-cma", 30, population_size=9, seed=0, sphere_norm=5.0,
                                            mirrored=True, wide_samples=2, wide_angle=80.0)  # fmt: skip
    assert isinstance(optimizer, optimizers.SphereCMA)
    first = optimizer.ask()  # no mean yet: uniform over the sphere
    optimizer.tell(first.ids, objective(first.codes))
    mean = optimizer.mean
    assert mean is not None
    population = optimizer.ask()
    degrees = np.degrees(np.arccos(np.clip(population.codes @ mean / 25.0, -1, 1)))
    wide = [0, 5]  # the first pair: row 0 and its mirror, half = 5 rows on
    np.testing.assert_allclose(degrees[wide], 80.0)
    np.testing.assert_allclose(np.delete(degrees, wide), math.degrees(optimizer.angle(1)))
    scores = np.zeros(9)
    scores[5] = 1.0  # the far image wins: the mean moves onto it, not a few degrees towards it
    optimizer.tell(population.ids, scores)
    np.testing.assert_allclose(np.asarray(optimizer.mean), population.codes[5])
    for winners in ([2], [0, 2]):  # a near one wins, or ties a far one: the usual recombination, no jump
        near = optimizer.ask()
        scores = np.zeros(9)
        scores[winners] = 1.0
        optimizer.tell(near.ids, scores)
        moved = np.asarray(optimizer.mean)
        assert not np.allclose(moved, near.codes[0]) and not np.allclose(moved, near.codes[2])
    with pytest.raises(InvalidParameter, match=r"wide_samples=9 leaves no sample of the 9"):
        optimizers.create_optimizer("sphere-cma", 30, population_size=9, seed=0, wide_samples=9)
    told = optimizers.MetricCMA.create(DIM, population_size=9, seed=0, basis=basis(DIM, 4), wide_samples=2)
    assert isinstance(told.inner, optimizers.SphereCMA)  # 8 inner samples (the mean is the 9th): rows 0 and 4 wide
    first = told.ask()
    told.tell(first.ids, objective(first.codes))
    told.ask()
    inner_mean = told.inner.mean
    assert inner_mean is not None
    cosines = told.inner.pending_codes @ inner_mean / np.linalg.norm(inner_mean) ** 2
    np.testing.assert_allclose(np.degrees(np.arccos(np.clip(cosines[[0, 4]], -1, 1))), 90.0, atol=1e-6)


def test_sphere_cma_mirrored_draws_tangent_steps_in_opposite_pairs_at_the_scheduled_angle() -> None:
    optimizer = optimizers.create_optimizer("sphere-cma", 30, population_size=7, seed=0, sphere_norm=5.0,
                                            mirrored=True)  # fmt: skip
    assert isinstance(optimizer, optimizers.SphereCMA)
    first = optimizer.ask()  # uniform over the sphere: no mean to mirror about yet
    optimizer.tell(first.ids, objective(first.codes))
    mean = optimizer.mean
    assert mean is not None
    codes = optimizer.ask().codes
    np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 5.0)
    # Sample i and i + 4 are mirror images about the mean: their sum is along it (the 7th has no mirror).
    expected = 2 * math.cos(optimizer.angle(1)) * mean
    np.testing.assert_allclose(codes[:3] + codes[4:7], np.repeat(expected[None, :], 3, axis=0), atol=1e-12)
    assert not np.allclose(codes[3] + codes[0], expected)
    plain = optimizers.create_optimizer("sphere-cma", 30, population_size=7, seed=0, sphere_norm=5.0)
    plain.tell(plain.ask().ids, objective(first.codes))  # the same first generation and mean, unmirrored
    unmirrored = plain.ask().codes
    assert not np.allclose(unmirrored[:3] + unmirrored[4:7], expected)


def climb(optimizer: Optimizer, target: np.ndarray, generations: int) -> None:
    for _ in range(generations):
        population = optimizer.ask()
        optimizer.tell(population.ids, population.codes @ target)


def test_sphere_cma_adapting_its_angle_widens_a_step_too_short_for_the_climb_and_holds_it_without_signal() -> None:
    rng = np.random.default_rng(7)
    target = rng.standard_normal(35)
    target /= np.linalg.norm(target)
    start = list(-target + 0.3 * rng.standard_normal(35))  # far from the optimum, with a 5° step: a long climb
    reached = {}
    for adapt in (False, True):
        optimizer = optimizers.SphereCMA.create(35, population_size=39, seed=0, sphere_norm=1.0, mean=start,
                                                angle_start=5.0, angle_end=2.0, mirrored=True,
                                                adapt_angle=adapt)  # fmt: skip
        climb(optimizer, target, 40)
        assert optimizer.mean is not None
        reached[adapt] = float(optimizer.mean @ target)
        codes = optimizer.ask().codes  # the samples are drawn at the adapted angle, still on the sphere
        np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 1.0)
        np.testing.assert_allclose(np.degrees(np.arccos(codes @ optimizer.mean)), np.degrees(optimizer.step_angle()))
        if adapt:
            assert math.degrees(optimizer.step_angle()) > 2 * math.degrees(optimizer.angle(optimizer.generation))
    assert reached[True] > 0.95 and reached[False] < reached[True] - 0.2, reached
    # Random scores: the path's squared length is, in expectation, what random selection gives; the factor stays near 1.
    factors = []
    for seed in range(8):
        noise = optimizers.SphereCMA.create(35, population_size=39, seed=seed, mirrored=True, adapt_angle=True)
        scores = np.random.default_rng(seed)
        for _ in range(40):
            population = noise.ask()
            noise.tell(population.ids, scores.standard_normal(len(population.ids)))
        factors.append(noise.step_angle() / noise.angle(noise.generation))
    assert 0.5 < float(np.exp(np.mean(np.log(factors)))) < 1.5


def test_sphere_cma_adapting_its_angle_restores_its_path_and_factor_and_keeps_the_path_tangent() -> None:
    target = np.eye(12)[0]
    optimizer = optimizers.SphereCMA.create(12, population_size=10, seed=3, adapt_angle=True, angle_start=10.0)
    climb(optimizer, target, 6)
    assert optimizer.mean is not None
    assert abs(float(optimizer.path @ optimizer.mean)) < 1e-9 and np.linalg.norm(optimizer.path) > 0
    restored = through_json(optimizer)
    assert isinstance(restored, optimizers.SphereCMA)
    np.testing.assert_array_equal(restored.ask().codes, optimizer.ask().codes)
    length = np.linalg.norm(optimizer.path)
    optimizer.move_mean(np.eye(12)[1])  # a host re-expressed its coordinates: the path keeps its length, tangent
    assert np.linalg.norm(optimizer.path) == pytest.approx(length) and abs(optimizer.path[1]) < 1e-12
    damped = optimizers.SphereCMA.create(12, population_size=10, seed=3, adapt_angle=True, angle_start=10.0,
                                         adapt_damping=4.0)  # fmt: skip
    climb(damped, target, 6)
    scheduled = damped.angle(damped.generation)
    assert 0 < abs(math.log(damped.step_angle() / scheduled)) < abs(math.log(restored.step_angle() / scheduled))
    plain = optimizers.SphereCMA.create(12, population_size=10, seed=3, angle_start=10.0)
    climb(plain, target, 6)
    assert not np.any(plain.path) and plain.step_angle() == plain.angle(plain.generation)


def tangent_cosines(codes: FloatArray, mean: FloatArray, direction: FloatArray) -> FloatArray:
    """|cos| between each code's tangent step from ``mean`` (on the unit sphere) and ``direction``."""
    steps = codes - np.outer(codes @ mean, mean)
    cosines: FloatArray = np.abs(steps @ direction) / (np.linalg.norm(steps, axis=1) * np.linalg.norm(direction))
    return cosines


def test_sphere_cma_screening_shows_mirrored_lines_aligned_with_the_responses_fitted_slope() -> None:
    target = np.eye(35)[0]
    screened = optimizers.SphereCMA.create(35, population_size=40, seed=1, sphere_norm=1.0, mirrored=True, screen=4)
    plain = optimizers.SphereCMA.create(35, population_size=40, seed=1, sphere_norm=1.0, mirrored=True)
    assert not np.any(screened.slope)  # nothing fitted before the first generation is told
    climb(screened, target, 3)
    climb(plain, target, 3)
    mean, slope = screened.mean, screened.slope
    assert mean is not None and plain.mean is not None
    assert abs(float(slope @ mean)) < 1e-9 and np.linalg.norm(slope) == pytest.approx(1.0)  # a unit tangent
    uphill = target - (target @ mean) * mean  # the responses' gradient along the sphere at the mean
    assert float(slope @ uphill) / np.linalg.norm(uphill) > 0.8
    codes = screened.ask().codes
    pair_sum = 2 * math.cos(screened.step_angle()) * mean  # still mirrored pairs (t, -t) about the mean
    np.testing.assert_allclose(codes[:20] + codes[20:], np.repeat(pair_sum[None, :], 20, axis=0), atol=1e-12)
    shown = tangent_cosines(codes, mean, slope).mean()
    unscreened = tangent_cosines(plain.ask().codes, plain.mean, slope).mean()
    assert shown > 1.5 * unscreened, (shown, unscreened)
    screened.tell(screened.pending_ids, codes @ target)
    restored = through_json(screened)
    assert isinstance(restored, optimizers.SphereCMA)
    np.testing.assert_array_equal(restored.slope, screened.slope)
    np.testing.assert_array_equal(restored.ask().codes, screened.ask().codes)
    length = np.linalg.norm(screened.slope)
    screened.move_mean(np.eye(35)[1])  # a host re-expressed its coordinates: the slope keeps its length, tangent
    assert np.linalg.norm(screened.slope) == pytest.approx(length) and abs(screened.slope[1]) < 1e-12
    for screen in (0, 65):
        with pytest.raises(InvalidParameter, match="screen"):
            optimizers.SphereCMA.create(35, population_size=40, seed=1, screen=screen)


def test_sphere_cma_without_screening_draws_and_stores_exactly_what_it_did_before() -> None:
    target = np.eye(12)[0]
    told = optimizers.SphereCMA.create(12, population_size=10, seed=4, mirrored=True, screen=1)
    default = optimizers.SphereCMA.create(12, population_size=10, seed=4, mirrored=True)
    climb(told, target, 4)
    climb(default, target, 4)
    np.testing.assert_array_equal(told.ask().codes, default.ask().codes)
    assert "slope" not in json.dumps(default.state_dict()["algorithm"]) and not np.any(default.slope)


def test_metric_cma_passes_screen_on_and_carries_the_slope_across_a_refresh() -> None:
    local = np.diag(np.arange(DIM, 0, -1.0))
    optimizer = optimizers.MetricCMA.create(DIM, population_size=8, seed=0, sphere_norm=3.0, basis=basis(DIM, 6),
                                            dimensions=4, refresh_every=2, screen=3,
                                            host=Host(metric_at=lambda code, window: local))  # fmt: skip
    assert isinstance(optimizer.inner, optimizers.SphereCMA) and optimizer.inner.settings["screen"] == 3
    for _ in range(2):
        population = optimizer.ask()
        optimizer.tell(population.ids, objective(population.codes))
    slope_in_codes = (optimizer.inner.slope / optimizer._search.scales) @ optimizer._search.basis
    refreshed = optimizer.ask()  # new coordinates, the same gradient in them as far as they span it
    inner = optimizer.inner
    assert inner.mean is not None and np.any(inner.slope) and abs(float(inner.slope @ inner.mean)) < 1e-9
    carried = (inner.slope / optimizer._search.scales) @ optimizer._search.basis
    assert float(carried @ slope_in_codes) > 0
    optimizer.tell(refreshed.ids, objective(refreshed.codes))
    restored = through_json(optimizer)
    assert isinstance(restored, optimizers.MetricCMA)
    np.testing.assert_array_equal(restored.ask().codes, optimizer.ask().codes)


def test_ga_conserves_its_elites_into_the_next_generation() -> None:
    optimizer = optimizers.create_optimizer("ga", 6, population_size=10, seed=0, elites=3)
    population = optimizer.ask()
    scores = objective(population.codes)
    optimizer.tell(population.ids, scores)
    best_three = population.codes[np.argsort(-scores)[:3]]
    np.testing.assert_array_equal(optimizer.ask().codes[:3], best_three)


def test_subspace_codes_lie_in_the_span_of_the_basis_around_the_center() -> None:
    rows = np.array(basis(20, 4, seed=3))
    center = np.linspace(-1, 1, 20)
    optimizer = optimizers.create_optimizer(
        "subspace", 20, population_size=6, seed=0, basis=rows.tolist(), center=center.tolist(), inner="sep-cma"
    )
    codes = optimizer.ask().codes - center
    np.testing.assert_allclose(codes - (codes @ rows.T) @ rows, 0.0, atol=1e-12)


def test_the_low_rank_cholesky_factor_follows_the_dense_covariance_update() -> None:
    """A^T A must equal C after (1 - c1) C + c1 pc pc^T updates, and A^-1 must invert A."""
    optimizer = optimizers.CholeskyCMA.create(6, population_size=8, seed=2, sigma=0.5, factor_update_every=1)
    covariance = np.eye(6)
    for _ in range(15):
        population = optimizer.ask()
        optimizer.tell(population.ids, objective(population.codes))
        pc = optimizer._pc  # the path the update used
        covariance = (1 - optimizer._c1) * covariance + optimizer._c1 * np.outer(pc, pc)
    np.testing.assert_allclose(optimizer.factor.T @ optimizer.factor, covariance, atol=1e-12)
    np.testing.assert_allclose(optimizer.factor @ optimizer.factor_inverse, np.eye(6), atol=1e-12)


def test_the_default_beats_random_search_on_a_noisy_function_of_few_relevant_directions() -> None:
    """200 dims, 10 of them relevant, heavy multiplicative noise, 1,200 evaluations per run."""
    dim, relevant, generations = 200, 10, 30
    wins = 0
    for seed in range(5):
        rng = np.random.default_rng(seed)
        projection = np.linalg.qr(rng.standard_normal((dim, relevant)))[0]
        target = rng.standard_normal(relevant) * 1.5

        def clean(codes: FloatArray, projection: FloatArray = projection, target: FloatArray = target) -> FloatArray:
            values: FloatArray = np.exp(-0.5 * np.sum((codes @ projection - target) ** 2, axis=1) / 4.0)
            return values

        optimizer = optimizers.create_optimizer(
            optimizers.DEFAULT_OPTIMIZER, dim, population_size=40, seed=seed, code_norm=math.sqrt(dim)
        )
        best_clean_found = -np.inf
        for _ in range(generations):
            population = optimizer.ask()
            truth = clean(population.codes)
            noisy = truth * np.maximum(0.0, 1 + 0.5 * rng.standard_normal(len(truth)))
            optimizer.tell(population.ids, noisy)
            best_clean_found = max(best_clean_found, float(truth[np.argmax(noisy)]))
        random_codes = rng.standard_normal((40 * generations, dim))
        random_truth = clean(random_codes)
        random_noisy = random_truth * np.maximum(0.0, 1 + 0.5 * rng.standard_normal(len(random_truth)))
        wins += best_clean_found > random_truth[np.argmax(random_noisy)]
    assert wins >= 4


def test_if_tell_rejects_unknown_duplicate_and_unasked_candidates() -> None:
    optimizer = optimizers.CholeskyCMA.create(4, population_size=4, seed=0)
    with pytest.raises(optimizers.NoPendingPopulation):
        optimizer.tell([0], [1.0])
    population = optimizer.ask()
    with pytest.raises(optimizers.PendingPopulation):
        optimizer.ask()
    with pytest.raises(optimizers.UnknownCandidate):
        optimizer.tell([population.ids[0], 999], [1.0, 2.0])
    with pytest.raises(optimizers.DuplicateCandidate):
        optimizer.tell([population.ids[0], population.ids[0]], [1.0, 2.0])
    with pytest.raises(InvalidParameter):
        optimizer.tell(list(population.ids), [1.0])
    assert optimizer.pending and optimizer.generation == 0  # nothing changed


def test_if_unknown_optimizer_names_the_known_ones() -> None:
    with pytest.raises(optimizers.UnknownOptimizer, match="cholesky-cma"):
        optimizers.create_optimizer("no-such", 3, population_size=4, seed=0)


def test_if_a_state_of_another_schema_is_refused() -> None:
    state = optimizers.CholeskyCMA.create(3, population_size=4, seed=0).state_dict()
    with pytest.raises(optimizers.IncompatibleState):
        optimizers.optimizer_from_state({**state, "schema": 99})


def test_metric_cma_shows_codes_on_the_sphere_in_the_span_of_the_top_directions_with_the_mean_among_them() -> None:
    rows = np.array(basis(20, 6, seed=4))
    optimizer = optimizers.MetricCMA.create(
        20, population_size=8, seed=0, sphere_norm=3.0, basis=rows.tolist(), dimensions=4,
        eigenvalues=[8.0, 4.0, 2.0, 1.0, 0.5, 0.25], exponent=-0.5, inner="cholesky-cma",
    )  # fmt: skip
    codes = optimizer.ask().codes
    np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 3.0)
    top = rows[:4]
    np.testing.assert_allclose(codes - (codes @ top.T) @ top, 0.0, atol=1e-12)  # only the top 4 directions
    inner = optimizer.inner.pending_codes  # whitened: direction i's step is scaled by (eigenvalue_i / 8) ** -0.5
    expected = (inner * np.array([1.0, 2.0**0.5, 2.0, 8.0**0.5])) @ top
    np.testing.assert_allclose(codes[:7], 3.0 * expected / np.linalg.norm(expected, axis=1, keepdims=True))
    mean = optimizer.inner.mean @ top  # the last candidate is the inner mean's own code (the zero code at first:
    assert np.allclose(mean, 0.0) and np.allclose(codes[7], 3.0 * top[0])  # shown as the top direction)


def test_metric_cma_on_its_default_inner_sphere_search_starts_uniform_and_then_shows_the_mean_direction() -> None:
    rows = np.array(basis(20, 6, seed=5))
    optimizer = optimizers.MetricCMA.create(20, population_size=8, seed=1, sphere_norm=3.0, basis=rows)
    inner = optimizer.inner
    assert isinstance(inner, optimizers.SphereCMA) and optimizer.settings["exponent"] == -0.25
    assert optimizer.settings["angle_end"] == 2.0 and math.degrees(inner.angle(74)) == pytest.approx(2.0)
    assert optimizer.settings["mirrored"] is True and inner.settings["mirrored"] is True
    population = optimizer.ask()
    np.testing.assert_allclose(np.linalg.norm(population.codes, axis=1), 3.0)
    optimizer.tell(population.ids, objective(population.codes))
    mean = optimizer.inner.mean
    assert mean is not None
    shown = optimizer.ask().codes[-1]  # the last candidate: the inner mean's direction, on the sphere
    np.testing.assert_allclose(shown, 3.0 * (mean @ rows) / np.linalg.norm(mean @ rows))


def test_metric_cma_tells_its_inner_search_only_the_samples_and_shows_an_unmeasured_generation_again() -> None:
    optimizer = optimizers.MetricCMA.create(DIM, population_size=6, seed=0, basis=basis(DIM, 4))
    population = optimizer.ask()
    optimizer.tell([population.ids[-1]], [5.0])  # only the mean candidate measured: nothing for the inner search
    assert optimizer.inner.pending and optimizer.best_score == 5.0
    again = optimizer.ask()
    np.testing.assert_array_equal(again.codes, population.codes)
    optimizer.tell(again.ids[:3], objective(again.codes[:3]))
    assert optimizer.inner.generation == 1 and not optimizer.inner.pending


def test_metric_cma_passes_its_angular_schedule_to_sphere_cma_inside_and_refuses_it_for_cholesky_cma() -> None:
    rows = basis(DIM, 4)
    optimizer = optimizers.MetricCMA.create(DIM, population_size=6, seed=0, basis=rows, angle_end=3.0,
                                            decay_generations=10)  # fmt: skip
    inner = optimizer.inner
    assert isinstance(inner, optimizers.SphereCMA)
    assert math.degrees(inner.angle(9)) == pytest.approx(3.0) and math.degrees(inner.angle(0)) == pytest.approx(50.0)
    with pytest.raises(InvalidParameter, match=r"angle_end: only with sphere-cma inside"):
        optimizers.MetricCMA.create(DIM, population_size=6, seed=0, basis=rows, inner="cholesky-cma", angle_end=3.0)
    told = optimizers.MetricCMA.create(DIM, population_size=6, seed=0, basis=rows, angle_start=30.0,
                                       learning_rate=2.0, mu=2)  # fmt: skip
    assert isinstance(told.inner, optimizers.SphereCMA) and math.degrees(told.inner.angle(0)) == pytest.approx(30.0)
    assert told.inner.settings["learning_rate"] == 2.0 and told.inner.settings["mu"] == 2
    adapting = optimizers.MetricCMA.create(DIM, population_size=6, seed=0, basis=rows, adapt_angle=True,
                                           adapt_damping=4.0)  # fmt: skip
    assert adapting.inner.settings["adapt_angle"] is True and adapting.inner.settings["adapt_damping"] == 4.0
    unmirrored = optimizers.MetricCMA.create(DIM, population_size=6, seed=0, basis=rows, mirrored=False)
    assert unmirrored.inner.settings["mirrored"] is False and unmirrored.settings["mirrored"] is False
    with pytest.raises(InvalidParameter, match=r"learning_rate: only with sphere-cma inside"):
        optimizers.MetricCMA.create(DIM, population_size=6, seed=0, basis=rows, inner="cholesky-cma", learning_rate=2)


def test_a_metric_cma_state_stored_before_mirrored_steps_were_its_default_restores_unmirrored() -> None:
    optimizer = optimizers.MetricCMA.create(DIM, population_size=6, seed=0, basis=basis(DIM, 4))
    state = copy.deepcopy(optimizer.state_dict())
    del state["settings"]["mirrored"], state["algorithm"]["inner"]["settings"]["mirrored"]  # as stored then
    restored = optimizers.optimizer_from_state(state)
    assert isinstance(restored, optimizers.MetricCMA)
    assert restored.inner.settings["mirrored"] is False and restored.settings["mirrored"] is False


def test_metric_cma_refreshed_at_its_mean_keeps_the_mean_and_searches_the_metric_there_from_then_on() -> None:
    local = np.diag(np.arange(DIM, 0, -1.0))  # the metric at any code: coordinate 0 changes the image most
    optimizer = optimizers.MetricCMA.create(DIM, population_size=8, seed=0, sphere_norm=3.0, basis=basis(DIM, 6),
                                            dimensions=4, refresh_every=2)  # fmt: skip
    assert [need.active(optimizer.settings) for need in optimizer.needs] == [True]  # the metric at a code
    first = optimizer.ask()  # the given basis: no metric needed yet
    optimizer.tell(first.ids, objective(first.codes))
    mean_before = optimizer.ask().codes[-1]  # the mean candidate, in the given basis
    optimizer.tell(optimizer.pending_ids, objective(optimizer.pending_codes))
    with pytest.raises(InvalidParameter, match=r"needs the generator's metric"):
        optimizer.ask()  # a refresh is due and its host (none) gave no metric
    optimizer = optimizers.MetricCMA.from_state(optimizer.state_dict(), host=Host(metric_at=lambda code, window: local))
    inner_mean = optimizer.inner.mean
    assert inner_mean is not None
    mean_code = optimizer._codes(inner_mean[None])[0]  # where the mean is, in the given basis
    codes = optimizer.ask().codes
    np.testing.assert_allclose(codes[-1], mean_code, atol=1e-12)  # the mean stays where it was
    assert not np.allclose(mean_code, mean_before)
    span, _ = np.linalg.qr(np.vstack([mean_code, np.eye(DIM)[:3]]).T)  # the mean's direction and the local top 3
    np.testing.assert_allclose(codes - (codes @ span) @ span.T, 0.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 3.0)
    optimizer.tell(optimizer.pending_ids, objective(codes))
    restored = through_json(optimizer)
    assert isinstance(restored, optimizers.MetricCMA)
    np.testing.assert_array_equal(restored.ask().codes, optimizer.ask().codes)  # the refreshed basis is in its state
    with pytest.raises(InvalidParameter, match=r"refresh_every: only with sphere-cma inside"):
        optimizers.MetricCMA.create(DIM, population_size=8, seed=0, basis=basis(DIM, 4), inner="cholesky-cma",
                                    refresh_every=5)  # fmt: skip


def test_metric_cma_refreshes_with_the_metric_of_its_window() -> None:
    asked: list[float | None] = []

    def metric_at(code: np.ndarray, window: float | None) -> np.ndarray:
        asked.append(window)
        return np.diag(np.arange(DIM, 0, -1.0))

    for window in (None, 0.125):
        optimizer = optimizers.MetricCMA.create(DIM, population_size=8, seed=0, sphere_norm=3.0, basis=basis(DIM, 6),
                                                dimensions=4, refresh_every=1, window=window,
                                                host=Host(metric_at=metric_at))  # fmt: skip
        first = optimizer.ask()
        optimizer.tell(first.ids, objective(first.codes))
        optimizer.ask()  # refreshed
        assert asked[-1] == window
        assert through_json(optimizer).settings["window"] == window  # a session restores it
    with pytest.raises(InvalidParameter, match=r"window must be"):
        optimizers.MetricCMA.create(DIM, population_size=8, seed=0, basis=basis(DIM, 4), window=0.0)


def test_metric_cma_steps_by_start_exponent_in_the_given_basis_and_by_exponent_once_refreshed() -> None:
    rows = np.array(basis(DIM, 6))
    local = np.diag(np.arange(DIM, 0, -1.0) ** 2)  # the metric at any code: steep along coordinate 0
    optimizer = optimizers.MetricCMA.create(DIM, population_size=8, seed=0, sphere_norm=3.0, basis=rows, dimensions=3,
                                            eigenvalues=[16.0, 4.0, 1.0], exponent=-0.5, start_exponent=0.0,
                                            refresh_every=1,
                                            host=Host(metric_at=lambda code, window: local))  # fmt: skip
    first = optimizer.ask()  # equal steps along the given directions (start_exponent 0), not whitened ones
    expected = optimizer.inner.pending_codes @ rows[:3]
    np.testing.assert_allclose(first.codes[:7], 3.0 * expected / np.linalg.norm(expected, axis=1, keepdims=True))
    optimizer.tell(first.ids, objective(first.codes))
    optimizer.ask()  # refreshed: the local directions' steps are whitened by exponent -0.5
    across = optimizer._search.basis[1:]
    metric_there = np.einsum("id,de,ie->i", across, local, across)
    np.testing.assert_allclose(optimizer._search.scales[1:], (metric_there / metric_there.max()) ** -0.5)
    with pytest.raises(InvalidParameter, match=r"start_exponent needs refresh_every"):
        optimizers.MetricCMA.create(DIM, population_size=8, seed=0, basis=rows, start_exponent=0.0)


def test_metric_cma_shows_the_mean_as_often_as_asked_and_tells_its_inner_search_the_samples_only() -> None:
    optimizer = optimizers.MetricCMA.create(DIM, population_size=8, seed=0, basis=basis(DIM, 4), mean_repeats=3)
    population = optimizer.ask()
    optimizer.tell(population.ids, objective(population.codes))
    codes = optimizer.ask().codes
    assert optimizer.inner.population_size == 5
    np.testing.assert_array_equal(codes[5:], np.repeat(codes[-1:], 3, axis=0))
    mean = optimizer.inner.mean
    assert mean is not None and not np.allclose(codes[4], codes[-1])
    with pytest.raises(InvalidParameter, match=r"^showing the mean 7 times needs population_size >= 9$"):
        optimizers.MetricCMA.create(DIM, population_size=8, seed=0, basis=basis(DIM, 4), mean_repeats=7)


def test_metric_cma_with_two_starts_shows_them_in_turn_then_goes_on_with_the_one_that_scored_highest() -> None:
    optimizer = optimizers.MetricCMA.create(DIM, population_size=8, seed=0, basis=basis(DIM, 4), starts=2,
                                            trial_generations=2)  # fmt: skip
    alone = optimizers.MetricCMA.create(DIM, population_size=8, seed=0, basis=basis(DIM, 4))
    shown: list[Optimizer] = []
    best: dict[int, float] = {}
    codes: list[FloatArray] = []
    for generation in range(4):
        if generation == 1:  # mid-trial a session restores both searches and which one shows next
            restored = through_json(optimizer)
            np.testing.assert_array_equal(restored.ask().codes, optimizer.ask().codes)
        else:
            optimizer.ask()
        population = optimizer.pending_codes
        codes.append(population)
        inner = optimizer.inner
        shown.append(inner)
        scores = objective(population)
        best[id(inner)] = max(best.get(id(inner), -np.inf), scores.max())
        optimizer.tell(optimizer.pending_ids, scores)
    first, second = shown[0], shown[1]
    assert first is not second and shown[2] is first and shown[3] is second  # in turn, two generations each
    assert first.generation == second.generation == 2
    np.testing.assert_array_equal(codes[0], alone.ask().codes)  # the first search draws as a lone one does
    assert not np.allclose(codes[1][:7], codes[0][:7])  # the second its own
    optimizer.ask()
    winner = first if best[id(first)] >= best[id(second)] else second
    assert optimizer.inner is winner and winner.generation == 2  # goes on from where its trial left it
    state = optimizer.state_dict()["algorithm"]
    assert "searches" not in state  # one search left: stored as a one-start search is
    np.testing.assert_array_equal(through_json(optimizer).pending_codes, optimizer.pending_codes)


@pytest.mark.parametrize("starts", [1, 2])
def test_metric_cma_restored_after_its_refreshes_continues_bit_identically(starts: int) -> None:
    rng = np.random.default_rng(5)
    spread = rng.standard_normal((DIM, DIM))
    local = spread @ spread.T + np.eye(DIM)  # the metric at any code: not diagonal, so the layout matters

    def shown(restore: bool) -> list[FloatArray]:
        optimizer = optimizers.MetricCMA.create(DIM, population_size=9, seed=11, basis=basis(DIM, 6),
                                                refresh_every=2, starts=starts, trial_generations=1,
                                                host=Host(metric_at=lambda code, window: local))  # fmt: skip
        codes = []
        for _ in range(8):
            if restore:
                restored = through_json(optimizer)
                assert isinstance(restored, optimizers.MetricCMA)
                optimizer = restored
            population = optimizer.ask()
            codes.append(population.codes)
            optimizer.tell(population.ids, objective(population.codes))
        return codes

    np.testing.assert_array_equal(shown(restore=True), shown(restore=False))


def test_metric_cma_refuses_more_starts_than_it_keeps() -> None:
    with pytest.raises(InvalidParameter, match=r"starts must be an integer <= 10, got 11"):
        optimizers.MetricCMA.create(DIM, population_size=8, seed=0, basis=basis(DIM, 4), starts=11)


def test_metric_cma_sessions_search_20_directions_of_the_refreshed_metric_and_a_lab_basis_keeps_its_35() -> None:
    host = Host(generator="g", latent_dim=DIM, metric_at=lambda code, window: np.eye(DIM))
    assert optimizers.MetricCMA.session_defaults({}, host)["dimensions"] == 20  # round 47
    assert optimizers.MetricCMA.session_defaults({"dimensions": 30}, host)["dimensions"] == 30
    lab = optimizers.MetricCMA.session_defaults({"basis": basis(DIM, 4)}, host)
    named = optimizers.MetricCMA.session_defaults({"basis": "g.metric"}, host)
    no_refresh = optimizers.MetricCMA.session_defaults({}, Host(generator="g", latent_dim=DIM, metric_at=None))
    told_not_to = optimizers.MetricCMA.session_defaults({"refresh_every": None}, host)
    cholesky_inside = optimizers.MetricCMA.session_defaults({"inner": "cholesky-cma"}, host)
    for params in (lab, named, no_refresh, told_not_to, cholesky_inside):
        assert "dimensions" not in params  # the parameter's own: 35
    assert optimizers.MetricCMA.parameters().dimensions == 35


def test_metric_cma_session_schedule_ends_at_the_planned_last_generation_and_old_states_keep_75() -> None:
    from evostim.optimizers.metric_cma import schedule_length

    assert [schedule_length(n, 2) for n in (20, 40, 75)] == [37, 37, 72]  # the winner shows n - 3 (n >= 40)
    assert schedule_length(40, 3, 2) == 36 and schedule_length(2, 4) == 31 and schedule_length(3, 11, 4) == 1
    host = Host(generator="g", latent_dim=DIM, metric_at=lambda code, window: np.eye(DIM))
    planned = optimizers.MetricCMA.session_defaults({}, host, generations=20)
    assert planned["decay_generations"] == 37 and "decay_generations" not in optimizers.MetricCMA.session_defaults(
        {}, host
    )
    assert "decay_generations" not in optimizers.MetricCMA.session_defaults({}, host, generations=40)  # round 30
    optimizer = optimizers.MetricCMA.create(DIM, population_size=8, seed=0, basis=basis(DIM, 4), starts=2,
                                            trial_generations=3, decay_generations=37)  # fmt: skip
    for _ in range(40):
        population = optimizer.ask()
        optimizer.tell(population.ids, objective(population.codes))
    inner = optimizer.inner
    assert isinstance(inner, optimizers.SphereCMA) and inner.generation == 37
    assert math.isclose(math.degrees(inner.angle(36)), 2.0)  # annealed at the session's last generation
    old = optimizers.MetricCMA.create(DIM, population_size=8, seed=0, basis=basis(DIM, 4))
    state = json.loads(json.dumps(old.state_dict()))
    assert state["settings"]["decay_generations"] is None  # a state stored before sessions set it
    restored = optimizers.optimizer_from_state(state)
    assert isinstance(restored, optimizers.MetricCMA) and restored.inner.settings["decay_generations"] == 75
