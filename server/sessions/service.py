"""The session service: a thin orchestrator that the routes call. It builds the parts once and hands each request to
the one that owns it; a session's stop and resume (its life cycle) are all it does itself.

The parts live in modules named after them: ``creation`` (create and fork), ``posting`` (one generation: read ->
score -> step -> store in one transaction -> render), ``reads`` (the owner's sessions with their typed configuration,
and every answer that only reads), ``blocks`` (several sessions as one block), ``metadata`` (patches of a session's
metadata, the one part that changes), ``idempotency`` (keys and request hashes). Under them: ``config`` (the typed
configuration), ``setup`` (what a new session starts from), ``scoring`` (the posting rules and the objective),
``stepper`` (the optimizer: cache, snapshot, replay, verify; tell, stop, ask), ``plateau`` (the plateau rule's running
summary), ``stimuli``, ``presenters`` (records -> answers and URLs), the renderer (batched decode + encode, cached).
The optimizer, the generator and the store know nothing of each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from evostim.generators import ImageGenerator
from evostim.generators.host import Hosts
from evostim.protocol import (
    BlockManifest,
    BlockResponsesSubmit,
    ExportFormat,
    GenerationPublic,
    ResponsesSubmit,
    SessionCreate,
    SessionCreated,
    SessionFork,
    SessionHistory,
    SessionPublic,
    SessionsPublic,
    SessionUpdate,
)
from evostim.server.config import Settings
from evostim.server.media.images import ImageFormat
from evostim.server.media.renderer import Renderer
from evostim.server.ops.collector import freeze_long_lived
from evostim.server.sessions.blocks import Blocks
from evostim.server.sessions.creation import SessionCreation
from evostim.server.sessions.errors import SessionNotRunning
from evostim.server.sessions.limits import Limits
from evostim.server.sessions.locks import SessionLocks
from evostim.server.sessions.metadata import MetadataEditor
from evostim.server.sessions.posting import Posting, Timings
from evostim.server.sessions.reads import SessionReader
from evostim.server.sessions.stepper import OptimizerStepper
from evostim.server.storage.store import Store

__all__ = ["SessionService", "Timings"]


class SessionService:
    """Sessions for many owners, with per-session serialization; optimizers and images are cached."""

    def __init__(
        self, store: Store, settings: Settings, *, load_generator: Callable[[str, str, Path], ImageGenerator]
    ) -> None:
        self._store = store
        self._settings = settings
        self._load_generator = load_generator
        self._frozen_generators: set[str] = set()
        self._closed = False
        self._renderer = Renderer(self._generator, cache_bytes=settings.image_cache_mb * 2**20)
        self._stepper = OptimizerStepper(
            store,
            snapshot_every=settings.snapshot_every,
            cache_bytes=settings.optimizer_cache_mb * 2**20,
            host_for=Hosts(lambda name: self._generator(name).module),  # what optimizers need from a generator
        )
        self._locks = SessionLocks()
        limits = Limits.from_settings(settings)
        self._reader = SessionReader(store, self._renderer, limits)
        self._creation = SessionCreation(
            store=store,
            reader=self._reader,
            stepper=self._stepper,
            renderer=self._renderer,
            limits=limits,
            settings=settings,
            generator=self._generator,
        )
        self._posting = Posting(
            store=store,
            reader=self._reader,
            stepper=self._stepper,
            renderer=self._renderer,
            limits=limits,
            locks=self._locks,
        )
        self._blocks = Blocks(reader=self._reader, posting=self._posting)
        self._metadata = MetadataEditor(store=store, reader=self._reader, limits=limits, locks=self._locks)

    def close(self) -> None:
        """Stop decoding ahead (the server stops; the store closes after)."""
        self._closed = True
        self._renderer.close()

    def _generator(self, name: str) -> ImageGenerator:
        generator = self._load_generator(name, self._settings.device, self._settings.weights_dir)
        # its modules live as long as the process: out of the GC's scans (not once closed: the server has
        # unfrozen, and a decode still running must not freeze what nothing would hand back)
        if name not in self._frozen_generators and not self._closed and self._settings.gc_freeze:
            self._frozen_generators.add(name)
            freeze_long_lived()
        return generator

    # -- create (creation.py) ------------------------------------------------------------------------
    def create_session(self, owner: str, request: SessionCreate, idempotency_key: str | None = None) -> SessionCreated:
        """A new session and its generation 0 (images rendered); a keyed retry replays the first answer."""
        return self._creation.create(owner, request, idempotency_key)

    def fork_session(
        self, owner: str, session_id: str, fork: SessionFork, idempotency_key: str | None = None
    ) -> SessionCreated:
        """A new session with this one's settings, starting from its best measured codes."""
        return self._creation.fork(owner, session_id, fork, idempotency_key)

    # -- read (reads.py) -----------------------------------------------------------------------------
    def get_session(self, owner: str, session_id: str) -> SessionPublic:
        return self._reader.get_session(owner, session_id)

    def list_sessions(self, owner: str, *, limit: int, offset: int) -> SessionsPublic:
        return self._reader.list_sessions(owner, limit=limit, offset=offset)

    def current_generation(self, owner: str, session_id: str) -> int:
        return self._reader.session(owner, session_id).record.generation

    def get_generation(self, owner: str, session_id: str, number: int) -> GenerationPublic:
        return self._reader.get_generation(owner, session_id, number)

    def image(
        self, owner: str, session_id: str, stimulus_id: str, fmt: ImageFormat, size: int | None, *, wait: bool = True
    ) -> bytes | Future[None]:
        """The stimulus's encoded image; ``wait`` False: while its background decode runs, that batch instead."""
        return self._reader.image(owner, session_id, stimulus_id, fmt, size, wait=wait)

    def history(
        self, owner: str, session_id: str, *, codes: bool = False, first: int = 0, stop: int | None = None
    ) -> SessionHistory:
        """Generations ``first <= g < stop`` (``stop`` None: to the last); latent codes only when asked."""
        return self._reader.history(owner, session_id, codes=codes, first=first, stop=stop)

    def export(
        self, owner: str, session_id: str, fmt: ExportFormat, path: Path, nwb: Mapping[str, str] | None = None
    ) -> None:
        """Write the whole session to ``path`` in ``fmt`` (npz, parquet, nwb); a missing extra refuses first.
        ``nwb``: the NWB file's subject and session start, over the session's metadata (server/media/nwb_subject.py)."""
        self._reader.export(owner, session_id, fmt, path, nwb)

    def generation_images(
        self, owner: str, session_id: str, number: int, fmt: ImageFormat, size: int | None
    ) -> Iterator[tuple[str, bytes]]:
        """Every image of generation ``number`` as (``<stimulus id>.<fmt>``, bytes), rendered as it is read."""
        return self._reader.generation_images(owner, session_id, number, fmt, size)

    # -- responses (posting.py, blocks.py) -----------------------------------------------------------
    def submit_responses(
        self, owner: str, session_id: str, number: int, body: ResponsesSubmit, idempotency_key: str | None
    ) -> tuple[dict[str, Any], Timings]:
        """Close generation ``number`` with ``body`` and open the next; returns the answer and timings (ms)."""
        return self._posting.submit(owner, session_id, number, body, idempotency_key)

    def block(self, owner: str, session_ids: list[str]) -> BlockManifest:
        """The open generations of running sessions, interleaved (a seeded merge that keeps each one's order)."""
        return self._blocks.manifest(owner, session_ids)

    def submit_block(self, owner: str, body: BlockResponsesSubmit, idempotency_key: str | None) -> dict[str, Any]:
        """Each session's share stored as its own post, after every share was validated (a refused block stores
        nothing)."""
        return self._blocks.submit(owner, body, idempotency_key)

    def update_session(self, owner: str, session_id: str, update: SessionUpdate) -> SessionPublic:
        """Patch the session's metadata (notes, a corrected animal name); the search never changes."""
        return self._metadata.update(owner, session_id, update)

    # -- life cycle ----------------------------------------------------------------------------------
    def stop_session(self, owner: str, session_id: str) -> SessionPublic:
        """Pause: the open generation stays open but accepts no responses until resumed. Idempotent."""
        finished = f"session {session_id} is finished; there is nothing to stop"
        return self._set_status(owner, session_id, "stopped", finished)

    def resume_session(self, owner: str, session_id: str) -> SessionPublic:
        """Continue a stopped session from its open generation. Idempotent."""
        finished = f"session {session_id} finished by its stop rule; fork it to continue the search"
        return self._set_status(owner, session_id, "running", finished)

    def _set_status(self, owner: str, session_id: str, status: str, finished: str) -> SessionPublic:
        with self._locks.held(session_id):
            session = self._reader.session(owner, session_id)
            if session.record.status == "finished":
                raise SessionNotRunning(finished)
            changed = self._store.set_status(session_id, status, allowed_from=("running", "stopped"))
            return self._reader.typed(changed or session.record).public

    # -- caches --------------------------------------------------------------------------------------
    def update_cache_metrics(self) -> None:
        """Set the cache gauges of /metrics to what this process's caches hold now."""
        self._posting.update_cache_metrics()

    def forget_optimizers(self) -> None:
        """Drop cached optimizers (the next post replays from the store, as after a restart)."""
        self._stepper.forget()
