"""Every registered optimizer at and beyond the bounds its parameters declare: inside them it takes generations (finite
codes a generator can decode, a finite summary), beyond them it is refused naming the parameter, and no value at all,
however extreme, builds an optimizer that fails at its first update (issue #34: a session that can never advance)."""

from __future__ import annotations

import math
import typing
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from evostim import optimizers
from evostim.optimizers import Context, Host, InvalidParameter, Optimizer
from evostim.optimizers.checks import MAX_SCALE, Bounds, declared_bounds
from evostim.optimizers.parameters import ParameterSpec
from tests.test_optimizers import DIM, NEEDS_BASIS, basis

ALL = sorted(optimizers.OPTIMIZERS)
CONTEXT = Context(dim=DIM, population_size=8)  # as build() builds them
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Values a client may send for any number: the extremes of floats and integers, tiny, zero, negative.
EXTREMES: list[float | int] = [1e300, -1e300, 1e200, 1e33, 1e20, 1e10, 1e7, 1e-300, 1e-7, 0, 0.0, -1.0, 10**400, 2**63]


def _metric_at(code: NDArray[np.float64], window: float | None) -> NDArray[np.float64]:
    """A smooth metric (d, d) that changes with the code, for metric-cma's refreshes."""
    values: NDArray[np.float64] = np.diag(np.arange(1.0, DIM + 1)) + np.outer(np.cos(code), np.cos(code))
    return values


HOST = Host(generator="test", latent_dim=DIM, metric_at=_metric_at)


def build(name: str, **params: Any) -> Optimizer:
    """The optimizer as a session builds it: the space's defaults, the client's parameters passed as a mapping."""
    if name in NEEDS_BASIS:
        params.setdefault("basis", basis(DIM, 4))
    return optimizers.create_optimizer(
        name, DIM, population_size=8, seed=0, code_norm=math.sqrt(DIM), host=HOST, params=params
    )


def takes_generations(optimizer: Optimizer, generations: int = 3, scale: float = 1e4) -> None:
    """Ask, tell scores spread over [-scale, scale], again: codes finite in float32 and a finite summary each time."""
    rng = np.random.default_rng(0)
    with np.errstate(all="ignore"):
        for _ in range(generations):
            population = optimizer.ask()
            codes = population.codes
            assert np.all(np.abs(codes) <= FLOAT32_MAX), "codes beyond float32 (or not finite)"
            optimizer.tell(population.ids, scale * rng.permutation(np.linspace(-1, 1, len(population.ids))))
            summary = optimizer.summary()
            assert all(math.isfinite(value) for value in summary.values()), summary


def _numbers(annotation: Any) -> set[type]:
    return {arg for arg in (typing.get_args(annotation) or (annotation,)) if arg in (int, float)}


NUMERIC = [
    (name, spec.name, spec)
    for name in ALL
    for spec in optimizers.lookup(name).parameters.specs()
    if _numbers(spec.annotation)
]


def _inside_and_beyond(bounds: Bounds) -> tuple[list[float], list[float]]:
    """Values at (or just inside an open) bound, and values just beyond each finite bound."""
    inside, beyond = [], []
    sides = ((bounds.low, math.inf, not bounds.open_low), (bounds.high, -math.inf, not bounds.open_high))
    for bound, inward, closed in sides:
        if math.isfinite(bound):
            inside.append(bound if closed else math.nextafter(bound, inward))
            beyond.append(math.nextafter(bound, -inward) if closed else bound)
    return inside, beyond


IDS = [f"{name}.{parameter}" for name, parameter, _ in NUMERIC]


@pytest.mark.parametrize(("name", "parameter", "spec"), NUMERIC, ids=IDS)
def test_every_number_parameter_declares_bounds_and_works_at_them_and_is_refused_beyond(
    name: str, parameter: str, spec: ParameterSpec
) -> None:
    bounds = declared_bounds(spec.check, CONTEXT)
    assert bounds is not None, f"{name}.{parameter}: its check declares no bounds (use checks.between, at_least, ...)"
    integer = _numbers(spec.annotation) == {int}
    inside, beyond = _inside_and_beyond(bounds)
    for value in inside:
        shown: float | int = int(value) if integer else value
        try:
            optimizer = build(name, **{parameter: shown})
        except InvalidParameter as error:  # a rule over several (mu <= λ; sphere-cma inside needs 2 dimensions)
            assert any(word in str(error) for word in (parameter, "population", "dim >= 2")), error
            continue
        takes_generations(optimizer)
    for value in beyond:
        with pytest.raises(InvalidParameter, match=parameter):
            build(name, **{parameter: int(value) if integer and float(value).is_integer() else value})


@pytest.mark.parametrize(("name", "parameter", "spec"), NUMERIC, ids=IDS)
def test_no_extreme_number_builds_an_optimizer_that_cannot_advance(
    name: str, parameter: str, spec: ParameterSpec
) -> None:
    for value in EXTREMES:
        try:
            optimizer = build(name, **{parameter: value})
        except InvalidParameter as error:  # named, or a rule over several (showing the mean more often than λ)
            assert parameter in str(error) or "population" in str(error), error
            continue
        takes_generations(optimizer)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("value", [1e300, 1e33, 1e7, -1e300, 1e-300])
def test_no_extreme_start_code_builds_an_optimizer_that_cannot_advance(name: str, value: float) -> None:
    start = optimizers.lookup(name).start
    assert start is not None
    codes = np.stack([np.full(DIM, value), np.full(DIM, -value / 2)])
    try:
        optimizer = build(name, **optimizers.start_parameters(name, codes))
    except InvalidParameter as error:
        assert start.parameter in str(error), error
        return
    takes_generations(optimizer)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("scale", [1.0, 1e300, float(np.finfo(np.float64).max)])
def test_every_optimizer_takes_scores_anywhere_in_the_floats_range(name: str, scale: float) -> None:
    takes_generations(build(name), scale=scale)


@pytest.mark.parametrize("name", ALL)
def test_step_sizes_and_norms_are_bounded_by_max_scale(name: str) -> None:
    for spec in optimizers.lookup(name).parameters.specs():
        if spec.name in ("sigma", "sphere_norm", "code_norm", "initial_scale", "mutation_size"):
            bounds = declared_bounds(spec.check, CONTEXT)
            assert bounds is not None and bounds.high == MAX_SCALE, (name, spec.name)


@pytest.mark.parametrize("keyword", ["seed", "population_size", "code_norm", "host", "dim"])
def test_a_parameter_named_like_a_keyword_of_create_is_a_parameter_never_a_clash(keyword: str) -> None:
    for name in ALL:
        names = optimizers.lookup(name).parameters.names()
        if keyword in names:  # subspace's code_norm: a parameter of its own
            assert build(name, **{keyword: 5.0}).settings[keyword] == 5.0
        else:
            with pytest.raises(InvalidParameter, match=rf"{name}: no parameters \['{keyword}'\]"):
                build(name, **{keyword: 5})
