"""One search of metric-cma (one per start): its inner search over the scaled coordinates, and those coordinates.

Codes are ``center + (y * scales) @ basis``, projected onto the sphere, for the inner search's samples y. The inner
search is sphere-cma (ending at a 2° step, with mirrored steps, unless told: docs/sample_efficiency.md, rounds 2
and 4) or cholesky-cma, set up for a k-d space whose codes have the prior's norm there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from evostim.optimizers.base import FloatArray
from evostim.optimizers.cholesky_cma import CholeskyCMA
from evostim.optimizers.errors import InvalidParameter
from evostim.optimizers.parameters import Context
from evostim.optimizers.serialization import decode_array, encode_array
from evostim.optimizers.sphere_cma import SphereCMA
from evostim.optimizers.subspace import _as_matrix

if TYPE_CHECKING:
    from evostim.optimizers.metric_cma import MetricCMAParameters

__all__ = [
    "INNER",
    "PLANNED_ANGLE_END",
    "TRIAL_GENERATIONS",
    "TUNED_ANGLE_END",
    "TUNED_MIRRORED",
    "Search",
    "eigenvalues",
    "given_scales",
    "inner_name",
    "inner_search",
    "lead",
    "planned_schedule",
    "schedule_length",
    "start_seed",
    "with_lead",
]

# issue #34: a session's refresh takes the metric at the mean two generations before it, computed while those two are
# shown (a benchmarks/load.py round with no time between generations needs two to absorb 50 sessions' metrics)
SESSION_REFRESH_LEAD = 2

# metric-cma's default trial_generations (with starts > 1)
TRIAL_GENERATIONS = 3

INNER: dict[str, type[CholeskyCMA] | type[SphereCMA]] = {"cholesky-cma": CholeskyCMA, "sphere-cma": SphereCMA}

# The inner sphere-cma's final angle (degrees) and mirrored steps, unless told.
TUNED_ANGLE_END = 2.0
TUNED_MIRRORED = True

# The inner sphere-cma's own parameters that metric-cma passes on when told (null: the inner search's default).
_SPHERE_ONLY = (
    "angle_start",
    "angle_end",
    "decay_generations",
    "replans",
    "warmup_generations",
    "warmup_angle",
    "wide_samples",
    "wide_angle",
    "learning_rate",
    "mirrored",
    "adapt_angle",
    "adapt_damping",
    "momentum",
    "screen",
)


# Sessions shorter than this anneal as one this long does (docs/sample_efficiency.md, round 14: annealed within 20
# generations the searches ended lower and missed more on the tuning units).
MIN_SCHEDULE_GENERATIONS = 40

# The step a session planned to its length ends at (docs/sample_efficiency.md, round 20: on the sixth held-out panel
# 4 degrees missed 40 of 216 pairings against 2 degrees' 50, ended higher, and reached the target a generation later).
PLANNED_ANGLE_END = 4.0

# Sessions planned to MIN_SCHEDULE_GENERATIONS..OPEN_SCHEDULE_UP_TO generations run the open-ended schedule
# (sphere-cma's 75 generations, to TUNED_ANGLE_END) rather than one that anneals by their last generation
# (docs/sample_efficiency.md, round 30: on a foreign and a held-out panel no round had read, 432 pairings, 73 misses
# against 93, value 0.743 against 0.739, cholesky-cma's final score reached a generation later: 0.450 of its budget
# against 0.425).
OPEN_SCHEDULE_UP_TO = 75


def schedule_length(generations: int, starts: int = 1, trial_generations: int | None = None) -> int:
    """The inner schedule's length (``decay_generations``) that ends its steps at a session's last planned
    generation (at least :data:`MIN_SCHEDULE_GENERATIONS`): the generations the search that goes on shows (the
    others' trials taken off), at least 1."""
    trial = TRIAL_GENERATIONS if trial_generations is None else trial_generations
    return max(1, max(generations, MIN_SCHEDULE_GENERATIONS) - (starts - 1) * trial)


def planned_schedule(params: dict[str, Any], generations: int) -> dict[str, Any]:
    """``params`` with sphere-cma's schedule ending at a session's last planned generation, at
    :data:`PLANNED_ANGLE_END` unless told another end, unless told a schedule; a session planned to 40 to 75
    generations keeps the open-ended schedule (:data:`OPEN_SCHEDULE_UP_TO`)."""
    if params.get("inner", "sphere-cma") != "sphere-cma" or params.get("decay_generations") is not None:
        return params
    if MIN_SCHEDULE_GENERATIONS <= generations <= OPEN_SCHEDULE_UP_TO:
        return params
    trial = params.get("trial_generations")
    planned = schedule_length(generations, params["starts"], trial)
    return {**params, "decay_generations": planned, "angle_end": params.get("angle_end") or PLANNED_ANGLE_END}


def eigenvalues(name: str, value: Any, context: Context) -> FloatArray | None:
    """The check of ``eigenvalues``: positive numbers, or None."""
    if value is None:
        return None
    values = _as_matrix(value, name).reshape(-1)
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        raise InvalidParameter(f"{name} must be positive numbers")
    return values


def given_scales(params: MetricCMAParameters, values: FloatArray | None, k: int) -> FloatArray:
    """The steps along the given basis's top k directions: by start_exponent until the first refresh, if told."""
    if params.start_exponent is not None and params.refresh_every is None:
        raise InvalidParameter("start_exponent needs refresh_every: without a refresh the exponent never changes")
    exponent = params.exponent if params.start_exponent is None else params.start_exponent
    return np.ones(k) if values is None else (values[:k] / values.max()) ** exponent


def inner_name(name: str, value: str, context: Context) -> str:
    """The check of the ``inner`` parameter: one of :data:`INNER`."""
    if value not in INNER:
        raise InvalidParameter(f"{name} must be one of {', '.join(INNER)}, got {value!r}")
    return value


@dataclass
class Search:
    """One search: its inner search over scaled coordinates, and the coordinates it searches."""

    inner: CholeskyCMA | SphereCMA
    basis: FloatArray
    scales: FloatArray
    center: FloatArray
    best: float = -math.inf  # the highest score any of its images got (with starts > 1: which search goes on)
    metric_point: FloatArray | None = None  # refresh_ahead: the code whose metric its next refresh takes

    def state(self, with_coordinates: bool) -> dict[str, Any]:
        state: dict[str, Any] = {"inner": self.inner.state_dict()}
        if with_coordinates:  # refreshed: the coordinates it searches now
            state.update(basis=encode_array(self.basis), scales=encode_array(self.scales))
            state["center"] = encode_array(self.center)
        if math.isfinite(self.best):
            state["best"] = self.best
        if self.metric_point is not None:
            state["metric_point"] = encode_array(self.metric_point)
        return state

    @classmethod
    def restored(cls, state: dict[str, Any], given: Search) -> Search:
        """A search from its stored state; the ``given`` coordinates where it stored none (never refreshed)."""
        inner = INNER[state["inner"]["optimizer"]].from_state(state["inner"])
        best = float(state.get("best", -math.inf))
        point = decode_array(state["metric_point"]) if "metric_point" in state else None
        if "basis" not in state:
            return cls(inner, given.basis, given.scales, given.center, best, point)
        basis, scales, center = (decode_array(state[name]) for name in ("basis", "scales", "center"))
        return cls(inner, basis, scales, center, best, point)


def lead(params: MetricCMAParameters) -> int:
    """``refresh_lead``, which must leave each refresh a point of its own: fewer generations than refresh_every."""
    if params.refresh_lead and not (params.refresh_every and params.refresh_lead < params.refresh_every):
        raise InvalidParameter("refresh_lead must be below refresh_every (and needs it): a lead per refresh")
    return params.refresh_lead


def with_lead(params: dict[str, Any]) -> dict[str, Any]:
    """A session's parameters with its refreshes' lead: ``SESSION_REFRESH_LEAD``, less where it refreshes more often."""
    every = params.get("refresh_every")  # not checked yet: a client's value, of any type
    if isinstance(every, int | float) and not isinstance(every, bool) and math.isfinite(every) and every > 1:
        return {"refresh_lead": min(SESSION_REFRESH_LEAD, int(every) - 1), **params}
    return params


def start_seed(seed: int, start: int) -> int:
    """The first search keeps the optimizer's seed (one start runs exactly as before); the others draw their own."""
    return seed if start == 0 else int(np.random.SeedSequence([seed, start]).generate_state(1)[0])


def inner_search(
    params: MetricCMAParameters, k: int, dim: int, population_size: int, seed: int
) -> CholeskyCMA | SphereCMA:
    """The search over the k scaled coordinates, with the defaults of a k-d space whose codes have the prior's
    norm there, and the sphere-cma parameters told (sphere-cma inside ends at the tuned 2°, with mirrored steps,
    unless told)."""
    inner = INNER[params.inner]
    told = {name: getattr(params, name) for name in _SPHERE_ONLY if getattr(params, name) is not None}
    refreshed = ["refresh_every"] if params.refresh_every is not None else []  # metric-cma's own, on sphere-cma's mean
    if (told or refreshed) and inner is not SphereCMA:
        raise InvalidParameter(
            f"{', '.join([*told, *refreshed])}: only with sphere-cma inside (inner={params.inner!r})"
        )
    if inner is SphereCMA:
        told.setdefault("angle_end", TUNED_ANGLE_END)
        told.setdefault("mirrored", TUNED_MIRRORED)
    if params.mu is not None:
        told["mu"] = params.mu
    inner_norm = params.sphere_norm * math.sqrt(k / dim)
    return inner.create(
        k, population_size=population_size, seed=seed, **inner.defaults_for_space(k, inner_norm), **told
    )
