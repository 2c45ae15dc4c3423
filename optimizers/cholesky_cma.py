"""CMA-ES with a rank-one Cholesky-factor update (the Ponce lab's online default).

References (equation numbers in comments):
- [H16] N. Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772 (2016).
- [ISH06] C. Igel, T. Suttorp, N. Hansen, "A computational efficient covariance matrix update and
  a (1+1)-CMA for evolution strategies", GECCO 2006 - the update of A and A^-1 without eigendecomposition.
- [WP22] B. Wang, C. R. Ponce, "High-performance evolutionary algorithms for online neuron control",
  GECCO 2022 - the variant used in monkey experiments (rank-one update only, lazy factor update).

Row-vector convention: a sample is x = m + sigma * z A with z ~ N(0, I), so the covariance is A^T A.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from optimizers.base import FloatArray, Optimizer
from optimizers.errors import InvalidParameter
from optimizers.serialization import decode_array, encode_array

__all__ = ["CholeskyCMA"]


class CholeskyCMA(Optimizer):
    """CMA-ES whose covariance factor A is updated in O(d^2) per update, never decomposed.

    Args:
        dim: latent dimension d.
        population_size: λ, candidates per generation.
        seed: seed of the optimizer's own random generator.
        sigma: initial step size (the generator's typical per-coordinate spread is a good start).
        mu: number of parents recombined into the new mean (default λ // 2).
        mean: initial mean, length d (default: the zero code).
        factor_update_every: update A every this many generations ([WP22]: every 10 λ evaluations).
    """

    name = "cholesky-cma"

    def __init__(
        self,
        dim: int,
        *,
        population_size: int = 40,
        seed: int = 0,
        sigma: float = 3.0,
        mu: int | None = None,
        mean: list[float] | None = None,
        factor_update_every: int = 10,
    ) -> None:
        super().__init__(dim, population_size=population_size, seed=seed)
        mu = population_size // 2 if mu is None else int(mu)
        if not 1 <= mu <= population_size:
            raise InvalidParameter(f"mu must be in 1..population_size={population_size}, got {mu}")
        if not (math.isfinite(sigma) and sigma > 0):
            raise InvalidParameter(f"sigma must be a positive number, got {sigma}")
        if factor_update_every < 1:
            raise InvalidParameter(f"factor_update_every must be >= 1, got {factor_update_every}")
        if mean is not None and len(mean) != dim:
            raise InvalidParameter(f"mean has length {len(mean)}, expected dim={dim}")
        if mean is not None and not np.all(np.isfinite(mean)):
            raise InvalidParameter("mean must be finite")
        self._initial_sigma = float(sigma)
        self._mu = mu
        self._initial_mean = None if mean is None else [float(v) for v in mean]
        self._factor_update_every = int(factor_update_every)

        n = float(dim)
        # Recombination weights, [H16] eq. (49) restricted to the mu positive ones.
        raw = math.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
        self._weights: FloatArray = raw / raw.sum()
        self._mueff = 1.0 / float(np.sum(self._weights**2))
        # Learning rates as in [WP22] (cc, cs, c1) and [H16] eq. (55) for the damping.
        self._cc = 4.0 / (n + 4.0)
        self._cs = math.sqrt(self._mueff) / (math.sqrt(self._mueff) + math.sqrt(n))
        self._c1 = 2.0 / (n + math.sqrt(2.0)) ** 2
        self._damps = 1.0 + self._cs + 2.0 * max(0.0, math.sqrt((self._mueff - 1.0) / (n + 1.0)) - 1.0)
        # E||N(0, I)||, [H16] p. 28.
        self._chi_n = math.sqrt(n) * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n * n))

        self._mean: FloatArray = np.zeros(dim) if mean is None else np.array(mean, dtype=np.float64)
        self._sigma = float(sigma)
        self._A: FloatArray = np.eye(dim)
        self._A_inv: FloatArray = np.eye(dim)
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
        codes = self._mean + self._sigma * (z @ self._A)  # [H16] eq. (38)
        return codes, z

    def _update(self, codes: FloatArray, aux: FloatArray, scores: FloatArray) -> None:
        # With a partial population, recombine the best min(mu, m) measured candidates.
        order = np.argsort(-scores, kind="stable")
        mu = min(self._mu, len(order))
        weights = self._weights[:mu] / self._weights[:mu].sum()
        mueff = 1.0 / float(np.sum(weights**2))
        parents = order[:mu]

        z_w = weights @ aux[parents]  # weighted mean step in z-space
        self._mean = weights @ codes[parents]  # [H16] eq. (41) with c_m = 1

        # Evolution paths, [H16] eqs. (43) and (45) (A^-1 plays the role of C^-1/2).
        self._ps = (1 - self._cs) * self._ps + math.sqrt(self._cs * (2 - self._cs) * mueff) * z_w
        self._pc = (1 - self._cc) * self._pc + math.sqrt(self._cc * (2 - self._cc) * mueff) * (z_w @ self._A)
        # Cumulative step-size adaptation, [H16] eq. (44).
        self._sigma *= math.exp((self._cs / self._damps) * (float(np.linalg.norm(self._ps)) / self._chi_n - 1))

        if (self.generation + 1) % self._factor_update_every == 0:
            self._rank_one_factor_update()

    def _rank_one_factor_update(self) -> None:
        """C <- (1 - c1) C + c1 pc pc^T applied to A and A^-1 directly ([ISH06] Theorem 1 and Lemma 1)."""
        alpha, beta = 1.0 - self._c1, self._c1
        v = self._pc @ self._A_inv  # the path in z-space
        norm_v2 = float(v @ v)
        if norm_v2 < 1e-300:
            return
        root = math.sqrt(1.0 + beta / alpha * norm_v2)
        self._A = math.sqrt(alpha) * self._A + (math.sqrt(alpha) / norm_v2) * (root - 1.0) * np.outer(v, self._pc)
        self._A_inv = (1.0 / math.sqrt(alpha)) * self._A_inv - (1.0 / (math.sqrt(alpha) * norm_v2)) * (
            1.0 - 1.0 / root
        ) * np.outer(self._A_inv @ v, v)

    def _settings(self) -> dict[str, Any]:
        return {
            "sigma": self._initial_sigma,
            "mu": self._mu,
            "mean": self._initial_mean,
            "factor_update_every": self._factor_update_every,
        }

    def _dynamic_state(self) -> dict[str, Any]:
        return {
            "mean": encode_array(self._mean),
            "sigma": self._sigma,
            "A": encode_array(self._A),
            "A_inv": encode_array(self._A_inv),
            "pc": encode_array(self._pc),
            "ps": encode_array(self._ps),
        }

    def _load_dynamic_state(self, state: dict[str, Any]) -> None:
        self._mean = decode_array(state["mean"])
        self._sigma = float(state["sigma"])
        self._A = decode_array(state["A"])
        self._A_inv = decode_array(state["A_inv"])
        self._pc = decode_array(state["pc"])
        self._ps = decode_array(state["ps"])

    def summary(self) -> dict[str, float]:
        return {**super().summary(), "sigma": self._sigma, "mean_norm": float(np.linalg.norm(self._mean))}
