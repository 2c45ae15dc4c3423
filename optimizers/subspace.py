"""Run any optimizer in the span of an orthonormal basis and map its codes back to the full latent space.

The generator's Jacobian has a large null space: most latent directions barely change the image. Searching
only the top-k eigenvectors of the generator's metric (its Hessian of image distance) makes the search
faster (Wang & Ponce, ICLR 2021). Codes are ``center + y @ basis`` for inner coordinates y of length k.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.optimizers.base import FloatArray, Optimizer
from evostim.optimizers.checks import check_code, check_positive
from evostim.optimizers.errors import InvalidParameter
from evostim.optimizers.registry import OPTIMIZERS, create_optimizer, optimizer_from_state
from evostim.optimizers.serialization import decode_array, encode_array

__all__ = ["Subspace"]


def _as_matrix(value: Any, label: str) -> FloatArray:
    """A nested list of numbers or an encoded array (``{"dtype", "shape", "data"}``) as a float array."""
    try:
        array = decode_array(value) if isinstance(value, dict) else np.asarray(value, dtype=np.float64)
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidParameter(f"{label} must be a matrix of numbers or an encoded array: {error}") from None
    return np.asarray(array, dtype=np.float64)


class Subspace(Optimizer):
    """An inner optimizer searching k coordinates along the rows of ``basis`` (k x d, orthonormal).

    Args:
        dim: full latent dimension d.
        population_size: λ (passed to the inner optimizer).
        seed: seed (passed to the inner optimizer, which owns the randomness).
        basis: k x d matrix with orthonormal rows, e.g. the top-k eigenvectors of the generator's metric (over
            HTTP also the name of a metric file made by ``evostim metric``, e.g. "dcgan-faces.metric").
        dimensions: search only the first this many rows of the basis (default: all).
        inner: name of the optimizer that searches the k coordinates (default cholesky-cma).
        inner_params: its parameters.
        center: the code at inner coordinates 0 (default: the zero code).
        code_norm: the prior's code norm in the full space; rescales the inner optimizer's defaults.
    """

    name = "subspace"

    @classmethod
    def defaults_for_space(cls, dim: int, code_norm: float) -> dict[str, Any]:
        return {"code_norm": float(code_norm)}

    def __init__(
        self,
        dim: int,
        *,
        population_size: int = 40,
        seed: int = 0,
        basis: Any = None,
        dimensions: int | None = None,
        inner: str = "cholesky-cma",
        inner_params: dict[str, Any] | None = None,
        center: list[float] | None = None,
        code_norm: float | None = None,
    ) -> None:
        super().__init__(dim, population_size=population_size, seed=seed)
        if basis is None:
            raise InvalidParameter("subspace needs a basis: a k x d matrix with orthonormal rows")
        matrix = _as_matrix(basis, "basis")
        if matrix.ndim != 2 or matrix.shape[1] != dim or not 1 <= matrix.shape[0] <= dim:
            raise InvalidParameter(f"basis must have shape (k, {dim}) with 1 <= k <= {dim}, got {matrix.shape}")
        if dimensions is not None:
            if not (isinstance(dimensions, int) and 1 <= dimensions <= len(matrix)):
                raise InvalidParameter(f"dimensions must be an integer in 1..{len(matrix)}, got {dimensions!r}")
            matrix = matrix[:dimensions]
        if not np.all(np.isfinite(matrix)):
            raise InvalidParameter("basis must be finite")
        gram_error = float(np.abs(matrix @ matrix.T - np.eye(len(matrix))).max())
        if gram_error > 1e-6:
            raise InvalidParameter(f"basis rows must be orthonormal (max |B B^T - I| = {gram_error:.2g})")
        self._initial_center = check_code("center", center, dim)
        if inner == self.name:
            raise InvalidParameter("subspace cannot wrap itself")
        if inner not in OPTIMIZERS:
            raise InvalidParameter(f"inner optimizer {inner!r} is unknown; known: {', '.join(sorted(OPTIMIZERS))}")
        if code_norm is not None:
            check_positive("code_norm", code_norm)
        self._basis = matrix
        self._center: FloatArray = np.zeros(dim) if center is None else np.array(self._initial_center)
        self._code_norm = code_norm
        k = len(matrix)
        # The prior's codes, projected on k orthonormal directions, have norm about code_norm * sqrt(k / d).
        inner_norm = None if code_norm is None else code_norm * math.sqrt(k / dim)
        self._inner = create_optimizer(
            inner, k, population_size=population_size, seed=seed, code_norm=inner_norm, **(inner_params or {})
        )

    @property
    def inner(self) -> Optimizer:
        return self._inner

    def _propose(self) -> tuple[FloatArray, FloatArray]:
        population = self._inner.ask()
        return self._center + population.codes @ self._basis, np.zeros((len(population.codes), 0))

    def _update(self, rows: NDArray[np.intp], codes: FloatArray, aux: FloatArray, scores: FloatArray) -> None:
        inner_ids = [self._inner.pending_ids[row] for row in rows]
        self._inner.tell(inner_ids, scores)

    def _settings(self) -> dict[str, Any]:
        return {
            "basis": encode_array(self._basis),
            "dimensions": None,  # the stored basis is already cut to size
            "inner": self._inner.name,
            "inner_params": self._inner.settings,
            "center": self._initial_center,
            "code_norm": self._code_norm,
        }

    def _dynamic_state(self) -> dict[str, Any]:
        return {"inner": self._inner.state_dict()}

    def _load_dynamic_state(self, state: dict[str, Any]) -> None:
        self._inner = optimizer_from_state(state["inner"])

    def summary(self) -> dict[str, float]:
        return {**self._inner.summary(), **super().summary()}
