"""metric-cma's restart of a search that stalls (``restart_after``; off unless told).

A search that has converged onto a poor local peak stops raising its best score long before the session ends
(docs/sample_efficiency.md, round 15: most pairings that never reach cholesky-cma's final score climb for a dozen
generations and then sit there). Once the search that goes on (after the starts' trials) has not raised its best
score by :data:`RISE` of itself for ``restart_after`` scored generations, and at least twice that many generations
of its schedule are left, its inner sphere-cma begins again at the same mean with a wide step (``restart_angle``)
that anneals to its final angle over the generations left. The best images found so far stay found: a restart only
spends the rest of the session looking further afield.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from evostim.optimizers.errors import InvalidParameter
from evostim.optimizers.metric_cma_search import Search, inner_search
from evostim.optimizers.sphere_cma import SphereCMA

if TYPE_CHECKING:
    from evostim.optimizers.metric_cma import MetricCMAParameters

__all__ = ["RISE", "note_rise", "restart_after", "restart_due", "restarted"]

# A best score counts as risen when it passes the best at the last rise by this fraction of its size (a count that
# a noisy neuron gives by luck now and then should not reset the clock).
RISE = 0.05

# Restarts draw their samples from seeds apart from every start's (metric_cma_search.start_seed: 0..MAX_STARTS-1).
_RESTART_SEED_OFFSET = 1000


def restart_after(params: MetricCMAParameters) -> int | None:
    """``restart_after``, which restarts sphere-cma's schedule: only with sphere-cma inside."""
    if params.restart_after is not None and params.inner != "sphere-cma":
        raise InvalidParameter(f"restart_after: only with sphere-cma inside (inner={params.inner!r})")
    return params.restart_after


def note_rise(search: Search) -> None:
    """After a scored generation: reset the stall clock if the search's best rose by RISE, else count one more."""
    if not math.isfinite(search.risen) or search.best > search.risen + RISE * abs(search.risen):
        search.risen, search.stalled = search.best, 0
    else:
        search.stalled += 1


def _left(inner: SphereCMA) -> int:
    """Generations left in the inner search's angular schedule."""
    return int(inner.settings["decay_generations"]) - inner.generation


def restart_due(search: Search, restart_after: int | None, alone: bool) -> bool:
    """Whether the search (``alone``: the one that goes on, its trial over) has stalled with room to restart."""
    inner = search.inner
    if restart_after is None or not alone or inner.pending or not isinstance(inner, SphereCMA):
        return False
    return search.stalled >= restart_after and _left(inner) >= 2 * restart_after


def restarted(search: Search, params: MetricCMAParameters, dim: int, seed: int) -> SphereCMA:
    """A fresh inner sphere-cma at the stalled search's mean (``dim``: metric-cma's, the codes'), its step from
    ``restart_angle`` annealed over the generations left; ``seed``: metric-cma's."""
    inner = search.inner
    assert isinstance(inner, SphereCMA) and inner.mean is not None
    angle = params.angle_start if params.restart_angle is None else params.restart_angle
    wide = dataclasses.replace(params, angle_start=angle, decay_generations=_left(inner), warmup_generations=None)
    seed = int(np.random.SeedSequence([seed, _RESTART_SEED_OFFSET + search.restarts]).generate_state(1)[0])
    fresh = inner_search(wide, inner.dim, dim, inner.population_size, seed)
    assert isinstance(fresh, SphereCMA)
    fresh.move_mean(inner.mean)
    search.stalled, search.restarts = 0, search.restarts + 1
    return fresh
