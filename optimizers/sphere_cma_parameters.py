"""What a session may set for sphere-cma (``evostim.optimizers.sphere_cma``), and the checks of those values."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from evostim.optimizers.checks import (
    MAX_COUNT,
    angle_degrees,
    at_least,
    between,
    code,
    code_scale,
    parents,
    positive,
)
from evostim.optimizers.errors import InvalidParameter
from evostim.optimizers.parameters import Context, Parameters, doc
from evostim.optimizers.recombination import FC6_CODE_NORM
from evostim.optimizers.response_slope import MAX_SCREEN

__all__ = ["MAX_REPLANS", "SphereCMAParameters"]


def _direction(name: str, value: list[float] | None, context: Context) -> list[float] | None:
    """An optional code that is not the zero code (which has no direction)."""
    checked = code(name, value, context)
    if checked is not None and not np.linalg.norm(checked) > 0:  # numbers this small square to 0: no direction
        raise InvalidParameter(f"{name} must not be the zero code: it has no direction")
    return checked


_ANGLE = angle_degrees

# Doubling from 40 generations, 16 longer schedules reach past any session's length.
MAX_REPLANS = 16


def _lengths(name: str, value: list[int] | None, context: Context) -> list[int] | None:
    """None, or schedule lengths (a list of integers: its type is checked before): from 2 to MAX_COUNT,
    increasing, at most MAX_REPLANS of them."""
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_REPLANS:
        raise InvalidParameter(f"{name} must be a list of 1 to {MAX_REPLANS} schedule lengths, got {value!r}")
    if not all(2 <= n <= MAX_COUNT for n in value):
        raise InvalidParameter(f"{name} must hold integers from 2 to {MAX_COUNT}, got {value!r}")
    if any(a >= b for a, b in itertools.pairwise(value)):
        raise InvalidParameter(f"{name} must be increasing, got {value!r}")
    return value


@dataclass(frozen=True)
class SphereCMAParameters(Parameters):
    """What a session may set for sphere-cma."""

    mu: int | None = field(
        default=None, metadata=doc("samples recombined into the new mean ([WP22]: 20; default λ // 2)", check=parents)
    )
    learning_rate: float = field(
        default=1.5,
        metadata=doc(
            "how far along the great circle from the old mean past the recombined one the new mean goes "
            "(1 = onto it; [WP22]: 1.5); in (0, 3]",
            check=between(0, 3, open_low=True),
        ),
    )
    sphere_norm: float = field(
        default=FC6_CODE_NORM,
        metadata=doc(
            "the norm of every proposed code ([WP22]: 300 in fc6; the prior's code norm elsewhere)", check=code_scale
        ),
    )
    angle_start: float = field(
        default=50.0,
        metadata=doc("angular distance of samples from the mean at the first generation, in degrees", check=_ANGLE),
    )
    angle_end: float = field(
        default=7.33,
        metadata=doc(
            "the same at decay_generations and after, in degrees ([WP22]: 50 -> 7.33, decaying exponentially "
            "over 75 generations)",
            check=_ANGLE,
        ),
    )
    decay_generations: int = field(default=75, metadata=doc("length of the angular schedule", check=at_least(1)))
    replans: list[int] | None = field(
        default=None,
        metadata=doc(
            "longer schedules planned in turn for a search that outlives decay_generations (increasing lengths, "
            f"at most {MAX_REPLANS}): past a length it goes on where the next, longer schedule stands (its step "
            "widens again, then anneals to angle_end at that length); null: flat at angle_end after "
            "decay_generations",
            check=_lengths,
        ),
    )
    warmup_generations: int = field(
        default=0,
        metadata=doc(
            "the first this many generations draw their samples at warmup_angle instead of the schedule's (a wide "
            "search first, so a mean that starts where the first images barely drive the neuron can still leave); "
            "the schedule then goes on where it would have been",
            check=at_least(0),
        ),
    )
    warmup_angle: float = field(
        default=90.0, metadata=doc("with warmup_generations: their angular step, in degrees", check=_ANGLE)
    )
    wide_samples: int = field(
        default=0,
        metadata=doc(
            "this many samples of every generation (whole mirrored pairs, rounded up, with mirrored) are drawn at "
            "wide_angle instead of the schedule's: a hedge that lets a run whose search is stuck on a weak slope "
            "jump when a far image wins selection, and costs the others only those samples",
            check=at_least(0),
        ),
    )
    wide_angle: float = field(
        default=90.0, metadata=doc("with wide_samples: their angular step, in degrees", check=_ANGLE)
    )
    mirrored: bool = field(
        default=False,
        metadata=doc(
            "draw the tangent directions in mirrored pairs (t and -t): the recombined step then holds no random "
            "drift of the samples themselves, only what the responses within pairs told apart"
        ),
    )
    adapt_angle: bool = field(
        default=False,
        metadata=doc(
            "scale the scheduled angle by cumulative step-size adaptation: it widens while successive means keep "
            "moving the same way, so a search climbing a slope is not frozen by the schedule (at most 90°)"
        ),
    )
    adapt_damping: float = field(
        default=1.0,
        metadata=doc(
            "with adapt_angle: how slowly the factor moves, as a multiple of [H16]'s damping (the schedule already "
            "narrows the step, so the adaptation only has to correct it)",
            check=positive,
        ),
    )
    momentum: float = field(
        default=0.0,
        metadata=doc(
            "each move of the mean adds this share of the move before it (carried along the great circle): "
            "moves that keep their direction add up, moves that noise turns about partly cancel; 0: none; in [0, 1)",
            check=between(0, 1, open_high=True),
        ),
    )
    screen: int = field(
        default=1,
        metadata=doc(
            "draw this many tangent directions per one shown and show those best aligned with the responses' "
            "fitted slope (with mirrored: whole pairs, by their line's alignment); 1: show every one drawn",
            check=at_least(1, at_most=MAX_SCREEN),
        ),
    )
    mean: list[float] | None = field(
        default=None,
        metadata=doc(
            "initial mean direction (default: the first generation is uniform over the sphere)", check=_direction
        ),
    )
