"""Sessions, generations, stimuli and responses under /v1/sessions."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from evostim.protocol import (
    MAX_GENERATION,
    ExportFormat,
    GenerationPublic,
    ResponsesAccepted,
    ResponsesSubmit,
    SessionCreate,
    SessionCreated,
    SessionFork,
    SessionHistory,
    SessionPublic,
    SessionsPublic,
    SessionUpdate,
)
from evostim.server.api.problems import PROBLEM_JSON
from evostim.server.api.routes.deps import IDEMPOTENCY_KEY_PATTERN, KEY_DESCRIPTION, Owner, Service
from evostim.server.media import exports
from evostim.server.media.archive import zip_stream
from evostim.server.media.exports import MEDIA_TYPES as MEDIA_TYPES_OUT
from evostim.server.media.images import MEDIA_TYPES, ImageFormat
from evostim.server.sessions.errors import StimulusNotFound

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"description": "problem details (RFC 9457)", "content": {PROBLEM_JSON: {}}}
    for code in (401, 403, 404, 409, 422)
}
# A client-chosen key (a UUID, say): a retry with the same key and body replays the first answer.
IdempotencyKey = Annotated[
    str | None, Header(min_length=1, max_length=255, pattern=IDEMPOTENCY_KEY_PATTERN, description=KEY_DESCRIPTION)
]
# A generation number in a path: the store's 32-bit range (a bigger number is a 422, never a database error).
GenerationNumber = Annotated[int, PathParam(ge=0, le=MAX_GENERATION)]
_IMAGE_NAME = re.compile(r"^(?P<stimulus>[A-Za-z0-9_-]{1,40})\.(?P<fmt>png|jpg|bmp)$")


@router.post("", status_code=status.HTTP_201_CREATED, responses=_PROBLEMS)
def create_session(
    body: SessionCreate, owner: Owner, service: Service, idempotency_key: IdempotencyKey = None
) -> SessionCreated:
    """Create a session; the answer holds generation 0, whose images are ready.

    With an ``Idempotency-Key`` header a retry with the same key and body answers the same session.
    """
    return service.create_session(owner, body, idempotency_key)


@router.get("", responses=_PROBLEMS)
def list_sessions(
    owner: Owner,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_GENERATION)] = 0,
) -> SessionsPublic:
    return service.list_sessions(owner, limit=limit, offset=offset)


@router.get("/{session_id}", responses=_PROBLEMS)
def get_session(session_id: str, owner: Owner, service: Service) -> SessionPublic:
    return service.get_session(owner, session_id)


@router.patch("/{session_id}", responses=_PROBLEMS)
def update_session(session_id: str, body: SessionUpdate, owner: Owner, service: Service) -> SessionPublic:
    """Change the session's metadata (notes, a corrected animal name) by a JSON merge patch (RFC 7396; sent as
    application/json or application/merge-patch+json); the search itself never changes. A patch says what the
    metadata becomes, so sending it again (a retry) changes nothing more: no Idempotency-Key is needed."""
    return service.update_session(owner, session_id, body)


Generation = Annotated[int, Query(ge=0, le=MAX_GENERATION)]


@router.get("/{session_id}/history", responses=_PROBLEMS)
def get_history(
    session_id: str,
    owner: Owner,
    service: Service,
    codes: Annotated[bool, Query(description="include each stimulus's latent code (d floats each)")] = False,
    from_generation: Annotated[Generation, Query(description="first generation included")] = 0,
    to_generation: Annotated[
        Generation | None, Query(description="generations below this one are included (exclusive); default: all")
    ] = None,
) -> SessionHistory:
    """Generations ``from_generation <= g < to_generation``: counts per repetition, baselines, scores, optimizer
    summary; latent codes with ``codes=true``."""
    return service.history(owner, session_id, codes=codes, first=from_generation, stop=to_generation)


_REDIRECT: dict[int | str, dict[str, Any]] = {
    307: {
        "description": "redirect to the open generation (the last one when the session finished)",
        "headers": {
            "Location": {"description": "/v1/sessions/{id}/generations/{number}", "schema": {"type": "string"}}
        },
    }
}


# No fixed maximum here: the server's own limit (limits.py) refuses a larger size with one message that names it.
_SIZE = "resize to size x size pixels (at most the server's EVOSTIM_MAX_IMAGE_SIZE, 1,024 unless set)"


@router.get("/{session_id}/generations/current", status_code=307, responses={**_PROBLEMS, **_REDIRECT})
def current_generation(session_id: str, owner: Owner, service: Service) -> RedirectResponse:
    number = service.current_generation(owner, session_id)
    return RedirectResponse(f"/v1/sessions/{session_id}/generations/{number}", status_code=307)


@router.get("/{session_id}/generations/{number}", responses=_PROBLEMS)
def get_generation(session_id: str, number: GenerationNumber, owner: Owner, service: Service) -> GenerationPublic:
    return service.get_generation(owner, session_id, number)


@router.post("/{session_id}/generations/{number}/responses", response_model=ResponsesAccepted, responses=_PROBLEMS)
def post_responses(
    session_id: str,
    number: GenerationNumber,
    body: ResponsesSubmit,
    owner: Owner,
    service: Service,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Scores of generation ``number``; the answer is the next generation, images ready to fetch.

    With an ``Idempotency-Key`` header a retry with the same key and body replays the stored answer.
    """
    answer, timings = service.submit_responses(owner, session_id, number, body, idempotency_key)
    headers = {"Server-Timing": ", ".join(f"{name};dur={value:.3f}" for name, value in timings.items())}
    if "replay" in timings:
        headers["Idempotent-Replayed"] = "true"
    # The service already built (and stored) the validated answer: send it as is, not validated twice.
    return JSONResponse(answer, headers=headers)


@router.get(
    "/{session_id}/stimuli/{filename}",
    responses={**_PROBLEMS, 200: {"content": {m: {} for m in MEDIA_TYPES.values()}, "description": "the image"}},
    response_class=Response,
)
async def get_stimulus_image(
    session_id: str,
    filename: str,
    owner: Owner,
    service: Service,
    size: Annotated[int | None, Query(ge=8, description=_SIZE)] = None,
) -> Response:
    match = _IMAGE_NAME.match(filename)
    if match is None:
        raise StimulusNotFound(f"{filename!r} is not '<stimulus id>.png', '.jpg' or '.bmp'")
    fmt: ImageFormat = match["fmt"]  # type: ignore[assignment]  # the pattern's three
    image = partial(service.image, owner, session_id, match["stimulus"], fmt, size)
    data = await run_in_threadpool(image, wait=False)
    if isinstance(data, Future):
        # Its generation still decodes: wait here, holding no request thread (a post may need it), then render
        # (after a failed batch the fetch decodes its image itself). asyncio.wait, not await: the batch's own
        # failure is not this request's, and a fetch that is cancelled must not cancel the batch.
        await asyncio.wait([asyncio.wrap_future(data)])
        data = await run_in_threadpool(image, wait=True)
    # Images are pure functions of the stored code: cache them forever.
    return Response(
        data, media_type=MEDIA_TYPES[fmt], headers={"Cache-Control": "private, max-age=31536000, immutable"}
    )


def _file_answer(path: Path, media_type: str, filename: str) -> StreamingResponse:
    """A finished temporary file as the answer, streamed; its name is removed at once, so nothing is left behind
    even when the client goes away or the server is killed mid-answer."""
    size, body = exports.read_and_remove(path)
    headers = {"Content-Length": str(size), "Content-Disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(body, media_type=media_type, headers=headers)


@router.get(
    "/{session_id}/generations/{number}/images.zip",
    responses={**_PROBLEMS, 200: {"content": {MEDIA_TYPES_OUT["zip"]: {}}, "description": "the images"}},
    response_class=StreamingResponse,
)
def get_generation_images(
    session_id: str,
    number: Annotated[int, PathParam(ge=0, le=MAX_GENERATION)],
    owner: Owner,
    service: Service,
    format: Annotated[ImageFormat, Query(description="image format of every member")] = "png",
    size: Annotated[int | None, Query(ge=8, description=_SIZE)] = None,
) -> StreamingResponse:
    """Every image of generation ``number`` in one zip, each named ``<stimulus id>.<format>``, streamed as the images
    are rendered (a size or a number of images above the server's limits is a 422 before any is)."""
    images = service.generation_images(owner, session_id, number, format, size)
    headers = {"Content-Disposition": f'attachment; filename="{session_id}-g{number}.zip"'}
    return StreamingResponse(zip_stream(images), media_type=MEDIA_TYPES_OUT["zip"], headers=headers)


_NWB = "NWB only: {} (default: the session's metadata)"


@router.get(
    "/{session_id}/export",
    responses={**_PROBLEMS, 200: {"content": {m: {} for m in MEDIA_TYPES_OUT.values()}, "description": "the file"}},
    response_class=StreamingResponse,
)
def export_session(
    session_id: str,
    owner: Owner,
    service: Service,
    format: Annotated[ExportFormat, Query(description="npz (numpy), parquet (pyarrow) or nwb (pynwb)")] = "npz",
    subject_id: Annotated[str | None, Query(max_length=200, description=_NWB.format("the subject's id"))] = None,
    species: Annotated[
        str | None, Query(max_length=200, description=_NWB.format("its species, e.g. Macaca mulatta"))
    ] = None,
    sex: Annotated[str | None, Query(max_length=20, description=_NWB.format("its sex: M, F, U or O"))] = None,
    age: Annotated[str | None, Query(max_length=60, description=_NWB.format("its age, ISO 8601, e.g. P7Y"))] = None,
    session_start: Annotated[
        str | None,
        Query(max_length=60, description=_NWB.format("when the recording started, ISO 8601 with a time zone")),
    ] = None,
) -> StreamingResponse:
    """The whole session as one file: one row per stimulus (codes, counts per repetition, baselines, scores,
    generation timestamps and optimizer summary) and the session's configuration and metadata (docs/protocol.md).
    NWB only: the subject and session start, each over the session's metadata (a value an archive refuses: 422)."""
    given = {"subject_id": subject_id, "species": species, "sex": sex, "age": age, "session_start": session_start}
    nwb = {name: value for name, value in given.items() if value is not None}
    path = exports.temporary_file(f".{format}", lambda out: service.export(owner, session_id, format, out, nwb))
    return _file_answer(path, MEDIA_TYPES_OUT[format], f"{session_id}.{format}")


@router.post("/{session_id}/stop", responses=_PROBLEMS)
def stop_session(session_id: str, owner: Owner, service: Service) -> SessionPublic:
    """Pause the session: its open generation accepts no responses until it is resumed."""
    return service.stop_session(owner, session_id)


@router.post("/{session_id}/resume", responses=_PROBLEMS)
def resume_session(session_id: str, owner: Owner, service: Service) -> SessionPublic:
    """Continue a stopped session from its open generation."""
    return service.resume_session(owner, session_id)


@router.post("/{session_id}/fork", status_code=status.HTTP_201_CREATED, responses=_PROBLEMS)
def fork_session(
    session_id: str, body: SessionFork, owner: Owner, service: Service, idempotency_key: IdempotencyKey = None
) -> SessionCreated:
    """A new session with this one's settings, starting from its best codes (optionally another optimizer).

    With an ``Idempotency-Key`` header a retry with the same key and body answers the same fork.
    """
    return service.fork_session(owner, session_id, body, idempotency_key)
