"""A typed Python client for the evostim HTTP API (httpx, sync and async), with safe retries built in.

Request bodies are built from the wire types of :mod:`evostim.protocol` (the server's own), so a bad body fails
here, before it is sent, with the server's rules and a :class:`~evostim.clients.http.errors.ValidationError`.

Retry rule: only requests that may be sent twice are retried: reads (GET) and keyed posts. Every post this client
sends carries an ``Idempotency-Key`` (a fresh uuid4 per logical call unless you give one), and all retries of one
call reuse that key and the same bytes, so the server replays its stored answer instead of acting twice (a lost
answer to ``create_session`` never makes two sessions). A retry follows a transport error (connection lost, timeout)
or a retryable answer (502/503/504, or a problem whose body says ``"retryable": true``), with exponential backoff
(and at least the server's ``Retry-After``, capped). Any other problem is raised at once as an error of
:mod:`evostim.clients.http.errors`.
"""

from __future__ import annotations

import asyncio
import io
import numbers
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import httpx
import numpy as np
import pydantic
from numpy.typing import NDArray
from PIL import Image

from evostim.clients.http.errors import EvostimError, ValidationError, error_from_problem
from evostim.clients.http.frames import BestImages, best_stimuli, history_frame, read_arrays
from evostim.protocol import BlockResponsesSubmit, ExportFormat, ResponsesSubmit, SessionCreate, SessionFork

if TYPE_CHECKING:
    import pandas

__all__ = ["AsyncClient", "BestImages", "Client", "EvostimError"]

Counts = Mapping[str, Mapping[str, Sequence[float]]]
"""``{stimulus id: {channel: [value per repetition]}}``"""
BlockCounts = Mapping[tuple[str, str], Mapping[str, Sequence[float]]]
"""``{(session id, stimulus id): {channel: [value per repetition]}}``"""

_Model = TypeVar("_Model", bound=pydantic.BaseModel)
_MAX_RETRY_AFTER = 30.0  # seconds: the most a server's Retry-After makes the client wait


def _http_options(base_url: str, token: str | None, timeout: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return {"base_url": base_url, "headers": headers, "timeout": httpx.Timeout(timeout, connect=5.0)}


# -- one logical call: built once, sent once or retried as is ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    url: str
    params: dict[str, Any] | None = None
    content: bytes | None = None
    key: str | None = None
    follow_redirects: bool = False

    @property
    def retryable(self) -> bool:
        """Only reads and keyed posts may reach the server twice."""
        return self.method == "GET" or self.key is not None

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


def _get(url: str, params: dict[str, Any] | None = None, *, follow_redirects: bool = False) -> _Call:
    return _Call("GET", url, params=params, follow_redirects=follow_redirects)


def _post(url: str, body: pydantic.BaseModel | None = None, key: str | None = None) -> _Call:
    """A post with its key: the given one, else a fresh uuid4 that every retry of this call reuses."""
    content = None if body is None else body.model_dump_json(exclude_unset=True).encode()
    return _Call("POST", url, content=content, key=key or uuid.uuid4().hex)


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        problem = response.json()
    except ValueError:
        problem = None
    return problem if isinstance(problem, dict) else {"detail": response.text}


def _error(response: httpx.Response) -> EvostimError | None:
    return error_from_problem(response.status_code, _problem(response)) if response.is_error else None


def _delay(backoff: float, attempt: int, response: httpx.Response | None = None) -> float:
    """Exponential backoff; at least the server's ``Retry-After`` (in seconds), capped."""
    wait: float = backoff * 2.0**attempt
    after: str = response.headers.get("Retry-After", "") if response is not None else ""
    return max(wait, min(float(after), _MAX_RETRY_AFTER)) if after.isdigit() else wait


# -- request bodies from the wire types -------------------------------------------------------------------------------
def _wire(model: type[_Model], data: Any) -> _Model:
    """``data`` as the wire type ``model``, or the server's 422 problem raised here, before anything is sent."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        raise ValidationError.before_sending(error) from error


def _with_fields(model: type[_Model], given: _Model | Mapping[str, Any] | None, fields: Mapping[str, Any]) -> _Model:
    base = given.model_dump(exclude_unset=True) if isinstance(given, pydantic.BaseModel) else dict(given or {})
    return _wire(model, {**base, **fields})


_COUNTS_SHAPE = "{stimulus id: {channel: [value per repetition]}}"
_BLOCK_SHAPE = "{(session id, stimulus id): {channel: [value per repetition]}}"


def _not_sent(detail: str, **members: Any) -> ValidationError:
    """The validation-error problem of a body this client refuses to send, raised before anything is sent."""
    problem = {"type": "/problems/validation-error", "title": "Unprocessable Content", "status": 422}
    return ValidationError(422, {**problem, "detail": f"not sent: {detail}", **members, "retryable": False})


def _shown(value: Any) -> str:
    """``value`` as an error names it: its type and a short repr."""
    if isinstance(value, np.ndarray):
        return f"a {value.ndim}-D numpy array of {value.dtype}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _mapping(value: Any, what: str, **members: Any) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise _not_sent(f"{what} must be a mapping, not {_shown(value)}", **members)
    return value


def _values(values: Any, where: str, members: Mapping[str, Any]) -> list[float]:
    """One channel's values as floats: a list, tuple or 1-D numpy array of real numbers, one per repetition.

    Anything else is refused before sending, never converted: a string would be iterated character by character
    (``'12'`` as two repetitions), a bool is not a count, a bare number is not a list of repetitions.
    """
    if not (isinstance(values, list | tuple) or (isinstance(values, np.ndarray) and values.ndim == 1)):
        what = "a list, tuple or 1-D numpy array of numbers, one per repetition"
        raise _not_sent(f"{where} must be {what}, not {_shown(values)}", **members)
    floats = []
    for i, value in enumerate(values):  # numpy's numbers are real numbers too; a bool (numpy's too) is not
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            raise _not_sent(f"{where}: repetition {i} is {_shown(value)}, not a number", **members)
        try:
            floats.append(float(value))
        except OverflowError:  # an int beyond the range of a float
            raise _not_sent(f"{where}: repetition {i} is {_shown(value)}, too large for a number", **members) from None
    if not floats:
        raise _not_sent(f"{where} has no values: give one per repetition (at least one)", **members)
    return floats


def _stimulus_response(stimulus: str, counts: Any, baseline: Any, session: str | None = None) -> dict[str, Any]:
    """One stimulus's item of a responses body, each channel's values checked by ``_values``."""
    named = f"stimulus {stimulus!r}" + ("" if session is None else f" of session {session!r}")
    members = {"stimulus": stimulus} if session is None else {"session": session, "stimulus": stimulus}
    item: dict[str, Any] = {"stimulus": stimulus}
    for field, given in (("counts", counts), ("baseline", baseline)):
        if given is None and field == "baseline":
            continue
        by_channel = _mapping(given, f"{field} of {named} ({{channel: [value per repetition]}})", **members)
        item[field] = {
            channel: _values(values, f"{field} of {named}, channel {channel!r}", {**members, "channel": channel})
            for channel, values in by_channel.items()
        }
    return item


def _check_baselines_match(counts: Mapping[Any, Any], baselines: Mapping[Any, Any]) -> None:
    unmeasured = [key for key in baselines if key not in counts]
    if unmeasured:
        raise _not_sent(f"baselines for stimuli without counts: {unmeasured[:5]}")


def _responses_submit(counts: Counts | ResponsesSubmit, baselines: Counts | None) -> ResponsesSubmit:
    if isinstance(counts, ResponsesSubmit):
        if baselines is not None:
            raise TypeError("a ResponsesSubmit carries its baselines itself; pass baselines=None")
        return counts
    counts = _mapping(counts, f"counts ({_COUNTS_SHAPE})")
    baselines = _mapping(baselines or {}, f"baselines ({_COUNTS_SHAPE})")
    _check_baselines_match(counts, baselines)
    items = [_stimulus_response(s, by_channel, baselines.get(s)) for s, by_channel in counts.items()]
    return _wire(ResponsesSubmit, {"responses": items})


def _block_submit(block: Mapping[str, Any], counts: BlockCounts, baselines: BlockCounts | None) -> BlockResponsesSubmit:
    counts = _mapping(counts, f"counts ({_BLOCK_SHAPE})")
    baselines = _mapping(baselines or {}, f"baselines ({_BLOCK_SHAPE})")
    for key in [*counts, *baselines]:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise _not_sent(f"a block's counts and baselines are keyed by (session id, stimulus id), not {_shown(key)}")
    _check_baselines_match(counts, baselines)
    items = [
        {"session": session, **_stimulus_response(stimulus, values, baselines.get((session, stimulus)), session)}
        for (session, stimulus), values in counts.items()
    ]
    return _wire(BlockResponsesSubmit, {"generations": block["generations"], "responses": items})


def _decode_image(data: bytes) -> NDArray[np.uint8]:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


# -- the calls, shared by both clients --------------------------------------------------------------------------------
def _create_session_call(config: SessionCreate | Mapping[str, Any] | None, key: str | None, fields: Any) -> _Call:
    return _post("/v1/sessions", _with_fields(SessionCreate, config, fields), key)


def _fork_call(session_id: str, options: SessionFork | Mapping[str, Any] | None, key: str | None, fields: Any) -> _Call:
    return _post(f"/v1/sessions/{session_id}/fork", _with_fields(SessionFork, options, fields), key)


def _sessions_call(limit: int, offset: int) -> _Call:
    return _get("/v1/sessions", {"limit": limit, "offset": offset})


def _generation_call(session_id: str, number: int | str) -> _Call:
    return _get(f"/v1/sessions/{session_id}/generations/{number}", follow_redirects=True)


def _block_call(session_ids: Sequence[str]) -> _Call:
    return _get("/v1/blocks", {"sessions": ",".join(session_ids)})


def _history_call(session_id: str, codes: bool, from_generation: int, to_generation: int | None) -> _Call:
    params: dict[str, Any] = {"codes": codes, "from_generation": from_generation}
    if to_generation is not None:
        params["to_generation"] = to_generation
    return _get(f"/v1/sessions/{session_id}/history", params)


def _export_call(session_id: str, format: ExportFormat) -> _Call:
    return _get(f"/v1/sessions/{session_id}/export", {"format": format})


def _stimulus_url(session_id: str, stimulus: str) -> str:
    return f"/v1/sessions/{session_id}/stimuli/{stimulus}.png"


def _best_images(best: list[tuple[int, str, float]], images: Sequence[NDArray[np.uint8]]) -> BestImages:
    pixels = np.stack(images) if images else np.zeros((0, 0, 0, 3), dtype=np.uint8)
    return BestImages([b[0] for b in best], [b[1] for b in best], [b[2] for b in best], pixels)


def _write_file(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` whole or not at all (a temporary file renamed into place)."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def _image_call(url: str, size: int | None) -> _Call:
    return _get(url, {"size": size} if size else None)


def _responses_call(
    session_id: str, generation: int, counts: Counts | ResponsesSubmit, baselines: Counts | None, key: str | None
) -> _Call:
    url = f"/v1/sessions/{session_id}/generations/{generation}/responses"
    return _post(url, _responses_submit(counts, baselines), key)


class Client:
    """Synchronous client. Use as a context manager, or call ``close()``.

    Reads and posts are retried on lost connections and transient answers; every post carries an
    ``Idempotency-Key`` that its retries reuse, so nothing is ever counted or created twice.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.25,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(**_http_options(base_url, token, timeout), transport=transport)
        self._retries = retries
        self._backoff = backoff

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call) -> httpx.Response:
        attempts = self._retries + 1 if call.retryable else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._http.request(call.method, call.url, **call.options())
            except httpx.TransportError:
                if last:
                    raise
                time.sleep(_delay(self._backoff, attempt))
                continue
            error = _error(response)
            if error is None:
                return response
            if last or not error.retryable:
                raise error
            time.sleep(_delay(self._backoff, attempt, response))
        raise RuntimeError("unreachable: the last attempt returns or raises")

    def _json(self, call: _Call) -> dict[str, Any]:
        result: dict[str, Any] = self._send(call).json()
        return result

    # -- sessions ----------------------------------------------------------------------------------
    def create_session(
        self,
        config: SessionCreate | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create a session (a ``SessionCreate``, its fields as keywords, or both); returns session and generation 0."""
        return self._json(_create_session_call(config, idempotency_key, fields))

    def session(self, session_id: str) -> dict[str, Any]:
        return self._json(_get(f"/v1/sessions/{session_id}"))

    def sessions(self, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._json(_sessions_call(limit, offset))

    def generation(self, session_id: str, number: int | str = "current") -> dict[str, Any]:
        """A generation's manifest; ``'current'`` follows the redirect to the open one."""
        return self._json(_generation_call(session_id, number))

    def history(
        self, session_id: str, *, codes: bool = False, from_generation: int = 0, to_generation: int | None = None
    ) -> dict[str, Any]:
        """Generations ``from_generation <= g < to_generation`` (None: to the last): counts, scores, optimizer
        summary; each stimulus's latent ``code`` only with ``codes=True`` (otherwise null)."""
        return self._json(_history_call(session_id, codes, from_generation, to_generation))

    def export(self, session_id: str, format: ExportFormat, path: str | Path) -> Path:
        """Download the whole session as ``format`` (npz, parquet, nwb) into ``path``; returns the path."""
        return _write_file(path, self._send(_export_call(session_id, format)).content)

    # -- a session as arrays, for notebooks ---------------------------------------------------------
    def arrays(self, session_id: str) -> dict[str, NDArray[Any]]:
        """The whole session as numpy arrays, one row per stimulus, ``code`` (N, d) bit-exact (the npz export;
        the names are listed in :mod:`evostim.clients.http.frames`)."""
        return read_arrays(self._send(_export_call(session_id, "npz")).content)

    def history_frame(self, session_id: str) -> pandas.DataFrame:
        """Every measured value in long form: generation, stimulus, kind, index, channel, repetition, count,
        baseline, score (pandas, the ``frames`` extra)."""
        return history_frame(self.arrays(session_id))

    def best_images(self, session_id: str, *, size: int | None = None) -> BestImages:
        """The best evolved image of each scored generation, with its generation, stimulus id and score."""
        best = best_stimuli(self.arrays(session_id))
        return _best_images(best, [self.image(_stimulus_url(session_id, b[1]), size=size) for b in best])

    def stop(self, session_id: str) -> dict[str, Any]:
        return self._json(_post(f"/v1/sessions/{session_id}/stop"))

    def resume(self, session_id: str) -> dict[str, Any]:
        return self._json(_post(f"/v1/sessions/{session_id}/resume"))

    def fork(
        self,
        session_id: str,
        options: SessionFork | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A new session from this one's best codes (fields: generation, best, optimizer, max_generations, metadata)."""
        return self._json(_fork_call(session_id, options, idempotency_key, fields))

    # -- blocks: several sessions shown together ----------------------------------------------------
    def block(self, session_ids: Sequence[str]) -> dict[str, Any]:
        """The running sessions' open generations as one interleaved block (see docs/protocol.md, section 9)."""
        return self._json(_block_call(session_ids))

    def post_block(
        self,
        block: Mapping[str, Any],
        counts: BlockCounts,
        *,
        baselines: BlockCounts | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Post ``{(session, stimulus): {channel: [value per repetition]}}`` for a block; returns its answer."""
        return self._json(_post("/v1/blocks/responses", _block_submit(block, counts, baselines), idempotency_key))

    # -- images ------------------------------------------------------------------------------------
    def image_bytes(self, url: str, *, size: int | None = None) -> bytes:
        return self._send(_image_call(url, size)).content

    def image(self, url: str, *, size: int | None = None) -> NDArray[np.uint8]:
        """One stimulus image as a (H, W, 3) uint8 array."""
        return _decode_image(self.image_bytes(url, size=size))

    def images(self, manifest: Mapping[str, Any], *, size: int | None = None) -> NDArray[np.uint8]:
        """All images of a manifest, in the order of ``manifest['stimuli']``: (N, H, W, 3) uint8."""
        return np.stack([self.image(stimulus["url"], size=size) for stimulus in manifest["stimuli"]])

    # -- responses ---------------------------------------------------------------------------------
    def post_responses(
        self,
        session_id: str,
        generation: int,
        counts: Counts | ResponsesSubmit,
        *,
        baselines: Counts | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Post ``{stimulus id: {channel: [value per repetition]}}``; returns the answer with ``next``.

        ``baselines``: the pre-stimulus values, ``{stimulus id: {channel: [value per repetition]}}`` with the same
        channels and repetitions as the counts. Or pass a whole ``ResponsesSubmit`` as ``counts``. Stimuli left out
        are recorded as missing (aborted trials).
        """
        return self._json(_responses_call(session_id, generation, counts, baselines, idempotency_key))


class AsyncClient:
    """The asynchronous twin of :class:`Client`: the same methods, awaited; a generation's images download at once."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.25,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(**_http_options(base_url, token, timeout), transport=transport)
        self._retries = retries
        self._backoff = backoff

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call) -> httpx.Response:
        attempts = self._retries + 1 if call.retryable else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._http.request(call.method, call.url, **call.options())
            except httpx.TransportError:
                if last:
                    raise
                await asyncio.sleep(_delay(self._backoff, attempt))
                continue
            error = _error(response)
            if error is None:
                return response
            if last or not error.retryable:
                raise error
            await asyncio.sleep(_delay(self._backoff, attempt, response))
        raise RuntimeError("unreachable: the last attempt returns or raises")

    async def _json(self, call: _Call) -> dict[str, Any]:
        result: dict[str, Any] = (await self._send(call)).json()
        return result

    # -- sessions ----------------------------------------------------------------------------------
    async def create_session(
        self,
        config: SessionCreate | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create a session (a ``SessionCreate``, its fields as keywords, or both); returns session and generation 0."""
        return await self._json(_create_session_call(config, idempotency_key, fields))

    async def session(self, session_id: str) -> dict[str, Any]:
        return await self._json(_get(f"/v1/sessions/{session_id}"))

    async def sessions(self, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return await self._json(_sessions_call(limit, offset))

    async def generation(self, session_id: str, number: int | str = "current") -> dict[str, Any]:
        """A generation's manifest; ``'current'`` follows the redirect to the open one."""
        return await self._json(_generation_call(session_id, number))

    async def history(
        self, session_id: str, *, codes: bool = False, from_generation: int = 0, to_generation: int | None = None
    ) -> dict[str, Any]:
        """Generations ``from_generation <= g < to_generation`` (None: to the last): counts, scores, optimizer
        summary; each stimulus's latent ``code`` only with ``codes=True`` (otherwise null)."""
        return await self._json(_history_call(session_id, codes, from_generation, to_generation))

    async def export(self, session_id: str, format: ExportFormat, path: str | Path) -> Path:
        """Download the whole session as ``format`` (npz, parquet, nwb) into ``path``; returns the path."""
        return _write_file(path, (await self._send(_export_call(session_id, format))).content)

    # -- a session as arrays, for notebooks ---------------------------------------------------------
    async def arrays(self, session_id: str) -> dict[str, NDArray[Any]]:
        """The whole session as numpy arrays, one row per stimulus, ``code`` (N, d) bit-exact (the npz export;
        the names are listed in :mod:`evostim.clients.http.frames`)."""
        return read_arrays((await self._send(_export_call(session_id, "npz"))).content)

    async def history_frame(self, session_id: str) -> pandas.DataFrame:
        """Every measured value in long form: generation, stimulus, kind, index, channel, repetition, count,
        baseline, score (pandas, the ``frames`` extra)."""
        return history_frame(await self.arrays(session_id))

    async def best_images(self, session_id: str, *, size: int | None = None) -> BestImages:
        """The best evolved image of each scored generation, with its generation, stimulus id and score."""
        best = best_stimuli(await self.arrays(session_id))
        images = await asyncio.gather(*(self.image(_stimulus_url(session_id, b[1]), size=size) for b in best))
        return _best_images(best, images)

    async def stop(self, session_id: str) -> dict[str, Any]:
        return await self._json(_post(f"/v1/sessions/{session_id}/stop"))

    async def resume(self, session_id: str) -> dict[str, Any]:
        return await self._json(_post(f"/v1/sessions/{session_id}/resume"))

    async def fork(
        self,
        session_id: str,
        options: SessionFork | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A new session from this one's best codes (fields: generation, best, optimizer, max_generations, metadata)."""
        return await self._json(_fork_call(session_id, options, idempotency_key, fields))

    # -- blocks: several sessions shown together ----------------------------------------------------
    async def block(self, session_ids: Sequence[str]) -> dict[str, Any]:
        """The running sessions' open generations as one interleaved block (see docs/protocol.md, section 9)."""
        return await self._json(_block_call(session_ids))

    async def post_block(
        self,
        block: Mapping[str, Any],
        counts: BlockCounts,
        *,
        baselines: BlockCounts | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Post ``{(session, stimulus): {channel: [value per repetition]}}`` for a block; returns its answer."""
        return await self._json(_post("/v1/blocks/responses", _block_submit(block, counts, baselines), idempotency_key))

    # -- images ------------------------------------------------------------------------------------
    async def image_bytes(self, url: str, *, size: int | None = None) -> bytes:
        return (await self._send(_image_call(url, size))).content

    async def image(self, url: str, *, size: int | None = None) -> NDArray[np.uint8]:
        """One stimulus image as a (H, W, 3) uint8 array."""
        return _decode_image(await self.image_bytes(url, size=size))

    async def images(self, manifest: Mapping[str, Any], *, size: int | None = None) -> NDArray[np.uint8]:
        """All images of a manifest, fetched concurrently, in the order of ``manifest['stimuli']``: (N, H, W, 3)."""
        images = await asyncio.gather(*(self.image(s["url"], size=size) for s in manifest["stimuli"]))
        return np.stack(images)

    # -- responses ---------------------------------------------------------------------------------
    async def post_responses(
        self,
        session_id: str,
        generation: int,
        counts: Counts | ResponsesSubmit,
        *,
        baselines: Counts | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Post ``{stimulus id: {channel: [value per repetition]}}``; returns the answer with ``next``.

        ``baselines``: the pre-stimulus values, ``{stimulus id: {channel: [value per repetition]}}`` with the same
        channels and repetitions as the counts. Or pass a whole ``ResponsesSubmit`` as ``counts``. Stimuli left out
        are recorded as missing (aborted trials).
        """
        return await self._json(_responses_call(session_id, generation, counts, baselines, idempotency_key))
