"""Run any optimizer in the span of an orthonormal basis and map its codes back to the full latent space.

The generator's Jacobian has a large null space: most latent directions barely change the image. Searching
only the top-k eigenvectors of the generator's metric (its Hessian of image distance) makes the search
faster (Wang & Ponce, ICLR 2021). Codes are ``center + y @ basis`` for inner coordinates y of length k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.optimizers.base import FloatArray, Optimizer, Start
from evostim.optimizers.checks import at_least, code, code_scale, optional
from evostim.optimizers.errors import InvalidParameter
from evostim.optimizers.parameters import Context, Parameters, doc
from evostim.optimizers.registry import OPTIMIZERS, create_optimizer, optimizer_from_state
from evostim.optimizers.serialization import decode_array, encode_array

__all__ = ["Subspace", "SubspaceParameters"]


def _as_matrix(value: Any, label: str) -> FloatArray:
    """A nested list of numbers or an encoded array (``{"dtype", "shape", "data"}``) as a float array."""
    try:
        array = decode_array(value) if isinstance(value, dict) else np.asarray(value, dtype=np.float64)
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidParameter(f"{label} must be a matrix of numbers or an encoded array: {error}") from None
    return np.asarray(array, dtype=np.float64)


def _basis(name: str, value: Any, context: Context) -> FloatArray:
    """A k x d matrix (1 <= k <= d) given as nested lists or an encoded array."""
    if value is None:
        raise InvalidParameter(f"subspace needs a {name}: a k x d matrix with orthonormal rows")
    matrix = _as_matrix(value, name)
    dim = context.dim
    if matrix.ndim != 2 or matrix.shape[1] != dim or not 1 <= matrix.shape[0] <= dim:
        raise InvalidParameter(f"{name} must have shape (k, {dim}) with 1 <= k <= {dim}, got {matrix.shape}")
    return matrix


def _inner(name: str, value: str, context: Context) -> str:
    """A registered optimizer other than subspace."""
    if value == Subspace.name:
        raise InvalidParameter("subspace cannot wrap itself")
    if value not in OPTIMIZERS:
        raise InvalidParameter(f"{name} optimizer {value!r} is unknown; known: {', '.join(sorted(OPTIMIZERS))}")
    return value


def _searched_rows(basis: FloatArray, dimensions: int | None) -> FloatArray:
    """The first ``dimensions`` rows of the basis (all by default), checked finite and orthonormal."""
    if dimensions is not None:
        if not 1 <= dimensions <= len(basis):
            raise InvalidParameter(f"dimensions must be an integer in 1..{len(basis)}, got {dimensions!r}")
        basis = basis[:dimensions]
    if not np.all(np.isfinite(basis)):
        raise InvalidParameter("basis must be finite")
    gram_error = float(np.abs(basis @ basis.T - np.eye(len(basis))).max())
    if gram_error > 1e-6:
        raise InvalidParameter(f"basis rows must be orthonormal (max |B B^T - I| = {gram_error:.2g})")
    return basis


@dataclass(frozen=True)
class SubspaceParameters(Parameters):
    """What a session may set for subspace."""

    basis: Any = field(
        default=None,
        metadata=doc(
            "k x d matrix with orthonormal rows, e.g. the top-k eigenvectors of the generator's metric (over HTTP also "
            'the name of a metric file made by ``evostim metric``, e.g. "dcgan-faces.metric")',
            check=_basis,
        ),
    )
    dimensions: int | None = field(
        default=None,
        metadata=doc("search only the first this many rows of the basis (default: all)", check=optional(at_least(1))),
    )
    inner: str = field(
        default="cholesky-cma", metadata=doc("name of the optimizer that searches the k coordinates", check=_inner)
    )
    inner_params: dict[str, Any] | None = field(default=None, metadata=doc("the inner optimizer's parameters"))
    center: list[float] | None = field(
        default=None,
        metadata=doc(
            "the code at inner coordinates 0 (default: the zero code); a start from codes sets it", check=code
        ),
    )
    code_norm: float | None = field(
        default=None,
        metadata=doc(
            "the prior's code norm in the full space; rescales the inner optimizer's defaults",
            check=optional(code_scale),
        ),
    )


class Subspace(Optimizer):
    """An inner optimizer searching k coordinates along the rows of ``basis`` (k x d, orthonormal).

    λ and the seed are passed to the inner optimizer, which owns the randomness. Started from given codes, the
    search is centred on their mean (``center``); the inner optimizer starts at its own default, the centre.
    Parameters: :class:`SubspaceParameters`.
    """

    name = "subspace"
    parameters = SubspaceParameters
    start = Start.from_mean("center")

    @classmethod
    def defaults_for_space(cls, dim: int, code_norm: float) -> dict[str, Any]:
        return {"code_norm": float(code_norm)}

    def __init__(self, dim: int, *, population_size: int, seed: int, params: SubspaceParameters) -> None:
        super().__init__(dim, population_size=population_size, seed=seed, params=params)
        matrix = _searched_rows(_basis("basis", params.basis, self.context), params.dimensions)
        self._initial_center = params.center
        self._basis = matrix
        self._center: FloatArray = np.zeros(dim) if params.center is None else np.array(params.center)
        self._code_norm = params.code_norm
        k = len(matrix)
        # The prior's codes, projected on k orthonormal directions, have norm about code_norm * sqrt(k / d).
        inner_norm = None if params.code_norm is None else params.code_norm * math.sqrt(k / dim)
        self._inner = create_optimizer(
            _inner("inner", params.inner, self.context),
            k,
            population_size=population_size,
            seed=seed,
            code_norm=inner_norm,
            params=params.inner_params,
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
