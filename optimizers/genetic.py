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
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.optimizers.base import FloatArray, Optimizer
from evostim.optimizers.checks import check_code, check_positive
from evostim.optimizers.errors import InvalidParameter
from evostim.optimizers.recombination import scale_relative_to_fc6
from evostim.optimizers.serialization import decode_array, encode_array

__all__ = ["GeneticAlgorithm"]


class GeneticAlgorithm(Optimizer):
    """Elitism, fitness-proportional selection, heritability-weighted crossover, Gaussian mutation.

    Args:
        dim: latent dimension d.
        population_size: λ (Ponce 2019: 40).
        seed: seed of the optimizer's own random generator.
        mutation_rate: probability that a gene of a child mutates (0.25).
        mutation_size: std of a mutation (0.75 in fc6; rescaled to other spaces).
        selectivity: kT multiplier of the selection's temperature (2).
        elites: best codes conserved unchanged into the next generation (10 of 40; default λ / 4).
        heritability: probability that a gene comes from the fitter parent (parental skew, 0.75).
        initial_scale: std per coordinate of the random first generation (fc6: 300 / 64; the prior's elsewhere).
        initial_codes: a first generation to start from instead (rows of d numbers; fewer than λ rows are
            completed by mutated copies of them).
    """

    name = "ga"

    @classmethod
    def defaults_for_space(cls, dim: int, code_norm: float) -> dict[str, Any]:
        return {
            "mutation_size": round(0.75 * scale_relative_to_fc6(dim, code_norm), 6),
            "initial_scale": round(code_norm / math.sqrt(dim), 6),
        }

    def __init__(
        self,
        dim: int,
        *,
        population_size: int = 40,
        seed: int = 0,
        mutation_rate: float = 0.25,
        mutation_size: float = 0.75,
        selectivity: float = 2.0,
        elites: int | None = None,
        heritability: float = 0.75,
        initial_scale: float = 300.0 / 64.0,
        initial_codes: list[list[float]] | None = None,
    ) -> None:
        super().__init__(dim, population_size=population_size, seed=seed)
        if not 0 <= mutation_rate <= 1:
            raise InvalidParameter(f"mutation_rate must be in [0, 1], got {mutation_rate}")
        if not (isinstance(mutation_size, int | float) and math.isfinite(mutation_size) and mutation_size >= 0):
            raise InvalidParameter(f"mutation_size must be a number >= 0, got {mutation_size!r}")
        self._selectivity = check_positive("selectivity", selectivity)
        elites = round(population_size / 4) if elites is None else int(elites)
        if not 0 <= elites < population_size:
            raise InvalidParameter(f"elites must be in 0..population_size-1={population_size - 1}, got {elites}")
        if not 0.5 <= heritability <= 1:
            raise InvalidParameter(f"heritability must be in [0.5, 1], got {heritability}")
        self._initial_scale = check_positive("initial_scale", initial_scale)
        self._mutation_rate = float(mutation_rate)
        self._mutation_size = float(mutation_size)
        self._elites = int(elites)
        self._heritability = float(heritability)
        self._initial_codes = (
            None if initial_codes is None else [check_code("initial_codes", row, dim) for row in initial_codes]
        )
        if self._initial_codes is None:
            self._next_codes: FloatArray = self._rng.standard_normal((population_size, dim)) * initial_scale
        elif not 1 <= len(self._initial_codes) <= population_size:
            raise InvalidParameter(f"initial_codes must have 1..population_size={population_size} rows")
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

        spread = float(np.std(scores))
        temperature = max(self._selectivity * spread, 1e-12)
        fitness = np.exp((scores - scores.max()) / temperature)
        fitness /= fitness.sum()
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

    def _settings(self) -> dict[str, Any]:
        return {
            "mutation_rate": self._mutation_rate,
            "mutation_size": self._mutation_size,
            "selectivity": self._selectivity,
            "elites": self._elites,
            "heritability": self._heritability,
            "initial_scale": self._initial_scale,
            "initial_codes": self._initial_codes,
        }

    def _dynamic_state(self) -> dict[str, Any]:
        return {"next_codes": encode_array(self._next_codes)}

    def _load_dynamic_state(self, state: dict[str, Any]) -> None:
        self._next_codes = decode_array(state["next_codes"])
