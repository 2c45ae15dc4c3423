"""What one post of responses costs the server in structure: store round trips and the product modules it crosses.

Posts responses to a session whose optimizer is cached (the everyday case: the rig's previous post stepped it), through
the in-process API (route, service, store on a real SQLite file), in four cases: with and without a plateau stop rule
(the rule is in force: the session is past ``plateau_generations``), with and without an ``Idempotency-Key``. Prints,
per case, the store's round trips (connection checkouts from the pool, transactions begun, SQL statements sent) and
the evostim modules whose functions ran during the post: the *main path* (modules on the call chain whenever a method
of ``Store`` is entered: route -> service -> ... -> store) and *with helpers* (every evostim module that ran code).
Reference: issue #32 asks for at most 3 round trips per cached post and at most 5 modules on the main path.

Run it from any checkout: ``python benchmarks/post_path.py`` (its own tree is imported first).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fastapi.testclient import TestClient
from sqlalchemy import event

from evostim.server.app import create_app
from evostim.server.config import Settings

ROUND_TRIP_TARGET = 3
MAIN_PATH_TARGET = 5


@dataclass
class Trace:
    """What ran while ``active``: every evostim module, and the chains that reached a Store method."""

    active: bool = False
    modules: set[str] = field(default_factory=set)
    main_path: set[str] = field(default_factory=set)

    def clear(self) -> None:
        self.modules, self.main_path = set(), set()

    def profile(self, frame: FrameType, what: str, _arg: Any) -> None:
        if not self.active or what != "call":
            return
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("evostim."):
            return
        self.modules.add(module)
        if frame.f_code.co_qualname.startswith("Store."):
            caller: FrameType | None = frame
            while caller is not None:
                name = caller.f_globals.get("__name__", "")
                if name.startswith("evostim."):
                    self.main_path.add(name)
                caller = caller.f_back


@dataclass
class Counts:
    checkouts: int = 0
    transactions: int = 0
    statements: int = 0


def counting(engine: Any) -> tuple[Counts, Any]:
    counts = Counts()
    live = {"on": False}

    def checkout(*_: Any) -> None:
        counts.checkouts += live["on"]

    def begin(*_: Any) -> None:
        counts.transactions += live["on"]

    def statement(*_: Any) -> None:
        counts.statements += live["on"]

    event.listen(engine.pool, "checkout", checkout)
    event.listen(engine, "begin", begin)
    event.listen(engine, "before_cursor_execute", statement)
    return counts, live


def body(manifest: dict[str, Any], level: float) -> dict[str, Any]:
    """Counts that rise with every generation: the plateau rule is checked and never fires."""
    return {"responses": [{"stimulus": s["id"], "counts": {"ch0": [level, level + 1]}} for s in manifest["stimuli"]]}


@contextmanager
def traced(trace: Trace) -> Iterator[None]:
    threading.setprofile(trace.profile)  # the route runs in a worker thread of the test client
    sys.setprofile(trace.profile)
    try:
        yield
    finally:
        sys.setprofile(None)
        threading.setprofile(None)


def measure(
    api: TestClient, counts: Counts, live: dict[str, bool], trace: Trace, *, plateau: bool, keyed: bool
) -> Counts:
    config: dict[str, Any] = {"seed": 1, "population_size": 8, "references": {"builtin": 2}}
    if plateau:
        config["plateau_generations"] = 2
    manifest = api.post("/v1/sessions", json=config).json()["generation"]
    for number in range(4):  # past the plateau's patience; each post leaves the stepped optimizer cached
        headers = {"Idempotency-Key": f"warm-{number}"} if keyed else {}
        manifest = api.post(manifest["responses_url"], json=body(manifest, 10.0 * number), headers=headers).json()
        manifest = manifest["next"]
    headers = {"Idempotency-Key": "measured"} if keyed else {}
    before = Counts(counts.checkouts, counts.transactions, counts.statements)
    live["on"] = trace.active = True
    response = api.post(manifest["responses_url"], json=body(manifest, 100.0), headers=headers)
    live["on"] = trace.active = False
    if response.status_code != 200 or response.json()["next"] is None:
        raise RuntimeError(f"the measured post was not a plain step: {response.status_code} {response.text[:300]}")
    return Counts(
        counts.checkouts - before.checkouts,
        counts.transactions - before.transactions,
        counts.statements - before.statements,
    )


def short(module: str) -> str:
    return module.removeprefix("evostim.")


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    trace = Trace()
    rows = []
    modules: set[str] = set()
    with (
        tempfile.TemporaryDirectory() as data,
        traced(trace),
        TestClient(create_app(Settings(data_dir=Path(data)))) as api,
    ):
        engine = api.app.state.store._engine  # type: ignore[attr-defined]
        counts, live = counting(engine)
        for plateau in (False, True):
            for keyed in (False, True):
                trace.clear()
                got = measure(api, counts, live, trace, plateau=plateau, keyed=keyed)
                rows.append((plateau, keyed, got, sorted(trace.main_path)))
                modules |= trace.modules
    import evostim

    print(f"evostim from {Path(evostim.__file__).resolve().parent.parent}")
    print(f"one post to a session with a cached optimizer (SQLite); target <= {ROUND_TRIP_TARGET} round trips")
    header = f"{'plateau rule':14}{'Idempotency-Key':17}{'checkouts':>10}{'transactions':>14}{'statements':>12}"
    print(header + "  main path modules")
    main_path: set[str] = set()
    for plateau, keyed, got, chain in rows:
        label, key = ("yes" if plateau else "no"), ("yes" if keyed else "no")
        print(f"{label:14}{key:17}{got.checkouts:>10}{got.transactions:>14}{got.statements:>12}  {len(chain)}")
        main_path |= set(chain)
    helpers = sorted(modules - main_path)
    server = [m for m in modules if m.startswith("evostim.server.")]
    print(f"main path (route -> ... -> Store), any case: {len(main_path)} modules (target <= {MAIN_PATH_TARGET})")
    print("  " + ", ".join(map(short, sorted(main_path))))
    print(f"with helpers: {len(modules)} evostim modules ran code, {len(server)} of them in server/")
    print("  helpers: " + ", ".join(map(short, helpers)))


if __name__ == "__main__":
    main()
