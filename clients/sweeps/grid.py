"""The grid of a sweep: units x optimizers (with parameters) x seeds x noise models x budgets, from a small YAML or
TOML file or from keywords, checked before any run starts (each optimizer is built once with its parameters)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from evostim import optimizers
from evostim.clients.simulation.neurons import NOISE_LEVELS, Noise
from evostim.clients.sweeps.engine import RunSpec, make_optimizer
from evostim.clients.sweeps.panels import CNN_UNITS, Precision, check_units, panel_space
from evostim.extras import require
from evostim.generators.metric_lookup import metric_location

__all__ = ["OptimizerEntry", "SweepConfig", "config_with"]


class OptimizerEntry(BaseModel):
    """An optimizer of the grid: a registered name (or ``ngopt``), its parameters, and its label in the tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: str = ""

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name != "ngopt" and name not in optimizers.OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}; known: ngopt, {', '.join(sorted(optimizers.OPTIMIZERS))}")
        return name

    @field_validator("params")
    @classmethod
    def _basis_found(cls, params: dict[str, Any]) -> dict[str, Any]:
        """A basis named as a session names one: a file (relative to here), WEIGHTS_DIR/<name>.npz (the folder
        EVOSTIM_WEIGHTS_DIR, default ./weights), or a shipped metric's name (``dcgan-faces.metric``)."""
        if not isinstance(params.get("basis"), str):
            return params
        try:
            found = metric_location(params["basis"], Path(os.environ.get("EVOSTIM_WEIGHTS_DIR", "weights")))
        except FileNotFoundError as error:
            raise ValueError(str(error)) from None
        return {**params, "basis": found}

    @property
    def title(self) -> str:
        return self.label or self.name


class SweepConfig(BaseModel):
    """The grid. Every field has a default: an empty file sweeps the 24-unit panel with the default optimizer."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    panel: Literal["cnn", "synthetic"] = "cnn"
    units: list[str] = Field(default_factory=lambda: list(CNN_UNITS), min_length=1)
    optimizers: list[OptimizerEntry] = Field(
        default_factory=lambda: [OptimizerEntry(name=optimizers.DEFAULT_OPTIMIZER)], min_length=1
    )
    seeds: list[int] = Field(default_factory=lambda: list(range(5)), min_length=1)
    noise: list[str] = Field(default_factory=lambda: list(NOISE_LEVELS), min_length=1)
    generations: list[int] = Field(default_factory=lambda: [75], min_length=1, description="budgets, in generations")
    population: int = Field(default=40, ge=2, le=1000)
    code_norm_constraint: bool = False
    precision: Precision = "fp32"
    random_codes: int = Field(default=10_000, ge=10, description="random images per unit for calibration")
    runs_per_task: int = Field(default=16, ge=1, description="runs stepped together in one batch")
    references: int = Field(default=0, ge=0, le=1000, description="reference images shown every generation, untold")
    drift_correction: bool = Field(default=False, description="scores / the trend of the reference responses")

    @field_validator("optimizers", mode="before")
    @classmethod
    def _names_are_entries(cls, value: Any) -> Any:
        return [{"name": item} if isinstance(item, str) else item for item in value]

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_is_a_range(cls, value: Any) -> Any:
        return list(range(value)) if isinstance(value, int) else value

    @field_validator("noise", mode="before")
    @classmethod
    def _noise_models(cls, value: Any) -> Any:
        models = [str(model) for model in value]
        for model in models:
            Noise.parse(model)  # an unknown one: a line naming the known ones
        return models

    @field_validator("generations", mode="before")
    @classmethod
    def _one_budget(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) else value

    @field_validator("units")
    @classmethod
    def _units_exist(cls, units: list[str], info: ValidationInfo) -> list[str]:
        """A unit the panel does not have (``onet.conv3.99``) stops the sweep here, naming the valid range."""
        if "panel" in info.data:  # else the panel itself was refused
            check_units(info.data["panel"], units)
        return units

    @model_validator(mode="after")
    def _references_measure_every_noise_model(self) -> SweepConfig:
        """Drift correction needs references and spike counts under every noise model of the grid."""
        for noise in self.noise:
            RunSpec("", "", noise, 0, 1, references=self.references, drift_correction=self.drift_correction)
        return self

    @model_validator(mode="after")
    def _optimizers_take_their_parameters(self) -> SweepConfig:
        """Each optimizer is built once here, so a parameter it refuses stops the sweep before any run starts."""
        dim, code_norm = panel_space(self.panel)
        for entry in self.optimizers:
            try:
                make_optimizer(
                    RunSpec(entry.name, "", "0", 0, 1, entry.params, population=self.population), dim, code_norm
                )
            except optimizers.OptimizerError as error:  # its message names the optimizer
                raise ValueError(str(error)) from None
            except OSError as error:  # a basis file that cannot be read
                raise ValueError(f"{entry.title}: {error}") from None
        return self

    @classmethod
    def from_file(cls, path: Path | str) -> SweepConfig:
        """A ``.yaml``/``.yml`` or ``.toml`` file holding the fields above."""
        path = Path(path)
        text = path.read_text()
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            yaml = require("yaml", extra="sweep", feature="a YAML sweep file")
            data = yaml.safe_load(text) or {}
        return validated(data, f"{path}: ")

    def specs(self) -> list[RunSpec]:
        """Every run of the grid, ordered so that a task's runs share a network (units in their given order)."""
        return [
            RunSpec(
                optimizer=entry.name,
                params=entry.params,
                label=entry.title,
                unit=unit,
                noise=noise,
                seed=seed,
                generations=budget,
                population=self.population,
                code_norm_constraint=self.code_norm_constraint,
                references=self.references,
                drift_correction=self.drift_correction,
            )
            for unit in self.units
            for entry in self.optimizers
            for noise in self.noise
            for budget in self.generations
            for seed in self.seeds
        ]


def validated(data: Any, where: str = "") -> SweepConfig:
    """A SweepConfig, or a ValueError whose message names each bad field in one line."""
    try:
        return SweepConfig.model_validate(data)
    except pydantic.ValidationError as error:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'the file'}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        ]
        raise ValueError(where + "; ".join(problems)) from None


def config_with(config: SweepConfig, **changes: Any) -> SweepConfig:
    """``config`` with the given (non-empty) fields replaced, validated again (for command-line overrides)."""
    return validated({**config.model_dump(), **{key: value for key, value in changes.items() if value}})
