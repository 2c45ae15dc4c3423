"""``evostim report``: one self-contained HTML file about a session on a server (scores, best images, trajectory)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from evostim.cli._common import TOKEN_HELP, URL_HELP, client_token, server_url, unreachable

if TYPE_CHECKING:
    from evostim.cli._common import Commands

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    report = commands.add_parser(
        "report",
        help="write one self-contained HTML report of a session",
        description="Write one HTML file about a session: its configuration, score curves, the optimizer's step "
        "size, the best image of each generation and the PCA of its mean-code trajectory. The file fetches nothing: "
        "it opens offline and can be mailed or archived as it is.",
    )
    report.add_argument("session", help="the session id")
    report.add_argument("--url", default=server_url(), help=URL_HELP)
    report.add_argument("--token", help=TOKEN_HELP)
    report.add_argument("--out", help="file to write (default: SESSION.html)")
    report.add_argument("--title", help="the report's title (default: Evolution SESSION)")
    report.set_defaults(run=report_command)


def report_command(args: argparse.Namespace) -> None:
    import httpx

    from evostim.clients.analysis.report import report_from_server
    from evostim.clients.http.client import Client
    from evostim.clients.http.errors import EvostimError

    out = Path(args.out or f"{args.session}.html")
    try:
        with Client(args.url, token=client_token(args.token), timeout=300.0) as client:
            report_from_server(client, args.session, out, title=args.title)
    except EvostimError as error:  # the server's problem detail, e.g. an unknown session
        raise SystemExit(f"evostim report: {error}") from None
    except httpx.TransportError as error:  # nothing listens there, or the connection broke (after the retries)
        raise SystemExit(unreachable("report", args.url, error)) from None
    print(f"{out} ({out.stat().st_size:,} bytes)")
