"""``evostim export``: a whole session from a server into one file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from evostim.cli._common import TOKEN_HELP, URL_HELP, client_token, server_url, unreachable

if TYPE_CHECKING:
    from evostim.cli._common import Commands

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    export = commands.add_parser("export", help="download a whole session as npz, parquet or nwb")
    export.add_argument("session", help="the session id")
    export.add_argument("--format", choices=["npz", "parquet", "nwb"], default="npz", help="default: %(default)s")
    export.add_argument("--url", default=server_url(), help=URL_HELP)
    export.add_argument("--token", help=TOKEN_HELP)
    export.add_argument("--out", help="file to write (default: SESSION.FORMAT)")
    export.set_defaults(run=export_command)


def export_command(args: argparse.Namespace) -> None:
    import httpx

    from evostim.clients.http.client import Client
    from evostim.clients.http.errors import EvostimError

    out = Path(args.out or f"{args.session}.{args.format}")
    try:
        with Client(args.url, token=client_token(args.token), timeout=300.0) as client:
            client.export(args.session, args.format, out)
    except EvostimError as error:  # the server's problem detail, e.g. the extra it needs
        raise SystemExit(f"evostim export: {error}") from None
    except httpx.TransportError as error:  # nothing listens there, or the connection broke (after the retries)
        raise SystemExit(unreachable("export", args.url, error)) from None
    print(f"{out} ({out.stat().st_size:,} bytes)")
