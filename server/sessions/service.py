"""The session service: a thin orchestrator. One generation is load -> score -> step -> store (one transaction)
-> render.

Routes call this. Its concerns live in modules named after them: ``session_config`` (the typed configuration),
``session_setup`` (what a new session starts from), ``scoring`` (the posting rules and the objective, one function
for single and block posts), ``stepper`` (the optimizer: cache, snapshot, replay, verify; tell, stop, ask),
``stimuli`` (a generation's stimulus records), ``presenters`` (records -> answers and URLs), ``renderer`` (batched
decode + encode, cached), ``blocks`` (several sessions as one block). The optimizer, the generator and the store know
nothing of each other.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
from evostim.generators.host import Hosts
from evostim.protocol import (
    BlockManifest,
    BlockResponsesSubmit,
    ExportFormat,
    GenerationPublic,
    InitConfig,
    ObjectiveConfig,
    OptimizerConfig,
    ResponseConfig,
    ResponsesAccepted,
    ResponsesSubmit,
    SessionCreate,
    SessionCreated,
    SessionFork,
    SessionHistory,
    SessionPublic,
    SessionsPublic,
)
from evostim.server.config import Settings
from evostim.server.media import exports
from evostim.server.media.images import ImageFormat
from evostim.server.media.renderer import Renderer
from evostim.server.ops.observability import (
    GENERATIONS_SERVED,
    IMAGE_CACHE_BYTES,
    OPTIMIZER_CACHE_BYTES,
    OPTIMIZER_CACHE_SESSIONS,
)
from evostim.server.sessions import presenters
from evostim.server.sessions.blocks import merge_manifests, split_block
from evostim.server.sessions.config import SessionConfig
from evostim.server.sessions.errors import (
    DomainError,
    GenerationNotFound,
    IdempotencyKeyReused,
    InvalidRequest,
    InvalidResponses,
    InvalidSessionConfig,
    SessionNotFound,
    SessionNotRunning,
    StimulusNotFound,
)
from evostim.server.sessions.limits import Limits, is_session_id, require_finite
from evostim.server.sessions.scoring import GenerationSummary, Scored, check_open, score_responses, summarize
from evostim.server.sessions.setup import build_optimizer, reference_codes, start_codes
from evostim.server.sessions.stepper import OptimizerStepper, Step
from evostim.server.sessions.stimuli import generation_stimuli
from evostim.server.storage.store import (
    ANY_OWNER,
    IdempotencyRecord,
    ReferenceRecord,
    ResponseRecord,
    SessionRecord,
    StimulusRecord,
    Store,
)

__all__ = ["SessionService", "Timings"]

Timings = dict[str, float]

_CODES_HINT = "code_norm, the optimizer's step size or the given codes are too large to compute with"
_SCORES_HINT = "the counts are too large for the objective weights and counting window; nothing was stored"
_ZIP_BATCH = 16  # images rendered at a time for images.zip: bounds memory at large sizes


def _request_hash(scope: str | int, body: Any) -> str:
    """Identifies a keyed request: what it is for and its parsed body (key order does not matter)."""
    return hashlib.sha256(f"{scope}:{body.model_dump_json()}".encode()).hexdigest()


# What versions before per-generator defaults filled in for a creation that named no optimizer.
_OPTIMIZER_BEFORE_GENERATOR_DEFAULTS = "cholesky-cma"


def _creation_hashes(scope: str, body: SessionCreate | SessionFork) -> tuple[str, ...]:
    """A creation's hash, and for a body that names no optimizer also the one versions before per-generator
    defaults stored for it (with the name filled in), so that a key kept across the upgrade still holds."""
    current = _request_hash(scope, body)
    if body.optimizer is None or body.optimizer.name is not None:
        return (current,)
    named = body.optimizer.model_copy(update={"name": _OPTIMIZER_BEFORE_GENERATOR_DEFAULTS})
    return current, _request_hash(scope, body.model_copy(update={"optimizer": named}))


def _checked_key(replay: IdempotencyRecord | None, key: str, *request_hashes: str) -> dict[str, Any] | None:
    """The stored answer of a retried request (its body hashing to any of ``request_hashes``); the same key with
    another body is refused."""
    if replay is None:
        return None
    if replay.request_hash not in request_hashes:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {key!r} was used for a different request body; use a new key for new data"
        )
    return replay.body


@dataclass(frozen=True)
class _Open:
    """A session with its open generation, as read under the session's lock."""

    session: SessionRecord
    config: SessionConfig
    stimuli: list[StimulusRecord]


class SessionService:
    """Sessions for many owners, with per-session serialization; optimizers and images are cached."""

    def __init__(
        self, store: Store, settings: Settings, *, load_generator: Callable[[str, str, Path], ImageGenerator]
    ) -> None:
        self._store = store
        self._settings = settings
        self._load_generator = load_generator
        self._renderer = Renderer(self._generator, cache_bytes=settings.image_cache_mb * 2**20)
        self._stepper = OptimizerStepper(
            store,
            snapshot_every=settings.snapshot_every,
            cache_bytes=settings.optimizer_cache_mb * 2**20,
            host_for=Hosts(lambda name: self._generator(name).module),  # what optimizers need from a generator
        )
        self._limits = Limits.from_settings(settings)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @contextmanager
    def _locked(self, session_id: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(session_id, threading.Lock())
        with lock:
            yield

    def _generator(self, name: str) -> ImageGenerator:
        return self._load_generator(name, self._settings.device, self._settings.weights_dir)

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

    # -- create ----------------------------------------------------------------------------------------
    def create_session(self, owner: str, request: SessionCreate, idempotency_key: str | None = None) -> SessionCreated:
        """A new session and its generation 0 (images rendered); a keyed retry replays the first answer."""
        request_hashes = _creation_hashes("create", request)
        replay = self._creation_replay(owner, idempotency_key, request_hashes)
        return replay or self._create(owner, request, idempotency_key, request_hashes[0])

    def _creation_replay(self, owner: str, key: str | None, request_hashes: tuple[str, ...]) -> SessionCreated | None:
        if key is None:
            return None
        replay = _checked_key(self._store.get_creation_key(owner, key), key, *request_hashes)
        return None if replay is None else SessionCreated.model_validate(replay)

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
        answer = SessionCreated(
            session=presenters.session_public(record, config),
            generation=presenters.manifest(record.id, spec.image_size, 0, stimuli, order, closed=False),
        )
        stored_answer = answer.model_dump(mode="json")
        require_finite(stored_answer, "session", InvalidSessionConfig, "a setting is too large to compute with")
        key = None
        if idempotency_key is not None:
            key = IdempotencyRecord(idempotency_key, request_hash, 201, stored_answer)
        self._store.create_session(record, references, stimuli, order, snapshot, creation_key=key)
        self._stepper.keep(record.id, optimizer)
        return answer

    def _check_init_source(self, owner: str, init: InitConfig) -> None:
        """Refuse ``init.up_to_generation`` beyond what the source session has, as a fork's ``generation`` is
        (an unknown source is refused where its codes are read)."""
        source = self._store.get_session(init.session) if init.session and is_session_id(init.session) else None
        if source is not None and source.owner == owner:
            _require_generation(source, init.up_to_generation, "init.up_to_generation")

    # -- read ------------------------------------------------------------------------------------------
    def _session(self, owner: str, session_id: str) -> SessionRecord:
        record = self._store.get_session(session_id) if is_session_id(session_id) else None
        # another owner's session does not exist for you (a lab-wide viewer, ANY_OWNER, reads every session)
        if record is None or (record.owner != owner and owner != ANY_OWNER):
            raise SessionNotFound(f"no session {session_id!r}")
        return record

    @staticmethod
    def _public(record: SessionRecord) -> SessionPublic:
        return presenters.session_public(record, SessionConfig.from_stored(record.config))

    def get_session(self, owner: str, session_id: str) -> SessionPublic:
        return self._public(self._session(owner, session_id))

    def list_sessions(self, owner: str, *, limit: int, offset: int) -> SessionsPublic:
        records, total = self._store.list_sessions(owner, limit=limit, offset=offset)
        return SessionsPublic(items=[self._public(r) for r in records], total=total, limit=limit, offset=offset)

    def current_generation(self, owner: str, session_id: str) -> int:
        return self._session(owner, session_id).generation

    def get_generation(self, owner: str, session_id: str, number: int) -> GenerationPublic:
        session = self._session(owner, session_id)
        generation = self._store.get_generation(session_id, number)
        if generation is None:
            raise GenerationNotFound(
                f"session {session_id} has no generation {number}; the open generation is {session.generation}"
            )
        stimuli = self._store.get_stimuli(session_id, number)
        image_size = generator_spec(SessionConfig.from_stored(session.config).generator).image_size
        return presenters.manifest(session_id, image_size, number, stimuli, generation.order, closed=generation.closed)

    def image(self, owner: str, session_id: str, stimulus_id: str, fmt: ImageFormat, size: int | None) -> bytes:
        session = self._session(owner, session_id)
        stimulus = self._store.get_stimulus(session_id, stimulus_id)
        if stimulus is None:
            raise StimulusNotFound(f"session {session_id} has no stimulus {stimulus_id!r}")
        return self._renderer.image(SessionConfig.from_stored(session.config).generator, stimulus.code, fmt, size)

    def history(
        self, owner: str, session_id: str, *, codes: bool = False, first: int = 0, stop: int | None = None
    ) -> SessionHistory:
        """Generations ``first <= g < stop`` (``stop`` None: to the last); latent codes only when asked."""
        if stop is not None and stop < first:
            raise InvalidRequest(f"to_generation ({stop}) is exclusive and must not be below from_generation ({first})")
        session = self._session(owner, session_id)
        listed = self._store.list_generations(session_id)
        generations = [g for g in listed if g.number >= first and (stop is None or g.number < stop)]
        stimuli: list[StimulusRecord] = []
        responses: dict[str, ResponseRecord] = {}
        if generations:
            last = generations[-1].number
            stimuli = self._store.get_stimuli(session_id, first, last)
            responses = {r.stimulus_id: r for r in self._store.get_responses(session_id, first, last)}
        return presenters.history(self._public(session), generations, stimuli, responses, codes=codes)

    # -- data out (server/media/exports.py) ------------------------------------------------------------------
    def export(self, owner: str, session_id: str, fmt: ExportFormat, path: Path) -> None:
        """Write the whole session to ``path`` in ``fmt`` (npz, parquet, nwb); a missing extra refuses first."""
        exports.check_extra(fmt)
        exports.write_export(self._export_data(self._session(owner, session_id)), fmt, path)

    def _export_data(self, session: SessionRecord) -> exports.SessionData:
        config = SessionConfig.from_stored(session.config)
        session_id = session.id

        def read(first: int, last: int) -> tuple[list[StimulusRecord], dict[str, ResponseRecord]]:
            responses = self._store.get_responses(session_id, first, last)
            return self._store.get_stimuli(session_id, first, last), {r.stimulus_id: r for r in responses}

        return exports.SessionData(
            session=self._public(session),
            channels=tuple(config.channels),
            latent_dim=generator_spec(config.generator).latent_dim,
            generations=self._store.list_generations(session_id),
            read=read,
            pixels=lambda codes: self._renderer.pixels(config.generator, codes),
        )

    def generation_images(
        self, owner: str, session_id: str, number: int, fmt: ImageFormat, size: int | None
    ) -> Iterator[tuple[str, bytes]]:
        """Every image of generation ``number`` as (``<stimulus id>.<fmt>``, bytes), rendered a batch at a time as
        the iterator is read (the session and generation are checked at once)."""
        session = self._session(owner, session_id)
        if self._store.get_generation(session_id, number) is None:
            raise GenerationNotFound(f"session {session_id} has no generation {number}")
        generator = SessionConfig.from_stored(session.config).generator
        stimuli = self._store.get_stimuli(session_id, number)

        def images() -> Iterator[tuple[str, bytes]]:
            for start in range(0, len(stimuli), _ZIP_BATCH):
                batch = stimuli[start : start + _ZIP_BATCH]
                encoded = self._renderer.render(generator, [s.code for s in batch], fmt, size)
                yield from ((f"{s.stimulus_id}.{fmt}", data) for s, data in zip(batch, encoded, strict=True))

        return images()

    # -- responses -------------------------------------------------------------------------------------
    def submit_responses(
        self, owner: str, session_id: str, number: int, body: ResponsesSubmit, idempotency_key: str | None
    ) -> tuple[dict[str, Any], Timings]:
        """Close generation ``number`` with ``body`` and open the next; returns the answer and timings (ms)."""
        started = time.perf_counter()
        request_hash = _request_hash(number, body)
        with self._locked(session_id):
            session = self._session(owner, session_id)
            if idempotency_key is not None:
                stored = self._store.get_idempotency(session_id, idempotency_key)
                replay = _checked_key(stored, idempotency_key, request_hash)
                if replay is not None:
                    return replay, {"replay": (time.perf_counter() - started) * 1e3}
            self._limits.check_responses(body)
            current = self._open(session, number)
            scored = score_responses(current.config, current.stimuli, body)
            validated = time.perf_counter()
            try:
                answer, timings = self._close_generation(current, scored, idempotency_key, request_hash)
            except BaseException:
                self._stepper.forget(session_id)  # the cached optimizer may be ahead of the store
                raise
        timings["validate"] = (validated - started) * 1e3
        return answer, timings

    def _open(self, session: SessionRecord, number: int) -> _Open:
        """The session's open generation ``number``, or the reason it takes no responses."""
        check_open(session, number)
        return _Open(session, SessionConfig.from_stored(session.config), self._store.get_stimuli(session.id, number))

    @np.errstate(all="ignore")  # an overflow is refused by checking the results before the commit, not by a warning
    def _close_generation(
        self, current: _Open, scored: Scored, idempotency_key: str | None, request_hash: str
    ) -> tuple[dict[str, Any], Timings]:
        t0 = time.perf_counter()
        session, config = current.session, current.config
        summary = summarize(current.stimuli, scored.scores)
        require_finite(summary.as_dict(), "accepted", InvalidResponses, _SCORES_HINT)
        step = self._stepper.step(session, config, current.stimuli, scored.scores, summary.evolved_mean)
        require_finite(step.optimizer.summary(), "optimizer", InvalidResponses, _SCORES_HINT)
        references = [ReferenceRecord(s.index, s.code) for s in current.stimuli if s.kind == "reference"]
        next_stimuli, next_order = ([], []) if step.population is None else generation_stimuli(
            config, step.population, references
        )  # fmt: skip
        require_finite({s.stimulus_id: s.code for s in next_stimuli}, "next.code", InvalidResponses, _SCORES_HINT)
        t1 = time.perf_counter()
        best = self._new_best(session, summary)
        updated = replace(
            session,
            status="finished" if step.finished else "running",
            generation=session.generation if step.finished else session.generation + 1,
            best_score=best[0] if best else session.best_score,
            best_stimulus=best[1] if best else session.best_stimulus,
            updated_at=datetime.now(UTC),  # stored with the generation: the answer and the database agree
        )
        answer = self._accepted(updated, config, scored, summary, next_stimuli, next_order)
        require_finite(answer, "answer", InvalidResponses, _SCORES_HINT)
        idempotency = None if idempotency_key is None else IdempotencyRecord(idempotency_key, request_hash, 200, answer)
        self._store.commit_generation(
            session_id=session.id,
            closed=session.generation,
            responses=scored.records,
            summary={**summary.as_dict(), **step.optimizer.summary()},
            best=best,
            status=updated.status,
            next_stimuli=next_stimuli,
            next_order=next_order,
            snapshot=step.snapshot,
            idempotency=idempotency,
            at=updated.updated_at,
        )
        t2 = time.perf_counter()
        GENERATIONS_SERVED.inc()
        self._after_commit(session.id, config, step, next_stimuli)
        t3 = time.perf_counter()
        return answer, {"optimizer": (t1 - t0) * 1e3, "db": (t2 - t1) * 1e3, "render": (t3 - t2) * 1e3}

    @staticmethod
    def _new_best(session: SessionRecord, summary: GenerationSummary) -> tuple[float, str] | None:
        if session.best_score is None or summary.evolved_max > session.best_score:
            return summary.evolved_max, summary.best_stimulus
        return None

    def _accepted(
        self,
        updated: SessionRecord,
        config: SessionConfig,
        scored: Scored,
        summary: GenerationSummary,
        next_stimuli: list[StimulusRecord],
        next_order: list[str],
    ) -> dict[str, Any]:
        """The answer to a post: what was accepted, the session, and the next generation's manifest."""
        closed = updated.generation if updated.status == "finished" else updated.generation - 1
        following = None
        if next_stimuli:
            image_size = generator_spec(config.generator).image_size
            following = presenters.manifest(
                updated.id, image_size, updated.generation, next_stimuli, next_order, closed=False
            )
        return ResponsesAccepted(
            accepted=presenters.accepted_scores(closed, len(scored.scores), scored.missing, summary),
            session=presenters.session_state(updated),
            next=following,
        ).model_dump(mode="json")

    def _after_commit(
        self, session_id: str, config: SessionConfig, step: Step, next_stimuli: list[StimulusRecord]
    ) -> None:
        """Keep the stepped optimizer for the next post and decode the next generation ahead of its fetches."""
        self._stepper.keep(session_id, None if step.finished else step.optimizer)
        if next_stimuli:
            self._renderer.prepare(config.generator, [s.code for s in next_stimuli])
        self.update_cache_metrics()  # per post, so a scrape of another worker process sums fresh figures

    def update_cache_metrics(self) -> None:
        """Set the cache gauges of /metrics to what this process's caches hold now."""
        sessions, optimizer_bytes = self._stepper.cached
        OPTIMIZER_CACHE_SESSIONS.set(sessions)
        OPTIMIZER_CACHE_BYTES.set(optimizer_bytes)
        IMAGE_CACHE_BYTES.set(self._renderer.cache_bytes)

    def forget_optimizers(self) -> None:
        """Drop cached optimizers (the next post replays from the store, as after a restart)."""
        self._stepper.forget()

    # -- blocks: several sessions' generations shown and answered together -----------------------------
    def block(self, owner: str, session_ids: list[str]) -> BlockManifest:
        """The open generations of running sessions, interleaved (a seeded merge that keeps each one's order)."""
        if len(set(session_ids)) != len(session_ids):
            raise InvalidResponses("a block names each session once")
        running = [s for s in (self._session(owner, sid) for sid in session_ids) if s.status == "running"]
        if not running:
            raise SessionNotRunning("none of these sessions is running")
        manifests = [self.get_generation(owner, s.id, s.generation) for s in running]
        return merge_manifests(manifests, [SessionConfig.from_stored(s.config).seed for s in running])

    def submit_block(self, owner: str, body: BlockResponsesSubmit, idempotency_key: str | None) -> dict[str, Any]:
        """Validate every session's share first (a refused block stores nothing), then store each share.

        Each share carries the key ``<key>:<session>``: if the block post is retried after a failure half way,
        the shares already stored replay and the others are stored; nothing is counted twice.
        """
        shares = split_block(body)
        keys = {sid: None if idempotency_key is None else f"{idempotency_key}:{sid}" for sid in shares}
        for sid, (number, share) in shares.items():
            self._check_share(owner, sid, number, share, keys[sid])
        answers = {
            sid: self.submit_responses(owner, sid, number, share, keys[sid])[0]
            for sid, (number, share) in shares.items()
        }
        running = [GenerationPublic(**answer["next"]) for answer in answers.values() if answer["next"] is not None]
        seeds = [SessionConfig.from_stored(self._session(owner, m.session_id).config).seed for m in running]
        return {
            "accepted": {sid: answer["accepted"] for sid, answer in answers.items()},
            "next": merge_manifests(running, seeds).model_dump() if running else None,
        }

    def _check_share(self, owner: str, sid: str, number: int, body: ResponsesSubmit, key: str | None) -> None:
        """Everything submit_responses would refuse, without storing: replays of a stored share pass."""
        with self._locked(sid):
            session = self._session(owner, sid)
            if key is not None and self._store.get_idempotency(sid, key) is not None:
                return
            try:
                self._limits.check_responses(body)
                current = self._open(session, number)
                score_responses(current.config, current.stimuli, body)
            except DomainError as error:
                raise type(error)(f"session {sid}: {error.detail}", **error.extra) from None

    # -- life cycle ------------------------------------------------------------------------------------
    def stop_session(self, owner: str, session_id: str) -> SessionPublic:
        """Pause: the open generation stays open but accepts no responses until resumed. Idempotent."""
        with self._locked(session_id):
            session = self._session(owner, session_id)
            if session.status == "finished":
                raise SessionNotRunning(f"session {session_id} is finished; there is nothing to stop")
            self._store.set_status(session_id, "stopped", allowed_from=("running", "stopped"))
            return self._public(self._session(owner, session_id))

    def resume_session(self, owner: str, session_id: str) -> SessionPublic:
        """Continue a stopped session from its open generation. Idempotent."""
        with self._locked(session_id):
            session = self._session(owner, session_id)
            if session.status == "finished":
                raise SessionNotRunning(
                    f"session {session_id} finished by its stop rule; fork it to continue the search"
                )
            self._store.set_status(session_id, "running", allowed_from=("running", "stopped"))
            return self._public(self._session(owner, session_id))

    def fork_session(
        self, owner: str, session_id: str, fork: SessionFork, idempotency_key: str | None = None
    ) -> SessionCreated:
        """A new session with this one's settings, starting from its best measured codes."""
        source = self._session(owner, session_id)
        _require_generation(source, fork.generation, "generation")
        # The key binds to the fork as posted: the source may have moved on between a request and its retry.
        request_hashes = _creation_hashes(f"fork:{session_id}", fork)
        replay = self._creation_replay(owner, idempotency_key, request_hashes)
        if replay is not None:
            return replay
        request = _fork_request(session_id, source.generation, SessionConfig.from_stored(source.config), fork)
        return self._create(owner, request, idempotency_key, request_hashes[0])


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
