"""The optimizer stepper: the one wrapper between a pure ask/tell optimizer and the store (as Vizier's designers).

``load`` gives the optimizer waiting for a session's open generation: from the cache, or from the latest snapshot
replayed through the stored responses, each replayed proposal checked against the stored one bit for bit.
``step`` tells it a scored generation, applies the stop rules and asks for the next one. Live posts and the replay
tell through the same function, so both tell the optimizer exactly the measured evolved stimuli (under drift
correction their scores / the generation's factor, which both compute from the stored reference means: drift.py).
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from evostim import optimizers
from evostim.optimizers import NO_HOST, Host, Optimizer, Population
from evostim.optimizers.geometry import project_to_sphere
from evostim.server.sessions.config import SessionConfig
from evostim.server.sessions.drift import NO_CORRECTION, replay_factors
from evostim.server.sessions.errors import StateCorrupt
from evostim.server.sessions.optimizer_calls import optimizer_call
from evostim.server.sessions.plateau import plateaued
from evostim.server.storage.store import SessionRecord, StimulusRecord, Store

__all__ = [
    "OptimizerStepper",
    "Step",
    "array_bytes",
    "decode_state",
    "encode_state",
    "tell_measured",
]


def encode_state(optimizer: Optimizer) -> bytes:
    """The optimizer's state as the opaque blob the store keeps (compressed JSON, never pickle)."""
    return zlib.compress(json.dumps(optimizer.state_dict()).encode(), 1)


def decode_state(blob: bytes, host: Host = NO_HOST) -> Optimizer:
    """The optimizer a blob of :func:`encode_state` holds, given its host (what its class needs from it)."""
    return optimizers.optimizer_from_state(json.loads(zlib.decompress(blob)), host=host)


def tell_measured(
    optimizer: Optimizer,
    stimuli: Sequence[StimulusRecord],
    scores: Mapping[str, float],
    factor: float = NO_CORRECTION,
) -> None:
    """Tell the optimizer the scores of its measured candidates, each / ``factor`` (the generation's drift factor;
    1: none); references and missing stimuli are not told."""
    told = [s for s in stimuli if s.kind == "evolved" and s.candidate_id is not None and s.stimulus_id in scores]
    optimizer.tell([s.candidate_id for s in told], [scores[s.stimulus_id] / factor for s in told])  # type: ignore[misc]


def _evolved_codes(stimuli: Sequence[StimulusRecord], number: int) -> np.ndarray:
    """The stored evolved codes (λ, d) of generation ``number``."""
    return np.stack([s.code for s in stimuli if s.generation == number and s.kind == "evolved"])


# How far a replayed proposal may be from the stored one, per coordinate. On one machine replay is bit-identical;
# a database moved to another CPU (other BLAS kernels: AVX2 against AVX-512) replays to the last bit or so (4e-16
# measured on the previous version's database file), which is not corruption. A wrong state is off by O(1).
_REPLAY_ATOL = 1e-9


@dataclass(frozen=True)
class Step:
    """The result of telling one generation: the next proposals (None when a stop rule ended the session)."""

    optimizer: Optimizer
    population: Population | None
    snapshot: bytes | None  # a new snapshot to store with the next generation, every ``snapshot_every``

    @property
    def finished(self) -> bool:
        return self.population is None


class OptimizerStepper:
    """Loads, steps and caches the optimizers of many sessions (callers serialize steps of one session)."""

    def __init__(
        self,
        store: Store,
        *,
        snapshot_every: int,
        cache_bytes: int = 64 * 2**20,
        host_for: Callable[[str], Host] | None = None,
    ) -> None:
        self._store = store
        self._host_for = host_for  # generator name -> the host of the optimizers that search it
        self._snapshot_every = snapshot_every
        # session id -> optimizer asked for its open generation, least recently stepped first, bounded by the
        # optimizers' array bytes: a lab's abandoned sessions must not hold memory forever (at d = 4,096 one
        # optimizer holds megabytes). An evicted session's next post replays from its snapshot, as after a restart.
        self._cache: OrderedDict[str, tuple[Optimizer, int]] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._held = 0
        self._guard = threading.Lock()

    # -- start ---------------------------------------------------------------------------------------
    @staticmethod
    def start(optimizer: Optimizer) -> tuple[Population, bytes]:
        """Generation 0's proposals of a new optimizer and the snapshot to store with them."""
        population = optimizer.ask()
        return population, encode_state(optimizer)

    def host(self, generator: str) -> Host:
        """The host of the optimizers that search ``generator``: given to them when they are built and restored."""
        return NO_HOST if self._host_for is None else self._host_for(generator)

    # -- load ----------------------------------------------------------------------------------------
    def load(self, session: SessionRecord, config: SessionConfig) -> Optimizer:
        """The optimizer waiting for the open generation: cached, or a snapshot replayed to it."""
        with self._guard:
            entry = self._cache.get(session.id)
        cached = None if entry is None else entry[0]
        if cached is not None and cached.generation == session.generation and cached.pending:
            return cached
        snapshot = self._store.latest_snapshot(session.id, session.generation)
        if snapshot is None:
            raise StateCorrupt(f"session {session.id} has no optimizer snapshot")
        start, blob = snapshot
        optimizer = decode_state(blob, self.host(config.generator))
        if start < session.generation:
            self._replay(optimizer, session, config, start)
        self.keep(session.id, optimizer)
        return optimizer

    def _replay(self, optimizer: Optimizer, session: SessionRecord, config: SessionConfig, start: int) -> None:
        """Tell and ask from generation ``start`` up to the open one, checking each proposal against the store."""
        stimuli = self._store.get_stimuli(session.id, start, session.generation)
        responses = self._store.get_responses(session.id, start, session.generation - 1)
        scores = {r.stimulus_id: r.score for r in responses if not r.missing and r.score is not None}
        factors = replay_factors(self._store, session, config)
        for number in range(start, session.generation):
            with optimizer_call(optimizer, f"the replay of generation {number}"):
                tell_measured(optimizer, [s for s in stimuli if s.generation == number], scores, factors[number])
                asked = optimizer.ask()
            proposed = project_to_sphere(asked.codes, config.code_norm)
            stored = _evolved_codes(stimuli, number + 1)
            if proposed.shape != stored.shape or not np.allclose(proposed, stored, rtol=0, atol=_REPLAY_ATOL):
                raise StateCorrupt(
                    f"session {session.id}: replaying generation {number} does not reproduce the stored proposals"
                )

    # -- step ----------------------------------------------------------------------------------------
    def step(
        self,
        session: SessionRecord,
        config: SessionConfig,
        stimuli: Sequence[StimulusRecord],
        scores: Mapping[str, float],
        evolved_mean: float,
        factor: float = NO_CORRECTION,
    ) -> Step:
        """Tell the open generation's scores (/ its drift ``factor``), apply the stop rules (``evolved_mean``: as
        told), and ask for the next generation."""
        optimizer = self.load(session, config)
        with optimizer_call(optimizer, f"generation {session.generation}'s scores"):
            tell_measured(optimizer, stimuli, scores, factor)
        if self._finished(session, config, evolved_mean):
            return Step(optimizer, None, None)
        with optimizer_call(optimizer, f"generation {session.generation}'s scores"):
            population = optimizer.ask()
        snapshot = encode_state(optimizer) if (session.generation + 1) % self._snapshot_every == 0 else None
        return Step(optimizer, population, snapshot)

    def _finished(self, session: SessionRecord, config: SessionConfig, evolved_mean: float) -> bool:
        """Stop rules: ``max_generations`` reached, or the mean evolved score on a plateau."""
        if config.max_generations is not None and session.generation + 1 >= config.max_generations:
            return True
        return plateaued(session, config.plateau_generations, evolved_mean)  # a running summary: no read

    # -- cache ---------------------------------------------------------------------------------------
    def keep(self, session_id: str, optimizer: Optimizer | None) -> None:
        """Cache the optimizer after its step was stored (None: drop it, e.g. the session finished).

        The least recently kept optimizers are dropped while the cache holds more than its bound (the one just
        kept stays, even alone above the bound: the next post of its session needs it).
        """
        size = 0 if optimizer is None else array_bytes(optimizer)
        with self._guard:
            self._drop(session_id)
            if optimizer is None:
                return
            self._cache[session_id] = (optimizer, size)
            self._held += size
            while self._held > self._cache_bytes and len(self._cache) > 1:
                self._drop(next(iter(self._cache)))

    def _drop(self, session_id: str) -> None:
        entry = self._cache.pop(session_id, None)
        if entry is not None:
            self._held -= entry[1]

    def forget(self, session_id: str | None = None) -> None:
        """Drop one session's cached optimizer (it may be ahead of the store), or all of them."""
        with self._guard:
            if session_id is None:
                self._cache.clear()
                self._held = 0
            else:
                self._drop(session_id)

    @property
    def cached(self) -> tuple[int, int]:
        """How many optimizers the cache holds, and their array bytes."""
        with self._guard:
            return len(self._cache), self._held


def array_bytes(value: object, _depth: int = 0) -> int:
    """The bytes of the numpy arrays an optimizer holds (its attributes, their attributes, lists and dicts)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if _depth > 4 or isinstance(value, str | bytes | int | float | np.random.Generator):
        return 0
    if isinstance(value, dict):
        return sum(array_bytes(item, _depth + 1) for item in value.values())
    if isinstance(value, list | tuple):
        return sum(array_bytes(item, _depth + 1) for item in value)
    fields = getattr(value, "__dict__", None)
    return 0 if fields is None else array_bytes(fields, _depth + 1)
