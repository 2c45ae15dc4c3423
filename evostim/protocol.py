"""The wire types: every request and answer body of the HTTP API, shared by the server and the clients.

Pydantic at the boundary only; inside, the server works on frozen dataclasses.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evostim.json_checks import json_object
from evostim.optimizers import DEFAULT_OPTIMIZER

__all__ = [
    "DEFAULT_POPULATION",
    "MAX_GENERATION",
    "MAX_SEED",
    "AccessPublic",
    "ExportFormat",
    "GenerationPublic",
    "ObjectiveConfig",
    "OptimizerConfig",
    "ProblemDetails",
    "ReferenceConfig",
    "ResponsesAccepted",
    "ResponsesSubmit",
    "SessionCreate",
    "SessionCreated",
    "SessionHistory",
    "SessionPublic",
    "SessionState",
    "SessionUpdate",
    "SessionsPublic",
    "StimulusPublic",
    "StimulusResponse",
]

# A session's evolved images a generation unless it says (the published searches show 40).
DEFAULT_POPULATION = 40
# The largest generation number a request may name (the store's 32-bit integer column): bigger is a 422, not a 500.
MAX_GENERATION = 2**31 - 1
# Seeds are below 2**53: JSON readers that hold numbers as doubles (JavaScript, jq, MATLAB) read them exactly.
MAX_SEED = 2**53 - 1
# GET /v1/sessions/{id}/export?format=...; each format's file name extension is its name.
ExportFormat = Literal["npz", "parquet", "nwb", "csv"]

ChannelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
# A JSON number, never true or "5" (request models are strict); floats in requests are finite everywhere.
Count = Annotated[float, Field(ge=0)]
GenerationNumber = Annotated[int, Field(ge=0, le=MAX_GENERATION)]
# A mapping keyed by channel names: the schema says that other keys are refused (as validation does).
_CHANNEL_KEYS_ONLY: dict[str, Any] = {"additionalProperties": False}
# 1 to 1000 values (the most any server takes): said in the schema here; how many a server takes is its operator's
# limit (EVOSTIM_MAX_REPETITIONS), so the server checks the count and its refusal names the channel and that limit.
Repetitions = Annotated[list[Count], Field(json_schema_extra={"minItems": 1, "maxItems": 1000})]


class _Strict(BaseModel):
    """A request body: unknown fields refused, no coercion (``true`` or ``"5"`` is not a number), finite floats."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class OptimizerConfig(_Strict):
    name: str | None = Field(
        default=None,
        description="a name listed by GET /v1/optimizers; omitted: the generator's default_optimizer (GET "
        f"/v1/generators: metric-cma on dcgan-faces, {DEFAULT_OPTIMIZER} elsewhere)",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="optimizer parameters; omitted ones use defaults")

    @field_validator("params")
    @classmethod
    def _storable(cls, params: dict[str, Any]) -> dict[str, Any]:
        return json_object(params, "params")


class ObjectiveConfig(_Strict):
    """The score told to the optimizer: a weighted sum over channels of the mean over repetitions of the response
    (a rate when the session gives a counting window), minus the baseline when ``subtract_baseline``."""

    weights: dict[ChannelName, float] = Field(min_length=1, json_schema_extra=_CHANNEL_KEYS_ONLY)
    subtract_baseline: bool = Field(default=False, description="optimize response minus pre-stimulus baseline")
    drift_correction: bool = Field(default=False, description="told scores / the references' drift; needs them")


class ReferenceConfig(_Strict):
    """Reference images shown in every generation, scored but never told to the optimizer.

    ``builtin``: that many fixed latents of the generator (the same for every session on this server);
    ``codes``: latents you give; the two add up.
    """

    builtin: int = Field(default=4, ge=0, le=64)
    codes: list[list[float]] = Field(default_factory=list, max_length=64)


class ResponseConfig(_Strict):
    """What the posted numbers are: spike counts in a window, or rates (spikes/s)."""

    unit: Literal["count", "rate"] = "count"
    window_ms: float | None = Field(default=None, gt=0, description="counting window after stimulus onset")
    baseline_window_ms: float | None = Field(default=None, gt=0, description="pre-stimulus counting window")

    @field_validator("window_ms", "baseline_window_ms")
    @classmethod
    def _rate_computable(cls, window_ms: float | None) -> float | None:
        # counts become spikes/s as count * 1000 / window_ms: that factor must be a number
        if window_ms is not None and not math.isfinite(1000.0 / window_ms):
            raise ValueError("a window this short makes spikes per second overflow; give it in milliseconds")
        return window_ms


class InitConfig(_Strict):
    """Where the search starts: the mean of given codes, or of another session's best measured codes."""

    codes: list[list[float]] = Field(default_factory=list, max_length=1000, description="start codes")
    session: str | None = Field(default=None, description="start from this session's best measured evolved codes")
    best: int = Field(default=1, ge=1, le=1000, description="how many of that session's best codes")
    up_to_generation: GenerationNumber | None = Field(default=None, description="only its generations up to this one")

    @model_validator(mode="after")
    def _one_source(self) -> InitConfig:
        if bool(self.codes) == (self.session is not None):
            raise ValueError("init takes either codes or session, not both and not neither")
        return self


class SessionCreate(_Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"population_size": 8, "seed": 7, "references": {"builtin": 2}}]}
    )

    generator: str = "dcgan-faces"
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    # The most any server takes (in the schema); the server checks its operator's limits and names them when it refuses.
    population_size: int = Field(default=DEFAULT_POPULATION, ge=2, json_schema_extra={"maximum": 1000})
    seed: int | None = Field(
        default=None, ge=0, le=MAX_SEED, description="omitted: a random seed below 2**53, stored and echoed"
    )
    channels: list[ChannelName] = Field(
        default_factory=lambda: ["ch0"], min_length=1, json_schema_extra={"maxItems": 512}
    )
    objective: ObjectiveConfig | None = Field(default=None, description="omitted: the first channel, weight 1")
    response: ResponseConfig = Field(default_factory=lambda: ResponseConfig())
    references: ReferenceConfig = Field(default_factory=ReferenceConfig)
    code_norm: float | Literal["auto"] | None = Field(
        default="auto",
        description="render codes projected onto the sphere of this norm; 'auto': the generator's typical norm; "
        "null: unconstrained",
    )
    max_generations: int | None = Field(
        default=None, ge=1, le=MAX_GENERATION, description="stop rule: close after this many"
    )
    plateau_generations: int | None = Field(
        default=None,
        ge=1,
        le=MAX_GENERATION,
        description="stop rule: finish when the mean evolved score has not improved for this many",
    )
    init: InitConfig | None = Field(default=None, description="omitted: the optimizer's own start (random/zero)")
    min_measured_fraction: float = Field(default=0.5, gt=0, le=1, description="of the evolved stimuli, per post")
    metadata: dict[str, Any] = Field(default_factory=dict, description="free-form: animal, array, channel, notes")

    @field_validator("metadata")
    @classmethod
    def _storable(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        return json_object(metadata, "metadata")

    @model_validator(mode="after")
    def _consistent(self) -> SessionCreate:
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("channel names must be unique")
        if self.objective is not None:
            self._check_objective(self.objective)
        if isinstance(self.code_norm, float) and not self.code_norm > 0:
            raise ValueError("code_norm must be a positive number, 'auto' or null")
        return self

    def _check_objective(self, objective: ObjectiveConfig) -> None:
        unknown = sorted(set(objective.weights) - set(self.channels))
        if unknown:
            raise ValueError(f"objective weights name channels {unknown} that are not in channels {self.channels}")
        windows = self.response.window_ms is not None and self.response.baseline_window_ms is not None
        if objective.subtract_baseline and self.response.unit == "count" and not windows:
            raise ValueError(
                "subtract_baseline with counts needs response.window_ms and response.baseline_window_ms "
                "(counts in different windows are compared as rates)"
            )


class SessionFork(_Strict):
    """A new session that continues from this one's best codes, optionally with another optimizer."""

    generation: GenerationNumber | None = Field(
        default=None, description="its best codes up to this generation; default all"
    )
    best: int = Field(default=1, ge=1, le=1000, description="how many best codes the new search starts from")
    optimizer: OptimizerConfig | None = Field(default=None, description="default: the same optimizer and parameters")
    max_generations: int | None = Field(default=None, ge=1, le=MAX_GENERATION)
    metadata: dict[str, Any] | None = Field(default=None, description="default: the parent's")

    @field_validator("metadata")
    @classmethod
    def _storable(cls, metadata: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if metadata is None else json_object(metadata, "metadata")


class SessionUpdate(_Strict):
    """PATCH /v1/sessions/{id}: the session's metadata, the one part of a session that changes after creation."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"metadata": {"notes": "ch 12 lost after gen 30"}}]})

    metadata: dict[str, Any] = Field(
        min_length=1,
        description="a JSON merge patch (RFC 7396) of the session's metadata: each key replaces the stored one, an "
        "object merges into a stored object, null removes the key; sending it twice is sending it once",
    )

    @field_validator("metadata")
    @classmethod
    def _storable(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        return json_object(metadata, "metadata")


class StimulusPublic(BaseModel):
    id: str
    kind: Literal["evolved", "reference"]
    index: int
    url: str


class GenerationPublic(BaseModel):
    session_id: str
    number: int
    status: Literal["open", "closed"]
    image_size: int
    stimuli: list[StimulusPublic]
    order: list[str] = Field(description="suggested presentation order (seeded shuffle, references interleaved)")
    responses_url: str


class SessionState(BaseModel):
    """Where a session stands; the answer to a post (GET /v1/sessions/{id} adds its configuration)."""

    id: str
    status: Literal["running", "stopped", "finished"]
    generation: int = Field(description="the open generation (the last one when finished)")
    created_at: datetime
    last_activity: datetime = Field(description="the last change: created, a generation closed, stopped or resumed")
    best_score: float | None = Field(
        description="the best image's score as told (under drift correction: / the factor); with an optimizer that "
        "shows images again (metric-cma's remeasure) its mean over the image's showings, which may fall"
    )
    best_stimulus: str | None = Field(description="the best image's stimulus (its first showing)")
    best_image_url: str | None = Field(default=None, description="the best stimulus's image (PNG); null before any")

    @model_validator(mode="before")
    @classmethod
    def _active_since_creation(cls, data: Any) -> Any:
        """Answers stored by versions before ``last_activity`` (idempotent replays) read it as their creation."""
        if isinstance(data, dict) and "last_activity" not in data and "created_at" in data:
            return {**data, "last_activity": data["created_at"]}
        return data


class SessionPublic(SessionState):
    config: dict[str, Any] = Field(description="the full, resolved configuration")


class SessionsPublic(BaseModel):
    items: list[SessionPublic]
    total: int
    limit: int
    offset: int


class SessionCreated(BaseModel):
    session: SessionPublic
    generation: GenerationPublic


class StimulusResponse(_Strict):
    stimulus: str = Field(max_length=64)
    counts: dict[ChannelName, Repetitions] = Field(
        description="per channel, one value per repetition (spike counts or rates)",
        min_length=1,
        json_schema_extra=_CHANNEL_KEYS_ONLY,
    )
    baseline: dict[ChannelName, Repetitions] | None = Field(
        default=None,
        description="pre-stimulus counts or rates, same channels and repetitions as counts",
    )


class ResponsesSubmit(_Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "responses": [
                        {"stimulus": "g0-e0", "counts": {"ch0": [12, 9, 14]}},
                        {"stimulus": "g0-e1", "counts": {"ch0": [3, 5, 2]}},
                    ]
                }
            ]
        }
    )

    responses: list[StimulusResponse] = Field(min_length=1, max_length=10000)


class GenerationScores(BaseModel):
    number: int
    measured: int
    missing: list[str]
    evolved_mean: float | None
    evolved_max: float | None
    reference_mean: float | None


class ResponsesAccepted(BaseModel):
    accepted: GenerationScores
    session: SessionState = Field(description="where the session stands now (its configuration: GET the session)")
    next: GenerationPublic | None = Field(description="the next generation, images ready; null when the session ended")


class HistoryStimulus(BaseModel):
    id: str
    kind: Literal["evolved", "reference"]
    index: int
    code: list[float] | None
    counts: dict[str, list[float]] | None
    baseline: dict[str, list[float]] | None = None
    score: float | None


class HistoryGeneration(BaseModel):
    number: int
    status: Literal["open", "closed"]
    stimuli: list[HistoryStimulus]
    optimizer: dict[str, float] | None


class SessionHistory(BaseModel):
    session: SessionPublic
    generations: list[HistoryGeneration]


class BlockStimulus(BaseModel):
    session: str
    id: str
    kind: Literal["evolved", "reference"]
    url: str


class BlockGeneration(BaseModel):
    session: str
    number: GenerationNumber


class BlockRef(BaseModel):
    session: str
    id: str


class BlockManifest(BaseModel):
    """Several sessions' open generations shown as one block: their stimuli interleaved in one order."""

    generations: list[BlockGeneration]
    stimuli: list[BlockStimulus]
    order: list[BlockRef] = Field(description="presentation order; each session's own order is kept")


class BlockResponse(StimulusResponse):
    session: str


class BlockResponsesSubmit(_Strict):
    generations: list[BlockGeneration] = Field(min_length=1, description="each session's generation being answered")
    responses: list[BlockResponse] = Field(min_length=1, max_length=20000)


class BlockResponsesAccepted(BaseModel):
    accepted: dict[str, GenerationScores]
    next: BlockManifest | None = Field(description="the sessions still running, as the next block; null if none")


class AccessPublic(BaseModel):
    """What the request's token may do (GET /v1/access): a view offers only what the server will accept."""

    role: Literal["rig", "viewer", "open"] = Field(
        description="rig: a token of EVOSTIM_TOKENS (reads and changes its own sessions); viewer: a read-only token "
        "of EVOSTIM_READ_TOKENS (reads every session, changes none); open: the server has no tokens (development)"
    )
    can_write: bool = Field(description="whether this token's POST and PATCH requests can be accepted")


class ProblemDetails(BaseModel):
    """Every error answer (RFC 9457, ``application/problem+json``); an error type may add members of its own."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="/problems/<slug>: what kind of problem")
    title: str
    status: int
    detail: str = Field(description="what went wrong and what to do")
    instance: str = Field(description="the request path")
    retryable: bool = Field(description="whether sending the same request again can succeed")
