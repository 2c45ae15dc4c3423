"""The ``evostim`` command: one parser tree here, one module per job beside it, each importing its heavy parts
only when its command runs (serve and token: ``serve``; ``db``; ``demo``; ``metric``; ``rig``; ``export``;
``sweep``)."""

from __future__ import annotations

import argparse

from evostim.cli import db, demo, export, metric, rig, serve, sweep
from evostim.cli._common import version
from evostim.extras import MissingExtra

__all__ = ["build_parser", "main"]

_DESCRIPTION = """\
The ``evostim`` command: ``serve`` runs the server, ``demo`` runs an in-silico closed-loop evolution,
``metric`` computes a generator's metric eigenbasis for the ``subspace`` optimizer, ``rig`` bridges a rig
that exchanges files instead of HTTP, ``export`` downloads a whole session as npz, Parquet or NWB, ``db upgrade``
creates or migrates the database."""


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every subcommand, each with its options."""
    parser = argparse.ArgumentParser(prog="evostim", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in (serve, demo, metric, rig, export, db, sweep):
        group.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except MissingExtra as error:  # one line naming the extra to install, not a traceback
        raise SystemExit(f"evostim {args.command}: {error}") from None
