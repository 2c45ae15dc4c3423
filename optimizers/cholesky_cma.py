"""CMA-ES with a rank-one Cholesky-factor update (the Ponce lab's online default).

References (equation numbers in comments):
- [H16] N. Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772 (2016).
- [ISH06] C. Igel, T. Suttorp, N. Hansen, "A computational efficient covariance matrix update and
  a (1+1)-CMA for evolution strategies", GECCO 2006 - the update of A and A^-1 without eigendecomposition.
- [WP22] B. Wang, C. R. Ponce, "High-performance evolutionary algorithms for online neuron control",
  GECCO 2022 - the variant used in monkey experiments (rank-one update only, lazy factor update).

Row-vector convention: a sample is x = m + sigma * z A with z ~ N(0, I), so the covariance is A^T A.

Why low rank: A starts as I and each factor update adds one rank-one term, so after k updates
A = c (I + P^T Q) with P, Q of shape (k, d) - and likewise A^-1. Keeping the factors instead of the
dense d x d matrices makes a step O(λ k d) instead of O(λ d^2) and the state 4 k d numbers instead of
2 d^2: at d = 4,096 the dense form is 268 MB and ~30 ms per step, the factored one a few MB and ~2 ms.
The arithmetic is the same update as [ISH06]; only the bookkeeping differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.optimizers.base import FloatArray, Optimizer, Start
from evostim.optimizers.checks import at_least, code, parents, step_size
from evostim.optimizers.parameters import Parameters, doc
from evostim.optimizers.recombination import log_rank_weights, published_cma_sigma, select_parents
from evostim.optimizers.serialization import decode_array, encode_array

__all__ = ["CholeskyCMA", "CholeskyCMAParameters", "LowRankMatrix"]


class LowRankMatrix:
    """M = c (I + sum_i outer(left_i, right_i)), stored as c and the (k, d) arrays ``left``, ``right``."""

    def __init__(self, dim: int) -> None:
        self.scale = 1.0
        self.left: FloatArray = np.zeros((0, dim))
        self.right: FloatArray = np.zeros((0, dim))

    def times_rows(self, rows: FloatArray) -> FloatArray:
        """rows @ M for rows of shape (n, d)."""
        return self.scale * (rows + (rows @ self.left.T) @ self.right)

    def times_column(self, vector: FloatArray) -> FloatArray:
        """M @ vector for a vector of shape (d,)."""
        return self.scale * (vector + self.left.T @ (self.right @ vector))

    def scaled_plus_outer(self, factor: float, u: FloatArray, v: FloatArray) -> None:
        """M <- factor * M + outer(u, v)."""
        self.scale *= factor
        self.left = np.vstack([self.left, u / self.scale])
        self.right = np.vstack([self.right, v])

    def dense(self) -> FloatArray:
        """The full d x d matrix (for tests and small d)."""
        return self.scale * (np.eye(self.left.shape[1]) + self.left.T @ self.right)

    def to_state(self) -> dict[str, Any]:
        return {"scale": self.scale, "left": encode_array(self.left), "right": encode_array(self.right)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.scale = float(state["scale"])
        self.left = decode_array(state["left"])
        self.right = decode_array(state["right"])


@dataclass(frozen=True)
class CholeskyCMAParameters(Parameters):
    """What a session may set for cholesky-cma."""

    sigma: float = field(
        default=3.0,
        metadata=doc("initial step size ([WP22]: 3 in the fc6 space; rescaled to other spaces)", check=step_size),
    )
    mu: int | None = field(
        default=None, metadata=doc("number of parents recombined into the new mean (default λ // 2)", check=parents)
    )
    mean: list[float] | None = field(
        default=None, metadata=doc("initial mean, length d (default: the zero code)", check=code)
    )
    factor_update_every: int = field(
        default=10,
        metadata=doc("update A every this many generations ([WP22]: every 10 λ evaluations)", check=at_least(1)),
    )


class CholeskyCMA(Optimizer):
    """CMA-ES whose covariance factor A is updated by rank-one terms, never decomposed.

    Population size λ: [WP22] uses 40. Parameters: :class:`CholeskyCMAParameters`.
    """

    name = "cholesky-cma"
    parameters = CholeskyCMAParameters
    start = Start.from_mean("mean")

    @classmethod
    def defaults_for_space(cls, dim: int, code_norm: float) -> dict[str, Any]:
        return {"sigma": published_cma_sigma(dim, code_norm)}

    def __init__(self, dim: int, *, population_size: int, seed: int, params: CholeskyCMAParameters) -> None:
        super().__init__(dim, population_size=population_size, seed=seed, params=params)
        self._initial_sigma = params.sigma
        self._mu = mu = parents("mu", params.mu, self.context)  # resolved already when built by create()
        self._initial_mean = params.mean
        self._factor_update_every = params.factor_update_every

        n = float(dim)
        self._mueff = 1.0 / float(np.sum(log_rank_weights(mu) ** 2))
        # Learning rates as in [WP22] (cc, cs, c1) and [H16] eq. (55) for the damping.
        self._cc = 4.0 / (n + 4.0)
        self._cs = math.sqrt(self._mueff) / (math.sqrt(self._mueff) + math.sqrt(n))
        self._c1 = 2.0 / (n + math.sqrt(2.0)) ** 2
        self._damps = 1.0 + self._cs + 2.0 * max(0.0, math.sqrt((self._mueff - 1.0) / (n + 1.0)) - 1.0)
        # E||N(0, I)||, [H16] p. 28.
        self._chi_n = math.sqrt(n) * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n * n))

        self._mean: FloatArray = np.zeros(dim) if self._initial_mean is None else np.array(self._initial_mean)
        self._sigma = float(params.sigma)
        self._A = LowRankMatrix(dim)
        self._A_inv = LowRankMatrix(dim)
        self._pc: FloatArray = np.zeros(dim)
        self._ps: FloatArray = np.zeros(dim)

    @property
    def sigma(self) -> float:
        return self._sigma

    @property
    def mean(self) -> FloatArray:
        return self._mean.copy()

    @property
    def factor(self) -> FloatArray:
        """The dense covariance factor A (d x d; for inspection at small d)."""
        return self._A.dense()

    @property
    def factor_inverse(self) -> FloatArray:
        return self._A_inv.dense()

    def _propose(self) -> tuple[FloatArray, FloatArray]:
        z = self._rng.standard_normal((self.population_size, self.dim))
        codes = self._mean + self._sigma * self._A.times_rows(z)  # [H16] eq. (38)
        return codes, z

    def _update(self, rows: NDArray[np.intp], codes: FloatArray, aux: FloatArray, scores: FloatArray) -> None:
        parents, weights = select_parents(scores, self._mu)
        mueff = 1.0 / float(np.sum(weights**2))

        z_w = weights @ aux[parents]  # weighted mean step in z-space
        self._mean = weights @ codes[parents]  # [H16] eq. (41) with c_m = 1

        # Evolution paths, [H16] eqs. (43) and (45) (A^-1 plays the role of C^-1/2).
        self._ps = (1 - self._cs) * self._ps + math.sqrt(self._cs * (2 - self._cs) * mueff) * z_w
        y_w = self._A.times_rows(z_w[None, :])[0]
        self._pc = (1 - self._cc) * self._pc + math.sqrt(self._cc * (2 - self._cc) * mueff) * y_w
        # Cumulative step-size adaptation, [H16] eq. (44).
        self._sigma *= math.exp((self._cs / self._damps) * (float(np.linalg.norm(self._ps)) / self._chi_n - 1))

        if (self.generation + 1) % self._factor_update_every == 0:
            self._rank_one_factor_update()

    def _rank_one_factor_update(self) -> None:
        """C <- (1 - c1) C + c1 pc pc^T applied to A and A^-1 directly ([ISH06] Theorem 1 and Lemma 1)."""
        alpha, beta = 1.0 - self._c1, self._c1
        v = self._A_inv.times_rows(self._pc[None, :])[0]  # the path in z-space
        norm_v2 = float(v @ v)
        if norm_v2 < 1e-300:
            return
        root = math.sqrt(1.0 + beta / alpha * norm_v2)
        a_inv_v = self._A_inv.times_column(v)
        self._A.scaled_plus_outer(math.sqrt(alpha), (math.sqrt(alpha) / norm_v2) * (root - 1.0) * v, self._pc)
        self._A_inv.scaled_plus_outer(
            1.0 / math.sqrt(alpha), -(1.0 / (math.sqrt(alpha) * norm_v2)) * (1.0 - 1.0 / root) * a_inv_v, v
        )

    def _dynamic_state(self) -> dict[str, Any]:
        return {
            "mean": encode_array(self._mean),
            "sigma": self._sigma,
            "A": self._A.to_state(),
            "A_inv": self._A_inv.to_state(),
            "pc": encode_array(self._pc),
            "ps": encode_array(self._ps),
        }

    def _load_dynamic_state(self, state: dict[str, Any]) -> None:
        self._mean = decode_array(state["mean"])
        self._sigma = float(state["sigma"])
        self._A.load_state(state["A"])
        self._A_inv.load_state(state["A_inv"])
        self._pc = decode_array(state["pc"])
        self._ps = decode_array(state["ps"])

    def summary(self) -> dict[str, float]:
        return {**super().summary(), "sigma": self._sigma, "mean_norm": float(np.linalg.norm(self._mean))}
