"""CMA-ES in the generator's metric eigenframe, on the prior's sphere, with the mean's own image as a candidate.

Why: most latent directions barely change the image (dcgan-faces: 90% of the metric's trace in 29 of 100
directions), so an isotropic search spends most of its evaluations on steps the neuron cannot see. And the
rank-one covariance learning of CMA-ES is far too slow to find this out within a recording: its learning rate
is about 2 / d^2, a few percent of the covariance over 75 generations. So this optimizer is told the shape up
front, from the metric (Wang & Ponce, ICLR 2021): it samples in the span of the top ``dimensions`` eigenvectors,
each direction's step scaled by (eigenvalue / largest eigenvalue) ** ``exponent`` (0: equal steps in the
subspace; -0.5: whitened, equal image change per step; > 0: leaning further on the top directions).

Codes are ``norm * unit(center + (scales * y) @ basis)``: always on the sphere of the prior's code norm, so the
images stay natural ones. The inner search over y is sphere-cma (its step falling from 50° to 2° over 75
generations, faster than sphere-cma's own 7.33°: the metric has already shaped the steps; its steps drawn in
mirrored pairs (t and -t), so the recombined step holds no random drift of the samples themselves, only what
the responses within pairs told apart) or cholesky-cma. With
``mean_candidate`` one candidate of each generation is the inner mean's own code: under noise the recombined
mean is usually better than any sample, and showing it makes the best-observed image a good one (it is
measured, not told to the inner search). With ``refresh_every`` it searches, from every N-th generation on,
the top directions of the metric at its current mean instead of the averaged one (the metric at one code is far
more concentrated); the host that runs it (a sweep's panel, a session's generator) computes that metric. With
``window`` that metric counts image change where the neuron looks: pixels weighted by a Gaussian at the image
centre, where a lab centres its images on the receptive field (a metric file made with a window carries it).
With ``starts`` it begins several independent searches, shows them in turn for ``trial_generations`` each and
goes on with the one whose best image scored highest: a search settles on its region within its first
generations, and under noise the rankings that choose it are the least reliable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.optimizers.base import FloatArray, Optimizer, Start
from evostim.optimizers.checks import at_least, between, code, optional, positive
from evostim.optimizers.cholesky_cma import CholeskyCMA
from evostim.optimizers.errors import InvalidParameter
from evostim.optimizers.parameters import Context, Parameters, doc
from evostim.optimizers.recombination import FC6_CODE_NORM
from evostim.optimizers.serialization import decode_array, encode_array
from evostim.optimizers.sphere_cma import SphereCMA
from evostim.optimizers.subspace import _as_matrix, _basis, _searched_rows

__all__ = ["MetricAt", "MetricCMA", "MetricCMAParameters"]

# The generator's metric (d, d) at a code (d,), its pixels weighted by a centred window (None: every pixel alike):
# what a host gives metric-cma to refresh its directions with.
MetricAt = Callable[[FloatArray, float | None], FloatArray]


def _eigenvalues(name: str, value: Any, context: Context) -> FloatArray | None:
    if value is None:
        return None
    values = _as_matrix(value, name).reshape(-1)
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        raise InvalidParameter(f"{name} must be positive numbers")
    return values


_INNER: dict[str, type[CholeskyCMA] | type[SphereCMA]] = {"cholesky-cma": CholeskyCMA, "sphere-cma": SphereCMA}


def _inner_name(name: str, value: str, context: Context) -> str:
    if value not in _INNER:
        raise InvalidParameter(f"{name} must be one of {', '.join(_INNER)}, got {value!r}")
    return value


# Each start holds a whole inner search in memory and in the stored state.
MAX_STARTS = 10

_OPTIONAL_ANGLE = optional(between(0, 180, open_low=True, open_high=True))  # degrees, or null


@dataclass(frozen=True)
class MetricCMAParameters(Parameters):
    """What a session may set for metric-cma."""

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
            "the basis rows' eigenvalues (k; with a metric file, read from it); default: all equal", check=_eigenvalues
        ),
    )
    dimensions: int | None = field(
        default=35,
        metadata=doc("search the top this many eigen-directions (at most k; none: all)", check=optional(at_least(1))),
    )
    exponent: float = field(
        default=-0.25,
        metadata=doc(
            "each direction's step scales as (eigenvalue / largest) ** exponent: 0 equal, -0.5 whitened "
            "(default -0.25: half-way, the best on the tuning units)",
            check=between(-1, 1),
        ),
    )
    start_exponent: float | None = field(
        default=None,
        metadata=doc(
            "with refresh_every: the exponent of the given basis's steps, used until the first refresh (from then "
            "on the local metric's steps scale by exponent); null: exponent",
            check=optional(between(-1, 1)),
        ),
    )
    inner: str = field(
        default="sphere-cma",
        metadata=doc("the search over the scaled coordinates: cholesky-cma or sphere-cma", check=_inner_name),
    )
    mean_candidate: bool = field(default=True, metadata=doc("show the inner mean's own code as one candidate"))
    mean_repeats: int = field(
        default=1,
        metadata=doc(
            "with mean_candidate: show the mean's code this many times a generation (under noise each showing is "
            "another measurement of the search's best guess)",
            check=at_least(1),
        ),
    )
    angle_start: float | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: its angular step at the first generation, in degrees; null: sphere-cma's own, 50",
            check=_OPTIONAL_ANGLE,
        ),
    )
    learning_rate: float | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: how far past the recombined mean the new mean goes; null: sphere-cma's own, 1.5",
            check=optional(between(0, 3, open_low=True)),
        ),
    )
    mu: int | None = field(
        default=None,
        metadata=doc(
            "samples recombined into the inner search's new mean; null: half the inner population",
            check=optional(at_least(1)),
        ),
    )
    angle_end: float | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: its angular step at decay_generations, in degrees; null: 2, the best on the "
            "tuning units (sphere-cma's own default is 7.33)",
            check=_OPTIONAL_ANGLE,
        ),
    )
    decay_generations: int | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: the length of its angular schedule; null: sphere-cma's own, 75",
            check=optional(at_least(1)),
        ),
    )
    warmup_generations: int | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: its first this many generations search at warmup_angle before its schedule; "
            "null: sphere-cma's own, 0 (no warm-up)",
            check=optional(at_least(0)),
        ),
    )
    warmup_angle: float | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: the warm-up generations' angular step, in degrees; null: sphere-cma's own, 90",
            check=_OPTIONAL_ANGLE,
        ),
    )
    wide_samples: int | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: how many samples a generation it draws at wide_angle (a hedge for a search stuck "
            "on a weak slope); null: sphere-cma's own, 0",
            check=optional(at_least(0)),
        ),
    )
    wide_angle: float | None = field(
        default=None,
        metadata=doc("sphere-cma inside: the wide samples' angular step, in degrees; null: 90", check=_OPTIONAL_ANGLE),
    )
    mirrored: bool | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: draw its steps in mirrored pairs (t and -t); null: yes, the best on the tuning "
            "units (sphere-cma's own default is no)"
        ),
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
            "damping); null: sphere-cma's own, 1",
            check=optional(positive),
        ),
    )
    refresh_every: int | None = field(
        default=None,
        metadata=doc(
            "sphere-cma inside: every this many generations, search the top directions of the generator's metric "
            "at the current mean instead (the host computes it, exactly, for latent spaces up to 512-d); null: keep "
            "the given basis (sessions on such generators default to 5, the best on the tuning units)",
            check=optional(at_least(1)),
        ),
    )
    window: float | None = field(
        default=None,
        metadata=doc(
            "with refresh_every: weight the pixels of the refreshed metric by a Gaussian at the image centre whose "
            "standard deviation is this fraction of the image side (where the neuron looks); null: every pixel "
            "alike (sessions on the generator's own metric default to 0.125, the best on held-out units; a metric "
            "file made with ``evostim metric --window`` brings its own)",
            check=optional(between(0, 10, open_low=True)),
        ),
    )
    starts: int = field(
        default=1,
        metadata=doc(
            "independent searches begun (each with its own random draws), shown in turn for trial_generations "
            "generations each; then the one whose best image scored highest goes on alone, its step schedule "
            "where its own generations left it (a hedge against a search that settles early on a poor region, "
            f"which noisy first rankings make likelier); at most {MAX_STARTS} (sessions default to 2, the best on "
            "held-out units)",
            check=at_least(1, at_most=MAX_STARTS),
        ),
    )
    trial_generations: int = field(
        default=3,
        metadata=doc(
            "with starts > 1: the scored generations each search gets before the best one goes on (a generation "
            "shown again because none of its samples was scored does not count)",
            check=at_least(1),
        ),
    )
    sphere_norm: float = field(
        default=FC6_CODE_NORM, metadata=doc("the norm of every proposed code (the prior's code norm)", check=positive)
    )
    center: list[float] | None = field(
        default=None, metadata=doc("the code at inner coordinates 0 (default: the zero code)", check=code)
    )


# The inner sphere-cma's final angle, in degrees: on 144 tuning pairings it reached cholesky-cma's final score
# soonest (2: 0.45 of its evaluations, pooled; sphere-cma's own 7.33: 0.53; docs/sample_efficiency.md).
TUNED_ANGLE_END = 2.0
# Mirrored steps inside: on the same tuning pairings 0.39 of cholesky-cma's evaluations, against 0.45 unmirrored.
TUNED_MIRRORED = True


# The inner sphere-cma's own parameters that metric-cma passes on when told (null: the inner search's default).
_SPHERE_ONLY = (
    "angle_start",
    "angle_end",
    "decay_generations",
    "warmup_generations",
    "warmup_angle",
    "wide_samples",
    "wide_angle",
    "learning_rate",
    "mirrored",
    "adapt_angle",
    "adapt_damping",
)


@dataclass
class _Search:
    """One search: its inner search over scaled coordinates, and the coordinates (codes are
    ``center + (y * scales) @ basis``, projected onto the sphere)."""

    inner: CholeskyCMA | SphereCMA
    basis: FloatArray
    scales: FloatArray
    center: FloatArray
    best: float = -math.inf  # the highest score any of its images got (with starts > 1: which search goes on)

    def state(self, with_coordinates: bool) -> dict[str, Any]:
        state: dict[str, Any] = {"inner": self.inner.state_dict()}
        if with_coordinates:  # refreshed: the coordinates it searches now
            state.update(basis=encode_array(self.basis), scales=encode_array(self.scales))
            state["center"] = encode_array(self.center)
        if math.isfinite(self.best):
            state["best"] = self.best
        return state

    @classmethod
    def restored(cls, state: dict[str, Any], given: _Search) -> _Search:
        """A search from its stored state; the ``given`` coordinates where it stored none (never refreshed)."""
        inner = _INNER[state["inner"]["optimizer"]].from_state(state["inner"])
        best = float(state.get("best", -math.inf))
        if "basis" not in state:
            return cls(inner, given.basis, given.scales, given.center, best)
        basis, scales, center = (decode_array(state[name]) for name in ("basis", "scales", "center"))
        return cls(inner, basis, scales, center, best)


def _start_seed(seed: int, start: int) -> int:
    """The first search keeps the optimizer's seed (one start runs exactly as before); the others draw their own."""
    return seed if start == 0 else int(np.random.SeedSequence([seed, start]).generate_state(1)[0])


def _inner_search(
    params: MetricCMAParameters, k: int, dim: int, population_size: int, seed: int
) -> CholeskyCMA | SphereCMA:
    """The search over the k scaled coordinates, with the defaults of a k-d space whose codes have the prior's
    norm there, and the sphere-cma parameters told (sphere-cma inside ends at the tuned 2°, with mirrored steps,
    unless told)."""
    inner = _INNER[params.inner]
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


def _given_scales(params: MetricCMAParameters, values: FloatArray | None, k: int) -> FloatArray:
    """The steps along the given basis's top k directions: by start_exponent until the first refresh, if told."""
    if params.start_exponent is not None and params.refresh_every is None:
        raise InvalidParameter("start_exponent needs refresh_every: without a refresh the exponent never changes")
    exponent = params.exponent if params.start_exponent is None else params.start_exponent
    return np.ones(k) if values is None else (values[:k] / values.max()) ** exponent


class MetricCMA(Optimizer):
    """sphere-cma (or cholesky-cma) over scaled coordinates of the metric's top eigenvectors, codes on the sphere.

    Parameters: :class:`MetricCMAParameters`.
    """

    name = "metric-cma"
    parameters = MetricCMAParameters
    start = Start.from_mean("center")

    @classmethod
    def defaults_for_space(cls, dim: int, code_norm: float) -> dict[str, Any]:
        return {"sphere_norm": float(code_norm)}

    def __init__(self, dim: int, *, population_size: int, seed: int, params: MetricCMAParameters) -> None:
        super().__init__(dim, population_size=population_size, seed=seed, params=params)
        if params.basis is None:
            raise InvalidParameter("metric-cma needs a basis: the generator's metric eigenvectors (evostim metric)")
        full = _basis("basis", params.basis, self.context)
        self._given_basis = _searched_rows(
            full, None if params.dimensions is None else min(params.dimensions, len(full))
        )
        k = len(self._given_basis)
        values = _eigenvalues("eigenvalues", params.eigenvalues, self.context)
        if values is not None and len(values) < k:
            raise InvalidParameter(f"eigenvalues must have at least {k} values (one per searched direction)")
        self._eigenvalues = None if values is None else values[:k]
        self._exponent = params.exponent
        self._refresh_every = params.refresh_every
        self._window = params.window
        self.metric_at: MetricAt | None = None  # given by the host when refresh_every is set
        self._mean_candidate = params.mean_candidate
        self._sphere_norm = params.sphere_norm
        self._mean_repeats = params.mean_repeats if params.mean_candidate else 0
        inner_size = population_size - self._mean_repeats
        if inner_size < 2:
            raise InvalidParameter(
                f"showing the mean {self._mean_repeats} times needs population_size >= {self._mean_repeats + 2}"
            )
        scales = _given_scales(params, values, k)
        center = np.zeros(dim) if params.center is None else np.array(params.center)
        self._trial_generations = params.trial_generations
        self._searches = [
            _Search(_inner_search(params, k, dim, inner_size, _start_seed(seed, i)), self._given_basis, scales, center)
            for i in range(params.starts)
        ]
        self._active = 0  # the search that shows this generation

    @property
    def needs_generator_metric(self) -> bool:
        """Whether the host must set ``metric_at`` (the generator's metric at a code) before the first ask."""
        return self._refresh_every is not None

    @property
    def inner(self) -> CholeskyCMA | SphereCMA:
        """The inner search of the search that showed last (with several starts on trial, the next may differ)."""
        return self._search.inner

    @property
    def _search(self) -> _Search:
        return self._searches[self._active]

    def _codes(self, inner_codes: FloatArray) -> FloatArray:
        search = self._search
        codes = search.center + (inner_codes * search.scales) @ search.basis
        norms = np.linalg.norm(codes, axis=1, keepdims=True)
        fallback = search.basis[:1]  # the zero code has no direction: show the top eigenvector's
        unit = np.where(norms > 0, codes / np.where(norms > 0, norms, 1.0), fallback)
        projected: FloatArray = self._sphere_norm * unit
        return projected

    def _choose_search(self) -> None:
        """While several searches are on trial, the one with the fewest generations shows next; once each has had
        its trial, the one whose best image scored highest goes on alone (the first of a tie)."""
        if self._search.inner.pending or len(self._searches) == 1:
            return  # a generation shown again stays with its search
        done = [search.inner.generation for search in self._searches]
        if min(done) < self._trial_generations:
            self._active = int(np.argmin(done))
            return
        self._searches = [max(self._searches, key=lambda search: search.best)]
        self._active = 0

    def _refresh_due(self) -> bool:
        inner = self._search.inner
        every = self._refresh_every
        return every is not None and not inner.pending and inner.generation > 0 and inner.generation % every == 0

    def _refresh(self) -> None:
        """Search the top directions of the metric at the current mean from now on, keeping the mean where it is.

        The new basis is the mean's own direction (radial: the coordinate that holds the code where it is) and
        the metric's top directions orthogonal to it; the radial row keeps the step size the mean had in the old
        coordinates, so the schedule's angles keep their meaning."""
        search = self._search
        inner = search.inner
        assert isinstance(inner, SphereCMA) and inner.mean is not None
        if self.metric_at is None:
            raise InvalidParameter("metric-cma with refresh_every needs the generator's metric (set metric_at)")
        inner_mean = inner.mean / np.linalg.norm(inner.mean)
        code = self._codes(inner_mean[None])[0]
        radial = code / np.linalg.norm(code)
        metric = np.asarray(self.metric_at(code, self._window), dtype=np.float64)
        values, vectors = np.linalg.eigh(metric)
        k = len(search.basis)
        top = vectors[:, np.argsort(values)[::-1][:k]]
        across, _ = np.linalg.qr(top - np.outer(radial, radial @ top))  # orthonormal, orthogonal to the mean
        across = across[:, : k - 1].T
        local = np.einsum("id,de,ie->i", across, metric, across)  # each direction's metric value there
        radial_scale = float(np.linalg.norm(search.scales * inner_mean))
        path_in_codes = (inner.path * search.scales) @ search.basis  # the step-size path, as a direction of codes
        search.basis = np.ascontiguousarray(np.vstack([radial, across]))  # laid out as a restored one is
        search.scales = np.concatenate([[radial_scale], (local / local.max()) ** self._exponent])
        search.center = np.zeros(self.dim)
        inner.move_mean(np.eye(k)[0], path=(search.basis @ path_in_codes) / search.scales)

    def _propose(self) -> tuple[FloatArray, FloatArray]:
        self._choose_search()
        if self._refresh_due():
            self._refresh()
        inner = self._search.inner
        # A generation whose samples were all left unmeasured is shown again (its inner population still waits).
        inner_codes = inner.pending_codes if inner.pending else inner.ask().codes
        if self._mean_candidate:
            mean = inner.mean  # sphere-cma has none before its first update: show a sample's antipode
            shown_mean = -inner_codes[:1] if mean is None else mean[None, :]
            inner_codes = np.vstack([inner_codes, np.repeat(shown_mean, self._mean_repeats, axis=0)])
        return self._codes(inner_codes), np.zeros((len(inner_codes), 0))

    def _update(self, rows: NDArray[np.intp], codes: FloatArray, aux: FloatArray, scores: FloatArray) -> None:
        search = self._search
        search.best = max(search.best, float(scores.max()))  # the mean candidate's score counts here too
        sampled = rows < len(search.inner.pending_ids)  # the mean candidate is measured, not told
        if not np.any(sampled):
            return
        inner_ids = [search.inner.pending_ids[row] for row in rows[sampled]]
        search.inner.tell(inner_ids, scores[sampled])

    def _settings(self) -> dict[str, Any]:
        settings = self._params.as_dict()
        settings["basis"] = encode_array(self._given_basis)
        settings["eigenvalues"] = None if self._eigenvalues is None else encode_array(self._eigenvalues)
        settings["dimensions"] = None  # the stored basis is already cut to size
        inner = self._searches[0].inner
        if isinstance(inner, SphereCMA):
            # What it runs, default or not: a session restores exactly this, whatever the defaults become.
            settings["angle_end"] = inner.settings["angle_end"]
            settings["mirrored"] = inner.settings["mirrored"]
        return settings

    def _dynamic_state(self) -> dict[str, Any]:
        refreshed = self._refresh_every is not None
        if len(self._searches) == 1:  # the format of one search, as before starts existed
            return self._search.state(refreshed)
        return {"searches": [search.state(refreshed) for search in self._searches], "active": self._active}

    def _load_dynamic_state(self, state: dict[str, Any]) -> None:
        given = self._searches[0]
        self._searches = [_Search.restored(saved, given) for saved in state.get("searches", [state])]
        self._active = int(state.get("active", 0))

    def summary(self) -> dict[str, float]:
        return {**self._search.inner.summary(), **super().summary()}
