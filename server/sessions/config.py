"""A session's configuration, typed and frozen: built once from the create request, stored as versioned JSON.

The store keeps it as an opaque JSON object. ``to_stored`` writes schema version ``SCHEMA_VERSION``;
``from_stored`` also reads what earlier versions wrote (version 0: no ``schema_version`` key, and possibly no
``response`` or ``plateau_generations``; before version 2: no ``objective.drift_correction`` and no ``drift_rule``,
read as no correction), so database files from before stay usable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evostim.drift import DRIFT_RULE, DriftRule
from evostim.protocol import SessionCreate
from evostim.server.sessions.errors import InvalidSessionConfig

__all__ = ["SCHEMA_VERSION", "Objective", "ResponseUnits", "SessionConfig"]

SCHEMA_VERSION = 2  # 2: objective.drift_correction and its rule's constants (drift_rule)


@dataclass(frozen=True, kw_only=True)
class Objective:
    """The score told to the optimizer: a weighted sum over channels, optionally minus the baseline, optionally
    divided by the drift its reference images show (``drift_rule``; None: no correction)."""

    weights: Mapping[str, float]
    subtract_baseline: bool = False
    drift_rule: DriftRule | None = None

    @property
    def drift_correction(self) -> bool:
        return self.drift_rule is not None

    def to_stored(self) -> dict[str, Any]:
        """As the create request's ``objective`` says it (a fork's request takes it back); the rule's constants are
        stored beside it (``SessionConfig.to_stored``'s ``drift_rule``)."""
        stored = {"weights": dict(self.weights), "subtract_baseline": self.subtract_baseline}
        return stored | {"drift_correction": self.drift_correction}

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any], drift_rule: Mapping[str, Any] | None) -> Objective:
        rule = DriftRule.from_stored(drift_rule) if stored.get("drift_correction") and drift_rule else None
        return cls(  # before version 2: no drift_correction, no drift_rule
            weights=stored["weights"], subtract_baseline=stored.get("subtract_baseline", False), drift_rule=rule
        )


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


def _check_references(request: SessionCreate) -> None:
    """Drift correction divides by what the reference images show: a session that shows none cannot have it."""
    wanted = request.objective is not None and request.objective.drift_correction
    if wanted and not (request.references.builtin or request.references.codes):
        raise InvalidSessionConfig(
            "objective.drift_correction divides each generation's scores by the drift its reference images show, "
            "and this session shows none: give references.builtin > 0 or references.codes",
            field="objective.drift_correction",
        )


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
        _check_references(request)
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
                drift_rule=DRIFT_RULE if objective and objective.drift_correction else None,
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
            "drift_rule": None if self.objective.drift_rule is None else self.objective.drift_rule.to_stored(),
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
            objective=Objective.from_stored(stored["objective"], stored.get("drift_rule")),
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
