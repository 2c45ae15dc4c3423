"""Records -> answers: the store's frozen records become the wire types of ``evostim.protocol``, with their URLs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC

from evostim.protocol import (
    GenerationPublic,
    GenerationScores,
    HistoryGeneration,
    HistoryStimulus,
    SessionHistory,
    SessionPublic,
    SessionState,
    StimulusPublic,
)
from evostim.server.media.images import ImageFormat
from evostim.server.sessions.config import SessionConfig
from evostim.server.sessions.scoring import GenerationSummary
from evostim.server.storage.store import GenerationRecord, ResponseRecord, SessionRecord, StimulusRecord

__all__ = [
    "MANIFEST_FORMAT",
    "accepted_scores",
    "history",
    "manifest",
    "responses_url",
    "session_public",
    "session_state",
    "session_url",
    "stimulus_url",
]

# The format of the image URLs in manifests (a fetch may ask for .jpg or .bmp instead).
MANIFEST_FORMAT: ImageFormat = "png"


def session_url(session_id: str) -> str:
    return f"/v1/sessions/{session_id}"


def stimulus_url(session_id: str, stimulus_id: str, fmt: ImageFormat = MANIFEST_FORMAT) -> str:
    return f"{session_url(session_id)}/stimuli/{stimulus_id}.{fmt}"


def responses_url(session_id: str, number: int) -> str:
    return f"{session_url(session_id)}/generations/{number}/responses"


def session_state(record: SessionRecord) -> SessionState:
    """Where a session stands, without its configuration (the answer to a post: it does not repeat the config)."""
    created_at = record.created_at if record.created_at.tzinfo else record.created_at.replace(tzinfo=UTC)
    return SessionState(
        id=record.id,
        status=record.status,  # type: ignore[arg-type]
        generation=record.generation,
        created_at=created_at,
        last_activity=record.updated_at or created_at,
        best_score=record.best_score,
        best_stimulus=record.best_stimulus,
        best_image_url=None if record.best_stimulus is None else stimulus_url(record.id, record.best_stimulus),
    )


def session_public(record: SessionRecord, config: SessionConfig) -> SessionPublic:
    return SessionPublic(**dict(session_state(record)), config=config.to_stored())


def manifest(
    session_id: str,
    image_size: int,
    number: int,
    stimuli: Sequence[StimulusRecord],
    order: list[str],
    *,
    closed: bool,
) -> GenerationPublic:
    """A generation's manifest: its stimuli with their image URLs, the presentation order, where to post."""
    return GenerationPublic(
        session_id=session_id,
        number=number,
        status="closed" if closed else "open",
        image_size=image_size,
        stimuli=[
            StimulusPublic(id=s.stimulus_id, kind=s.kind, index=s.index, url=stimulus_url(session_id, s.stimulus_id))  # type: ignore[arg-type]
            for s in stimuli
        ],
        order=order,
        responses_url=responses_url(session_id, number),
    )


def accepted_scores(number: int, measured: int, missing: list[str], summary: GenerationSummary) -> GenerationScores:
    return GenerationScores(
        number=number,
        measured=measured,
        missing=missing,
        evolved_mean=summary.evolved_mean,
        evolved_max=summary.evolved_max,
        reference_mean=summary.reference_mean,
    )


def history(
    public: SessionPublic,
    generations: Sequence[GenerationRecord],
    stimuli: Sequence[StimulusRecord],
    responses: Mapping[str, ResponseRecord],
    *,
    codes: bool,
) -> SessionHistory:
    """The given generations: their stimuli with counts, baselines, scores (and codes if asked), the optimizer's
    summary."""
    by_generation: dict[int, list[HistoryStimulus]] = {g.number: [] for g in generations}
    for s in stimuli:
        if s.generation in by_generation:
            by_generation[s.generation].append(_history_stimulus(s, responses.get(s.stimulus_id), codes=codes))
    return SessionHistory(
        session=public,
        generations=[
            HistoryGeneration(
                number=g.number,
                status="closed" if g.closed else "open",
                stimuli=by_generation[g.number],
                optimizer=g.summary,
            )
            for g in generations
        ],
    )


def _history_stimulus(stimulus: StimulusRecord, response: ResponseRecord | None, *, codes: bool) -> HistoryStimulus:
    return HistoryStimulus(
        id=stimulus.stimulus_id,
        kind=stimulus.kind,  # type: ignore[arg-type]
        index=stimulus.index,
        code=stimulus.code.tolist() if codes else None,
        counts=None if response is None else response.counts,
        baseline=None if response is None else response.baseline,
        score=None if response is None else response.score,
    )
