"""The asynchronous client: the methods of :class:`~evostim.clients.http.client.Client`, awaited, with the same
calls, bodies and retries (:mod:`evostim.clients.http.calls`); a generation's images download at once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx
import numpy as np
from numpy.typing import NDArray

from evostim.clients.http import calls
from evostim.clients.http.bodies import BlockCounts, Counts
from evostim.clients.http.frames import BestImages, best_stimuli, history_frame, read_arrays
from evostim.protocol import ExportFormat, ResponsesSubmit, SessionCreate, SessionFork

if TYPE_CHECKING:
    import pandas

__all__ = ["AsyncClient"]


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
        self._http = httpx.AsyncClient(**calls.http_options(base_url, token, timeout), transport=transport)
        self._retry = calls.Retry(retries, backoff)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: calls.Call) -> httpx.Response:
        attempts = self._retry.attempts(call)
        for attempt in range(attempts):
            try:
                response = await self._http.request(call.method, call.url, **call.options())
            except httpx.TransportError as error:
                await asyncio.sleep(self._retry.wait(error, attempt, attempts))  # or raises it: the call ends here
                continue
            if not response.is_error:
                return response
            await asyncio.sleep(self._retry.wait(response, attempt, attempts))  # or raises its problem
        raise RuntimeError("unreachable: the last attempt returns or raises")

    async def _json(self, call: calls.Call) -> dict[str, Any]:
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
        return await self._json(calls.create_session(config, idempotency_key, fields))

    async def session(self, session_id: str) -> dict[str, Any]:
        return await self._json(calls.session(session_id))

    async def sessions(self, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return await self._json(calls.sessions(limit, offset))

    async def generation(self, session_id: str, number: int | str = "current") -> dict[str, Any]:
        """A generation's manifest; ``'current'`` follows the redirect to the open one."""
        return await self._json(calls.generation(session_id, number))

    async def history(
        self, session_id: str, *, codes: bool = False, from_generation: int = 0, to_generation: int | None = None
    ) -> dict[str, Any]:
        """Generations ``from_generation <= g < to_generation`` (None: to the last): counts, scores, optimizer
        summary; each stimulus's latent ``code`` only with ``codes=True`` (otherwise null)."""
        return await self._json(calls.history(session_id, codes, from_generation, to_generation))

    async def export(
        self, session_id: str, format: ExportFormat, path: str | Path, *, nwb: Mapping[str, str] | None = None
    ) -> Path:
        """Download the whole session as ``format`` (npz, parquet, nwb, csv) into ``path``; returns the path. ``nwb``
        (NWB only): the subject's ``subject_id``, ``species``, ``sex``, ``age`` and the ``session_start``, each over
        the session's metadata, e.g. ``{"species": "Macaca mulatta", "sex": "M", "age": "P7Y"}``."""
        return calls.write_file(path, (await self._send(calls.export(session_id, format, nwb))).content)

    # -- a session as arrays, for notebooks ---------------------------------------------------------
    async def arrays(self, session_id: str) -> dict[str, NDArray[Any]]:
        """The whole session as numpy arrays, one row per stimulus, ``code`` (N, d) bit-exact (the npz export;
        the names are listed in :mod:`evostim.clients.http.frames`)."""
        return read_arrays((await self._send(calls.export(session_id, "npz"))).content)

    async def history_frame(self, session_id: str) -> pandas.DataFrame:
        """Every measured value in long form: generation, stimulus, kind, index, channel, repetition, count,
        baseline, score (pandas, the ``frames`` extra)."""
        return history_frame(await self.arrays(session_id))

    async def best_images(self, session_id: str, *, size: int | None = None) -> BestImages:
        """The best evolved image of each scored generation, with its generation, stimulus id and score."""
        best = best_stimuli(await self.arrays(session_id))
        images = await asyncio.gather(*(self.image(calls.stimulus_url(session_id, b[1]), size=size) for b in best))
        return calls.best_images(best, images)

    async def update_metadata(self, session_id: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """Change the session's metadata (notes, a corrected animal name) by a JSON merge patch: each key replaces
        the stored one, ``None`` removes it; the search never changes. Safe to retry. Returns the session."""
        return await self._json(calls.update_metadata(session_id, metadata))

    async def stop(self, session_id: str) -> dict[str, Any]:
        return await self._json(calls.stop(session_id))

    async def resume(self, session_id: str) -> dict[str, Any]:
        return await self._json(calls.resume(session_id))

    async def fork(
        self,
        session_id: str,
        options: SessionFork | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A new session from this one's best codes (fields: generation, best, optimizer, max_generations, metadata)."""
        return await self._json(calls.fork(session_id, options, idempotency_key, fields))

    # -- blocks: several sessions shown together ----------------------------------------------------
    async def block(self, session_ids: Sequence[str]) -> dict[str, Any]:
        """The running sessions' open generations as one interleaved block (see docs/protocol.md, section 9)."""
        return await self._json(calls.block(session_ids))

    async def post_block(
        self,
        block: Mapping[str, Any],
        counts: BlockCounts,
        *,
        baselines: BlockCounts | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Post ``{(session, stimulus): {channel: [value per repetition]}}`` for a block; returns its answer."""
        return await self._json(calls.post_block(block, counts, baselines, idempotency_key))

    # -- images ------------------------------------------------------------------------------------
    async def image_bytes(self, url: str, *, size: int | None = None) -> bytes:
        return (await self._send(calls.image(url, size))).content

    async def image(self, url: str, *, size: int | None = None) -> NDArray[np.uint8]:
        """One stimulus image as a (H, W, 3) uint8 array."""
        return calls.decode_image(await self.image_bytes(url, size=size))

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
        return await self._json(calls.post_responses(session_id, generation, counts, baselines, idempotency_key))
