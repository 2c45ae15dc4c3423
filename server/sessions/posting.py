"""Posting responses: generation ``g`` closed and ``g + 1`` opened. Read (one round trip: the session, the open
generation's stimuli, the key's stored answer) -> score -> step -> store (one transaction, before the answer) ->
render the next generation ahead of its fetches.

A cached post makes two store round trips: the read and the commit. The plateau rule reads no generations: the
session carries its running summary (``plateau``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from evostim.generators import generator_spec
from evostim.optimizers import Optimizer
from evostim.protocol import ResponsesAccepted, ResponsesSubmit
from evostim.server.media.renderer import Renderer
from evostim.server.ops.observability import (
    GENERATIONS_SERVED,
    IMAGE_CACHE_BYTES,
    OPTIMIZER_CACHE_BYTES,
    OPTIMIZER_CACHE_SESSIONS,
)
from evostim.server.sessions import presenters
from evostim.server.sessions.config import SessionConfig
from evostim.server.sessions.drift import open_factor
from evostim.server.sessions.errors import DomainError, InvalidResponses, OptimizerFailed
from evostim.server.sessions.idempotency import checked_key, request_hash
from evostim.server.sessions.limits import Limits, is_session_id, require_finite
from evostim.server.sessions.locks import SessionLocks
from evostim.server.sessions.plateau import best_mean_after
from evostim.server.sessions.reads import Session, SessionReader, may_see, session_not_found
from evostim.server.sessions.scoring import GenerationSummary, Scored, check_open, score_responses, summarize
from evostim.server.sessions.stepper import OptimizerStepper, Step
from evostim.server.sessions.stimuli import generation_stimuli, stimulus_id
from evostim.server.storage.store import (
    IdempotencyRecord,
    PostInputs,
    ReferenceRecord,
    SessionRecord,
    StimulusRecord,
    Store,
)

__all__ = ["Posting", "Timings"]

Timings = dict[str, float]

_SCORES_HINT = "the counts are too large for the objective weights and counting window; nothing was stored"
_OPTIMIZER_HINT = (
    "the optimizer's state or its next codes (float32, as the generators decode them) overflowed with these scores; "
    "nothing was stored. Sessions with these optimizer settings cannot advance: fork the session with other settings"
)


@dataclass(frozen=True)
class _Open:
    """A session with its open generation's stimuli, as read under the session's lock."""

    session: Session
    stimuli: list[StimulusRecord]


class Posting:
    """Closes generations with their responses, one post of a session at a time."""

    def __init__(
        self,
        *,
        store: Store,
        reader: SessionReader,
        stepper: OptimizerStepper,
        renderer: Renderer,
        limits: Limits,
        locks: SessionLocks,
    ) -> None:
        self._store = store
        self._reader = reader
        self._stepper = stepper
        self._renderer = renderer
        self._limits = limits
        self._locks = locks

    def submit(
        self, owner: str, session_id: str, number: int, body: ResponsesSubmit, idempotency_key: str | None
    ) -> tuple[dict[str, Any], Timings]:
        """Close generation ``number`` with ``body`` and open the next; returns the answer and timings (ms)."""
        started = time.perf_counter()
        body_hash = request_hash(number, body)
        with self._locks.held(session_id):
            inputs = self._inputs(owner, session_id, number, idempotency_key)
            replay = checked_key(inputs.replay, idempotency_key, body_hash)
            if replay is not None:
                return replay, {"replay": (time.perf_counter() - started) * 1e3}
            self._limits.check_responses(body)
            current = self._open(inputs, number)
            scored = score_responses(current.session.config, current.stimuli, body)
            validated = time.perf_counter()
            try:
                answer, timings = self._close_generation(current, scored, idempotency_key, body_hash)
            except BaseException:
                self._stepper.forget(session_id)  # the cached optimizer may be ahead of the store
                raise
        timings["validate"] = (validated - started) * 1e3
        return answer, timings

    def check(self, owner: str, session_id: str, number: int, body: ResponsesSubmit, key: str | None) -> None:
        """Everything ``submit`` would refuse, without storing (a block's share); a replay of a stored one passes."""
        with self._locks.held(session_id):
            inputs = self._inputs(owner, session_id, number, key)
            if inputs.replay is not None:
                return
            try:
                self._limits.check_responses(body)
                current = self._open(inputs, number)
                score_responses(current.session.config, current.stimuli, body)
            except DomainError as error:
                raise type(error)(f"session {session_id}: {error.detail}", **error.extra) from None

    def _inputs(self, owner: str, session_id: str, number: int, key: str | None) -> PostInputs:
        inputs = self._store.get_post_inputs(session_id, number, key) if is_session_id(session_id) else None
        if inputs is None or not may_see(owner, inputs.session):
            raise session_not_found(session_id)
        return inputs

    def _open(self, inputs: PostInputs, number: int) -> _Open:
        """The session's open generation ``number``, or the reason it takes no responses."""
        check_open(inputs.session, number)
        return _Open(self._reader.typed(inputs.session), inputs.stimuli)

    @np.errstate(all="ignore")  # an overflow is refused by checking the results before the commit, not by a warning
    def _close_generation(
        self, current: _Open, scored: Scored, idempotency_key: str | None, body_hash: str
    ) -> tuple[dict[str, Any], Timings]:
        t0 = time.perf_counter()
        session, config = current.session.record, current.session.config
        summary = summarize(current.stimuli, scored.scores)
        require_finite(summary.as_dict(), "accepted", InvalidResponses, _SCORES_HINT)
        factor = open_factor(self._store, session, config, summary)  # 1 without drift correction
        told_mean = summary.evolved_mean / factor
        step = self._stepper.step(session, config, current.stimuli, scored.scores, told_mean, factor)
        require_finite(step.optimizer.summary(), "optimizer", OptimizerFailed, _OPTIMIZER_HINT)
        references = [ReferenceRecord(s.index, s.code) for s in current.stimuli if s.kind == "reference"]
        next_stimuli, next_order = ([], []) if step.population is None else generation_stimuli(
            config, step.population, references
        )  # fmt: skip
        renderable = {s.stimulus_id: s.code.astype(np.float32) for s in next_stimuli}  # beyond float32: inf
        require_finite(renderable, "next.code", OptimizerFailed, _OPTIMIZER_HINT)
        t1 = time.perf_counter()
        best, best_mean = _new_best(session, summary, factor, step.optimizer), best_mean_after(session, told_mean)
        updated = _advanced(session, step.finished, best, best_mean)
        answer = self._accepted(current.session, updated, scored, summary, next_stimuli, next_order)
        require_finite(answer, "answer", InvalidResponses, _SCORES_HINT)
        idempotency = None if idempotency_key is None else IdempotencyRecord(idempotency_key, body_hash, 200, answer)
        self._store.commit_generation(
            session_id=session.id,
            closed=session.generation,
            responses=scored.records,
            summary={**summary.as_dict(), **step.optimizer.summary(), **_drift_entry(config, factor)},
            best=best,
            status=updated.status,
            next_stimuli=next_stimuli,
            next_order=next_order,
            snapshot=step.snapshot,
            idempotency=idempotency,
            at=updated.updated_at,
            best_mean=best_mean,
        )
        t2 = time.perf_counter()
        GENERATIONS_SERVED.inc()
        self._after_commit(session.id, config.generator, step, next_stimuli)
        t3 = time.perf_counter()
        return answer, {"optimizer": (t1 - t0) * 1e3, "db": (t2 - t1) * 1e3, "render": (t3 - t2) * 1e3}

    @staticmethod
    def _accepted(
        session: Session,
        updated: SessionRecord,
        scored: Scored,
        summary: GenerationSummary,
        next_stimuli: list[StimulusRecord],
        next_order: list[str],
    ) -> dict[str, Any]:
        """The answer to a post: what was accepted, the session, and the next generation's manifest."""
        closed = updated.generation if updated.status == "finished" else updated.generation - 1
        following = None
        if next_stimuli:
            image_size = generator_spec(session.config.generator).image_size
            following = presenters.manifest(
                updated.id, image_size, updated.generation, next_stimuli, next_order, closed=False
            )
        return ResponsesAccepted(
            accepted=presenters.accepted_scores(closed, len(scored.scores), scored.missing, summary),
            session=presenters.session_state(updated),
            next=following,
        ).model_dump(mode="json")

    def _after_commit(self, session_id: str, generator: str, step: Step, next_stimuli: list[StimulusRecord]) -> None:
        """Keep the stepped optimizer for the next post and decode the next generation ahead of its fetches."""
        self._stepper.keep(session_id, None if step.finished else step.optimizer)
        if next_stimuli:
            self._renderer.prepare(generator, [s.code for s in next_stimuli])
        self.update_cache_metrics()  # per post, so a scrape of another worker process sums fresh figures

    def update_cache_metrics(self) -> None:
        """Set the cache gauges of /metrics to what this process's caches hold now."""
        sessions, optimizer_bytes = self._stepper.cached
        OPTIMIZER_CACHE_SESSIONS.set(sessions)
        OPTIMIZER_CACHE_BYTES.set(optimizer_bytes)
        IMAGE_CACHE_BYTES.set(self._renderer.cache_bytes)


def _new_best(
    session: SessionRecord, summary: GenerationSummary, factor: float, optimizer: Optimizer
) -> tuple[float, str] | None:
    """The session's new best (score as told: / the drift factor), if this generation's best beats it; for an
    optimizer that shows images again (metric-cma's remeasure), its image with the best mean score whenever that
    image or its mean changed (a lucky count measured again may fall back)."""
    judged = optimizer.best_image
    if judged is not None:
        mean, generation, row = judged
        best = mean, stimulus_id(generation, "evolved", row)
        return None if best == (session.best_score, session.best_stimulus) else best
    told_max = summary.evolved_max / factor
    if session.best_score is None or told_max > session.best_score:
        return told_max, summary.best_stimulus
    return None


def _drift_entry(config: SessionConfig, factor: float) -> dict[str, float]:
    """The generation's drift factor for its stored summary, under drift correction."""
    return {} if config.objective.drift_rule is None else {"drift_factor": factor}


def _advanced(
    session: SessionRecord, finished: bool, best: tuple[float, str] | None, best_mean: tuple[float, int]
) -> SessionRecord:
    """The session as the commit leaves it (the answer and the database agree, its time included)."""
    return replace(
        session,
        status="finished" if finished else "running",
        generation=session.generation if finished else session.generation + 1,
        best_score=best[0] if best else session.best_score,
        best_stimulus=best[1] if best else session.best_stimulus,
        updated_at=datetime.now(UTC),
        best_mean=best_mean[0],
        best_mean_generation=best_mean[1],
    )
