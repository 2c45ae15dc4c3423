"""``evostim serve`` runs the HTTP server; ``evostim token`` makes a bearer token for it."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import secrets
import shutil
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evostim.cli._common import redacted, setting_error, version

if TYPE_CHECKING:
    from evostim.cli._common import Commands
    from evostim.server.config import Settings

__all__ = ["add_commands", "is_loopback"]


def add_commands(commands: Commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the HTTP server (settings from EVOSTIM_* variables)",
        description="Run the HTTP server: the API under /v1, the dashboard at /, /healthz, /readyz, /metrics.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="address to listen on (default: EVOSTIM_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: EVOSTIM_PORT or 8000)")
    serve.add_argument("--data-dir", help="folder of the SQLite file (default: EVOSTIM_DATA_DIR or ./data)")
    serve.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error", "critical"],
        help="default: EVOSTIM_LOG_LEVEL or info (JSON lines on stderr)",
    )
    serve.add_argument("--workers", type=int, help="server processes on one database (default: EVOSTIM_WORKERS or 1)")
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="listen beyond loopback without EVOSTIM_TOKENS (anyone who reaches the port drives sessions)",
    )
    serve.set_defaults(run=serve_command)

    token = commands.add_parser(
        "token",
        help="make a random bearer token and print it with its digest",
        description="Make a random bearer token. The rig keeps the token (EVOSTIM_TOKEN); the server needs only its "
        "digest (EVOSTIM_TOKENS or EVOSTIM_READ_TOKENS), so its configuration holds no secret.",
    )
    token.set_defaults(run=token_command)


def settings_help() -> str:
    """The server's settings as ``serve --help`` lists them: every field of :class:`Settings` (the only source of
    settings), with its variable, its description and its default."""
    from evostim.server.config import Settings

    width = max(shutil.get_terminal_size().columns - 2, 60)  # as argparse wraps the options
    variables = {f"EVOSTIM_{name.upper()}": field for name, field in Settings.model_fields.items()}
    column = max(len(variable) for variable in variables) + 4
    lines = textwrap.wrap(
        "settings: EVOSTIM_* environment variables, or a .env file in the working directory (an option above wins "
        "over its variable):",
        width=width,
    )
    for variable, field in variables.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, list):
            default = ",".join(default) or "none"
        shown = "" if default is None else f" (default: {default})"
        lines += textwrap.wrap(
            f"{field.description or ''}{shown}",
            width=width,
            initial_indent=f"  {variable:<{column - 2}}",
            subsequent_indent=" " * column,
        )
    return "\n".join(lines)


def serve_command(args: argparse.Namespace) -> None:
    from evostim.cli._listen import answering, check_port
    from evostim.server.ops.connections import PROTOCOL, configure_connections
    from evostim.server.ops.observability import configure_logging, limit_malloc_arenas, map_large_allocations

    if args.workers is not None and args.workers < 1:
        raise SystemExit("evostim serve: --workers must be 1 or more")
    settings = _serve_settings(args)
    args.host = args.host or settings.host
    args.port = settings.port if args.port is None else args.port
    args.workers = args.workers or settings.workers
    configure_logging(settings.log_level)
    limit_malloc_arenas(settings.malloc_arenas)  # before the server starts its threads
    map_large_allocations(settings.malloc_mmap_threshold_kb)
    _refuse_open_without_tokens(args.host, settings.tokens, insecure=args.insecure_no_auth)
    check_port(args.host, args.port)  # a port another server holds: one line now, not a bind error after loading
    # the open-files limit raised to its hard limit (worker processes inherit it), the connection cap fitted to it
    limits = configure_connections(settings)
    settings = _fit_database_connections(settings, args.workers)
    _log_start(args, settings, limits=asdict(limits))
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_config": None,  # configure_logging's JSON lines, not uvicorn's text
        "access_log": False,  # AccessLog writes the access lines
        "timeout_graceful_shutdown": 10,
        # Longer than clients keep an idle connection (httpx: 5 s), so the server never closes one just as a
        # rig sends its next request on it (seen under load as "server disconnected without a response").
        "timeout_keep_alive": 75,
        # uvicorn's h11 protocol with deadlines on receiving a request's headers and body, and a connection cap
        # (server/ops/connections.py): slow and idle clients cannot hold the server's connections and descriptors
        "http": PROTOCOL,
    }
    with answering(args.host, args.port, args.workers):  # "serving on" once it answers, not when uvicorn binds
        _run(settings, args, options)


def _run(settings: Settings, args: argparse.Namespace, options: dict[str, Any]) -> None:
    import uvicorn

    if args.workers == 1:
        from evostim.server.app import create_app

        uvicorn.run(create_app(settings), **options)
        return
    _prepare_workers(settings, args)
    uvicorn.run("evostim.server.app:create_worker_app", factory=True, workers=args.workers, **options)


def _fit_database_connections(settings: Settings, workers: int) -> Settings:
    """On Postgres, each process's pool cut to what the database allows (the workers read it from the environment);
    a start that would leave a process fewer than MIN_CONNECTIONS is refused with one line."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from evostim.server.storage.fit import MIN_CONNECTIONS, connection_budget

    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        return settings
    try:
        budget = connection_budget(url)
    except SQLAlchemyError as error:
        reason = error.orig if isinstance(error, DBAPIError) else error
        raise SystemExit(
            f"evostim serve: refusing to start: the database {redacted(url)} does not answer: {reason}"
        ) from None
    per_process = budget.per_process(workers, settings.database_connections)
    where = (
        f"Postgres allows {budget.max_connections} connections (max_connections), {budget.reserved} kept for "
        f"superusers, {budget.open} open now"
    )
    if per_process < MIN_CONNECTIONS:
        raise SystemExit(
            f"evostim serve: refusing to start: {where}, which leaves {budget.free} for {workers} server processes, "
            f"fewer than {MIN_CONNECTIONS} each: run fewer --workers or raise max_connections"
        )
    if per_process < settings.database_connections:
        logging.getLogger("evostim").warning(
            "%s: each of %d server processes holds at most %d (EVOSTIM_DATABASE_CONNECTIONS; requests beyond wait "
            "for one); raise max_connections for %d each",
            where,
            workers,
            per_process,
            settings.database_connections,
        )
        os.environ["EVOSTIM_DATABASE_CONNECTIONS"] = str(per_process)  # the worker processes' settings
        return settings.model_copy(update={"database_connections": per_process})
    return settings


def _log_start(args: argparse.Namespace, settings: Settings, *, limits: dict[str, Any]) -> None:
    logging.getLogger("evostim").info(
        "evostim %s starting on http://%s:%d",
        version(),
        args.host,
        args.port,
        extra={
            "address": f"http://{args.host}:{args.port}",
            "version": version(),
            "workers": args.workers,
            "environment": settings.environment,
            "database": redacted(settings.resolved_database_url),
            "tokens": len(settings.tokens),
            "read_tokens": len(settings.read_tokens),
            "auth": "bearer tokens" if settings.tokens or settings.read_tokens else "none (anyone may drive sessions)",
            "connections": limits,
        },
    )


def _serve_settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment and the command line; an unsafe or invalid setting is one line, not a trace."""
    import pydantic

    from evostim.server.config import Settings

    if args.data_dir:
        os.environ["EVOSTIM_DATA_DIR"] = args.data_dir  # the environment carries it to worker processes too
    if args.log_level:
        os.environ["EVOSTIM_LOG_LEVEL"] = args.log_level
    try:
        return Settings()
    except pydantic.ValidationError as error:
        reasons = "; ".join(setting_error(e) for e in error.errors())
        raise SystemExit(f"evostim serve: refusing to start: {reasons}") from None


_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (a loopback address, or localhost)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() in _LOOPBACK_NAMES


def _refuse_open_without_tokens(host: str, tokens: list[str], *, insecure: bool) -> None:
    """Listening beyond this machine without tokens lets anyone on the network drive sessions: refuse it."""
    if tokens or insecure or is_loopback(host):
        return
    raise SystemExit(
        f"evostim serve: refusing to listen on {host} without bearer tokens: anyone who reaches it could drive "
        "sessions. Set EVOSTIM_TOKENS (one long random token per rig; `evostim token` makes one), or pass "
        "--insecure-no-auth on a network you trust."
    )


def _prepare_workers(settings: Settings, args: argparse.Namespace) -> None:
    """Before uvicorn starts N worker processes: tables made once here, metrics shared through a folder.

    Several processes on one database are safe: a post closes its generation with a conditional update that
    only one writer wins (SQLite serializes writers on the file, Postgres on the row), the loser's cached
    optimizer is dropped, and a worker's cached optimizer is used only when it waits for the very generation the
    database has open. The SQLite file must be on a local disk (file locks over NFS are not reliable); for many
    rigs use Postgres, which lets writers of different sessions proceed at once.
    """
    import tempfile

    from evostim.server.storage.store import Store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    Store(settings.resolved_database_url).close()  # create or upgrade the tables before the workers race to
    if settings.resolved_database_url.startswith("sqlite"):
        logging.getLogger("evostim").warning(
            "%d workers on one SQLite file: writes take turns on the file lock; keep it on a local disk, and use "
            "Postgres (EVOSTIM_DATABASE_URL, the postgres extra) when many rigs post at once",
            args.workers,
        )
    metrics_dir = Path(tempfile.mkdtemp(prefix="evostim-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # each worker writes its metrics there


def token_command(args: argparse.Namespace) -> None:
    from evostim.server.config import token_digest

    token = secrets.token_urlsafe(32)
    print(f"token (give it to the rig, e.g. as EVOSTIM_TOKEN): {token}")
    print(f"digest (put it in the server's EVOSTIM_TOKENS or EVOSTIM_READ_TOKENS): {token_digest(token)}")
