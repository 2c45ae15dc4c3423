"""Logs the garbage collector's full collections (and any other over 20 ms) of an evostim process, one line each:
put this folder on PYTHONPATH for a `benchmarks/load.py` run (README.md beside it)."""

import gc
import os
import sys
import threading
import time
from typing import Any

if any("evostim" in argument for argument in sys.argv):
    os.makedirs("/tmp/gcprobe", exist_ok=True)
    _started: dict[int, float] = {}
    _log = open(f"/tmp/gcprobe/gc_{os.getpid()}.txt", "a", buffering=1)  # noqa: SIM115  # open while the process runs

    def _timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _started[threading.get_ident()] = time.perf_counter()
            return
        seconds = time.perf_counter() - _started.pop(threading.get_ident(), time.perf_counter())
        if info["generation"] == 2 or seconds > 0.02:
            line = f"{time.time():.3f} gen{info['generation']} {seconds * 1000:.1f} ms collected {info['collected']}"
            _log.write(line + "\n")

    gc.callbacks.append(_timed)
