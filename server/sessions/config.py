"""A session's configuration, typed and frozen: built once from the create request, stored as versioned JSON.

The store keeps it as an opaque JSON object. ``to_stored`` writes schema version ``SCHEMA_VERSION``;
``from_stored`` also reads what earlier versions wrote (version 0: no ``schema_version`` key, and possibly no
``response`` or ``plateau_generations``), so database files from before stay usable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evostim.protocol import SessionCreate

__all__ = ["SCHEMA_VERSION", "Objective", "ResponseUnits", "SessionConfig"]

SCHEMA_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class Objective:
    """The score told to the optimizer: a weighted sum over channels, optionally minus the baseline."""

    weights: Mapping[str, float]
    subtract_baseline: bool = False

    def to_stored(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "subtract_baseline": self.subtract_baseline}


@dataclass(frozen=True, kw_only=True)
class ResponseUnits:
    """What posted numbers are: counts in a window (ms) or rates (spikes/s)."""

    unit: str = "count"
    window_ms: float | None = None
    baseline_window_ms: float | None = None

    def to_stored(self) -> dict[str, Any]:
        return {"unit": self.unit, "window_ms": self.window_ms, "baseline_window_ms": self.baseline_window_ms}

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any] | None) -> ResponseUnits:
        # Version 0 sessions made before response units existed posted counts.
        return cls(**stored) if stored else cls()


def _init_summary(request: SessionCreate) -> dict[str, Any] | None:
    """How the search started, as stored: how many codes were given, not the codes (they made generation 0)."""
    if request.init is None:
        return None
    return request.init.model_dump(exclude={"codes"}) | {"codes": len(request.init.codes)}


@dataclass(frozen=True, kw_only=True)
class SessionConfig:
    """Everything fixed when a session is created (resolved: no 'auto', no omitted seed)."""

    generator: str
    optimizer_name: str
    optimizer_params: Mapping[str, Any]
    population_size: int
    seed: int
    channels: tuple[str, ...]
    objective: Objective
    response: ResponseUnits
    builtin_references: int
    given_references: int
    code_norm: float | None
    max_generations: int | None
    plateau_generations: int | None
    init: Mapping[str, Any] | None
    min_measured_fraction: float
    metadata: Mapping[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_request(
        cls,
        request: SessionCreate,
        *,
        generator: str,
        optimizer_name: str,
        optimizer_params: Mapping[str, Any],
        seed: int,
        typical_norm: float,
    ) -> SessionConfig:
        """The configuration of a new session: the request with its defaults resolved."""
        objective = request.objective
        return cls(
            generator=generator,
            optimizer_name=optimizer_name,
            optimizer_params=dict(optimizer_params),
            population_size=request.population_size,
            seed=seed,
            channels=tuple(request.channels),
            objective=Objective(
                weights=objective.weights if objective else {request.channels[0]: 1.0},
                subtract_baseline=bool(objective and objective.subtract_baseline),
            ),
            response=ResponseUnits(**request.response.model_dump()),
            builtin_references=request.references.builtin,
            given_references=len(request.references.codes),
            code_norm=typical_norm if request.code_norm == "auto" else request.code_norm,
            max_generations=request.max_generations,
            plateau_generations=request.plateau_generations,
            init=_init_summary(request),
            min_measured_fraction=request.min_measured_fraction,
            metadata=dict(request.metadata),
        )

    def to_stored(self) -> dict[str, Any]:
        """The JSON object kept in the store and shown as ``SessionPublic.config``."""
        return {
            "schema_version": self.schema_version,
            "generator": self.generator,
            "optimizer": {"name": self.optimizer_name, "params": dict(self.optimizer_params)},
            "population_size": self.population_size,
            "seed": self.seed,
            "channels": list(self.channels),
            "objective": self.objective.to_stored(),
            "response": self.response.to_stored(),
            "references": {"builtin": self.builtin_references, "given": self.given_references},
            "code_norm": self.code_norm,
            "max_generations": self.max_generations,
            "plateau_generations": self.plateau_generations,
            "init": None if self.init is None else dict(self.init),
            "min_measured_fraction": self.min_measured_fraction,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> SessionConfig:
        """Read a stored configuration of any schema version up to ``SCHEMA_VERSION``."""
        version = int(stored.get("schema_version", 0))
        if version > SCHEMA_VERSION:
            raise ValueError(f"session config schema {version} is newer than this server's ({SCHEMA_VERSION})")
        return cls(
            generator=stored["generator"],
            optimizer_name=stored["optimizer"]["name"],
            optimizer_params=stored["optimizer"]["params"],
            population_size=stored["population_size"],
            seed=stored["seed"],
            channels=tuple(stored["channels"]),
            objective=Objective(**stored["objective"]),
            response=ResponseUnits.from_stored(stored.get("response")),
            builtin_references=stored["references"]["builtin"],
            given_references=stored["references"].get("given", 0),
            code_norm=stored["code_norm"],
            max_generations=stored.get("max_generations"),
            plateau_generations=stored.get("plateau_generations"),  # absent in version 0
            init=stored.get("init"),
            min_measured_fraction=stored.get("min_measured_fraction", 0.5),
            metadata=stored.get("metadata") or {},
            schema_version=SCHEMA_VERSION,  # read once, it is the current schema in memory
        )
