"""The dry run at creation: a session is stored only if its objective can score a rig's counts and its optimizer can
take a generation.

``check_objective`` refuses weights and counting windows under which a plausible response (``PLAUSIBLE_COUNT`` spikes
per repetition on every channel) scores beyond the floats' range: such a session would refuse every post as "too
large". ``dry_run`` tells a copy of the new optimizer (rebuilt from its first snapshot, as a restart would: the
session's own optimizer, its random generator included, is untouched) scores spread over that range, asks it for the
next generation and checks what comes out: a library's assertion (cmaes refuses codes beyond 1e32), a summary or
codes that overflowed, or codes beyond the generators' float32 are a 422 here, not a session stuck at generation 0.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from evostim.optimizers import Host
from evostim.optimizers.geometry import project_to_sphere
from evostim.server.sessions.config import Objective, ResponseUnits
from evostim.server.sessions.errors import InvalidSessionConfig
from evostim.server.sessions.limits import first_non_finite
from evostim.server.sessions.optimizer_calls import optimizer_call
from evostim.server.sessions.stepper import decode_state

__all__ = ["PLAUSIBLE_COUNT", "check_objective", "dry_run", "score_bound"]

PLAUSIBLE_COUNT = 1000.0
"""The most a recorded neuron gives per repetition (spikes in a window, or spikes/s where rates are posted)."""

_FLOAT32_MAX = float(np.finfo(np.float32).max)  # the generators decode in float32


def _rate_factor(units: ResponseUnits, window_ms: float | None) -> float:
    """What one posted number becomes in the score (spikes/s from counts in a window of ``window_ms``)."""
    return 1000.0 / window_ms if units.unit == "count" and window_ms is not None else 1.0


def score_bound(objective: Objective, units: ResponseUnits) -> float:
    """The largest magnitude a score can have when every count and baseline is in [0, PLAUSIBLE_COUNT] (inf if that
    overflows): the sum over channels of |weight| x the largest rate (plus the largest baseline rate, subtracted)."""
    per_count = _rate_factor(units, units.window_ms)
    if objective.subtract_baseline:
        per_count += _rate_factor(units, units.baseline_window_ms or units.window_ms)
    total = sum(abs(weight) for weight in objective.weights.values())  # inf where it overflows
    return total * per_count * PLAUSIBLE_COUNT


def check_objective(objective: Objective, units: ResponseUnits) -> None:
    """Refuse an objective under which a plausible response cannot be scored (its score overflows)."""
    if math.isfinite(score_bound(objective, units)):
        return
    per_weight = score_bound(Objective(weights={"c": 1.0}, subtract_baseline=objective.subtract_baseline), units)
    limit = float(np.finfo(np.float64).max) / per_weight
    raise InvalidSessionConfig(
        f"objective.weights: a response of {PLAUSIBLE_COUNT:g} spikes per repetition on every channel would score "
        f"beyond the largest number a score can hold; with this counting window the weights' magnitudes may sum to "
        f"at most {limit:.3g}",
        field="objective.weights",
    )


@np.errstate(all="ignore")  # an overflow is refused by checking the results, not announced by a warning
def dry_run(snapshot: bytes, host: Host, code_norm: float | None, scale: float) -> None:
    """Tell a copy of the optimizer in ``snapshot`` (its first generation pending) scores spread over [-scale, scale],
    ask it for the next generation, and refuse the session (InvalidSessionConfig) unless all of it is computable."""
    copy = decode_state(snapshot, replace(host, metric_ahead=None))  # its hints would be for points never asked
    settings = _shown_settings(copy.settings)
    try:
        with optimizer_call(copy, "generation 0 (a dry run at creation)"):
            ids = copy.pending_ids
            copy.tell(ids, scale * np.random.default_rng(0).permutation(np.linspace(-1.0, 1.0, len(ids))))
            codes = project_to_sphere(copy.ask().codes, code_norm)
    except Exception as error:  # OptimizerFailed, or an optimizer's own refusal
        raise InvalidSessionConfig(
            f"optimizer {copy.name} cannot take a generation with these parameters ({settings}): {error}",
            field="optimizer.params",
        ) from None
    where = first_non_finite(copy.summary(), "summary") or first_non_finite(codes, "codes")
    if where is None and not np.all(np.abs(codes) <= _FLOAT32_MAX):
        where = "codes (beyond float32, the generators' precision)"
    if where is not None:
        raise InvalidSessionConfig(
            f"optimizer {copy.name} cannot take a generation with these parameters ({settings}): after one "
            f"generation of scores its {where} overflowed; use a smaller step size or norm (or session code_norm)",
            field="optimizer.params",
        )


def _shown_settings(settings: dict[str, Any]) -> str:
    """The optimizer's scalar settings, as a person reads them in a refusal (lists and bases left out)."""
    numbers = {name: value for name, value in settings.items() if not isinstance(value, bool)}
    shown = [f"{name}={value:g}" for name, value in numbers.items() if isinstance(value, int | float)]
    return ", ".join(shown[:8]) or "its defaults"
