"""CMA-ES in the generator's metric eigenframe, on the prior's sphere, with the mean's own image as a candidate.

Most latent directions barely change the image, and CMA-ES's covariance learning is far too slow to find that out
within a recording, so this optimizer is told the shape up front, from the metric (Wang & Ponce, ICLR 2021): it
samples in the span of the top ``dimensions`` eigenvectors, each direction's step scaled by (eigenvalue / largest
eigenvalue) ** ``exponent``. Codes are ``norm * unit(center + (scales * y) @ basis)``, on the sphere of the prior's
code norm; the search over y is sphere-cma (mirrored steps) or cholesky-cma. Options: the inner mean's own code
shown as a candidate (``mean_candidate``); the directions refreshed from the metric at the current mean
(``refresh_every``, ``window``: the host computes that metric); several independent starts of which the best goes
on (``starts``); the best images so far shown again (``remeasure``). Why each piece is there and how each default
was chosen: docs/sample_efficiency.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.optimizers.base import FloatArray, Optimizer, Start
from evostim.optimizers.cholesky_cma import CholeskyCMA
from evostim.optimizers.elites import Elites
from evostim.optimizers.errors import InvalidParameter
from evostim.optimizers.host import Host, Need
from evostim.optimizers.metric_cma_parameters import MetricCMAParameters
from evostim.optimizers.metric_cma_search import (
    TUNED_ANGLE_END,
    TUNED_MIRRORED,
    Search,
    eigenvalues,
    given_scales,
    inner_search,
    lead,
    planned_schedule,
    schedule_length,
    start_seed,
    with_lead,
)
from evostim.optimizers.serialization import encode_array
from evostim.optimizers.sphere_cma import SphereCMA
from evostim.optimizers.subspace import _basis, _searched_rows

__all__ = ["MetricCMA", "MetricCMAParameters", "schedule_length"]

# A session's defaults (on a generator whose metric at a code the host computes): docs/sample_efficiency.md,
# rounds 6 (refresh), 11 (window), 13 (starts), 42 (remeasure: measured at 40 images a generation; below 20 two
# repeats would be a tenth of the images or more, so none) and 47 (dimensions).
SESSION_REFRESH_EVERY = 5
SESSION_WINDOW = 0.125
SESSION_STARTS = 2
SESSION_REMEASURE = 2
SESSION_REMEASURE_FROM = 20
# The directions of the generator's own metric searched, from the first generation and at every refresh (round 47:
# 20 reached cholesky-cma's final score sooner, missed less and ended higher than 35 at 1,600 evaluations); a
# basis the session names keeps the parameter's own 35
SESSION_DIMENSIONS = 20


class MetricCMA(Optimizer):
    """sphere-cma (or cholesky-cma) over scaled coordinates of the metric's top eigenvectors, codes on the sphere.

    Parameters: :class:`MetricCMAParameters`.
    """

    name = "metric-cma"
    parameters = MetricCMAParameters
    start = Start.from_mean("center")
    needs = (Need("metric_at", when="refresh_every"),)  # the generator's metric at the mean, to refresh at

    @classmethod
    def session_defaults(
        cls, params: dict[str, Any], host: Host, *, generations: int | None = None, population_size: int | None = None
    ) -> dict[str, Any]:
        """The generator's own metric as the basis (by name: ``<generator>.metric``), refreshed at the mean where
        the host computes the metric at a code (sphere-cma inside), with the metric of a centred window and its top
        20 directions, from two starts, the two best images so far shown again in a generation of at least 20 (or
        of a size not said). A basis the lab names brings its own window (a file of ``evostim metric --window``)
        and searches the parameter's 35 directions. A session planned to last ``generations`` generations, under
        40 or over 75, anneals its steps over them (:func:`schedule_length`) to 4° (:func:`planned_schedule`); an
        open-ended one, or one planned to 40-75 generations, over 75 generations to 2°, its steps mirrored (both
        said, so that a listing of these defaults shows what a session runs)."""
        params = {"starts": SESSION_STARTS, **_session_remeasure(population_size), **params}
        if generations is not None:
            params = planned_schedule(params, generations)
        generators_own = params.get("basis") is None
        if generators_own:
            params["basis"] = f"{host.generator}.metric"
        refreshable = params.get("inner", "sphere-cma") == "sphere-cma" and host.metric_at is not None
        if "refresh_every" not in params and refreshable:
            params["refresh_every"] = SESSION_REFRESH_EVERY
        if generators_own and params.get("refresh_every") is not None:
            params.setdefault("window", SESSION_WINDOW)
            params.setdefault("dimensions", SESSION_DIMENSIONS)
        if params.get("inner", "sphere-cma") == "sphere-cma":  # said, as the session stores them anyway
            params = {"angle_end": TUNED_ANGLE_END, "mirrored": TUNED_MIRRORED, **params}
        return with_lead(params)

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
        values = eigenvalues("eigenvalues", params.eigenvalues, self.context)
        if values is not None and len(values) < k:
            raise InvalidParameter(f"eigenvalues must have at least {k} values (one per searched direction)")
        self._eigenvalues = None if values is None else values[:k]
        self._exponent = params.exponent
        self._refresh_every = params.refresh_every
        self._refresh_lead = lead(params)
        self._window = params.window
        self._mean_candidate = params.mean_candidate
        self._sphere_norm = params.sphere_norm
        self._mean_repeats = params.mean_repeats if params.mean_candidate else 0
        self._remeasure = params.remeasure
        self._elites = _elites(params, dim)
        inner_size = _inner_size(population_size, self._mean_repeats, self._remeasure)
        scales = given_scales(params, values, k)
        center = np.zeros(dim) if params.center is None else np.array(params.center)
        self._trial_generations = params.trial_generations
        self._searches = [
            Search(inner_search(params, k, dim, inner_size, start_seed(seed, i)), self._given_basis, scales, center)
            for i in range(params.starts)
        ]
        self._active = 0  # the search that shows this generation

    @property
    def inner(self) -> CholeskyCMA | SphereCMA:
        """The inner search of the search that showed last (with several starts on trial, the next may differ)."""
        return self._search.inner

    @property
    def best_image(self) -> tuple[float, int, int] | None:
        return self._elites.leader if self._remeasure else None

    @property
    def _search(self) -> Search:
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
        metric_at = self.host.metric_at
        if metric_at is None:
            raise InvalidParameter("metric-cma with refresh_every needs the generator's metric, from its host")
        inner_mean = inner.mean / np.linalg.norm(inner.mean)
        code = self._codes(inner_mean[None])[0]
        radial = code / np.linalg.norm(code)
        point, search.metric_point = (code if search.metric_point is None else search.metric_point), None
        metric = np.asarray(metric_at(point, self._window), dtype=np.float64)
        values, vectors = np.linalg.eigh(metric)
        k = len(search.basis)
        top = vectors[:, np.argsort(values)[::-1][:k]]
        across, _ = np.linalg.qr(top - np.outer(radial, radial @ top))  # orthonormal, orthogonal to the mean
        across = across[:, : k - 1].T
        local = np.einsum("id,de,ie->i", across, metric, across)  # each direction's metric value there
        radial_scale = float(np.linalg.norm(search.scales * inner_mean))
        # The step-size path and the last move are directions of codes; a slope is a gradient: scaled inversely.
        in_codes = [(inner.path * search.scales) @ search.basis, (inner.velocity * search.scales) @ search.basis]
        slope_in_codes = (inner.slope / search.scales) @ search.basis
        search.basis = np.ascontiguousarray(np.vstack([radial, across]))  # laid out as a restored one is
        search.scales = np.concatenate([[radial_scale], (local / local.max()) ** self._exponent])
        search.center = np.zeros(self.dim)
        path, velocity = ((search.basis @ vector) / search.scales for vector in in_codes)
        slope = (search.basis @ slope_in_codes) * search.scales
        inner.move_mean(np.eye(k)[0], path=path, slope=slope, velocity=velocity)

    def _ask_metric_ahead(self) -> None:
        """refresh_lead generations before a refresh: its metric's code, which the host may compute meanwhile."""
        search, every, lead = self._search, self._refresh_every or 1, self._refresh_lead  # a lead needs refresh_every
        mean = search.inner.mean  # none before sphere-cma's first update: that refresh takes its own mean's metric
        if not lead or search.inner.pending or (search.inner.generation + lead) % every or mean is None:
            return
        search.metric_point = self._codes((mean / np.linalg.norm(mean))[None])[0]
        if self.host.metric_ahead is not None:
            self.host.metric_ahead(search.metric_point, self._window)

    def _propose(self) -> tuple[FloatArray, FloatArray]:
        self._choose_search()
        if self._refresh_due():
            self._refresh()
        self._ask_metric_ahead()
        inner = self._search.inner
        # A generation whose samples were all left unmeasured is shown again (its inner population still waits).
        inner_codes = inner.pending_codes if inner.pending else inner.ask().codes
        if self._mean_candidate:
            mean = inner.mean  # sphere-cma has none before its first update: show a sample's antipode
            shown_mean = -inner_codes[:1] if mean is None else mean[None, :]
            inner_codes = np.vstack([inner_codes, np.repeat(shown_mean, self._mean_repeats, axis=0)])
        codes = self._codes(inner_codes)
        if self._remeasure:
            again = self._elites.leaders(self._remeasure)
            # Until enough images were measured, the last row's image (the mean's, by default) fills the places.
            codes = np.vstack([codes, again, np.repeat(codes[-1:], self._remeasure - len(again), axis=0)])
        return codes, np.zeros((len(codes), 0))

    def _update(self, rows: NDArray[np.intp], codes: FloatArray, aux: FloatArray, scores: FloatArray) -> None:
        search = self._search
        own = rows < self.population_size - self._remeasure  # images shown again may be another start's
        if np.any(own):
            search.best = max(search.best, float(scores[own].max()))  # the mean candidate's score counts here too
        if self._remeasure:
            self._elites.add(codes, scores, self.generation, rows)
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
            state = self._search.state(refreshed)
        else:
            state = {"searches": [search.state(refreshed) for search in self._searches], "active": self._active}
        return {**state, "elites": self._elites.state()} if self._remeasure else state

    def _load_dynamic_state(self, state: dict[str, Any]) -> None:
        given = self._searches[0]
        self._searches = [Search.restored(saved, given) for saved in state.get("searches", [state])]
        self._active = int(state.get("active", 0))
        self._elites = Elites.restored(state.get("elites"), self.dim, self._elites.shrink)

    def summary(self) -> dict[str, float]:
        return {**self._search.inner.summary(), **super().summary()}


def _session_remeasure(population_size: int | None) -> dict[str, Any]:
    """A session's images shown again: two in a generation of at least 20 images (or of a size not said)."""
    if population_size is None or population_size >= SESSION_REMEASURE_FROM:
        return {"remeasure": SESSION_REMEASURE}
    return {}


def _elites(params: MetricCMAParameters, dim: int) -> Elites:
    if params.shrink and not params.remeasure:  # else a session's best and a sweep's judge would differ
        raise InvalidParameter("shrink ranks the images shown again: it needs remeasure >= 1")
    return Elites(dim, params.shrink)


def _inner_size(population_size: int, mean_repeats: int, remeasure: int) -> int:
    """The inner search's samples a generation: the population less the mean's showings and the images again."""
    inner_size = population_size - mean_repeats - remeasure
    if inner_size < 2:
        again = f" and {remeasure} images again" if remeasure else ""
        raise InvalidParameter(
            f"showing the mean {mean_repeats} times{again} needs population_size >= {mean_repeats + remeasure + 2}"
        )
    return inner_size
