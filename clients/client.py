"""A typed Python client for the evostim HTTP API (httpx), with idempotent retries built in."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx
import numpy as np
from numpy.typing import NDArray
from PIL import Image

__all__ = ["AsyncClient", "Client", "EvostimError"]

_RETRY_STATUSES = {502, 503, 504}


class EvostimError(Exception):
    """The server answered with a problem (RFC 9457); ``problem`` holds its body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', problem)}")
        self.status = status
        self.problem = problem


def _http_options(base_url: str, token: str | None, timeout: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return {"base_url": base_url, "headers": headers, "timeout": httpx.Timeout(timeout, connect=5.0)}


def _raise_for_problem(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        try:
            problem = response.json()
        except ValueError:
            problem = {"detail": response.text}
        raise EvostimError(response.status_code, problem)
    return response


def _responses_body(counts: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[str, Any]:
    return {
        "responses": [
            {"stimulus": stimulus, "counts": {ch: [float(v) for v in values] for ch, values in by_channel.items()}}
            for stimulus, by_channel in counts.items()
        ]
    }


def _decode_image(data: bytes) -> NDArray[np.uint8]:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


class Client:
    """Synchronous client. Use as a context manager, or call ``close()``.

    Posts of responses carry an ``Idempotency-Key``; on a lost connection or a gateway error the same
    request is retried with the same key, so a retry can never be counted twice.
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

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self._retries + 1):
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.TransportError:
                if attempt == self._retries:
                    raise
            else:
                if response.status_code not in _RETRY_STATUSES or attempt == self._retries:
                    break
            time.sleep(self._backoff * 2**attempt)
        return _raise_for_problem(response)

    # -- sessions ----------------------------------------------------------------------------------
    def create_session(self, **config: Any) -> dict[str, Any]:
        """Create a session (see ``SessionCreate`` in the OpenAPI schema); returns session and generation 0."""
        result: dict[str, Any] = self._request("POST", "/v1/sessions", json=config).json()
        return result

    def session(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/v1/sessions/{session_id}").json()
        return result

    def sessions(self, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/v1/sessions", params={"limit": limit, "offset": offset}).json()
        return result

    def generation(self, session_id: str, number: int | str = "current") -> dict[str, Any]:
        """A generation's manifest; ``'current'`` follows the redirect to the open one."""
        url = f"/v1/sessions/{session_id}/generations/{number}"
        result: dict[str, Any] = self._request("GET", url, follow_redirects=True).json()
        return result

    def history(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/v1/sessions/{session_id}/history").json()
        return result

    def stop(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", f"/v1/sessions/{session_id}/stop").json()
        return result

    def resume(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", f"/v1/sessions/{session_id}/resume").json()
        return result

    def fork(self, session_id: str, **options: Any) -> dict[str, Any]:
        """A new session from this one's best codes (options: generation, best, optimizer, max_generations)."""
        result: dict[str, Any] = self._request("POST", f"/v1/sessions/{session_id}/fork", json=options).json()
        return result

    # -- blocks: several sessions shown together ----------------------------------------------------
    def block(self, session_ids: Sequence[str]) -> dict[str, Any]:
        """The running sessions' open generations as one interleaved block (see docs/protocol.md, section 9)."""
        result: dict[str, Any] = self._request("GET", "/v1/blocks", params={"sessions": ",".join(session_ids)}).json()
        return result

    def post_block(
        self,
        block: Mapping[str, Any],
        counts: Mapping[tuple[str, str], Mapping[str, Sequence[float]]],
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Post ``{(session, stimulus): {channel: [value per repetition]}}`` for a block; returns its answer."""
        body = {
            "generations": block["generations"],
            "responses": [
                {"session": session, **_responses_body({stimulus: by_channel})["responses"][0]}
                for (session, stimulus), by_channel in counts.items()
            ],
        }
        key = idempotency_key or uuid.uuid4().hex
        result: dict[str, Any] = self._request(
            "POST", "/v1/blocks/responses", json=body, headers={"Idempotency-Key": key}
        ).json()
        return result

    # -- images ------------------------------------------------------------------------------------
    def image_bytes(self, url: str, *, size: int | None = None) -> bytes:
        params = {"size": size} if size else None
        return self._request("GET", url, params=params).content

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
        counts: Mapping[str, Mapping[str, Sequence[float]]],
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Post ``{stimulus id: {channel: [value per repetition]}}``; returns the answer with ``next``.

        Stimuli left out are recorded as missing (aborted trials).
        """
        body = _responses_body(counts)
        key = idempotency_key or uuid.uuid4().hex
        url = f"/v1/sessions/{session_id}/generations/{generation}/responses"
        result: dict[str, Any] = self._request("POST", url, json=body, headers={"Idempotency-Key": key}).json()
        return result


class AsyncClient:
    """The asynchronous twin of :class:`Client` (same methods, awaited); a generation's images download at once."""

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

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self._retries + 1):
            try:
                response = await self._http.request(method, url, **kwargs)
            except httpx.TransportError:
                if attempt == self._retries:
                    raise
            else:
                if response.status_code not in _RETRY_STATUSES or attempt == self._retries:
                    break
            await asyncio.sleep(self._backoff * 2**attempt)
        return _raise_for_problem(response)

    async def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = (await self._request(method, url, **kwargs)).json()
        return result

    async def create_session(self, **config: Any) -> dict[str, Any]:
        return await self._json("POST", "/v1/sessions", json=config)

    async def session(self, session_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/v1/sessions/{session_id}")

    async def generation(self, session_id: str, number: int | str = "current") -> dict[str, Any]:
        return await self._json("GET", f"/v1/sessions/{session_id}/generations/{number}", follow_redirects=True)

    async def history(self, session_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/v1/sessions/{session_id}/history")

    async def stop(self, session_id: str) -> dict[str, Any]:
        return await self._json("POST", f"/v1/sessions/{session_id}/stop")

    async def resume(self, session_id: str) -> dict[str, Any]:
        return await self._json("POST", f"/v1/sessions/{session_id}/resume")

    async def fork(self, session_id: str, **options: Any) -> dict[str, Any]:
        return await self._json("POST", f"/v1/sessions/{session_id}/fork", json=options)

    async def image(self, url: str, *, size: int | None = None) -> NDArray[np.uint8]:
        params = {"size": size} if size else None
        return _decode_image((await self._request("GET", url, params=params)).content)

    async def images(self, manifest: Mapping[str, Any], *, size: int | None = None) -> NDArray[np.uint8]:
        """All images of a manifest, fetched concurrently, in the order of ``manifest['stimuli']``."""
        images = await asyncio.gather(*(self.image(s["url"], size=size) for s in manifest["stimuli"]))
        return np.stack(images)

    async def post_responses(
        self,
        session_id: str,
        generation: int,
        counts: Mapping[str, Mapping[str, Sequence[float]]],
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        key = idempotency_key or uuid.uuid4().hex
        url = f"/v1/sessions/{session_id}/generations/{generation}/responses"
        return await self._json("POST", url, json=_responses_body(counts), headers={"Idempotency-Key": key})
