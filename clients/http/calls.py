"""What the sync and async clients share, all but the I/O: each logical call built once (and sent once, or retried
as is), the retry rule, answers turned into errors or arrays.

Retry rule: only requests that may be sent twice are retried: reads (GET), merge patches (PATCH: a patch says what
the metadata becomes, so a second one changes nothing) and keyed posts. Every post carries an
``Idempotency-Key`` (a fresh uuid4 per logical call unless the caller gives one), and all retries of one call reuse
that key and the same bytes, so the server replays its stored answer instead of acting twice. A retry follows a
transport error (connection lost, timeout) or a retryable answer (502/503/504, or a problem whose body says
``"retryable": true``), with exponential backoff (and at least the server's ``Retry-After``, capped). Any other
problem is raised at once as an error of :mod:`evostim.clients.http.errors`.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydantic
from numpy.typing import NDArray
from PIL import Image

from evostim.clients.http.bodies import BlockCounts, Counts, block_submit, responses_submit, with_fields
from evostim.clients.http.errors import error_from_problem
from evostim.clients.http.frames import BestImages
from evostim.protocol import ExportFormat, ResponsesSubmit, SessionCreate, SessionFork, SessionUpdate

__all__ = ["Call", "Retry", "stimulus_url"]

MAX_RETRY_AFTER = 30.0  # seconds: the most a server's Retry-After makes the client wait


def http_options(base_url: str, token: str | None, timeout: float) -> dict[str, Any]:
    """The options of an ``httpx.Client`` or ``httpx.AsyncClient`` for one server."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return {"base_url": base_url, "headers": headers, "timeout": httpx.Timeout(timeout, connect=5.0)}


# -- one logical call: built once, sent once or retried as is ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Call:
    method: str
    url: str
    params: dict[str, Any] | None = None
    content: bytes | None = None
    key: str | None = None
    follow_redirects: bool = False

    @property
    def retryable(self) -> bool:
        """Only reads, merge patches and keyed posts may reach the server twice."""
        return self.method in ("GET", "PATCH") or self.key is not None

    def options(self) -> dict[str, Any]:
        headers = {} if self.content is None else {"Content-Type": "application/json"}
        if self.key is not None:
            headers["Idempotency-Key"] = self.key
        return {
            "params": self.params,
            "content": self.content,
            "headers": headers,
            "follow_redirects": self.follow_redirects,
        }


def get(url: str, params: dict[str, Any] | None = None, *, follow_redirects: bool = False) -> Call:
    return Call("GET", url, params=params, follow_redirects=follow_redirects)


def post(url: str, body: pydantic.BaseModel | None = None, key: str | None = None) -> Call:
    """A post with its key: the given one, else a fresh uuid4 that every retry of this call reuses."""
    content = None if body is None else body.model_dump_json(exclude_unset=True).encode()
    return Call("POST", url, content=content, key=key or uuid.uuid4().hex)


# -- the retry rule ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Retry:
    """How a client retries: at most ``retries`` more attempts, waits growing from ``backoff`` seconds."""

    retries: int = 3
    backoff: float = 0.25

    def attempts(self, call: Call) -> int:
        return self.retries + 1 if call.retryable else 1

    def wait(self, outcome: httpx.Response | httpx.TransportError, attempt: int, attempts: int) -> float:
        """After a failed attempt (a transport error, or an error answer): the seconds to wait before the next one.

        Raises instead when the call ends here: the transport error or the answer's problem as an error, after the
        last attempt or when no retry can help.
        """
        if isinstance(outcome, httpx.TransportError):
            if attempt == attempts - 1:
                raise outcome
            return delay(self.backoff, attempt)
        error = error_from_problem(outcome.status_code, _problem(outcome))
        if attempt == attempts - 1 or not error.retryable:
            raise error
        return delay(self.backoff, attempt, outcome)


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        problem = response.json()
    except ValueError:
        problem = None
    return problem if isinstance(problem, dict) else {"detail": response.text}


def delay(backoff: float, attempt: int, response: httpx.Response | None = None) -> float:
    """Exponential backoff; at least the server's ``Retry-After`` (in seconds), capped."""
    wait: float = backoff * 2.0**attempt
    after: str = response.headers.get("Retry-After", "") if response is not None else ""
    return max(wait, min(float(after), MAX_RETRY_AFTER)) if after.isdigit() else wait


# -- the calls --------------------------------------------------------------------------------------------------------
def create_session(config: SessionCreate | Mapping[str, Any] | None, key: str | None, fields: Any) -> Call:
    return post("/v1/sessions", with_fields(SessionCreate, config, fields), key)


def fork(session_id: str, options: SessionFork | Mapping[str, Any] | None, key: str | None, fields: Any) -> Call:
    return post(f"/v1/sessions/{session_id}/fork", with_fields(SessionFork, options, fields), key)


def session(session_id: str) -> Call:
    return get(f"/v1/sessions/{session_id}")


def sessions(limit: int, offset: int) -> Call:
    return get("/v1/sessions", {"limit": limit, "offset": offset})


def generation(session_id: str, number: int | str) -> Call:
    return get(f"/v1/sessions/{session_id}/generations/{number}", follow_redirects=True)


def history(session_id: str, codes: bool, from_generation: int, to_generation: int | None) -> Call:
    params: dict[str, Any] = {"codes": codes, "from_generation": from_generation}
    if to_generation is not None:
        params["to_generation"] = to_generation
    return get(f"/v1/sessions/{session_id}/history", params)


NWB_FIELDS = ("subject_id", "species", "sex", "age", "session_start")


def export(session_id: str, format: ExportFormat, nwb: Mapping[str, str] | None = None) -> Call:
    """``nwb``: the NWB file's subject and session start (``NWB_FIELDS``), over the session's metadata."""
    unknown = sorted(set(nwb or {}) - set(NWB_FIELDS))
    if unknown:
        raise ValueError(f"unknown NWB fields {unknown}; known: {', '.join(NWB_FIELDS)}")
    return get(f"/v1/sessions/{session_id}/export", {"format": format, **(nwb or {})})


def update_metadata(session_id: str, metadata: Mapping[str, Any]) -> Call:
    """A JSON merge patch of the session's metadata (``None`` removes a key), checked against the wire type."""
    body = SessionUpdate.model_validate({"metadata": dict(metadata)}, strict=False)
    return Call("PATCH", f"/v1/sessions/{session_id}", content=body.model_dump_json().encode())


def stop(session_id: str) -> Call:
    return post(f"/v1/sessions/{session_id}/stop")


def resume(session_id: str) -> Call:
    return post(f"/v1/sessions/{session_id}/resume")


def block(session_ids: Sequence[str]) -> Call:
    return get("/v1/blocks", {"sessions": ",".join(session_ids)})


def post_block(block: Mapping[str, Any], counts: BlockCounts, baselines: BlockCounts | None, key: str | None) -> Call:
    return post("/v1/blocks/responses", block_submit(block, counts, baselines), key)


def image(url: str, size: int | None) -> Call:
    return get(url, {"size": size} if size else None)


def post_responses(
    session_id: str, generation: int, counts: Counts | ResponsesSubmit, baselines: Counts | None, key: str | None
) -> Call:
    url = f"/v1/sessions/{session_id}/generations/{generation}/responses"
    return post(url, responses_submit(counts, baselines), key)


def stimulus_url(session_id: str, stimulus: str) -> str:
    """Where a stimulus's PNG image is (what a manifest's ``url`` says; the history gives only the ids)."""
    return f"/v1/sessions/{session_id}/stimuli/{stimulus}.png"


# -- answers ----------------------------------------------------------------------------------------------------------
def decode_image(data: bytes) -> NDArray[np.uint8]:
    with Image.open(io.BytesIO(data)) as opened:
        return np.asarray(opened.convert("RGB"))


def best_images(best: list[tuple[int, str, float]], images: Sequence[NDArray[np.uint8]]) -> BestImages:
    pixels = np.stack(images) if images else np.zeros((0, 0, 0, 3), dtype=np.uint8)
    return BestImages([b[0] for b in best], [b[1] for b in best], [b[2] for b in best], pixels)


def write_file(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` whole or not at all (a temporary file renamed into place)."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target
