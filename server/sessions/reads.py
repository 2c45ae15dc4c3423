"""Reading sessions: the owner's view of a stored session with its configuration parsed once, and every answer that
only reads (a session, the list, a generation's manifest, an image, the history, an export, a generation's zip).

A session's configuration never changes after creation but for its metadata (``metadata.py``), so each one is parsed
once per process and kept (a bounded cache by session id): the store hands back the JSON object it keeps, and
``Session`` carries it typed, its metadata always the stored one (another server process may have changed it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

from evostim.generators import generator_spec
from evostim.protocol import ExportFormat, GenerationPublic, SessionHistory, SessionPublic, SessionsPublic
from evostim.server.media import exports
from evostim.server.media.images import ImageFormat
from evostim.server.media.nwb_subject import nwb_metadata
from evostim.server.media.renderer import Renderer
from evostim.server.sessions import presenters
from evostim.server.sessions.config import SessionConfig
from evostim.server.sessions.errors import (
    Conflict,
    GenerationNotFound,
    InvalidRequest,
    SessionNotFound,
    StimulusNotFound,
)
from evostim.server.sessions.limits import Limits, is_session_id, json_bytes
from evostim.server.storage.store import ANY_OWNER, ResponseRecord, SessionRecord, StimulusRecord, Store

__all__ = ["Session", "SessionReader", "may_see", "session_not_found"]

_ZIP_BATCH = 16  # images rendered at a time for images.zip: bounds memory at large sizes
_CONFIGS_KEPT = 4096  # parsed configurations kept (a few kB each); one evicted is parsed again when read
# ... and at most this much of them, as stored JSON: a configuration with a given basis or start codes holds MBs
_CONFIG_BYTES_KEPT = 64 * 2**20


@dataclass(frozen=True)
class Session:
    """A stored session and its typed configuration."""

    record: SessionRecord
    config: SessionConfig

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def public(self) -> SessionPublic:
        return presenters.session_public(self.record, self.config)


def may_see(owner: str, record: SessionRecord) -> bool:
    """Another owner's session does not exist for you (a lab-wide viewer, ANY_OWNER, reads every session)."""
    return record.owner == owner or owner == ANY_OWNER


def session_not_found(session_id: str) -> SessionNotFound:
    return SessionNotFound(f"no session {session_id!r}")


class SessionReader:
    """The owner's sessions as ``Session`` values, and the answers that only read them."""

    def __init__(self, store: Store, renderer: Renderer, limits: Limits | None = None) -> None:
        self._store = store
        self._renderer = renderer
        self._limits = limits
        self._configs: OrderedDict[str, tuple[SessionConfig, int]] = OrderedDict()  # id -> (config, JSON bytes)
        self._config_bytes = 0
        self._guard = threading.Lock()

    def typed(self, record: SessionRecord, config: SessionConfig | None = None) -> Session:
        """``record`` with its configuration: ``config`` when the caller just made it, else parsed once and kept."""
        with self._guard:
            cached = self._configs.pop(record.id, None)
            if cached is not None:
                self._config_bytes -= cached[1]
        if config is not None or cached is None:  # parsed (and measured) outside the lock: once per session
            cached = (config or SessionConfig.from_stored(record.config), json_bytes(record.config))
        known, size = cached
        metadata = record.config.get("metadata") or {}
        if known.metadata != metadata:  # patched since it was parsed, here or by another process
            known = replace(known, metadata=metadata)
        with self._guard:
            self._keep(record.id, known, size)
        return Session(record, known)

    def _keep(self, session_id: str, config: SessionConfig, size: int) -> None:
        """Keep a configuration, the most recently read last; the least recently read go beyond the bounds."""
        old = self._configs.pop(session_id, None)  # another thread's, read meanwhile
        self._config_bytes += size - (0 if old is None else old[1])
        self._configs[session_id] = (config, size)
        while len(self._configs) > 1 and (
            len(self._configs) > _CONFIGS_KEPT or self._config_bytes > _CONFIG_BYTES_KEPT
        ):
            self._config_bytes -= self._configs.popitem(last=False)[1][1]

    @property
    def configs_kept(self) -> tuple[int, int]:
        """How many parsed configurations are kept, and their stored JSON's bytes."""
        with self._guard:
            return len(self._configs), self._config_bytes

    def session(self, owner: str, session_id: str) -> Session:
        """``owner``'s session ``session_id`` (SessionNotFound for a malformed id, an unknown one, another's)."""
        record = self._store.get_session(session_id) if is_session_id(session_id) else None
        return self._visible(owner, session_id, record)

    def _visible(self, owner: str, session_id: str, record: SessionRecord | None) -> Session:
        if record is None or not may_see(owner, record):
            raise session_not_found(session_id)
        return self.typed(record)

    def get_session(self, owner: str, session_id: str) -> SessionPublic:
        return self.session(owner, session_id).public

    def list_sessions(self, owner: str, *, limit: int, offset: int) -> SessionsPublic:
        records, total = self._store.list_sessions(owner, limit=limit, offset=offset)
        items = [self.typed(r).public for r in records]
        return SessionsPublic(items=items, total=total, limit=limit, offset=offset)

    def get_generation(self, owner: str, session_id: str, number: int) -> GenerationPublic:
        session = self.session(owner, session_id)
        generation = self._store.get_generation(session_id, number)
        if generation is None:
            raise _no_generation(session.record, number)
        stimuli = self._store.get_stimuli(session_id, number)
        image_size = generator_spec(session.config.generator).image_size
        return presenters.manifest(session_id, image_size, number, stimuli, generation.order, closed=generation.closed)

    def image(
        self, owner: str, session_id: str, stimulus_id: str, fmt: ImageFormat, size: int | None, *, wait: bool = True
    ) -> bytes | Future[None]:
        """The stimulus's encoded image; ``wait`` False: while its background decode runs, that batch instead
        (``Renderer.image_or_batch``)."""
        if self._limits is not None:
            self._limits.check_image_size(size)
        found = self._store.get_image_source(session_id, stimulus_id) if is_session_id(session_id) else None
        session = self._visible(owner, session_id, None if found is None else found[0])
        stimulus = None if found is None else found[1]
        if stimulus is None:
            raise StimulusNotFound(f"session {session_id} has no stimulus {stimulus_id!r}")
        render = self._renderer.image if wait else self._renderer.image_or_batch
        return render(session.config.generator, stimulus.code, fmt, size)

    def history(
        self, owner: str, session_id: str, *, codes: bool = False, first: int = 0, stop: int | None = None
    ) -> SessionHistory:
        """Generations ``first <= g < stop`` (``stop`` None: to the last); latent codes only when asked."""
        if stop is not None and stop < first:
            raise InvalidRequest(f"to_generation ({stop}) is exclusive and must not be below from_generation ({first})")
        session = self.session(owner, session_id)
        listed = self._store.list_generations(session_id)
        generations = [g for g in listed if g.number >= first and (stop is None or g.number < stop)]
        stimuli: list[StimulusRecord] = []
        responses: dict[str, ResponseRecord] = {}
        if generations:
            last = generations[-1].number
            stimuli = self._store.get_stimuli(session_id, first, last)
            responses = {r.stimulus_id: r for r in self._store.get_responses(session_id, first, last)}
        return presenters.history(session.public, generations, stimuli, responses, codes=codes)

    # -- data out (server/media/exports.py) ------------------------------------------------------------------
    def export(
        self, owner: str, session_id: str, fmt: ExportFormat, path: Path, nwb: Mapping[str, str] | None = None
    ) -> None:
        """Write the whole session to ``path`` in ``fmt`` (npz, parquet, nwb); a missing extra, or a subject an
        archive would refuse (``nwb``: the export's fields over the session's metadata), refuses first, and so
        does an NWB export of a session that no response has closed a generation of yet (Conflict)."""
        exports.check_extra(fmt)
        session = self.session(owner, session_id)
        if fmt == "nwb":
            try:
                nwb_metadata(session.config.metadata, nwb or {})
            except ValueError as error:
                raise InvalidRequest(f"the NWB export: {error}") from None
            if not any(g.closed_at is not None for g in self._store.list_generations(session_id)):
                # nwbinspector: CRITICAL (every presentation starts at one moment) and checks that crash (no stop)
                raise Conflict(
                    "the NWB export needs a generation whose responses were posted: an archive refuses a file whose "
                    "presentations all start at one moment and none has ended; post the first generation's "
                    "responses, or export npz, parquet or csv, which hold the session as it stands"
                )
        exports.write_export(self._export_data(session, nwb or {}), fmt, path)

    def _export_data(self, session: Session, nwb: Mapping[str, str]) -> exports.SessionData:
        config, session_id = session.config, session.id

        def read(first: int, last: int) -> tuple[list[StimulusRecord], dict[str, ResponseRecord]]:
            responses = self._store.get_responses(session_id, first, last)
            return self._store.get_stimuli(session_id, first, last), {r.stimulus_id: r for r in responses}

        return exports.SessionData(
            session=session.public,
            channels=tuple(config.channels),
            latent_dim=generator_spec(config.generator).latent_dim,
            generations=self._store.list_generations(session_id),
            read=read,
            pixels=lambda codes: self._renderer.pixels(config.generator, codes),
            nwb=nwb,
        )

    def generation_images(
        self, owner: str, session_id: str, number: int, fmt: ImageFormat, size: int | None
    ) -> Iterator[tuple[str, bytes]]:
        """Every image of generation ``number`` as (``<stimulus id>.<fmt>``, bytes), rendered a batch at a time as
        the iterator is read (the session, the generation and this server's limits on the images' size are checked
        at once, before any image is rendered)."""
        if self._limits is not None:
            self._limits.check_image_size(size)
        session = self.session(owner, session_id)
        if self._store.get_generation(session_id, number) is None:
            raise _no_generation(session.record, number)
        generator = session.config.generator
        stimuli = self._store.get_stimuli(session_id, number)
        if self._limits is not None:
            self._limits.check_archive(len(stimuli), size or generator_spec(generator).image_size)

        def images() -> Iterator[tuple[str, bytes]]:
            for start in range(0, len(stimuli), _ZIP_BATCH):
                batch = stimuli[start : start + _ZIP_BATCH]
                encoded = self._renderer.render(generator, [s.code for s in batch], fmt, size)
                yield from ((f"{s.stimulus_id}.{fmt}", data) for s, data in zip(batch, encoded, strict=True))

        return images()


def _no_generation(record: SessionRecord, number: int) -> GenerationNotFound:
    """The refusal of a generation the session does not have, saying where the session stands."""
    last = record.generation
    where = f"it finished at generation {last}" if record.status == "finished" else f"the open generation is {last}"
    return GenerationNotFound(f"session {record.id} has no generation {number}; {where}")
