"""The genetic algorithm of Ponce et al. 2019 (Cell) and XDream (Xiao & Kreiman 2020).

Each generation: the best ``elites`` codes are kept unchanged (and shown again, so noisy scores are
re-measured); the other children each get two parents drawn with probability ∝ exp((score - max) / kT),
kT = selectivity x std(scores) (fitness-proportional selection, lower selectivity = greedier); each
gene comes from the fitter parent with probability ``heritability`` and from the other otherwise; each
gene then mutates with probability ``mutation_rate`` by a Gaussian step of std ``mutation_size``.

Published settings: Ponce 2019 - population 40, mutation rate 0.25, size 0.75, selectivity 2,
10 elites, parental skew (heritability) 0.75; XDream's demo - 20, 0.5, 0.5, 2, heritability 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.optimizers.base import FloatArray, Optimizer, Start
from evostim.optimizers.checks import MAX_SCALE, PopulationShare, between, positive, required_code, step_size
from evostim.optimizers.errors import InvalidParameter
from evostim.optimizers.parameters import Context, Parameters, doc
from evostim.optimizers.recombination import scale_relative_to_fc6
from evostim.optimizers.serialization import decode_array, encode_array

__all__ = ["GeneticAlgorithm", "GeneticAlgorithmParameters"]


_elites = PopulationShare(
    0, 1, lambda size: round(size / 4), "{name} must be in 0..population_size-1={high}, got {value}"
)
"""Elites: default a quarter of the population, at most all but one."""


def _first_population(name: str, value: list[list[float]] | None, context: Context) -> list[list[float]] | None:
    """None, or 1..λ codes of length d."""
    if value is None:
        return None
    rows = [required_code(name, row, context) for row in value]
    if not 1 <= len(rows) <= context.population_size:
        raise InvalidParameter(f"{name} must have 1..population_size={context.population_size} rows")
    return rows


@dataclass(frozen=True)
class GeneticAlgorithmParameters(Parameters):
    """What a session may set for ga."""

    mutation_rate: float = field(
        default=0.25, metadata=doc("probability that a gene of a child mutates (0.25)", check=between(0, 1))
    )
    mutation_size: float = field(
        default=0.75,
        metadata=doc("std of a mutation (0.75 in fc6; rescaled to other spaces)", check=between(0, MAX_SCALE)),
    )
    selectivity: float = field(
        default=2.0, metadata=doc("kT multiplier of the selection's temperature (2)", check=positive)
    )
    elites: int | None = field(
        default=None,
        metadata=doc(
            "best codes conserved unchanged into the next generation (10 of 40; default λ / 4)", check=_elites
        ),
    )
    heritability: float = field(
        default=0.75,
        metadata=doc(
            "probability that a gene comes from the fitter parent (parental skew, 0.75)", check=between(0.5, 1)
        ),
    )
    initial_scale: float = field(
        default=300.0 / 64.0,
        metadata=doc(
            "std per coordinate of the random first generation (fc6: 300 / 64; the prior's elsewhere)", check=step_size
        ),
    )
    initial_codes: list[list[float]] | None = field(
        default=None,
        metadata=doc(
            "a first generation to start from instead (rows of d numbers; fewer than λ rows are completed by "
            "mutated copies of them)",
            check=_first_population,
        ),
    )


class GeneticAlgorithm(Optimizer):
    """Elitism, fitness-proportional selection, heritability-weighted crossover, Gaussian mutation.

    Population size λ: Ponce 2019 uses 40. Parameters: :class:`GeneticAlgorithmParameters`.
    """

    name = "ga"
    parameters = GeneticAlgorithmParameters
    start = Start.from_population("initial_codes")

    @classmethod
    def defaults_for_space(cls, dim: int, code_norm: float) -> dict[str, Any]:
        return {
            "mutation_size": round(0.75 * scale_relative_to_fc6(dim, code_norm), 6),
            "initial_scale": round(code_norm / math.sqrt(dim), 6),
        }

    def __init__(self, dim: int, *, population_size: int, seed: int, params: GeneticAlgorithmParameters) -> None:
        super().__init__(dim, population_size=population_size, seed=seed, params=params)
        self._selectivity = params.selectivity
        self._initial_scale = params.initial_scale
        self._mutation_rate = params.mutation_rate
        self._mutation_size = params.mutation_size
        self._elites = _elites("elites", params.elites, self.context)
        self._heritability = params.heritability
        self._initial_codes = params.initial_codes
        if self._initial_codes is None:
            self._next_codes: FloatArray = self._rng.standard_normal((population_size, dim)) * params.initial_scale
        else:
            given = np.array(self._initial_codes)
            copies = given[np.arange(population_size - len(given)) % len(given)]
            self._next_codes = np.vstack([given, self._mutated(copies)])

    def _propose(self) -> tuple[FloatArray, FloatArray]:
        return self._next_codes.copy(), np.zeros((self.population_size, 0))

    def _update(self, rows: NDArray[np.intp], codes: FloatArray, aux: FloatArray, scores: FloatArray) -> None:
        order = np.argsort(-scores, kind="stable")
        elites = codes[order[: self._elites]]  # fewer if only a few were measured
        n_children = self.population_size - len(elites)

        fitness = _selection_probabilities(scores, self._selectivity)
        pairs = self._rng.choice(len(scores), size=(n_children, 2), p=fitness)
        # Put the fitter parent first: it passes each gene with probability `heritability`.
        swap = scores[pairs[:, 1]] > scores[pairs[:, 0]]
        pairs[swap] = pairs[swap][:, ::-1]
        from_fitter = self._rng.random((n_children, self.dim)) < self._heritability
        children = np.where(from_fitter, codes[pairs[:, 0]], codes[pairs[:, 1]])

        self._next_codes = np.vstack([elites, self._mutated(children)])

    def _mutated(self, codes: FloatArray) -> FloatArray:
        """Each gene mutates with probability mutation_rate by N(0, mutation_size^2)."""
        mutate = self._rng.random(codes.shape) < self._mutation_rate
        return np.asarray(codes + mutate * self._rng.normal(0.0, self._mutation_size, codes.shape), dtype=np.float64)

    def _dynamic_state(self) -> dict[str, Any]:
        return {"next_codes": encode_array(self._next_codes)}

    def _load_dynamic_state(self, state: dict[str, Any]) -> None:
        self._next_codes = decode_array(state["next_codes"])


def _boltzmann(scores: FloatArray, selectivity: float) -> FloatArray:
    temperature = max(selectivity * float(np.std(scores)), 1e-12)
    fitness: FloatArray = np.exp((scores - scores.max()) / temperature)
    fitness /= fitness.sum()
    return fitness


def _selection_probabilities(scores: FloatArray, selectivity: float) -> FloatArray:
    """exp((score - max) / kT) normalized, kT = selectivity x std(scores).

    Scores so large that their spread overflows (finite, near 1e308) are first divided by their largest magnitude:
    the same probabilities, which ordinary scores get bit for bit from the direct formula.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        fitness = _boltzmann(scores, selectivity)
    if np.isfinite(fitness).all():
        return fitness
    return _boltzmann(scores / np.abs(scores).max(), selectivity)
