"""The generator's metric at a code computed ahead of the asking: off the post's path, while the rig shows a generation.

metric-cma with ``refresh_lead`` says generations early where its next refresh takes the metric (the host's
``metric_ahead(code, window)``); :class:`MetricsAhead` then computes it in a background thread, and the refresh's
``metric_at(code, window)`` takes the result (waiting for it if it is being computed, computing it at once if it was
never started or its hint was evicted). The answer is the same function of (code, window) either way, so a session
replayed after a crash proposes the same codes bit for bit: only when the metric is computed changes.

The background thread runs torch on one thread of its own (``torch.set_num_threads`` is per thread): on a busy
server, intra-op threads of several requests at once contend for the cores, and a single-threaded Jacobian is the
faster there (the metric's numbers do not depend on the thread count: tests/test_metric_ahead.py). torch's
forward-mode AD levels are global to the process (``torch.autograd.forward_ad``'s level and functorch's), so the
metric is still computed one at a time (``generators/metric.py``'s lock); its reverse-mode alternatives (jacrev: one
VJP per pixel; a VJP of a VJP per tangent) cost 10x or more.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from numpy.typing import NDArray

from evostim.optimizers import MetricAt

__all__ = ["MetricsAhead"]

FloatArray = NDArray[np.float64]
_Key = tuple[bytes, float | None]

DEFAULT_KEPT_BYTES = 32 * 2**20  # results computed ahead and not asked for yet (a session abandoned mid-way)


_WARM_UP_GUARD = threading.Lock()
_warmed_up = False  # torch's first forward-mode pass is paid once per process, whichever thread or network pays it


def _single_threaded() -> None:
    torch.set_num_threads(1)


class MetricsAhead:
    """Metrics at codes computed in the background before they are asked for; at most ``kept_bytes`` kept."""

    def __init__(self, metric_at: MetricAt, dim: int, *, kept_bytes: int = DEFAULT_KEPT_BYTES) -> None:
        self._metric_at = metric_at
        self._kept = max(4, kept_bytes // (dim * dim * 8))  # each result is a (d, d) float64 matrix
        self._futures: OrderedDict[_Key, Future[FloatArray]] = OrderedDict()
        self._guard = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    @staticmethod
    def _key(code: FloatArray, window: float | None) -> _Key:
        return np.ascontiguousarray(code, dtype=np.float64).tobytes(), window

    def ahead(self, code: FloatArray, window: float | None) -> None:
        """Start computing the metric at ``code`` in the background (once: a hint given twice starts one)."""
        key, frozen = self._key(code, window), np.array(code, dtype=np.float64)
        with self._guard:
            if key in self._futures:
                return
            self._futures[key] = self._submit(frozen, window)
            while len(self._futures) > self._kept:
                _, evicted = self._futures.popitem(last=False)
                evicted.cancel()

    def warm_up(self, code: FloatArray) -> None:
        """Once per process, compute one metric in the background and drop it: a process's first costs about 6x the
        next ones (torch's first forward-mode pass: 1.4 s against 0.22 s on 2 cores), which a server then pays before
        its sessions' first hints queue behind it (benchmarks/load.py's first round), not while they wait."""
        global _warmed_up
        with self._guard, _WARM_UP_GUARD:
            if not _warmed_up:
                _warmed_up = True
                self._submit(np.array(code, dtype=np.float64), None)

    def _submit(self, code: FloatArray, window: float | None) -> Future[FloatArray]:
        """Queue ``metric_at(code, window)`` on the one background thread (made at the first call); under _guard."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, "metric-ahead", initializer=_single_threaded)
        return self._executor.submit(self._metric_at, code, window)

    def at(self, code: FloatArray, window: float | None) -> FloatArray:
        """The metric at ``code``: computed ahead (waited for while it is being computed), or computed now."""
        with self._guard:
            future = self._futures.pop(self._key(code, window), None)
        if future is not None and not future.cancel():  # running or done: its answer
            return future.result()
        return self._metric_at(code, window)

    @property
    def pending(self) -> int:
        """How many results are being computed or wait to be asked for."""
        with self._guard:
            return len(self._futures)
