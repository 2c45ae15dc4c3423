"""Search on the sphere of fixed code norm, with an angular step that decays over generations.

Reference: [WP22] B. Wang, C. R. Ponce, "High-performance evolutionary algorithms for online neuron
control", GECCO 2022 (SphereCMA, its best optimizer in silico): samples are the mean moved along random
tangent directions by a scheduled angle (exponential map), the new mean is the rank-weighted mean of the
best samples projected back to the sphere, and the step to it is extrapolated along the great circle
by a learning rate (spherical linear interpolation with t > 1).

With ``adapt_angle`` the scheduled angle is scaled by cumulative step-size adaptation ([H16] §4, the
squared-length variant): a path accumulates the parents' recombined tangent direction, normalized so that its
expected squared length under random selection is the tangent space's dimension, and the factor grows while the
means keep moving the same way (a climb the step is too short for) and shrinks when their moves cancel.
[H16] N. Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772.

With ``wide_samples`` a few samples of every generation are drawn at ``wide_angle`` (90°) instead, and when one
of them ranks first the mean jumps onto it rather than being dragged a few degrees towards it: a hedge for a
search that climbs a weak local slope while a far region drives the neuron much harder (docs/sample_efficiency.md,
round 10).

With ``momentum`` b > 0 the mean's move carries b times its last move on (heavy-ball momentum, the last move carried
to the new mean along the great circle): a climb that keeps its direction speeds up, while moves that noise turns
about partly cancel (round 38).

With ``screen`` S > 1, each generation draws S times the tangent directions it shows and shows those whose lines are
best aligned, either way, with the responses' fitted slope (evostim.optimizers.response_slope; round 31).

O(λ d) per step (O(S λ d + d³) with ``screen``) and d numbers of state (2 d + 1 with ``adapt_angle``, d more with
``momentum``, d² + 2 d more with ``screen``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.optimizers.base import FloatArray, Optimizer, Start
from evostim.optimizers.checks import parents
from evostim.optimizers.errors import InvalidParameter
from evostim.optimizers.geometry import exp_map, log_map, parallel_transport, unit
from evostim.optimizers.recombination import select_parents
from evostim.optimizers.response_slope import ResponseSlope
from evostim.optimizers.serialization import decode_array, encode_array
from evostim.optimizers.sphere_cma_parameters import SphereCMAParameters

__all__ = ["SphereCMA", "SphereCMAParameters"]


class SphereCMA(Optimizer):
    """Rank-weighted recombination on the sphere of norm ``sphere_norm`` with a decaying angular step.

    Population size λ: [WP22] uses 40. Parameters: :class:`SphereCMAParameters`.
    """

    name = "sphere-cma"
    parameters = SphereCMAParameters
    start = Start.from_mean("mean")

    @classmethod
    def defaults_for_space(cls, dim: int, code_norm: float) -> dict[str, Any]:
        return {"sphere_norm": float(code_norm)}

    def __init__(self, dim: int, *, population_size: int, seed: int, params: SphereCMAParameters) -> None:
        super().__init__(dim, population_size=population_size, seed=seed, params=params)
        if dim < 2:
            raise InvalidParameter("sphere-cma needs dim >= 2 (a sphere with tangent directions)")
        self._mu = parents("mu", params.mu, self.context)
        self._sphere_norm = params.sphere_norm
        self._initial_mean = params.mean
        self._learning_rate = params.learning_rate
        self._angle_start = params.angle_start
        self._angle_end = params.angle_end
        decay, replans = params.decay_generations, params.replans or []
        if replans and replans[0] <= decay:
            raise InvalidParameter(f"replans must be longer than decay_generations ({decay}), got {replans}")
        self._schedule_lengths = [decay, *replans]  # each in force until the search passes it
        self._warmup_generations, self._warmup_angle = params.warmup_generations, params.warmup_angle
        self._mirrored = params.mirrored
        self._wide_rows = _wide_rows(params.wide_samples, population_size, mirrored=params.mirrored)
        self._wide_angle = math.radians(params.wide_angle)
        self._adapt_angle = params.adapt_angle
        self._adapt_damping = params.adapt_damping
        self._screen = params.screen
        self._response_model = ResponseSlope(dim)  # screen: the model that chooses the steps shown
        # Cumulative step-size adaptation: the path (a tangent vector at the mean) and log(angle / scheduled).
        self._path = np.zeros(dim)
        self._log_factor = 0.0
        # Momentum: the mean's last move, a tangent vector at the mean whose length is the move's angle.
        self._momentum = params.momentum
        self._velocity = np.zeros(dim)
        # The mean direction (unit vector); None until the first generation has been told.
        mean = params.mean
        self._direction: FloatArray | None = None if mean is None else unit(np.array(mean, dtype=np.float64))

    @property
    def mean(self) -> FloatArray | None:
        """The current mean code (on the sphere), or None before the first update without a given mean."""
        return None if self._direction is None else self._sphere_norm * self._direction

    def move_mean(
        self,
        direction: FloatArray,
        path: FloatArray | None = None,
        slope: FloatArray | None = None,
        velocity: FloatArray | None = None,
    ) -> None:
        """Set the mean's direction (for a host that re-expressed its coordinates; the schedule goes on).

        ``path``: the step-size path re-expressed in the new coordinates (default: the old one, projected onto
        the new mean's tangent space); its length is kept, as it measures the evidence, not a distance.
        ``slope``: the responses' fitted slope (``screen``) re-expressed likewise, its length kept too; the data
        it was fitted to are dropped (they are in the old coordinates), so the next fit is the new data's.
        ``velocity``: the mean's last move (``momentum``) re-expressed likewise, its angle kept."""
        self._direction = unit(np.asarray(direction, dtype=np.float64))
        self._path = self._tangent_like(self._path, path)
        self._velocity = self._tangent_like(self._velocity, velocity)
        self._response_model.forget(self._tangent_like(self._response_model.slope, slope))

    def _tangent_like(self, vector: FloatArray, moved: FloatArray | None) -> FloatArray:
        """``moved`` (default: ``vector``) projected onto the mean's tangent space, with ``vector``'s length."""
        assert self._direction is not None
        moved = vector if moved is None else np.asarray(moved, dtype=np.float64)
        tangent = moved - (moved @ self._direction) * self._direction
        length = float(np.linalg.norm(tangent))
        return tangent * (float(np.linalg.norm(vector)) / length) if length > 0 else np.zeros(self.dim)

    @property
    def path(self) -> FloatArray:
        """The step-size path: a tangent vector at the mean (zero without ``adapt_angle``)."""
        return self._path.copy()

    @property
    def velocity(self) -> FloatArray:
        """The mean's last move: a tangent vector at the mean, its length the move's angle (zero without
        ``momentum``)."""
        return self._velocity.copy()

    @property
    def slope(self) -> FloatArray:
        """The responses' fitted slope: a tangent vector at the mean (zero without ``screen``)."""
        return self._response_model.slope.copy()

    def angle(self, generation: int) -> float:
        """The scheduled angular step in radians: warmup_angle during the warm-up, else exponential from
        angle_start to angle_end over the schedule's length (the first of decay_generations and replans that is
        still ahead, the last one once all are behind), then flat."""
        if generation < self._warmup_generations:
            return math.radians(self._warmup_angle)
        lengths = self._schedule_lengths
        length = next((n for n in lengths if generation < n), lengths[-1])
        fraction = min(generation, length - 1) / max(length - 1, 1)
        degrees = self._angle_start * (self._angle_end / self._angle_start) ** fraction
        return math.radians(degrees)

    def step_angle(self) -> float:
        """The angle this generation's samples are drawn at: the schedule's, scaled by the adaptation."""
        scheduled = self.angle(self.generation)
        return min(scheduled * math.exp(self._log_factor), math.pi / 2) if self._adapt_angle else scheduled

    def _propose(self) -> tuple[FloatArray, FloatArray]:
        if self._direction is None:
            noise = self._rng.standard_normal((self.population_size, self.dim))
            return self._sphere_norm * unit(noise), np.zeros((self.population_size, 0))
        if self._mirrored:  # pairs (t, -t); an odd population's last sample has no mirror
            half = self._screened(self._rng.standard_normal(((self.population_size + 1) // 2, self.dim)))
            noise = np.vstack([half, -half])[: self.population_size]
        else:
            noise = self._screened(self._rng.standard_normal((self.population_size, self.dim)))
        # Tangent directions at the mean, moved along by the scheduled angle (exponential map).
        tangent = unit(noise - np.outer(noise @ self._direction, self._direction))
        theta = self.step_angle()
        points = math.cos(theta) * self._direction + math.sin(theta) * tangent
        if len(self._wide_rows):
            wide = self._wide_rows
            points[wide] = math.cos(self._wide_angle) * self._direction + math.sin(self._wide_angle) * tangent[wide]
        return self._sphere_norm * unit(points), np.zeros((self.population_size, 0))

    def _screened(self, noise: FloatArray) -> FloatArray:
        """``noise`` (n, d) itself, or with ``screen`` the n of ``screen`` x n draws whose lines are most aligned
        with the slope, either way (so the responses, not the fit, tell which way is up; with mirrored steps each
        such line is shown both ways)."""
        if self._screen == 1:
            return noise
        drawn = np.vstack([noise, self._rng.standard_normal(((self._screen - 1) * len(noise), self.dim))])
        return self._response_model.most_aligned(drawn, len(noise))

    def _update(self, rows: NDArray[np.intp], codes: FloatArray, aux: FloatArray, scores: FloatArray) -> None:
        self._move(rows, codes, scores)
        if self._screen > 1 and self._direction is not None:
            self._response_model.fit(codes / self._sphere_norm, scores, self._direction)

    def _move(self, rows: NDArray[np.intp], codes: FloatArray, scores: FloatArray) -> None:
        winner = self._wide_winner(rows, codes, scores)
        if winner is not None:  # jump there instead of dragging the mean a few degrees towards it
            self._direction = unit(winner)
            self._path = np.zeros(self.dim)  # the old mean's evidence says nothing about the new place
            self._velocity = np.zeros(self.dim)
            self._response_model.forget()
            return
        parents, weights = select_parents(scores, self._mu)
        recombined = weights @ codes[parents]
        if not np.any(recombined):
            self._velocity = np.zeros(self.dim)  # a generation that leaves the mean where it is: no move to carry on
            return  # antipodal parents cancel out: keep the mean
        target = unit(recombined)
        if self._direction is None:
            self._direction = target
            return
        # Spherical linear extrapolation from the old mean through the recombined one, by learning_rate.
        cos_angle = float(np.clip(self._direction @ target, -1.0, 1.0))
        angle = math.acos(cos_angle)
        if angle < 1e-12:
            self._velocity = np.zeros(self.dim)
            return
        t = self._learning_rate
        moved = unit((math.sin((1 - t) * angle) * self._direction + math.sin(t * angle) * target) / math.sin(angle))
        if self._momentum:
            moved = self._carried_on(moved)
        if self._adapt_angle:  # the plain schedule keeps no path: nothing to update or carry
            pairs = _mirrored_pairs(rows, self.population_size) if self._mirrored else 0
            self._adapt(codes[parents], weights, told=len(rows), mirrored_pairs=pairs)
            self._path = parallel_transport(self._path, self._direction, moved)  # carried along to the new mean
        self._direction = moved

    def _wide_winner(self, rows: NDArray[np.intp], codes: FloatArray, scores: FloatArray) -> FloatArray | None:
        """The wide sample that beat every near one, if one did (a tie does not count: spike counts often tie)."""
        if self._direction is None or not len(self._wide_rows):
            return None
        wide = np.isin(rows, self._wide_rows)
        if not wide.any() or wide.all() or scores[wide].max() <= scores[~wide].max():
            return None
        winner: FloatArray = codes[wide][np.argmax(scores[wide])]
        return winner

    def _adapt(self, parents: FloatArray, weights: FloatArray, told: int, mirrored_pairs: int) -> None:
        """One step of cumulative step-size adaptation on the angle, from the parents' tangent directions."""
        assert self._direction is not None
        points = parents / self._sphere_norm
        tangents = unit(points - np.outer(points @ self._direction, self._direction))
        step = weights @ tangents
        # Its expected squared length under random selection: sum(w^2) for independent directions, less the
        # cancellation of a mirrored pair's two samples when both are parents (t and -t).
        sum_sq = float(weights @ weights)
        expected = sum_sq - (2 * mirrored_pairs * (1 - sum_sq) / (told * (told - 1)) if told > 1 else 0.0)
        n = self.dim - 1  # the tangent space's dimension
        mu_eff = 1 / sum_sq
        c = (mu_eff + 2) / (n + mu_eff + 5)
        damping = self._adapt_damping * (1 + 2 * max(0.0, math.sqrt((mu_eff - 1) / (n + 1)) - 1) + c)
        self._path = (1 - c) * self._path + math.sqrt(c * (2 - c)) * step * math.sqrt(n / expected)
        self._log_factor += c / (2 * damping) * (float(self._path @ self._path) / n - 1)
        # Capped where the next generation's angle would pass 90°, so the factor can come down again at once.
        ceiling = math.log(math.pi / 2 / self.angle(self.generation + 1))
        self._log_factor = float(np.clip(self._log_factor, math.log(1e-3), ceiling))

    def _carried_on(self, moved: FloatArray) -> FloatArray:
        """The new mean with momentum: this generation's move from the mean (the short way to ``moved``) plus
        ``momentum`` times the last one; the sum is kept, carried to the new mean, as the last move. What is carried
        on never takes the sum past 90° or past this generation's own move, whichever is longer."""
        assert self._direction is not None
        old = self._direction
        own = log_map(old, moved)
        velocity = own + self._momentum * self._velocity
        angle, longest = float(np.linalg.norm(velocity)), max(math.pi / 2, float(np.linalg.norm(own)))
        if angle > longest:
            velocity *= longest / angle
        new = exp_map(old, velocity)
        self._velocity = parallel_transport(velocity, old, new)
        return new

    def _dynamic_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"direction": None if self._direction is None else encode_array(self._direction)}
        if self._adapt_angle:
            state.update(path=encode_array(self._path), log_factor=self._log_factor)
        if self._momentum:
            state.update(velocity=encode_array(self._velocity))
        if self._screen > 1:
            state.update(self._response_model.state())
        return state

    def _load_dynamic_state(self, state: dict[str, Any]) -> None:
        self._direction = None if state["direction"] is None else decode_array(state["direction"])
        if "path" in state:
            self._path, self._log_factor = decode_array(state["path"]), float(state["log_factor"])
        if "velocity" in state:
            self._velocity = decode_array(state["velocity"])
        if "slope" in state:
            self._response_model.load(state)

    def summary(self) -> dict[str, float]:
        return {**super().summary(), "angle_deg": math.degrees(self.step_angle())}


def _wide_rows(wide_samples: int, population_size: int, *, mirrored: bool) -> NDArray[np.intp]:
    """The rows drawn at the wide angle: the first wide_samples, or with mirrored steps the first pairs (row i
    and its mirror i + half) that hold them."""
    if mirrored:
        half = (population_size + 1) // 2
        rows = np.flatnonzero(np.arange(population_size) % half < math.ceil(wide_samples / 2))
    else:
        rows = np.arange(min(wide_samples, population_size))
    if len(rows) >= population_size:
        raise InvalidParameter(
            f"wide_samples={wide_samples} leaves no sample of the {population_size} at the schedule's angle"
        )
    return rows


def _mirrored_pairs(rows: NDArray[np.intp], population_size: int) -> int:
    """How many mirrored pairs (sample i and i + half) were both told, of a population drawn in pairs."""
    half = (population_size + 1) // 2
    told = set(rows.tolist())
    return sum(1 for row in told if row < half and row + half in told)
