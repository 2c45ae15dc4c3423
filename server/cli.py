"""The ``evostim`` command: ``serve`` runs the server, ``demo`` runs an in-silico closed-loop evolution."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from server.app import create_app
    from server.config import Settings

    overrides = {"data_dir": Path(args.data_dir)} if args.data_dir else {}
    app = create_app(Settings(**overrides))  # type: ignore[arg-type]
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=10)


def _demo(args: argparse.Namespace) -> None:
    from clients.demo import run_demo

    run_demo(
        out_dir=Path(args.out),
        unit=args.unit,
        generations=args.generations,
        seed=args.seed,
        repetitions=args.repetitions,
        code_norm=None if args.unconstrained else "auto",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="evostim", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server (settings from EVOSTIM_* variables)")
    serve.add_argument("--host", default=os.environ.get("EVOSTIM_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("EVOSTIM_PORT", "8000")))
    serve.add_argument("--data-dir", help="directory of the SQLite file (default: EVOSTIM_DATA_DIR or ./data)")
    serve.add_argument("--log-level", default="warning")
    serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo", help="evolve images for a simulated neuron against a real local server")
    demo.add_argument("--out", default="out/demo", help="where the table, montage and score curve go")
    demo.add_argument("--unit", default="onet.conv3.9", help="simulated unit, net.layer.channel[@y,x]")
    demo.add_argument("--generations", type=int, default=60)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--repetitions", type=int, default=2, help="presentations per image")
    demo.add_argument("--unconstrained", action="store_true", help="let the code norm grow (super-stimuli)")
    demo.set_defaults(run=_demo)

    args = parser.parse_args(argv)
    args.run(args)
