"""Separable (diagonal) CMA-ES: a full CMA-ES whose covariance is kept diagonal.

References (equation numbers in comments):
- [H16] N. Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772 (2016).
- [RH08] R. Ros, N. Hansen, "A Simple Modification in CMA-ES Achieving Linear Time and Space
  Complexity", PPSN 2008 - the diagonal restriction and its (n + 2) / 3 faster learning rates.

O(λ d) per step and 3 d numbers of state, so it is as cheap at d = 4,096 as at d = 10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.optimizers.base import FloatArray, Optimizer, Start
from evostim.optimizers.checks import code, parents, step_size
from evostim.optimizers.parameters import Parameters, doc
from evostim.optimizers.recombination import log_rank_weights, published_cma_sigma, select_parents
from evostim.optimizers.serialization import decode_array, encode_array

__all__ = ["SepCMA", "SepCMAParameters"]


@dataclass(frozen=True)
class SepCMAParameters(Parameters):
    """What a session may set for sep-cma."""

    sigma: float = field(
        default=3.0,
        metadata=doc(
            "initial step size (3 in the fc6 space, rescaled to other spaces, as for cholesky-cma)", check=step_size
        ),
    )
    mu: int | None = field(default=None, metadata=doc("number of parents (default λ // 2)", check=parents))
    mean: list[float] | None = field(
        default=None, metadata=doc("initial mean, length d (default: the zero code)", check=code)
    )


class SepCMA(Optimizer):
    """Diagonal CMA-ES with rank-one and rank-mu updates and cumulative step-size adaptation.

    Parameters: :class:`SepCMAParameters`.
    """

    name = "sep-cma"
    parameters = SepCMAParameters
    start = Start.from_mean("mean")

    @classmethod
    def defaults_for_space(cls, dim: int, code_norm: float) -> dict[str, Any]:
        return {"sigma": published_cma_sigma(dim, code_norm)}

    def __init__(self, dim: int, *, population_size: int, seed: int, params: SepCMAParameters) -> None:
        super().__init__(dim, population_size=population_size, seed=seed, params=params)
        self._initial_sigma = params.sigma
        self._mu = mu = parents("mu", params.mu, self.context)
        self._initial_mean = params.mean

        n = float(dim)
        mueff = 1.0 / float(np.sum(log_rank_weights(mu) ** 2))
        # [H16] eqs. (55)-(58), then the diagonal speed-up of [RH08] for c1 and cmu.
        self._cc = (4.0 + mueff / n) / (n + 4.0 + 2.0 * mueff / n)
        self._cs = (mueff + 2.0) / (n + mueff + 5.0)
        c1 = 2.0 / ((n + 1.3) ** 2 + mueff)
        cmu = min(1.0 - c1, 2.0 * (mueff - 2.0 + 1.0 / mueff) / ((n + 2.0) ** 2 + mueff))
        self._c1 = min(1.0, c1 * (n + 2.0) / 3.0)
        self._cmu = min(1.0 - self._c1, cmu * (n + 2.0) / 3.0)
        self._damps = 1.0 + 2.0 * max(0.0, math.sqrt((mueff - 1.0) / (n + 1.0)) - 1.0) + self._cs
        self._chi_n = math.sqrt(n) * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n * n))

        self._mean: FloatArray = np.zeros(dim) if self._initial_mean is None else np.array(self._initial_mean)
        self._sigma = float(params.sigma)
        self._variances: FloatArray = np.ones(dim)  # the diagonal of C
        self._pc: FloatArray = np.zeros(dim)
        self._ps: FloatArray = np.zeros(dim)

    @property
    def sigma(self) -> float:
        return self._sigma

    @property
    def mean(self) -> FloatArray:
        return self._mean.copy()

    def _propose(self) -> tuple[FloatArray, FloatArray]:
        z = self._rng.standard_normal((self.population_size, self.dim))
        codes = self._mean + self._sigma * z * np.sqrt(self._variances)  # [H16] eqs. (38)-(40), D diagonal
        return codes, z

    def _update(self, rows: NDArray[np.intp], codes: FloatArray, aux: FloatArray, scores: FloatArray) -> None:
        parents, weights = select_parents(scores, self._mu)
        mueff = 1.0 / float(np.sum(weights**2))
        std = np.sqrt(self._variances)
        y = aux[parents] * std  # steps in x-space / sigma
        y_w = weights @ y
        self._mean = self._mean + self._sigma * y_w  # [H16] eq. (41)

        self._ps = (1 - self._cs) * self._ps + math.sqrt(self._cs * (2 - self._cs) * mueff) * (y_w / std)  # (43)
        ps_norm = float(np.linalg.norm(self._ps))
        steps = self.generation + 1
        # Stall the rank-one path while the step size is still growing fast ([H16] p. 32, h_sigma).
        h_sigma = ps_norm / math.sqrt(1 - (1 - self._cs) ** (2 * steps)) < (1.4 + 2 / (self.dim + 1)) * self._chi_n
        self._pc = (1 - self._cc) * self._pc + float(h_sigma) * math.sqrt(self._cc * (2 - self._cc) * mueff) * y_w
        delta_h = (1 - float(h_sigma)) * self._cc * (2 - self._cc)
        rank_mu = weights @ (y**2)
        self._variances = (
            (1 - self._c1 - self._cmu) * self._variances
            + self._c1 * (self._pc**2 + delta_h * self._variances)
            + self._cmu * rank_mu
        )  # [H16] eq. (47), diagonal
        self._sigma *= math.exp((self._cs / self._damps) * (ps_norm / self._chi_n - 1))  # (44)

    def _dynamic_state(self) -> dict[str, Any]:
        return {
            "mean": encode_array(self._mean),
            "sigma": self._sigma,
            "variances": encode_array(self._variances),
            "pc": encode_array(self._pc),
            "ps": encode_array(self._ps),
        }

    def _load_dynamic_state(self, state: dict[str, Any]) -> None:
        self._mean = decode_array(state["mean"])
        self._sigma = float(state["sigma"])
        self._variances = decode_array(state["variances"])
        self._pc = decode_array(state["pc"])
        self._ps = decode_array(state["ps"])

    def summary(self) -> dict[str, float]:
        return {**super().summary(), "sigma": self._sigma, "mean_norm": float(np.linalg.norm(self._mean))}
