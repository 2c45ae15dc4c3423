"""Liveness (/healthz), readiness (/readyz) and metrics (/metrics) for an orchestrator and a Prometheus scraper.

``/healthz`` answers as long as the process serves HTTP (a restart policy acts on it). ``/readyz`` says whether it
can serve sessions: the database answers, and each generator of ``EVOSTIM_READY_GENERATORS`` loads (once per
process; later checks find it loaded). Not ready is a 503 problem whose ``checks`` name what failed. None of the
three needs a token: they tell nothing about sessions.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from evostim.server.api.problems import PROBLEM_JSON
from evostim.server.ops.observability import CONTENT_TYPE_LATEST, RUNNING_SESSIONS, metrics_text
from evostim.server.sessions.errors import NotReady

router = APIRouter(tags=["health"])
log = logging.getLogger("evostim")

_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "not ready (problem details, RFC 9457; `checks` says why)", "content": {PROBLEM_JSON: {}}}
}


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive and serving HTTP."""
    return {"status": "ok"}


def _checks(request: Request) -> dict[str, str]:
    """Each readiness check's outcome: "ok" or why not."""
    app = request.app
    checks: dict[str, str] = {}
    try:
        app.state.store.ping()
        checks["database"] = "ok"
    except Exception as error:  # any driver error means: not reachable now
        checks["database"] = f"unreachable: {type(error).__name__}: {error}"
    settings = app.state.settings
    for name in settings.ready_generators:
        try:
            app.state.load_generator(name, settings.device, settings.weights_dir)
            checks[f"generator:{name}"] = "ok"
        except Exception as error:  # a missing weights file or package, a bad device: the error says which
            checks[f"generator:{name}"] = f"{type(error).__name__}: {error}"
    return checks


@router.get("/readyz", responses=_NOT_READY)
async def readyz(request: Request) -> dict[str, Any]:
    """Ready to serve sessions: the database answers and the configured generators load."""
    checks = await run_in_threadpool(_checks, request)
    failed = {name: outcome for name, outcome in checks.items() if outcome != "ok"}
    if failed:
        log.warning("not ready: %s", "; ".join(f"{k}: {v}" for k, v in failed.items()), extra={"checks": checks})
        raise NotReady("not ready: " + "; ".join(f"{k} {v}" for k, v in failed.items()), checks=checks)
    return {"status": "ready", "checks": checks}


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(request: Request) -> Response:
    """Prometheus text exposition: generations served, post latency, decode time, sessions, cache sizes."""
    service = request.app.state.service

    def refresh() -> bytes:
        try:
            RUNNING_SESSIONS.set(request.app.state.store.count_sessions("running"))
        except Exception as error:  # a scrape must not fail because the database is away: /readyz says so
            log.warning("metrics: could not count sessions: %s", error)
        service.update_cache_metrics()
        return metrics_text()

    return Response(await run_in_threadpool(refresh), media_type=CONTENT_TYPE_LATEST)
