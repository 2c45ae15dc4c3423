"""The stimuli this process stored lately, so that fetching their images needs no database read.

A stored stimulus never changes and is never deleted, and neither do its session's owner and generator, so what a
post or a creation stored is what a read would find. Bounded in bytes of codes (an fc6 code is 32 kB, a
dcgan-faces one 800 B); a stimulus not here (evicted, or stored by another server process) is read from the store.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from evostim.optimizers.base import FloatArray
from evostim.server.storage.store import StimulusRecord

__all__ = ["Shown", "ShownStimuli"]


@dataclass(frozen=True)
class Shown:
    """What an image fetch needs of a stored stimulus: who may see it, and what to render."""

    owner: str
    generator: str
    code: FloatArray


class ShownStimuli:
    """A thread-safe LRU of (session id, stimulus id) -> :class:`Shown`, bounded in bytes of codes."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], Shown] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def add(self, session_id: str, owner: str, generator: str, stimuli: Sequence[StimulusRecord]) -> None:
        """Stimuli just committed to the store."""
        with self._lock:
            for stimulus in stimuli:
                old = self._items.pop((session_id, stimulus.stimulus_id), None)
                self._bytes += stimulus.code.nbytes - (0 if old is None else old.code.nbytes)
                self._items[(session_id, stimulus.stimulus_id)] = Shown(owner, generator, stimulus.code)
            while self._bytes > self._max_bytes and self._items:
                self._bytes -= self._items.popitem(last=False)[1].code.nbytes

    def get(self, session_id: str, stimulus_id: str) -> Shown | None:
        with self._lock:
            return self._items.get((session_id, stimulus_id))
