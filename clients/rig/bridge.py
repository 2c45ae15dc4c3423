"""A file bridge for rigs that cannot speak HTTP (MonkeyLogic/MATLAB rigs, as XDream and the Ponce lab's rigs did).

In the watched folder, per generation n, the bridge writes ``gen_NNNN/``: the images as ``<stimulus id>.png`` and a
``manifest.json`` (session, number, channels, stimuli, presentation order). The rig shows them and writes
``gen_NNNN/responses.json`` with the same body as the HTTP post (``{"responses": [...]}``; each stimulus's
``counts`` and, optionally, its pre-stimulus ``baseline`` with the same channels and repetitions). The bridge checks
it against the wire types (a bad file raises :class:`~evostim.clients.http.errors.ValidationError` and is not posted),
posts it as written, baselines included, and writes ``gen_NNNN/accepted.json`` (what the server stored) and the
next generation's folder; the rig waits for ``gen_{N+1}/manifest.json``.

Crash safety: every file appears whole or not at all (written beside, then renamed), so neither side ever reads a
half-written file. The post's Idempotency-Key is derived from the session, the generation and the file's bytes, so
a bridge that crashed after posting and before writing ``accepted.json`` re-posts on restart and gets the stored
answer back instead of a second count. A folder already written is never rewritten.

Errors: the bridge never dies on one and never leaves the rig waiting without a word. Whatever stops it (a
responses file that does not parse or fit the generation, a wrong channel, an unknown session, a refused token, a
server out of reach) is written to ``error.json`` in the watched folder (:data:`ERROR_FILE`)::

    {"action": "rig" | "operator" | "none", "generation": <n or null>, "file": "gen_NNNN/responses.json" or null,
     "detail": <what went wrong and what to do>, "problem": <the server's RFC 9457 problem, or one made here>,
     "retry_in_s": <seconds until the bridge tries again>, "time": <UTC, ISO 8601>}

``action`` says who must act: ``rig`` (rewrite the responses file; the bridge posts it once it changes),
``operator`` (the session id, the token or the server must be fixed), ``none`` (the bridge retries by itself
with exponential backoff: a lost connection, a busy server). The bridge removes ``error.json`` as soon as a pass
succeeds again. ``evostim_bridge_wait`` (clients/matlab) raises on ``rig`` and ``operator``.

The session's state: ``status.json`` in the watched folder (:data:`STATUS_FILE`) says whether the session is
``running``, ``stopped`` (paused by the experimenter: the bridge waits for a resume) or ``finished`` (its stop rule
ended it: no more generations come, and the bridge exits)::

    {"session": "s_…", "status": "running" | "stopped" | "finished", "generation": <the open or last generation>,
     "detail": <what it means for the rig>, "time": <UTC, ISO 8601>}

It is rewritten whenever the state the bridge sees changes. ``evostim_bridge_wait`` returns on ``stopped`` and
``finished`` (``manifest.status`` says which) instead of waiting for a manifest that will not come.

Polling: while the rig has written nothing new, the bridge looks only at the folder (every ``poll_seconds``) and
asks the server about the session every ``server_poll_seconds`` (5 s), to notice a session stopped, resumed or
finished elsewhere; a new responses file is posted at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pydantic

from evostim.clients.http.client import Client
from evostim.clients.http.errors import EvostimError, SessionNotRunning, ValidationError
from evostim.protocol import ResponsesSubmit

__all__ = ["ERROR_FILE", "STATUS_FILE", "RigBridge", "write_atomically"]

ERROR_FILE = "error.json"
STATUS_FILE = "status.json"
_STATUS_DETAIL = {
    "running": "the session is running: wait for the next generation's manifest.json",
    "stopped": "the session is stopped: no generation is exchanged until it is resumed (the bridge keeps watching)",
    "finished": "the session finished (its stop rule): no more generations will come; the bridge has exited",
}
log = logging.getLogger("evostim.rig")


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old state or the whole new file, never a part."""
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _read_responses(data: bytes) -> ResponsesSubmit:
    """The rig's file as the wire type (counts and baselines), or the server's 422 problem raised without posting."""
    try:
        return ResponsesSubmit.model_validate_json(data)
    except pydantic.ValidationError as error:
        raise ValidationError.before_sending(error) from error


class _ResponsesRefused(Exception):
    """The rig's responses file was refused (by the wire types here or by the server): the rig must rewrite it."""

    def __init__(self, number: int, error: EvostimError) -> None:
        super().__init__(str(error))
        self.number = number
        self.error = error


def _error_report(error: Exception, generation: int | None, retry_in: float) -> dict[str, Any]:
    """What ``error.json`` says about ``error``: who must act, what went wrong, the problem behind it."""
    action, file = "none", None
    if isinstance(error, _ResponsesRefused):
        action, generation, file = "rig", error.number, f"gen_{error.number:04d}/responses.json"
        problem = error.error.problem
    elif isinstance(error, EvostimError):
        # a stopped session: the bridge waits for its resume (status.json says so), nobody needs to act
        action = "none" if error.retryable or isinstance(error, SessionNotRunning) else "operator"
        problem = error.problem
    else:
        reachable = isinstance(error, httpx.TransportError)
        slug, title = ("server-unreachable", "Server unreachable") if reachable else ("bridge-error", "Bridge error")
        problem = {"type": f"/problems/{slug}", "title": title, "detail": f"{type(error).__name__}: {error}"}
        problem["retryable"] = True
    detail = str(problem.get("detail", ""))
    if action == "rig":
        detail = f"{file} was not accepted: {detail}; write it again (the bridge posts it once it changes)"
    return {
        "action": action,
        "generation": generation,
        "file": file,
        "detail": detail,
        "problem": problem,
        "retry_in_s": round(retry_in, 3),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class RigBridge:
    """Exchanges one session's generations with a rig through files in ``folder``."""

    def __init__(self, client: Client, session_id: str, folder: Path, *, server_poll_seconds: float = 5.0) -> None:
        self._client = client
        self._session_id = session_id
        self._folder = folder
        self._server_poll_seconds = server_poll_seconds
        self._refused: dict[int, str] = {}  # generation -> digest of its responses file that was refused
        self._generation: int | None = None  # the open generation, as last seen
        self._paused = False  # the session was stopped, as last seen
        self._next_server_look = 0.0  # time.monotonic() before which a pass with nothing new on disk skips the server
        self._last_refusal: int | None = None  # the generation whose file this pass's post had refused
        self._waiting_for_rig = False  # this pass found the refused file unchanged
        self._status: tuple[str, int] | None = None  # (status, generation) last written to status.json
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def error_file(self) -> Path:
        return self._folder / ERROR_FILE

    @property
    def status_file(self) -> Path:
        return self._folder / STATUS_FILE

    def generation_folder(self, number: int) -> Path:
        return self._folder / f"gen_{number:04d}"

    def publish(self, manifest: dict[str, Any]) -> Path:
        """Write a generation's images and manifest (a folder is written once, then renamed into place)."""
        final = self.generation_folder(manifest["number"])
        if (final / "manifest.json").is_file():
            return final
        staging = self._folder / f".{final.name}.partial"
        staging.mkdir(exist_ok=True)
        for stimulus in manifest["stimuli"]:
            write_atomically(staging / f"{stimulus['id']}.png", self._client.image_bytes(stimulus["url"]))
        session = self._client.session(self._session_id)
        description = {
            "session": self._session_id,
            "number": manifest["number"],
            "channels": session["config"]["channels"],
            "stimuli": [{"id": s["id"], "kind": s["kind"], "file": f"{s['id']}.png"} for s in manifest["stimuli"]],
            "order": manifest["order"],
            "responses_file": "responses.json",
        }
        write_atomically(staging / "manifest.json", json.dumps(description, indent=1).encode())
        if final.exists():  # an earlier crash left a folder without a manifest: replace it
            for leftover in final.iterdir():
                leftover.unlink()
            final.rmdir()
        os.replace(staging, final)
        return final

    def step(self) -> bool:
        """One pass: publish the open generation, and post its responses if the rig wrote them.

        Returns False when the session has finished (nothing more to do). A pass that finds nothing new on disk
        asks the server nothing unless ``server_poll_seconds`` have passed since the last pass that did.
        """
        self._last_refusal = None
        self._waiting_for_rig = False
        if time.monotonic() < self._next_server_look and (self._paused or self._rig_file() is None):
            return True
        self._next_server_look = 0.0  # a pass that fails asks the server again the next time
        session = self._client.session(self._session_id)
        self._note_status(session["status"], session["generation"])
        if session["status"] == "finished":
            return False
        self._paused = session["status"] == "stopped"  # paused by the experimenter: keep watching
        if not self._paused:
            number = self._generation = session["generation"]
            self.publish(self._client.generation(self._session_id, number))
            written = self._rig_file()
            if written is not None:
                return self._post_and_publish(number, *written)
        self._next_server_look = time.monotonic() + self._server_poll_seconds
        return True

    def _rig_file(self) -> tuple[bytes, str] | None:
        """The open generation's responses file and its digest; None while it is absent, or refused as it is
        (error.json then stays until the rig writes it again)."""
        if self._generation is None:
            return None
        responses = self.generation_folder(self._generation) / "responses.json"
        if not responses.is_file():
            return None
        data = responses.read_bytes()
        digest = hashlib.sha256(data).hexdigest()[:24]
        if self._refused.get(self._generation) == digest:
            self._waiting_for_rig = True
            return None
        return data, digest

    def _post_and_publish(self, number: int, data: bytes, digest: str) -> bool:
        """Post the rig's file, acknowledge it in ``accepted.json`` and publish the next generation, if any."""
        answer = self._post(number, data, digest)
        write_atomically(
            self.generation_folder(number) / "accepted.json", json.dumps(answer["accepted"], indent=1).encode()
        )
        if answer["next"] is not None:
            self.publish(answer["next"])
        self._note_status(answer["session"]["status"], answer["session"]["generation"])
        return answer["next"] is not None

    def _note_status(self, status: str, generation: int) -> None:
        """Write ``status.json`` when the session's state differs from what it last said."""
        if self._status == (status, generation):
            return
        report = {
            "session": self._session_id,
            "status": status,
            "generation": generation,
            "detail": _STATUS_DETAIL.get(status, status),
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_atomically(self.status_file, json.dumps(report, indent=1).encode())
        self._status = (status, generation)

    def _post(self, number: int, data: bytes, digest: str) -> dict[str, Any]:
        """Post the rig's file; a file refused for what it says (not for a passing failure) is remembered."""
        try:
            return self._client.post_responses(
                self._session_id,
                number,
                _read_responses(data),
                idempotency_key=f"rig-{self._session_id}-{number}-{digest}",
            )
        except EvostimError as error:
            # the file's content, not the bridge's settings or the server; a session stopped between the bridge's
            # look and its post is not the file's fault: it is posted as it is once the session is resumed
            if error.status in (400, 409, 422) and not isinstance(error, SessionNotRunning):
                self._refused[number] = digest
                self._last_refusal = number
            raise

    def run(
        self,
        *,
        poll_seconds: float = 0.2,
        max_generations: int | None = None,
        max_backoff: float = 30.0,
        stop: threading.Event | None = None,
    ) -> None:
        """Poll until the session finishes (or ``max_generations`` more generations were posted, or ``stop`` is set).

        An error never ends the loop: it is written to ``error.json`` for the rig, and the pass is tried again,
        after ``poll_seconds`` when the rig must act, else after a delay doubling up to ``max_backoff``.
        """
        stop = stop or threading.Event()
        start: int | None = None
        failures = 0
        while not stop.is_set():
            try:
                if start is None:
                    start = int(self._client.session(self._session_id)["generation"])
                more = self.step()
            except Exception as error:  # whatever it is, the rig hears of it and the bridge goes on
                failures += 1
                stop.wait(self._report(error, failures, poll_seconds, max_backoff))
                continue
            failures = 0
            if not self._waiting_for_rig:
                self._clear_error()
            if not more or (max_generations is not None and (self._generation or 0) >= start + max_generations):
                return
            stop.wait(poll_seconds)

    def _report(self, error: Exception, failures: int, poll_seconds: float, max_backoff: float) -> float:
        """Write ``error.json`` (and a log line) for ``error``; returns how long to wait before the next pass."""
        if isinstance(error, EvostimError) and self._last_refusal is not None:
            error = _ResponsesRefused(self._last_refusal, error)
        rig_acts = isinstance(error, _ResponsesRefused)
        delay = poll_seconds if rig_acts else min(max_backoff, poll_seconds * 2.0 ** min(failures, 16))
        report = _error_report(error, self._generation, delay)
        try:
            write_atomically(self.error_file, json.dumps(report, indent=1).encode())
        except OSError as write_error:  # the folder itself is gone or read-only: say so where the operator looks
            log.error("could not write %s: %s", self.error_file, write_error)
        log.error("%s (action: %s; next try in %.1f s)", report["detail"], report["action"], delay)
        return delay

    def _clear_error(self) -> None:
        self.error_file.unlink(missing_ok=True)
