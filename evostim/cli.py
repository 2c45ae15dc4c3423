"""The ``evostim`` command: ``serve`` runs the server, ``demo`` runs an in-silico closed-loop evolution,
``metric`` computes a generator's metric eigenbasis for the ``subspace`` optimizer, ``rig`` bridges a rig
that exchanges files instead of HTTP, ``export`` downloads a whole session as npz, Parquet or NWB, ``db upgrade``
creates or migrates the database."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import secrets
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evostim.extras import MissingExtra, require

if TYPE_CHECKING:
    from evostim.server.config import Settings

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from evostim.server.ops.observability import configure_logging, limit_malloc_arenas

    if args.workers < 1:
        raise SystemExit("evostim serve: --workers must be 1 or more")
    settings = _serve_settings(args)
    configure_logging(settings.log_level)
    limit_malloc_arenas(settings.malloc_arenas)  # before the server starts its threads
    _refuse_open_without_tokens(args.host, settings.tokens, insecure=args.insecure_no_auth)
    log = logging.getLogger("evostim")
    log.info(
        "evostim %s serving on http://%s:%d",
        _version(),
        args.host,
        args.port,
        extra={
            "address": f"http://{args.host}:{args.port}",
            "version": _version(),
            "workers": args.workers,
            "environment": settings.environment,
            "database": _redacted(settings.resolved_database_url),
            "tokens": len(settings.tokens),
            "read_tokens": len(settings.read_tokens),
            "auth": "bearer tokens" if settings.tokens or settings.read_tokens else "none (anyone may drive sessions)",
        },
    )
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_config": None,  # configure_logging's JSON lines, not uvicorn's text
        "access_log": False,  # AccessLog writes the access lines
        "timeout_graceful_shutdown": 10,
        # Longer than clients keep an idle connection (httpx: 5 s), so the server never closes one just as a
        # rig sends its next request on it (seen under load as "server disconnected without a response").
        "timeout_keep_alive": 75,
    }
    if args.workers == 1:
        from evostim.server.app import create_app

        uvicorn.run(create_app(settings), **options)
        return
    _prepare_workers(settings, args)
    uvicorn.run("evostim.server.app:create_worker_app", factory=True, workers=args.workers, **options)


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
        reasons = "; ".join(_setting_error(e) for e in error.errors())
        raise SystemExit(f"evostim serve: refusing to start: {reasons}") from None


def _setting_error(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"EVOSTIM_{where.upper()}: {message}" if where else message


_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() in _LOOPBACK_NAMES


def _refuse_open_without_tokens(host: str, tokens: list[str], *, insecure: bool) -> None:
    """Listening beyond this machine without tokens lets anyone on the network drive sessions: refuse it."""
    if tokens or insecure or _is_loopback(host):
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


def _redacted(url: str) -> str:
    """A database URL without its password, for the log."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _version() -> str:
    try:
        return metadata.version("evostim")
    except metadata.PackageNotFoundError:
        return "unknown"


def _token(args: argparse.Namespace) -> None:
    from evostim.server.config import token_digest

    token = secrets.token_urlsafe(32)
    print(f"token (give it to the rig, e.g. as EVOSTIM_TOKEN): {token}")
    print(f"digest (put it in the server's EVOSTIM_TOKENS or EVOSTIM_READ_TOKENS): {token_digest(token)}")


def _demo(args: argparse.Namespace) -> None:
    from evostim.clients.simulation.demo import run_demo
    from evostim.clients.simulation.neurons import UnitSpec
    from evostim.generators import GeneratorError

    try:
        UnitSpec.parse(args.unit)  # before anything loads
    except ValueError as error:
        raise SystemExit(f"evostim demo: --unit: {error}") from None
    try:
        run_demo(
            out_dir=Path(args.out),
            unit=args.unit,
            generations=args.generations,
            seed=args.seed,
            repetitions=args.repetitions,
            code_norm=None if args.unconstrained else "auto",
            optimizer=args.optimizer,
        )
    except (GeneratorError, FileNotFoundError) as error:  # a weights package (dcgan-faces', MTCNN's) is missing:
        raise SystemExit(f"evostim demo: {error}") from None  # the message says what to install


def _metric(args: argparse.Namespace) -> None:
    require("scipy", extra="metric", feature="the metric eigenbasis")  # before loading anything
    from evostim.generators import GeneratorError, generator_spec
    from evostim.generators.metric import prior_metric, spectrum_coverage

    try:
        spec = generator_spec(args.generator)
        result = prior_metric(
            spec.name,
            samples=args.samples,
            top=args.top,
            seed=args.seed,
            device=args.device,
            weights_dir=Path(args.weights_dir),
            window=args.window,
        )
    except (GeneratorError, ValueError) as error:
        raise SystemExit(f"evostim metric: {error}") from None
    out = Path(args.out or Path(args.weights_dir) / f"{spec.name}.metric.npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    result.save(out)
    held = result.eigenvalues.sum() / result.trace
    ninety, ninety_nine = spectrum_coverage(result.eigenvalues, result.trace)
    print(f"{spec.name}: metric over {args.samples} codes; top {args.top} of {spec.latent_dim} directions hold "
          f"{held:.1%} of the trace; 90% in {ninety}, 99% in {ninety_nine} directions "
          f"(more than {args.top} means: not within the top {args.top})")  # fmt: skip
    print(f'eigenbasis saved to {out} (subspace optimizer: "basis": "{out.stem}")')


def _rig(args: argparse.Namespace) -> None:
    from evostim.clients.http.client import Client
    from evostim.clients.rig.bridge import RigBridge

    logging.basicConfig(level=logging.INFO, format="%(asctime)s evostim rig: %(message)s")
    for name in ("httpx", "httpcore"):  # a line per request would bury the bridge's own; their warnings stay
        logging.getLogger(name).setLevel(logging.WARNING)
    with Client(args.server, token=args.token or os.environ.get("EVOSTIM_TOKEN")) as client:
        print(f"bridging session {args.session} through {args.watch} (Ctrl-C to stop)", flush=True)
        bridge = RigBridge(client, args.session, Path(args.watch), server_poll_seconds=args.server_poll)
        try:
            bridge.run(poll_seconds=args.poll, max_backoff=args.max_backoff)
        except KeyboardInterrupt:
            raise SystemExit("evostim rig: stopped") from None
        print("the session finished")


_DEFAULT_URL = "http://127.0.0.1:8000"
_URL_HELP = f"the server's address (default: EVOSTIM_URL or {_DEFAULT_URL})"


def _server_url() -> str:
    return os.environ.get("EVOSTIM_URL", _DEFAULT_URL)


def _export(args: argparse.Namespace) -> None:
    import httpx

    from evostim.clients.http.client import Client
    from evostim.clients.http.errors import EvostimError

    out = Path(args.out or f"{args.session}.{args.format}")
    try:
        with Client(args.url, token=args.token or os.environ.get("EVOSTIM_TOKEN"), timeout=300.0) as client:
            client.export(args.session, args.format, out)
    except EvostimError as error:  # the server's problem detail, e.g. the extra it needs
        raise SystemExit(f"evostim export: {error}") from None
    except httpx.TransportError as error:  # nothing listens there, or the connection broke (after the retries)
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise SystemExit(
            f"evostim export: no server answers at {args.url} ({reason}); start it, or give its address with --url "
            "or EVOSTIM_URL"
        ) from None
    print(f"{out} ({out.stat().st_size:,} bytes)")


def _add_export(commands: Any) -> None:
    export = commands.add_parser("export", help="download a whole session as npz, parquet or nwb")
    export.add_argument("session", help="the session id")
    export.add_argument("--format", choices=["npz", "parquet", "nwb"], default="npz")
    export.add_argument("--url", default=_server_url(), help=_URL_HELP)
    export.add_argument("--token", help="bearer token (default: EVOSTIM_TOKEN)")
    export.add_argument("--out", help="file to write (default: SESSION.FORMAT)")
    export.set_defaults(run=_export)


def _db_upgrade(args: argparse.Namespace) -> None:
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from evostim.server.storage.migrations import SchemaMismatch, head
    from evostim.server.storage.store import Store

    url = args.url or _db_settings().resolved_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        store = Store(url)  # creates, adopts or upgrades: the same path as the server's start
    except (SchemaMismatch, SQLAlchemyError, CommandError) as error:  # e.g. a revision newer than this version
        raise SystemExit(f"evostim db upgrade: {_redacted(url)}: {error}") from None
    revision = store.schema_revision()
    store.close()
    print(f"{_redacted(url)}: at revision {revision}{' (head)' if revision == head() else ''}")


def _db_settings() -> Settings:
    import pydantic

    from evostim.server.config import Settings

    try:
        return Settings()
    except pydantic.ValidationError as error:
        raise SystemExit(f"evostim db: {'; '.join(_setting_error(e) for e in error.errors())}") from None


def _sweep(args: argparse.Namespace) -> None:
    from evostim.clients.sweeps.sweep import SweepConfig, config_with, run_sweep, summarize

    try:
        config = SweepConfig.from_file(Path(args.config)) if args.config else SweepConfig()
        config = config_with(
            config,
            units=_listed(args.units),
            optimizers=_listed(args.optimizers),
            seeds=args.seeds,
            noise=_listed(args.noise),
            generations=[int(g) for g in _listed(args.generations) or []],
            precision=args.precision,
        )
    except (OSError, ValueError) as error:
        raise SystemExit(f"evostim sweep: {error}") from None
    out = Path(args.out)
    if not args.summary_only:
        runs = len(config.specs())
        print(f"sweep: {runs} runs ({len(config.units)} units x {len(config.optimizers)} optimizers x "
              f"{len(config.seeds)} seeds x {len(config.noise)} noise levels x {len(config.generations)} budgets) "
              f"into {out}", flush=True)  # fmt: skip
        try:
            ran = run_sweep(config, out, address=args.address, workers=args.workers)
        except ValueError as error:  # a folder of another problem, or a precision this machine would crawl at
            raise SystemExit(f"evostim sweep: {error}") from None
        print(f"ran {ran} runs ({runs - ran} were already in {out})")
    summarize(out, baseline=args.baseline)
    print(f"results in {out}/ (runs/ and generations/ as Parquet, summary.csv, curves_*.png)")


def _listed(value: str | None) -> list[str] | None:
    return [item for item in value.split(",") if item] if value else None


def _add_sweep(commands: Any) -> None:
    sweep = commands.add_parser("sweep", help="in-silico runs: units x optimizers x seeds x noise x budgets, on Ray")
    sweep.add_argument("config", nargs="?", help="a YAML or TOML file of the grid (default: the 24-unit panel)")
    sweep.add_argument("--out", default="out/sweep", help="results folder; a sweep run again into it resumes")
    sweep.add_argument("--address", help="a Ray cluster's address (default: a local Ray on every core)")
    sweep.add_argument("--workers", type=int, help="Ray workers, one CPU each (0: in this process, no Ray)")
    sweep.add_argument("--units", help="comma-separated units, e.g. onet.conv3.9,rnet.dense4.3")
    sweep.add_argument("--optimizers", help="comma-separated optimizer names")
    sweep.add_argument("--seeds", type=int, help="seeds per run: 0..N-1")
    sweep.add_argument("--noise", help="comma-separated noise levels: 0, 0.2, 0.5, poisson")
    sweep.add_argument("--generations", help="comma-separated budgets in generations")
    sweep.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        help="bf16: about 1.7x faster on CPUs with bf16 instructions; unit responses correlate 0.999 with fp32's",
    )
    sweep.add_argument("--baseline", default="ga", help="the optimizer the table counts wins against")
    sweep.add_argument("--summary-only", action="store_true", help="only print the table of the results in --out")
    sweep.set_defaults(run=_sweep)


def _add_db(commands: Any) -> None:
    db = commands.add_parser("db", help="database maintenance")
    actions = db.add_subparsers(dest="action", required=True)
    upgrade = actions.add_parser(
        "upgrade", help="create the tables, or migrate them to this version's schema (the server does it on start too)"
    )
    upgrade.add_argument("--url", help="SQLAlchemy URL (default: EVOSTIM_DATABASE_URL, or the data dir's SQLite file)")
    upgrade.set_defaults(run=_db_upgrade)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="evostim", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server (settings from EVOSTIM_* variables)")
    serve.add_argument("--host", default=os.environ.get("EVOSTIM_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("EVOSTIM_PORT", "8000")))
    serve.add_argument("--data-dir", help="directory of the SQLite file (default: EVOSTIM_DATA_DIR or ./data)")
    serve.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error", "critical"],
        help="default: EVOSTIM_LOG_LEVEL or info (JSON lines on stderr)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("EVOSTIM_WORKERS", "1")),
        help="server processes on one database (default: EVOSTIM_WORKERS or 1)",
    )
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="listen beyond loopback without EVOSTIM_TOKENS (anyone who reaches the port drives sessions)",
    )
    serve.set_defaults(run=_serve)

    token = commands.add_parser("token", help="make a random bearer token and print it with its digest")
    token.set_defaults(run=_token)

    demo = commands.add_parser("demo", help="evolve images for a simulated neuron against a real local server")
    demo.add_argument("--out", default="out/demo", help="where the table, montage and score curve go")
    demo.add_argument("--unit", default="onet.conv3.9", help="simulated unit, net.layer.channel[@y,x]")
    demo.add_argument("--generations", type=int, default=60)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--repetitions", type=int, default=2, help="presentations per image")
    demo.add_argument(
        "--optimizer", help="the session's optimizer, e.g. cholesky-cma (default: the generator's, metric-cma)"
    )
    demo.add_argument(
        "--unconstrained",
        action="store_true",
        help="let the code norm grow (super-stimuli; for an optimizer that leaves the sphere, e.g. cholesky-cma)",
    )
    demo.set_defaults(run=_demo)

    metric = commands.add_parser("metric", help="top eigenvectors of a generator's metric, saved for `subspace`")
    metric.add_argument("--generator", default="dcgan-faces")
    metric.add_argument("--samples", type=int, default=32, help="codes the metric is averaged over")
    metric.add_argument("--top", type=int, default=40, help="eigenvectors to keep")
    metric.add_argument("--seed", type=int, default=0)
    metric.add_argument("--device", default="auto")
    metric.add_argument("--weights-dir", default=os.environ.get("EVOSTIM_WEIGHTS_DIR", "weights"))
    metric.add_argument(
        "--window",
        type=float,
        help="weight the pixels by a Gaussian at the image centre, standard deviation this fraction of the image "
        "side (where a lab centres its images on the receptive field); a metric-cma session given the file refreshes "
        "with the same window",
    )
    metric.add_argument("--out", help="file to write (default: WEIGHTS_DIR/GENERATOR.metric.npz)")
    metric.set_defaults(run=_metric)

    rig = commands.add_parser("rig", help="exchange a session's generations with a rig through files in a folder")
    rig.add_argument("--watch", required=True, help="the folder shared with the rig")
    rig.add_argument("--session", required=True, help="the session to run")
    rig.add_argument("--server", default=_server_url(), help=_URL_HELP)
    rig.add_argument("--token", help="bearer token (default: EVOSTIM_TOKEN)")
    rig.add_argument("--poll", type=float, default=0.2, help="seconds between looks for the rig's responses file")
    rig.add_argument(
        "--server-poll",
        type=float,
        default=5.0,
        help="seconds between looks at the session on the server while the rig has written nothing new",
    )
    rig.add_argument(
        "--max-backoff", type=float, default=30.0, help="longest wait between retries while the server is unreachable"
    )
    rig.set_defaults(run=_rig)

    _add_export(commands)
    _add_db(commands)
    _add_sweep(commands)

    args = parser.parse_args(argv)
    try:
        args.run(args)
    except MissingExtra as error:  # one line naming the extra to install, not a traceback
        raise SystemExit(f"evostim {args.command}: {error}") from None
