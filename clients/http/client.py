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

:class:`Client` is here, :class:`AsyncClient` (the same methods, awaited) in :mod:`evostim.clients.http.async_client`;
both build their calls, bodies and retries from :mod:`evostim.clients.http.calls`, and differ only in the I/O.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx
import numpy as np
from numpy.typing import NDArray

from evostim.clients.http import calls
from evostim.clients.http.async_client import AsyncClient
from evostim.clients.http.bodies import BlockCounts, Counts
from evostim.clients.http.errors import EvostimError
from evostim.clients.http.frames import BestImages, best_stimuli, history_frame, read_arrays
from evostim.protocol import ExportFormat, ResponsesSubmit, SessionCreate, SessionFork

if TYPE_CHECKING:
    import pandas

__all__ = ["AsyncClient", "BestImages", "BlockCounts", "Client", "Counts", "EvostimError"]


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
        self._http = httpx.Client(**calls.http_options(base_url, token, timeout), transport=transport)
        self._retry = calls.Retry(retries, backoff)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: calls.Call) -> httpx.Response:
        attempts = self._retry.attempts(call)
        for attempt in range(attempts):
            try:
                response = self._http.request(call.method, call.url, **call.options())
            except httpx.TransportError as error:
                time.sleep(self._retry.wait(error, attempt, attempts))  # or raises it: the call ends here
                continue
            if not response.is_error:
                return response
            time.sleep(self._retry.wait(response, attempt, attempts))  # or raises its problem
        raise RuntimeError("unreachable: the last attempt returns or raises")

    def _json(self, call: calls.Call) -> dict[str, Any]:
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
        return self._json(calls.create_session(config, idempotency_key, fields))

    def session(self, session_id: str) -> dict[str, Any]:
        return self._json(calls.session(session_id))

    def sessions(self, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._json(calls.sessions(limit, offset))

    def generation(self, session_id: str, number: int | str = "current") -> dict[str, Any]:
        """A generation's manifest; ``'current'`` follows the redirect to the open one."""
        return self._json(calls.generation(session_id, number))

    def history(
        self, session_id: str, *, codes: bool = False, from_generation: int = 0, to_generation: int | None = None
    ) -> dict[str, Any]:
        """Generations ``from_generation <= g < to_generation`` (None: to the last): counts, scores, optimizer
        summary; each stimulus's latent ``code`` only with ``codes=True`` (otherwise null)."""
        return self._json(calls.history(session_id, codes, from_generation, to_generation))

    def export(
        self, session_id: str, format: ExportFormat, path: str | Path, *, nwb: Mapping[str, str] | None = None
    ) -> Path:
        """Download the whole session as ``format`` (npz, parquet, nwb, csv) into ``path``; returns the path. ``nwb``
        (NWB only): the subject's ``subject_id``, ``species``, ``sex``, ``age`` and the ``session_start``, each over
        the session's metadata, e.g. ``{"species": "Macaca mulatta", "sex": "M", "age": "P7Y"}``."""
        return calls.write_file(path, self._send(calls.export(session_id, format, nwb)).content)

    # -- a session as arrays, for notebooks ---------------------------------------------------------
    def arrays(self, session_id: str) -> dict[str, NDArray[Any]]:
        """The whole session as numpy arrays, one row per stimulus, ``code`` (N, d) bit-exact (the npz export;
        the names are listed in :mod:`evostim.clients.http.frames`)."""
        return read_arrays(self._send(calls.export(session_id, "npz")).content)

    def history_frame(self, session_id: str) -> pandas.DataFrame:
        """Every measured value in long form: generation, stimulus, kind, index, channel, repetition, count,
        baseline, score (pandas, the ``frames`` extra)."""
        return history_frame(self.arrays(session_id))

    def best_images(self, session_id: str, *, size: int | None = None) -> BestImages:
        """The best evolved image of each scored generation, with its generation, stimulus id and score."""
        best = best_stimuli(self.arrays(session_id))
        return calls.best_images(best, [self.image(calls.stimulus_url(session_id, b[1]), size=size) for b in best])

    def update_metadata(self, session_id: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """Change the session's metadata (notes, a corrected animal name) by a JSON merge patch: each key replaces
        the stored one, ``None`` removes it; the search never changes. Safe to retry. Returns the session."""
        return self._json(calls.update_metadata(session_id, metadata))

    def stop(self, session_id: str) -> dict[str, Any]:
        return self._json(calls.stop(session_id))

    def resume(self, session_id: str) -> dict[str, Any]:
        return self._json(calls.resume(session_id))

    def fork(
        self,
        session_id: str,
        options: SessionFork | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A new session from this one's best codes (fields: generation, best, optimizer, max_generations, metadata)."""
        return self._json(calls.fork(session_id, options, idempotency_key, fields))

    # -- blocks: several sessions shown together ----------------------------------------------------
    def block(self, session_ids: Sequence[str]) -> dict[str, Any]:
        """The running sessions' open generations as one interleaved block (see docs/protocol.md, section 9)."""
        return self._json(calls.block(session_ids))

    def post_block(
        self,
        block: Mapping[str, Any],
        counts: BlockCounts,
        *,
        baselines: BlockCounts | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Post ``{(session, stimulus): {channel: [value per repetition]}}`` for a block; returns its answer."""
        return self._json(calls.post_block(block, counts, baselines, idempotency_key))

    # -- images ------------------------------------------------------------------------------------
    def image_bytes(self, url: str, *, size: int | None = None) -> bytes:
        return self._send(calls.image(url, size)).content

    def image(self, url: str, *, size: int | None = None) -> NDArray[np.uint8]:
        """One stimulus image as a (H, W, 3) uint8 array."""
        return calls.decode_image(self.image_bytes(url, size=size))

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
        return self._json(calls.post_responses(session_id, generation, counts, baselines, idempotency_key))
