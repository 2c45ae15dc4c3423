"""A file bridge for rigs that cannot speak HTTP (MonkeyLogic/MATLAB rigs, as XDream and the Ponce lab's rigs did).

In the watched folder, per generation n, the bridge writes ``gen_NNNN/``: the images as ``<stimulus id>.png`` and a
``manifest.json`` (session, number, channels, stimuli, presentation order). The rig shows them and writes
``gen_NNNN/responses.json`` with the same body as the HTTP post (``{"responses": [...]}``; each stimulus's
``counts`` and, optionally, its pre-stimulus ``baseline`` with the same channels and repetitions). The bridge checks
it against the wire types (a bad file raises :class:`~evostim.clients.errors.ValidationError` and is not posted),
posts it as written, baselines included, and writes ``gen_NNNN/accepted.json`` (what the server stored) and the
next generation's folder; the rig waits for ``gen_{N+1}/manifest.json``.

Crash safety: every file appears whole or not at all (written beside, then renamed), so neither side ever reads a
half-written file. The post's Idempotency-Key is derived from the session, the generation and the file's bytes, so
a bridge that crashed after posting and before writing ``accepted.json`` re-posts on restart and gets the stored
answer back instead of a second count. A folder already written is never rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pydantic

from evostim.clients.client import Client
from evostim.clients.errors import ValidationError
from evostim.protocol import ResponsesSubmit

__all__ = ["RigBridge", "write_atomically"]


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


class RigBridge:
    """Exchanges one session's generations with a rig through files in ``folder``."""

    def __init__(self, client: Client, session_id: str, folder: Path) -> None:
        self._client = client
        self._session_id = session_id
        self._folder = folder
        folder.mkdir(parents=True, exist_ok=True)

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

        Returns False when the session has finished (nothing more to do).
        """
        session = self._client.session(self._session_id)
        if session["status"] == "finished":
            return False
        if session["status"] == "stopped":
            return True  # paused by the experimenter: keep watching
        number = session["generation"]
        folder = self.publish(self._client.generation(self._session_id, number))
        responses = folder / "responses.json"
        if not responses.is_file():
            return True
        data = responses.read_bytes()
        digest = hashlib.sha256(data).hexdigest()[:24]
        answer = self._client.post_responses(
            self._session_id, number, _read_responses(data), idempotency_key=f"rig-{self._session_id}-{number}-{digest}"
        )
        write_atomically(folder / "accepted.json", json.dumps(answer["accepted"], indent=1).encode())
        if answer["next"] is not None:
            self.publish(answer["next"])
        return answer["next"] is not None

    def run(self, *, poll_seconds: float = 0.2, max_generations: int | None = None) -> None:
        """Poll until the session finishes (or ``max_generations`` more generations were posted)."""
        start = self._client.session(self._session_id)["generation"]
        while self.step():
            if max_generations is not None and self._client.session(self._session_id)["generation"] >= (
                start + max_generations
            ):
                return
            time.sleep(poll_seconds)
