"""The ask/tell interface and the bookkeeping every optimizer shares.

An optimizer proposes a population of latent codes (``ask``), is told the scores of the candidates
that were measured (``tell``), and serializes to plain data that reloads bit-identically, random
generator included. It maximizes. Subclasses write only their own sampling and update steps.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

import numpy as np
from numpy.typing import NDArray

from evostim import extras
from evostim.optimizers.errors import (
    DuplicateCandidate,
    IncompatibleState,
    InvalidParameter,
    NoPendingPopulation,
    PendingPopulation,
    UnknownCandidate,
)
from evostim.optimizers.host import NO_HOST, Host, Need
from evostim.optimizers.parameters import Context, Parameters
from evostim.optimizers.serialization import decode_array, encode_array, rng_from_state, rng_state

__all__ = ["STATE_SCHEMA_VERSION", "Extra", "Optimizer", "Population", "Start"]

STATE_SCHEMA_VERSION = 1

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Population:
    """One generation's proposals: ``codes`` has shape (λ, d); ``ids`` are unique over a run."""

    generation: int
    ids: tuple[int, ...]
    codes: FloatArray


@dataclass(frozen=True)
class Start:
    """How an optimizer starts from given codes (n, d): which of its parameters gets them, and in what form.

    ``Start.from_mean("mean")``: the parameter gets the codes' mean (a code of length d);
    ``Start.from_population("initial_codes")``: it gets the codes themselves, as the first population's rows.
    """

    parameter: str
    form: Literal["mean", "population"]

    @classmethod
    def from_mean(cls, parameter: str) -> Start:
        return cls(parameter, "mean")

    @classmethod
    def from_population(cls, parameter: str) -> Start:
        return cls(parameter, "population")

    def params_for(self, codes: FloatArray) -> dict[str, Any]:
        """The parameters that start the optimizer from ``codes`` (n, d)."""
        if self.form == "mean":
            return {self.parameter: codes.mean(axis=0).tolist()}
        return {self.parameter: codes.tolist()}


@dataclass(frozen=True)
class Extra:
    """An optional package an optimizer needs: the pip extra that installs it and the module to import."""

    name: str
    module: str

    @property
    def installed(self) -> bool:
        return extras.is_installed(self.module)

    def require(self, feature: str) -> None:
        """Raise MissingExtra (naming the extra) unless the module can be imported."""
        if not self.installed:
            raise extras.MissingExtra(extra=self.name, module=self.module, feature=feature)


class Optimizer(ABC):
    """Bookkeeping shared by all optimizers: generation counter, pending ids, best so far, state.

    A subclass declares, as class attributes:

    - ``name``: the name sessions use;
    - ``parameters``: its :class:`~evostim.optimizers.parameters.Parameters` record (type, default, description
      and check of each parameter besides dim, population_size and seed);
    - ``start``: how it starts from given codes (:class:`Start`), or None if it cannot;
    - ``extra``: the optional package it needs (:class:`Extra`), or None;
    - ``needs``: the host's services it uses (:class:`~evostim.optimizers.host.Need`), read as ``self.host``; and
      ``session_defaults`` where a session on a generator gets defaults of its own (see ``optimizers/host.py``);

    and defines ``__init__(dim, *, population_size, seed, params)`` taking the built record, ``_propose`` (sample λ
    codes), ``_update`` (learn from the measured ones), and ``_dynamic_state`` / ``_load_dynamic_state`` for
    serialization (``_settings`` defaults to the record's values). Build optimizers with :meth:`create`.
    """

    name: ClassVar[str]
    parameters: ClassVar[type[Parameters]] = Parameters
    start: ClassVar[Start | None] = None
    extra: ClassVar[Extra | None] = None
    needs: ClassVar[tuple[Need, ...]] = ()

    @classmethod
    def session_defaults(
        cls, params: dict[str, Any], host: Host, *, generations: int | None = None, population_size: int | None = None
    ) -> dict[str, Any]:
        """A session's parameters (as requested) with the defaults a session on ``host``'s generator gets;
        ``generations``: the session's planned length (its ``max_generations``; None: open-ended);
        ``population_size``: its evolved images a generation (None: not known, as for a listing).

        Sweeps apply none; an optimizer without host-dependent defaults returns ``params`` as they are.
        """
        return params

    @classmethod
    def defaults_for_space(cls, dim: int, code_norm: float) -> dict[str, Any]:
        """Defaults of the parameters that depend on the search space's scale.

        Published values were set for the fc6 space (d = 4,096, codes of norm about 300); subclasses
        rescale theirs to a space of dimension ``dim`` whose prior codes have norm ``code_norm``.
        """
        return {}

    @classmethod
    def create(cls, dim: int, *, population_size: int = 40, seed: int = 0, host: Host = NO_HOST, **params: Any) -> Self:
        """Build the optimizer from plain-data parameters: checked against ``parameters``, defaults filled in;
        ``host``: what its host provides (the services its class ``needs``).

        Raises InvalidParameter naming a bad or unknown parameter, MissingExtra if ``extra`` is not installed.
        """
        if cls.extra is not None:
            cls.extra.require(f"the {cls.name} optimizer")
        _check_shape(dim, population_size)
        record = cls.parameters.build(params, Context(dim=int(dim), population_size=int(population_size)))
        optimizer = cls(dim, population_size=population_size, seed=seed, params=record)
        optimizer._host = host
        return optimizer

    def __init__(self, dim: int, *, population_size: int, seed: int, params: Parameters) -> None:
        _check_shape(dim, population_size)
        self._params = params
        self._host = NO_HOST
        self._dim = int(dim)
        self._population_size = int(population_size)
        self._seed = int(seed)
        self._rng = np.random.default_rng(seed)
        self._generation = 0
        self._next_id = 0
        self._pending_ids: tuple[int, ...] = ()
        self._pending_codes: FloatArray = np.zeros((0, dim))
        self._pending_aux: FloatArray = np.zeros((0, 0))
        self._best_score = -math.inf
        self._best_code: FloatArray | None = None

    # -- read-only views ---------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._dim

    @property
    def population_size(self) -> int:
        return self._population_size

    @property
    def host(self) -> Host:
        """What the host that runs it provides (given at construction; nothing for an optimizer built alone)."""
        return self._host

    @property
    def context(self) -> Context:
        """What the parameters' checks depend on: d and λ."""
        return Context(dim=self._dim, population_size=self._population_size)

    @property
    def generation(self) -> int:
        """Number of completed ask/tell rounds."""
        return self._generation

    @property
    def best_score(self) -> float:
        return self._best_score

    @property
    def best_code(self) -> FloatArray | None:
        return None if self._best_code is None else self._best_code.copy()

    @property
    def best_image(self) -> tuple[float, int, int] | None:
        """For an optimizer that shows images again: the image with the best mean score over its showings, as (that
        mean, the generation and row it was first shown at); None: each image is shown once, the best is the highest
        single score (``best_score``)."""
        return None

    @property
    def pending(self) -> bool:
        return bool(self._pending_ids)

    @property
    def pending_ids(self) -> tuple[int, ...]:
        """Ids of the population waiting for scores, in the order ``ask`` returned them."""
        return self._pending_ids

    @property
    def pending_codes(self) -> FloatArray:
        """Codes of the pending population (rows in the order of ``pending_ids``)."""
        return self._pending_codes.copy()

    @property
    def settings(self) -> dict[str, Any]:
        """The resolved parameters (defaults filled in), as plain data: what :meth:`create` was given, in full."""
        return self._settings()

    # -- ask / tell ----------------------------------------------------------------------------
    def ask(self) -> Population:
        """Propose the next population; it must be told before the next ask."""
        if self._pending_ids:
            raise PendingPopulation(
                f"generation {self._generation} was asked for and not told yet; tell its scores first"
            )
        codes, aux = self._propose()
        ids = tuple(range(self._next_id, self._next_id + len(codes)))
        self._next_id += len(codes)
        self._pending_ids, self._pending_codes, self._pending_aux = ids, codes, aux
        return Population(self._generation, ids, codes.copy())

    def tell(self, ids: list[int] | tuple[int, ...], scores: list[float] | FloatArray) -> None:
        """Learn from the measured candidates of the pending population (a subset is fine).

        NaN scores count as the worst measured score; unmeasured candidates are simply left out.
        """
        rows, scores_array = self._measured(ids, scores)
        top = int(np.argmax(scores_array))
        if scores_array[top] > self._best_score:
            self._best_score = float(scores_array[top])
            self._best_code = self._pending_codes[rows[top]].copy()
        self._update(rows, self._pending_codes[rows], self._pending_aux[rows], scores_array)
        self._generation += 1
        self._pending_ids = ()
        self._pending_codes = np.zeros((0, self._dim))
        self._pending_aux = np.zeros((0, 0))

    def _measured(
        self, ids: list[int] | tuple[int, ...], scores: list[float] | FloatArray
    ) -> tuple[NDArray[np.intp], FloatArray]:
        """The pending rows of ``ids`` and their scores, NaN replaced by the worst finite one."""
        if not self._pending_ids:
            raise NoPendingPopulation("tell() before ask(): there is no population waiting for scores")
        scores_array = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(ids) != len(scores_array):
            raise InvalidParameter(f"got {len(ids)} ids but {len(scores_array)} scores")
        rows = self._pending_rows(ids)
        finite = np.isfinite(scores_array)
        worst = scores_array[finite].min() if finite.any() else 0.0
        return rows, np.where(finite, scores_array, worst)

    def _pending_rows(self, ids: list[int] | tuple[int, ...]) -> NDArray[np.intp]:
        """Rows of the pending population that ``ids`` name; typed errors for duplicate, unknown or no ids."""
        if len(set(ids)) != len(ids):
            raise DuplicateCandidate(f"candidate ids told twice: {sorted(i for i, n in Counter(ids).items() if n > 1)}")
        row_of = {candidate: row for row, candidate in enumerate(self._pending_ids)}
        unknown = [i for i in ids if i not in row_of]
        if unknown:
            raise UnknownCandidate(f"candidate ids {unknown} are not in the pending population")
        if len(ids) == 0:
            raise InvalidParameter("tell() needs at least one measured candidate")
        return np.array([row_of[i] for i in ids], dtype=np.intp)

    # -- algorithm hooks -------------------------------------------------------------------------
    @abstractmethod
    def _propose(self) -> tuple[FloatArray, FloatArray]:
        """Return (codes (λ, d), aux (λ, ·)); aux is whatever ``_update`` needs per candidate (e.g. z-samples)."""

    @abstractmethod
    def _update(self, rows: NDArray[np.intp], codes: FloatArray, aux: FloatArray, scores: FloatArray) -> None:
        """Update from the measured candidates: their rows in the population (m,), codes (m, d), aux (m, ·),
        scores (m,), to be maximized."""

    def _settings(self) -> dict[str, Any]:
        """The parameters (besides dim, population_size, seed) as plain data: :meth:`create` takes them back."""
        return self._params.as_dict()

    @abstractmethod
    def _dynamic_state(self) -> dict[str, Any]:
        """The algorithm's changing state as plain data (arrays via ``encode_array``)."""

    @abstractmethod
    def _load_dynamic_state(self, state: dict[str, Any]) -> None:
        """Inverse of ``_dynamic_state``."""

    # -- serialization ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically, as JSON-safe plain data."""
        return {
            "schema": STATE_SCHEMA_VERSION,
            "optimizer": self.name,
            "dim": self._dim,
            "population_size": self._population_size,
            "seed": self._seed,
            "settings": self._settings(),
            "rng": rng_state(self._rng),
            "generation": self._generation,
            "next_id": self._next_id,
            "pending_ids": list(self._pending_ids),
            "pending_codes": encode_array(self._pending_codes),
            "pending_aux": encode_array(self._pending_aux),
            "best_score": None if self._best_code is None else self._best_score,
            "best_code": None if self._best_code is None else encode_array(self._best_code),
            "algorithm": self._dynamic_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], *, host: Host = NO_HOST) -> Self:
        """Rebuild an optimizer from :meth:`state_dict` output (``host``: as for :meth:`create`)."""
        if state.get("schema") != STATE_SCHEMA_VERSION:
            raise IncompatibleState(f"state schema {state.get('schema')!r}, expected {STATE_SCHEMA_VERSION}")
        if state.get("optimizer") != cls.name:
            raise IncompatibleState(f"state of optimizer {state.get('optimizer')!r} given to {cls.name!r}")
        optimizer = cls.create(
            state["dim"], population_size=state["population_size"], seed=state["seed"], host=host, **state["settings"]
        )
        optimizer._rng = rng_from_state(state["rng"])
        optimizer._generation = state["generation"]
        optimizer._next_id = state["next_id"]
        optimizer._pending_ids = tuple(state["pending_ids"])
        optimizer._pending_codes = decode_array(state["pending_codes"])
        optimizer._pending_aux = decode_array(state["pending_aux"])
        if state["best_code"] is not None:
            optimizer._best_score = state["best_score"]
            optimizer._best_code = decode_array(state["best_code"])
        optimizer._load_dynamic_state(state["algorithm"])
        return optimizer

    def summary(self) -> dict[str, float]:
        """A few scalars worth logging per generation (subclasses add theirs)."""
        judged = self.best_image  # the best image's mean score, for an optimizer that shows images again
        if judged is not None:
            return {"best_score": judged[0]}
        return {"best_score": self._best_score if self._best_code is not None else float("nan")}


def _check_shape(dim: int, population_size: int) -> None:
    if dim < 1:
        raise InvalidParameter(f"dim must be >= 1, got {dim}")
    if population_size < 2:
        raise InvalidParameter(f"population_size must be >= 2, got {population_size}")
