"""Creating sessions: a new one from a request, or a fork of another (its settings, its best codes as start).

Everything is checked and generation 0 rendered before anything is stored; the session, its generation 0, the first
optimizer snapshot and the creation's Idempotency-Key are then stored in one transaction. A session is made only if it
can advance: its objective scores a plausible response and a copy of its optimizer takes a generation (``dry_run``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from evostim.generators import (
    BadLatentCodes,
    GeneratorError,
    GeneratorSpec,
    GeneratorWeightsMismatch,
    GeneratorWeightsMissing,
    ImageGenerator,
    generator_spec,
)
from evostim.protocol import (
    InitConfig,
    ObjectiveConfig,
    OptimizerConfig,
    ResponseConfig,
    SessionCreate,
    SessionCreated,
    SessionFork,
)
from evostim.server.config import Settings
from evostim.server.media.renderer import Renderer
from evostim.server.sessions import presenters
from evostim.server.sessions.config import SessionConfig
from evostim.server.sessions.dry_run import check_objective, dry_run, score_bound
from evostim.server.sessions.errors import InvalidSessionConfig
from evostim.server.sessions.idempotency import checked_key, creation_hashes
from evostim.server.sessions.limits import Limits, is_session_id, require_finite
from evostim.server.sessions.reads import SessionReader
from evostim.server.sessions.setup import build_optimizer, reference_codes, start_codes
from evostim.server.sessions.stepper import OptimizerStepper
from evostim.server.sessions.stimuli import generation_stimuli
from evostim.server.storage.store import IdempotencyRecord, ReferenceRecord, SessionRecord, Store

__all__ = ["SessionCreation"]

_CODES_HINT = "code_norm, the optimizer's step size or the given codes are too large to compute with"


class SessionCreation:
    """Makes sessions: ``create`` and ``fork``, each replaying its first answer to a keyed retry."""

    def __init__(
        self,
        *,
        store: Store,
        reader: SessionReader,
        stepper: OptimizerStepper,
        renderer: Renderer,
        limits: Limits,
        settings: Settings,
        generator: Callable[[str], ImageGenerator],
    ) -> None:
        self._store = store
        self._reader = reader
        self._stepper = stepper
        self._renderer = renderer
        self._limits = limits
        self._settings = settings
        self._generator = generator

    def create(self, owner: str, request: SessionCreate, idempotency_key: str | None = None) -> SessionCreated:
        """A new session and its generation 0 (images rendered); a keyed retry replays the first answer."""
        request_hashes = creation_hashes("create", request)
        replay = self._replay(owner, idempotency_key, request_hashes)
        return replay or self._create(owner, request, idempotency_key, request_hashes[0])

    def fork(
        self, owner: str, session_id: str, fork: SessionFork, idempotency_key: str | None = None
    ) -> SessionCreated:
        """A new session with this one's settings, starting from its best measured codes."""
        source = self._reader.session(owner, session_id)
        _require_generation(source.record, fork.generation, "generation")
        # The key binds to the fork as posted: the source may have moved on between a request and its retry.
        request_hashes = creation_hashes(f"fork:{session_id}", fork)
        replay = self._replay(owner, idempotency_key, request_hashes)
        if replay is not None:
            return replay
        request = _fork_request(session_id, source.record.generation, source.config, fork)
        return self._create(owner, request, idempotency_key, request_hashes[0])

    def _replay(self, owner: str, key: str | None, request_hashes: tuple[str, ...]) -> SessionCreated | None:
        if key is None:
            return None
        replay = checked_key(self._store.get_creation_key(owner, key), key, *request_hashes)
        return None if replay is None else SessionCreated.model_validate(replay)

    def _loaded_spec(self, name: str) -> GeneratorSpec:
        """The generator's spec, its weights loaded once (a missing weights file refuses the session here)."""
        try:
            spec = generator_spec(name)
            self._generator(spec.name)
        except (GeneratorWeightsMissing, GeneratorWeightsMismatch):
            raise  # answered as generator-unavailable, with the package to install when that is the fix
        except GeneratorError as error:  # an unknown name
            raise InvalidSessionConfig(str(error)) from None
        return spec

    @np.errstate(all="ignore")  # an overflow is refused by checking the results below, not by a warning
    def _create(
        self, owner: str, request: SessionCreate, idempotency_key: str | None, request_hash: str
    ) -> SessionCreated:
        spec = self._loaded_spec(request.generator)
        self._limits.check_session(request)
        if request.init is not None and request.init.session is not None:
            self._check_init_source(owner, request.init)
        # below 2**53: read exactly by JSON readers that hold numbers as doubles (JavaScript, jq, MATLAB)
        seed = request.seed if request.seed is not None else secrets.randbits(53)
        start = None if request.init is None else start_codes(self._store, owner, request.init, spec)
        optimizer, settings = build_optimizer(
            request,
            spec,
            seed,
            start,
            self._settings.weights_dir,
            module=lambda: self._generator(spec.name).module,
            host=self._stepper.host(spec.name),
        )
        references = [
            ReferenceRecord(i, code)
            for i, code in enumerate(reference_codes(request, spec, self._settings.reference_seed))
        ]
        config = SessionConfig.from_request(
            request,
            generator=spec.name,
            optimizer_name=optimizer.name,  # the generator's default where the request names none
            optimizer_params=settings,
            seed=seed,
            typical_norm=spec.typical_norm,
        )
        check_objective(config.objective, config.response)
        record = SessionRecord(
            id=f"s_{secrets.token_hex(8)}",
            owner=owner,
            created_at=datetime.now(UTC),
            config=config.to_stored(),
            status="running",
            generation=0,
            best_score=None,
            best_stimulus=None,
        )
        population, snapshot = OptimizerStepper.start(optimizer)
        stimuli, order = generation_stimuli(config, population, references)
        require_finite({s.stimulus_id: s.code for s in stimuli}, "code", InvalidSessionConfig, _CODES_HINT)
        # Rendered before anything is stored: codes that cannot render refuse the session, leaving nothing behind.
        try:
            self._renderer.prepare(spec.name, [s.code for s in stimuli])
        except BadLatentCodes as error:  # e.g. beyond float32, the generators' precision
            raise InvalidSessionConfig(f"generation 0 does not render ({error}): {_CODES_HINT}", field="code") from None
        # Generation 0 is fine; a copy of the optimizer must take it and propose generation 1 (the real one untouched).
        scale = score_bound(config.objective, config.response)
        dry_run(snapshot, self._stepper.host(spec.name), config.code_norm, scale)
        answer = SessionCreated(
            session=presenters.session_public(record, config),
            generation=presenters.manifest(record.id, spec.image_size, 0, stimuli, order, closed=False),
        )
        stored_answer = answer.model_dump(mode="json")
        require_finite(stored_answer, "session", InvalidSessionConfig, "a setting is too large to compute with")
        key = None
        if idempotency_key is not None:
            key = IdempotencyRecord(idempotency_key, request_hash, 201, stored_answer)
        self._store.create_session(record, stimuli, order, snapshot, creation_key=key)
        self._reader.typed(record, config)  # its configuration, kept for the session's reads and posts
        self._stepper.keep(record.id, optimizer)
        return answer

    def _check_init_source(self, owner: str, init: InitConfig) -> None:
        """Refuse ``init.up_to_generation`` beyond what the source session has, as a fork's ``generation`` is
        (an unknown source is refused where its codes are read)."""
        source = self._store.get_session(init.session) if init.session and is_session_id(init.session) else None
        if source is not None and source.owner == owner:
            _require_generation(source, init.up_to_generation, "init.up_to_generation")


def _require_generation(source: SessionRecord, generation: int | None, field: str) -> None:
    """Refuse to start from ``source``'s codes up to a generation it does not have yet (``field`` names the field)."""
    if generation is not None and generation > source.generation:
        raise InvalidSessionConfig(
            f"{field}: session {source.id} has no generation {generation} yet; its last is {source.generation}",
            field=field,
        )


def _fork_request(session_id: str, generation: int, config: SessionConfig, fork: SessionFork) -> SessionCreate:
    """A fork's creation request: the source's settings, its best codes as start, another optimizer if asked."""
    optimizer = fork.optimizer or OptimizerConfig(
        name=config.optimizer_name,
        params={k: v for k, v in config.optimizer_params.items() if k not in ("mean", "center", "initial_codes")},
    )
    forked_from = {"session": session_id, "generation": generation if fork.generation is None else fork.generation}
    metadata = dict(config.metadata if fork.metadata is None else fork.metadata)
    return SessionCreate(
        generator=config.generator,
        optimizer=optimizer,
        population_size=config.population_size,
        channels=list(config.channels),
        objective=ObjectiveConfig(**config.objective.to_stored()),
        response=ResponseConfig(**config.response.to_stored()),
        references={"builtin": config.builtin_references},  # type: ignore[arg-type]
        code_norm=config.code_norm,
        max_generations=fork.max_generations,
        min_measured_fraction=config.min_measured_fraction,
        metadata={**metadata, "forked_from": forked_from},
        init={"session": session_id, "best": fork.best, "up_to_generation": fork.generation},  # type: ignore[arg-type]
    )
