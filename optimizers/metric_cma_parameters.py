"""What a session may set for metric-cma (``evostim.optimizers.metric_cma``), and the checks of those values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evostim.optimizers.checks import angle_degrees, at_least, between, code, code_scale, optional, positive
from evostim.optimizers.elites import MAX_REMEASURE
from evostim.optimizers.metric_cma_search import TRIAL_GENERATIONS, eigenvalues, inner_name
from evostim.optimizers.parameters import Parameters, doc
from evostim.optimizers.recombination import FC6_CODE_NORM
from evostim.optimizers.response_slope import MAX_SCREEN
from evostim.optimizers.subspace import _basis

__all__ = ["MAX_STARTS", "MetricCMAParameters"]


# Each start holds a whole inner search in memory and in the stored state.
MAX_STARTS = 10

_OPTIONAL_ANGLE = optional(angle_degrees)  # degrees, or null


@dataclass(frozen=True)
class MetricCMAParameters(Parameters):
    """What a session may set for metric-cma (``sphere-cma inside``: passed on to the inner sphere-cma)."""

    basis: Any = field(
        default=None,
        metadata=doc(
            "the metric's eigenvectors as rows (k x d, orthonormal, largest eigenvalue first); over HTTP also the "
            'name of a metric file made by ``evostim metric``, e.g. "dcgan-faces.metric"',
            check=_basis,
        ),
    )
    eigenvalues: Any = field(
        default=None,
        metadata=doc(
            "the basis rows' eigenvalues (k; a metric file brings its own); null: all equal", check=eigenvalues
        ),
    )
    dimensions: int | None = field(
        default=35,
        metadata=doc(
            "search the top this many eigen-directions (at most k; none: all; sessions on the generator's own metric, "
            "refreshed, default to 20: docs/sample_efficiency.md, round 47)",
            check=optional(at_least(1)),
        ),
    )
    exponent: float = field(
        default=-0.25,
        metadata=doc(
            "each direction's step scales as (eigenvalue / largest) ** exponent: 0 equal, -0.5 whitened",
            check=between(-1, 1),
        ),
    )
    start_exponent: float | None = field(
        default=None,
        metadata=doc(
            "with refresh_every: the exponent of the given basis's steps until the first refresh; null: exponent",
            check=optional(between(-1, 1)),
        ),
    )
    inner: str = field(
        default="sphere-cma",
        metadata=doc("the search over the scaled coordinates: cholesky-cma or sphere-cma", check=inner_name),
    )
    mean_candidate: bool = field(default=True, metadata=doc("show the inner mean's own code as one candidate"))
    mean_repeats: int = field(
        default=1,
        metadata=doc("with mean_candidate: show the mean's code this many times a generation", check=at_least(1)),
    )
    remeasure: int = field(
        default=0,
        metadata=doc(
            "show again, every generation, the images with the best mean score over their showings so far, this "
            "many of them (a lucky count falls back, a good image is judged on several; docs/sample_efficiency.md, "
            f"round 42); at most {MAX_REMEASURE}",
            check=at_least(0, at_most=MAX_REMEASURE),
        ),
    )
    shrink: float = field(
        default=0.0,
        metadata=doc(
            "with remeasure: rank the images by their mean score with this many pseudo-counts at the mean score of "
            "the generation that first showed them (one lucky count ranks below an image that kept its score); "
            "0: the plain mean (docs/sample_efficiency.md, round 46)",
            check=between(0, 10),
        ),
    )
    angle_start: float | None = field(
        default=None,
        metadata=doc("sphere-cma inside: its first angular step, in degrees; null: its own, 50", check=_OPTIONAL_ANGLE),
    )
    learning_rate: float | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: how far past the recombined mean the new mean goes; null: its own, 1.5",
            check=optional(between(0, 3, open_low=True)),
        ),
    )
    mu: int | None = field(
        default=None,
        metadata=doc("samples recombined into the inner search's new mean; null: half", check=optional(at_least(1))),
    )
    angle_end: float | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: its angular step at decay_generations, in degrees; null: 2, or 4 in a session with "
            "max_generations under 40 or over 75 (sphere-cma's own default: 7.33)",
            check=_OPTIONAL_ANGLE,
        ),
    )
    decay_generations: int | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: its schedule's length; null: its own, 75 (sessions with max_generations under 40 "
            "or over 75: that length, at least 40, less the other starts' trials, so the step anneals at the "
            "session's last generation; docs/sample_efficiency.md, round 30)",
            check=optional(at_least(1)),
        ),
    )
    replans: list[int] | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: longer schedules planned in turn once the search outlives decay_generations; null: "
            "flat at angle_end after it (measured: docs/sample_efficiency.md, round 19)",
        ),
    )
    warmup_generations: int | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: generations searched at warmup_angle before its schedule; null: its own, 0",
            check=optional(at_least(0)),
        ),
    )
    warmup_angle: float | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: the warm-up's angular step, in degrees; null: its own, 90", check=_OPTIONAL_ANGLE
        ),
    )
    wide_samples: int | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: samples a generation drawn at wide_angle (a hedge for a search stuck on a weak "
            "slope); null: its own, 0",
            check=optional(at_least(0)),
        ),
    )
    wide_angle: float | None = field(
        default=None,
        metadata=doc("sphere-cma inside: the wide samples' angular step, in degrees; null: 90", check=_OPTIONAL_ANGLE),
    )
    mirrored: bool | None = field(
        default=None,
        metadata=doc("sphere-cma inside: draw its steps in mirrored pairs (t and -t); null: yes (its own default: no)"),
    )
    adapt_angle: bool | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: scale its scheduled angle by cumulative step-size adaptation (it widens while the "
            "mean keeps moving the same way); null: no"
        ),
    )
    adapt_damping: float | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside, with adapt_angle: how slowly its factor moves (a multiple of the standard "
            "damping); null: its own, 1",
            check=optional(positive),
        ),
    )
    momentum: float | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: each move of its mean adds this share of the move before it; null: its own, 0",
            check=optional(between(0, 1, open_high=True)),
        ),
    )
    screen: int | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: draw this many tangent directions per one shown and show those best aligned with "
            "the responses' fitted slope; null: its own, 1 (every one drawn is shown)",
            check=optional(at_least(1, at_most=MAX_SCREEN)),
        ),
    )
    refresh_every: int | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: every this many generations, search the top directions of the generator's metric "
            "at the current mean instead (the host computes it, exactly, for latent spaces up to 512-d); null: keep "
            "the given basis (sessions on such generators default to 5)",
            check=optional(at_least(1)),
        ),
    )
    refresh_lead: int = field(
        default=0,
        metadata=doc(
            "with refresh_every: take each refresh's metric at the mean this many generations before it, computed "
            "while those are shown; 0: at the refresh's mean, on the post's path (sessions default to 2)",
            check=at_least(0),
        ),
    )
    window: float | None = field(
        default=None,
        metadata=doc(
            "with refresh_every: weight the refreshed metric's pixels by a Gaussian at the image centre whose "
            "standard deviation is this fraction of the image side (where the neuron looks); null: every pixel "
            "alike (sessions on the generator's own metric default to 0.125; a metric file of "
            "``evostim metric --window`` brings its own)",
            check=optional(between(0, 10, open_low=True)),
        ),
    )
    starts: int = field(
        default=1,
        metadata=doc(
            "independent searches begun, shown in turn for trial_generations generations each; then the one whose "
            "best image scored highest goes on alone (a hedge against a search that settles early on a poor "
            f"region); at most {MAX_STARTS} (sessions default to 2)",
            check=at_least(1, at_most=MAX_STARTS),
        ),
    )
    trial_generations: int = field(
        default=TRIAL_GENERATIONS,
        metadata=doc(
            "with starts > 1: the scored generations each search gets before the best one goes on (a generation "
            "shown again because none of its samples was scored does not count)",
            check=at_least(1),
        ),
    )
    sphere_norm: float = field(
        default=FC6_CODE_NORM, metadata=doc("the norm of every proposed code (the prior's code norm)", check=code_scale)
    )
    center: list[float] | None = field(
        default=None, metadata=doc("the code at inner coordinates 0 (default: the zero code)", check=code)
    )
