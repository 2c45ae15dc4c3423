"""The ``evostim`` command: the parser tree here, one module per job beside it (``serve``: serve and token; ``db``;
``demo``; ``metric``; ``rig``; ``export``; ``report``; ``sweep``), each importing its heavy parts only when its command
runs."""

from __future__ import annotations

import argparse

from evostim.cli import db, demo, export, metric, report, rig, serve, sweep
from evostim.cli._common import version
from evostim.extras import MissingExtra

__all__ = ["build_parser", "main"]

_DESCRIPTION = """\
evostim: closed-loop neuron-stimulus search. The server evolves generator images, a rig (or a simulated neuron)
scores them, the server proposes the next generation."""

_EPILOG = """\
`evostim COMMAND --help` shows a command's options. The server's settings are EVOSTIM_* environment variables
(`evostim serve --help` lists them); the client commands find the server through EVOSTIM_URL and EVOSTIM_TOKEN."""


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every subcommand, each with its options."""
    parser = argparse.ArgumentParser(
        prog="evostim",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    for group in (serve, demo, metric, rig, export, report, db, sweep):
        group.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except MissingExtra as error:  # one line naming the extra to install, not a traceback
        raise SystemExit(f"evostim {args.command}: {error}") from None
