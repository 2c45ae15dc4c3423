"""Adapters over outside CMA-ES implementations, as references: pycma's full CMA-ES and cmaes' CMA / SepCMA.

Their objects cannot be serialized to plain data, so an adapter's state is its settings plus every tell
it received; loading rebuilds the library's optimizer from the seed and replays them. Their random
numbers come from the adapter's own generator (pycma through its ``randn`` option, cmaes from the seed),
so replay reproduces the proposals bit for bit. Replay costs one library step per generation: at
d = 4,096 pycma's step takes most of a second, which is one reason these are references, not defaults.
Both libraries want a whole population per tell: unmeasured candidates are told the worst measured score.
Install them with the ``references`` extra.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.extras import require
from evostim.optimizers.base import Extra, FloatArray, Optimizer, Start
from evostim.optimizers.checks import code, step_size
from evostim.optimizers.parameters import Parameters, doc
from evostim.optimizers.recombination import published_cma_sigma

__all__ = ["CmaesCMA", "CmaesSepCMA", "PycmaCMA", "ReferenceParameters"]


@dataclass(frozen=True)
class ReferenceParameters(Parameters):
    """What a session may set for the reference adapters."""

    sigma: float = field(
        default=3.0, metadata=doc("initial step size (3 in fc6, rescaled like cholesky-cma's)", check=step_size)
    )
    mean: list[float] | None = field(
        default=None, metadata=doc("initial mean, length d (default: the zero code)", check=code)
    )


class _ReplayedLibraryOptimizer(Optimizer):
    """An outside optimizer behind the ask/tell interface, serialized as settings + the log of tells."""

    parameters = ReferenceParameters
    start = Start.from_mean("mean")

    @classmethod
    def defaults_for_space(cls, dim: int, code_norm: float) -> dict[str, Any]:
        return {"sigma": published_cma_sigma(dim, code_norm)}

    def __init__(self, dim: int, *, population_size: int, seed: int, params: ReferenceParameters) -> None:
        super().__init__(dim, population_size=population_size, seed=seed, params=params)
        self._sigma0 = params.sigma
        self._initial_mean = params.mean
        self._mean0 = np.zeros(dim) if self._initial_mean is None else np.array(self._initial_mean)
        self._told: list[dict[str, list[Any]]] = []
        self._library_pending: list[NDArray[np.float64]] = []
        self._start()

    @abstractmethod
    def _start(self) -> None:
        """Create the library's optimizer for the settings."""

    @abstractmethod
    def _library_ask(self) -> list[NDArray[np.float64]]:
        """λ solutions from the library."""

    @abstractmethod
    def _library_tell(self, solutions: list[NDArray[np.float64]], scores: FloatArray) -> None:
        """Tell the library the scores (to be maximized) of all λ solutions."""

    def _propose(self) -> tuple[FloatArray, FloatArray]:
        self._library_pending = self._library_ask()
        return np.array(self._library_pending, dtype=np.float64), np.zeros((self.population_size, 0))

    def _update(self, rows: NDArray[np.intp], codes: FloatArray, aux: FloatArray, scores: FloatArray) -> None:
        self._told.append({"rows": [int(r) for r in rows], "scores": [float(s) for s in scores]})
        full = np.full(self.population_size, float(scores.min()))
        full[rows] = scores
        self._library_tell(self._library_pending, full)

    def _dynamic_state(self) -> dict[str, Any]:
        return {"told": self._told}

    def _load_dynamic_state(self, state: dict[str, Any]) -> None:
        # Rebuild from the seed, then replay: ask (the library advances its generator) and tell.
        self._rng = np.random.default_rng(self._seed)
        self._told = []
        self._start()
        for entry in state["told"]:
            rows = np.array(entry["rows"], dtype=np.intp)
            self._propose()
            self._update(rows, np.zeros((0, 0)), np.zeros((0, 0)), np.array(entry["scores"]))
        if self._pending_ids:
            self._propose()


class PycmaCMA(_ReplayedLibraryOptimizer):
    """pycma's CMAEvolutionStrategy (full covariance, active CMA), the reference implementation."""

    name = "pycma"
    extra = Extra(name="references", module="cma")

    def _start(self) -> None:
        cma = require("cma", extra="references", feature="the pycma optimizer")

        options = {
            "popsize": self.population_size,
            "seed": float("nan"),  # no global seeding: samples come from randn below
            "randn": lambda *shape: self._rng.standard_normal(shape),
            "verbose": -9,
            "verb_disp": 0,
            "verb_log": 0,
            "tolx": 0,
            "tolfun": 0,
            "tolflatfitness": 10**9,
            "tolstagnation": 10**9,
            "maxiter": math.inf,
        }
        self._es = cma.CMAEvolutionStrategy(self._mean0, self._sigma0, options)

    def _library_ask(self) -> list[NDArray[np.float64]]:
        return [np.asarray(x, dtype=np.float64) for x in self._es.ask()]

    def _library_tell(self, solutions: list[NDArray[np.float64]], scores: FloatArray) -> None:
        self._es.tell(solutions, list(-scores))  # pycma minimizes


class CmaesCMA(_ReplayedLibraryOptimizer):
    """cmaes' CMA (full covariance, eigendecomposition per generation)."""

    name = "cmaes"
    extra = Extra(name="references", module="cmaes")
    _library_class = "CMA"

    def _start(self) -> None:
        cmaes = require("cmaes", extra="references", feature=f"the {self.name} optimizer")

        library_class = getattr(cmaes, self._library_class)
        self._library = library_class(
            mean=self._mean0, sigma=self._sigma0, population_size=self.population_size, seed=self._seed % 2**32
        )

    def _library_ask(self) -> list[NDArray[np.float64]]:
        return [np.asarray(self._library.ask(), dtype=np.float64) for _ in range(self.population_size)]

    def _library_tell(self, solutions: list[NDArray[np.float64]], scores: FloatArray) -> None:
        self._library.tell([(x, -float(s)) for x, s in zip(solutions, scores, strict=True)])


class CmaesSepCMA(CmaesCMA):
    """cmaes' SepCMA (diagonal covariance)."""

    name = "cmaes-sep"
    _library_class = "SepCMA"
