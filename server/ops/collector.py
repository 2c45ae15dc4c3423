"""Python's cyclic garbage collector kept off the long-lived objects: the imported modules and loaded generators.

A served process holds some 440,000 objects once started (torch, SQLAlchemy, pydantic, FastAPI and the rest),
almost all alive until it exits, and each full collection scanned every one of them with the GIL held: 200-450 ms
in which no request moved, about 15 times in a round of ``benchmarks/load.py`` (50 sessions on 2 cores). Frozen
(``gc.freeze``), they are left out of every collection (a full one, idle: 0 ms; under that load 23-70 ms, and
more often, since the threshold for a full one counts only the objects not frozen); objects made later are
collected as before. Freezing again after a generator loads takes its modules out too. Leaving unfreezes, so that
what the server held can be collected once it stops (tests run many servers in one process).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["freeze_long_lived", "long_lived_frozen"]


def freeze_long_lived() -> None:
    """Everything tracked now out of the collector's scans. No collection first: it would take 250-400 ms at every
    start (the test suite starts hundreds of servers), and the little garbage frozen with the rest is handed back
    at stop."""
    gc.freeze()


@contextlib.contextmanager
def long_lived_frozen() -> Iterator[None]:
    """Inside, what was tracked on entry is frozen; on leaving, it is handed back to the collector."""
    freeze_long_lived()
    try:
        yield
    finally:
        gc.unfreeze()
