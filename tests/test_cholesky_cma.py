"""The cholesky-cma optimizer: exact state round-trip, progress, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optimizers
from optimizers import (
    CholeskyCMA,
    DuplicateCandidate,
    InvalidParameter,
    NoPendingPopulation,
    PendingPopulation,
    UnknownCandidate,
    UnknownOptimizer,
)


def sphere(codes: np.ndarray, target: float = 2.0) -> np.ndarray:
    return -np.sum((codes - target) ** 2, axis=1)


def through_json(optimizer: optimizers.Optimizer) -> optimizers.Optimizer:
    return optimizers.optimizer_from_state(json.loads(json.dumps(optimizer.state_dict())))


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    rounds=st.integers(0, 25),
    measured_fraction=st.floats(0.3, 1.0),
    reload_while_pending=st.booleans(),
)
def test_a_reloaded_optimizer_proposes_bit_identical_codes(
    seed: int, rounds: int, measured_fraction: float, reload_while_pending: bool
) -> None:
    rng = np.random.default_rng(seed)
    original = CholeskyCMA(12, population_size=8, seed=seed, sigma=0.7, factor_update_every=2)
    for _ in range(rounds):
        population = original.ask()
        keep = max(1, int(measured_fraction * len(population.ids)))
        rows = rng.permutation(len(population.ids))[:keep]
        original.tell([population.ids[i] for i in rows], sphere(population.codes[rows]) + rng.normal(size=keep))
    if reload_while_pending:
        pending = original.ask()
        reloaded = through_json(original)
        scores = sphere(pending.codes)
        original.tell(pending.ids, scores)
        reloaded.tell(pending.ids, scores)
    else:
        reloaded = through_json(original)
    assert reloaded.state_dict() == original.state_dict()
    np.testing.assert_array_equal(reloaded.ask().codes, original.ask().codes)


def test_it_improves_a_noisy_function_in_100_dimensions() -> None:
    rng = np.random.default_rng(0)
    optimizer = CholeskyCMA(100, population_size=40, seed=0, sigma=1.0)
    first_mean = None
    for _ in range(60):
        population = optimizer.ask()
        scores = sphere(population.codes, 0.5)
        first_mean = scores.mean() if first_mean is None else first_mean
        optimizer.tell(population.ids, scores + rng.normal(scale=5.0, size=len(scores)))
    final = sphere(optimizer.mean[None, :], 0.5)[0]
    assert final > 0.2 * first_mean  # about -125 for a random first sample
    assert final > 0.5 * sphere(np.zeros((1, 100)), 0.5)[0]  # better than half the start mean's -25


def test_unmeasured_candidates_are_left_out_and_nan_counts_as_the_worst() -> None:
    optimizer = CholeskyCMA(5, population_size=6, seed=1, sigma=1.0)
    population = optimizer.ask()
    optimizer.tell(population.ids[:3], [1.0, float("nan"), 3.0])
    assert optimizer.generation == 1
    assert optimizer.best_score == 3.0
    np.testing.assert_array_equal(optimizer.best_code, population.codes[2])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"mu": 0}, "mu"),
        ({"mu": 41}, "mu"),
        ({"mean": [0.0, 1.0]}, "mean"),
        ({"factor_update_every": 0}, "factor_update_every"),
        ({"learning_rate": 1.0}, "learning_rate"),
    ],
)
def test_if_invalid_parameter_is_raised_for_bad_parameters(params: dict, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        optimizers.create_optimizer("cholesky-cma", 10, population_size=40, seed=0, **params)


def test_if_tell_rejects_unknown_duplicate_and_unasked_candidates() -> None:
    optimizer = CholeskyCMA(4, population_size=4, seed=0)
    with pytest.raises(NoPendingPopulation):
        optimizer.tell([0], [1.0])
    population = optimizer.ask()
    with pytest.raises(PendingPopulation):
        optimizer.ask()
    with pytest.raises(UnknownCandidate):
        optimizer.tell([population.ids[0], 999], [1.0, 2.0])
    with pytest.raises(DuplicateCandidate):
        optimizer.tell([population.ids[0], population.ids[0]], [1.0, 2.0])
    with pytest.raises(InvalidParameter):
        optimizer.tell(list(population.ids), [1.0])
    assert optimizer.pending and optimizer.generation == 0  # nothing changed


def test_if_unknown_optimizer_names_the_known_ones() -> None:
    with pytest.raises(UnknownOptimizer, match="cholesky-cma"):
        optimizers.create_optimizer("no-such", 3, population_size=4, seed=0)


def test_if_a_state_of_another_schema_is_refused() -> None:
    state = CholeskyCMA(3, population_size=4, seed=0).state_dict()
    with pytest.raises(optimizers.IncompatibleState):
        optimizers.optimizer_from_state({**state, "schema": 99})
