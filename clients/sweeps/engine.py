"""The batched evaluation engine: many in-silico runs stepped together, one decode and one CNN pass a generation.

A run is one optimizer searching one unit under one noise model with one seed (``RunSpec``). ``evolve`` steps a
list of runs in lockstep: each asks its optimizer for a population, all codes go through the panel at once, each
run's clean activations are measured by its own simulated recording (evostim.clients.simulation.neurons: noise,
and a gain that drifts over the run's generations under a drifting model) and told to its optimizer. A run's
random numbers (optimizer, noise, drift) come from its spec alone, so it gives the same results alone or in any
batch, up to the float round-off of batched convolutions (which only matters where two scores tie to that
precision).

A run may also show ``references`` reference images every generation, as labs do to track drift: fixed prior
codes (the same for every run), measured with the run's noise and drift from a stream of their own, never told to
the optimizer. With ``drift_correction`` each generation's scores are divided by the drift factor of the reference
responses so far before they are told: evostim.drift's rule, the one a session with ``objective.drift_correction``
applies (a ridge-shrunk log-linear trend of the generations' mean reference responses, 1 at generation 0).

The value of a run at a generation is the *clean* activation of its best image so far, the one with the highest
observed score (the score told to the optimizer: corrected under drift correction; the best noisy score itself
flatters an optimizer); an image shown more than once (the same code) is judged by its mean score.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from evostim.clients.simulation.neurons import Noise, Recording, ResponseModel
from evostim.clients.sweeps.panels import FloatArray, Panel
from evostim.drift import DRIFT_RULE, drift_factor
from evostim.extras import require
from evostim.generators.host import hosted_optimizer
from evostim.generators.metric_lookup import find_metric
from evostim.optimizers import Host
from evostim.optimizers.elites import Elites
from evostim.optimizers.geometry import project_to_sphere
from evostim.optimizers.recombination import published_cma_sigma

__all__ = [
    "REFERENCE_SEED",
    "RunResult",
    "RunSpec",
    "SearchOptimizer",
    "evolve",
    "make_optimizer",
]

REFERENCE_SEED = 31_415  # the prior codes of every run's reference images


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep. ``label`` names the optimizer with its parameters in tables (default: its name)."""

    optimizer: str  # a registered optimizer, or "ngopt" (nevergrad's NGOpt, the outside reference)
    unit: str
    noise: str  # a noise model by name (neurons.Noise): "0", "0.2", "0.5", "poisson", "negbin:1.5", "recorded"...
    seed: int
    generations: int
    params: Mapping[str, Any] = field(default_factory=dict)  # a basis may be a saved metric's path or shipped name
    label: str = ""
    population: int = 40
    code_norm_constraint: bool = False  # show the codes projected on the prior's sphere, as sessions do
    references: int = 0  # reference images shown every generation (measured, never told)
    drift_correction: bool = False  # scores / evostim.drift's factor of the reference responses so far

    def __post_init__(self) -> None:
        noise = Noise.parse(self.noise)  # an unknown model stops here, naming the known ones
        if self.references < 0:
            raise ValueError(f"references: a count of images, not {self.references}")
        if self.drift_correction and (self.references < 1 or not noise.counts):
            raise ValueError(
                "drift_correction divides the scores by the trend of the references' spike counts: it needs "
                f"references >= 1 and a spiking noise model, not {self.noise!r} with {self.references} references"
            )

    @property
    def name(self) -> str:
        return self.label or self.optimizer

    @property
    def key(self) -> str:
        """A stable id of everything that defines the run (resuming a sweep skips the keys it has)."""
        fields = {
            "optimizer": self.optimizer,
            "params": dict(sorted(self.params.items())),
            "label": self.name,
            "unit": self.unit,
            "noise": self.noise,
            "seed": self.seed,
            "generations": self.generations,
            "population": self.population,
            "constraint": self.code_norm_constraint,
        }
        if self.references or self.drift_correction:  # absent otherwise: the keys of earlier sweeps' runs stay
            fields.update(references=self.references, drift_correction=self.drift_correction)
        if self.drift_correction:  # the rule's constants: runs of another rule are other runs
            fields.update(drift_rule=DRIFT_RULE.to_stored())
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    def seeds(self) -> tuple[int, int]:
        """(optimizer seed, noise seed), from the unit, noise and seed only: every optimizer on a (unit, noise,
        seed) sees the same noise stream, and a run draws the same numbers whatever batch it runs in."""
        digest = hashlib.sha256(f"{self.unit}|{self.noise}|{self.seed}".encode()).digest()
        return int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:8], "little")


class SearchOptimizer(Protocol):
    def ask(self) -> FloatArray: ...

    def tell(self, scores: FloatArray) -> None: ...


class _Registered:
    """A registered evostim optimizer (or adapter) with the space's default parameters."""

    def __init__(self, spec: RunSpec, dim: int, code_norm: float, seed: int, host: Host | None) -> None:
        self._optimizer = hosted_optimizer(
            spec.optimizer,
            dim,
            population_size=spec.population,
            seed=seed,
            code_norm=code_norm,
            host=host,
            find_metric=functools.partial(find_metric, paths=True),  # where the configuration found it
            params=spec.params,
        )
        self._ids: tuple[int, ...] = ()

    def ask(self) -> FloatArray:
        population = self._optimizer.ask()
        self._ids = population.ids
        codes: FloatArray = population.codes
        return codes

    def tell(self, scores: FloatArray) -> None:
        self._optimizer.tell(self._ids, scores)


class _NevergradNGOpt:
    """nevergrad's NGOpt (it picks its algorithm from dimension, budget and workers)."""

    def __init__(self, spec: RunSpec, dim: int, code_norm: float, seed: int) -> None:
        ng = require("nevergrad", extra="references", feature="the ngopt optimizer")
        sigma = published_cma_sigma(dim, code_norm)
        parametrization = ng.p.Array(init=np.zeros(dim)).set_mutation(sigma=sigma)
        parametrization.random_state = np.random.RandomState(seed)
        budget = spec.generations * spec.population
        self._optimizer = ng.optimizers.NGOpt(
            parametrization=parametrization, budget=budget, num_workers=spec.population
        )
        self._population = spec.population
        self._pending: list[Any] = []

    def ask(self) -> FloatArray:
        self._pending = [self._optimizer.ask() for _ in range(self._population)]
        return np.array([candidate.value for candidate in self._pending])

    def tell(self, scores: FloatArray) -> None:
        for candidate, score in zip(self._pending, scores, strict=True):
            self._optimizer.tell(candidate, -float(score))


def make_optimizer(spec: RunSpec, dim: int, code_norm: float, host: Host | None = None) -> SearchOptimizer:
    """The run's optimizer; ``host``: the panel's (None: not known yet, its optimizer's needs not checked)."""
    seed = spec.seeds()[0]
    if spec.optimizer == "ngopt":
        return _NevergradNGOpt(spec, dim, code_norm, seed)
    return _Registered(spec, dim, code_norm, seed, host)


@dataclass
class RunResult:
    """What a run measured, per generation (G of them) and in total."""

    spec: RunSpec
    best_clean: list[float] = field(default_factory=list)  # clean activation of the best-observed image so far
    best_observed: list[float] = field(default_factory=list)  # its observed (noisy) score: the mean over its showings
    best_clean_seen: list[float] = field(default_factory=list)  # best clean activation of any image so far
    mean_observed: list[float] = field(default_factory=list)  # the generation's mean observed score
    best_code: list[float] = field(default_factory=list)  # the shown code of the best-observed image so far
    reference_mean: list[float] = field(default_factory=list)  # the mean reference response, if it shows some
    drift_factor: list[float] = field(default_factory=list)  # what the scores were divided by, under correction
    optimizer_seconds: float = 0.0

    _elites: Elites | None = field(default=None, repr=False)  # the images judged: the optimizers' own rule
    _clean: dict[bytes, float] = field(default_factory=dict, repr=False)  # the clean activation of each kept image

    def record(self, shown: NDArray[np.floating[Any]], clean: FloatArray, observed: FloatArray) -> None:
        """One generation's images: the best so far is the one with the highest mean score over its showings
        (evostim.optimizers.elites, as a session's optimizer judges it, its ``shrink`` too; the earlier image keeps a
        tie)."""
        codes: FloatArray = np.asarray(shown, dtype=np.float64)  # as Elites keeps them: one key for a code in both
        if self._elites is None:
            self._elites = Elites(codes.shape[1], float(self.spec.params.get("shrink", 0.0)))
        generation = len(self.best_observed)
        self._elites.add(codes, observed, generation, np.arange(len(codes)))
        for code, value in zip(codes, clean, strict=True):
            self._clean.setdefault(code.tobytes(), float(value))
        kept = {code.tobytes() for code in self._elites.codes}
        self._clean = {key: value for key, value in self._clean.items() if key in kept}
        leader = self._elites.codes[0]
        self.best_code = leader.tolist()
        self.best_observed.append(float(self._elites.means[0]))
        self.best_clean.append(self._clean[leader.tobytes()])
        seen = float(clean.max())
        self.best_clean_seen.append(max(seen, self.best_clean_seen[-1]) if self.best_clean_seen else seen)
        self.mean_observed.append(float(observed.mean()))


@dataclass
class _Live:
    result: RunResult
    optimizer: SearchOptimizer
    recording: Recording
    references: FloatArray  # clean activations (R,) of the reference images on the run's unit


def _timed(result: RunResult, call: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    value = call()
    result.optimizer_seconds += time.perf_counter() - started
    return value


def evolve(
    panel: Panel,
    specs: Sequence[RunSpec],
    gains: Mapping[str, float],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[RunResult]:
    """Step every run of ``specs`` in lockstep on ``panel``; ``gains``: the spike-count gain of each unit.

    ``progress(generation, evaluations)`` is called after each generation with that generation's evaluations."""
    unit_index = {name: index for index, name in enumerate(panel.names)}
    references = _reference_activations(panel, specs, unit_index)
    live = []
    for spec in specs:
        optimizer = make_optimizer(spec, panel.dim, panel.code_norm, getattr(panel, "host", None))
        model = ResponseModel(float(gains[spec.unit]), noise=spec.noise)
        recording = Recording(model, seed=spec.seeds()[1], generations=spec.generations)
        live.append(_Live(RunResult(spec), optimizer, recording, references[(spec.unit, spec.references)]))
    for generation in range(max((s.generations for s in specs), default=0)):
        active = [run for run in live if run.result.spec.generations > generation]
        _step(panel, active, unit_index, generation)
        if progress is not None:
            progress(generation, sum(run.result.spec.population for run in active))
    return [run.result for run in live]


def _reference_activations(
    panel: Panel, specs: Sequence[RunSpec], unit_index: Mapping[str, int]
) -> dict[tuple[str, int], FloatArray]:
    """Clean activations (R,) of the first R reference images on a unit, by (unit, R): one evaluation per pair, so
    that a run's references do not depend on the batch it is in."""
    out: dict[tuple[str, int], FloatArray] = {}
    for unit, count in sorted({(spec.unit, spec.references) for spec in specs}):
        units = np.full(count, unit_index[unit], dtype=np.int64)
        out[(unit, count)] = (
            panel.activations(units, panel.random_codes(count, REFERENCE_SEED)) if count else np.empty(0)
        )
    return out


def _step(panel: Panel, active: Sequence[_Live], unit_index: Mapping[str, int], generation: int) -> None:
    """One generation of every active run: ask, one batched evaluation, observe, tell."""
    codes = [_timed(run.result, run.optimizer.ask) for run in active]
    shown = [_shown(run.result.spec, batch, panel.code_norm) for run, batch in zip(active, codes, strict=True)]
    sizes = [len(batch) for batch in shown]
    units = np.repeat([unit_index[run.result.spec.unit] for run in active], sizes).astype(np.int64)
    clean = np.split(panel.activations(units, np.concatenate(shown)), np.cumsum(sizes)[:-1])
    for run, run_shown, run_clean in zip(active, shown, clean, strict=True):
        observed = _told(run, run.recording.observe(run_clean, generation), generation)
        _timed(run.result, functools.partial(run.optimizer.tell, observed))
        run.result.record(run_shown, run_clean, observed)


def _told(run: _Live, observed: FloatArray, generation: int) -> FloatArray:
    """The scores told to the optimizer: as observed, or under drift correction divided by evostim.drift's factor
    of the mean reference responses so far (the session's rule: one function for both)."""
    if not len(run.references):
        return observed
    responses = run.recording.observe_references(run.references, generation)
    run.result.reference_mean.append(float(responses.mean()))
    if not run.result.spec.drift_correction:
        return observed
    factor = drift_factor(run.result.reference_mean)
    run.result.drift_factor.append(factor)
    corrected: FloatArray = observed / factor
    return corrected


def _shown(spec: RunSpec, codes: FloatArray, code_norm: float) -> FloatArray:
    """The codes whose images are scored: projected on the prior's sphere under the constraint, else as asked."""
    shown: FloatArray = project_to_sphere(codes, code_norm if spec.code_norm_constraint else None)
    return shown
