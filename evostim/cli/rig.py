"""``evostim rig``: exchange a session's generations with a rig through files in a folder."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from evostim.cli._common import TOKEN_HELP, URL_HELP, client_token, server_url

if TYPE_CHECKING:
    from evostim.cli._common import Commands

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    rig = commands.add_parser("rig", help="exchange a session's generations with a rig through files in a folder")
    rig.add_argument("--watch", required=True, help="the folder shared with the rig")
    rig.add_argument("--session", required=True, help="the session to run")
    rig.add_argument("--server", default=server_url(), help=URL_HELP)
    rig.add_argument("--token", help=TOKEN_HELP)
    rig.add_argument(
        "--poll",
        type=float,
        default=0.2,
        help="seconds between looks for the rig's responses file (default: %(default)s)",
    )
    rig.add_argument(
        "--server-poll",
        type=float,
        default=5.0,
        help="seconds between looks at the session on the server while the rig has written nothing new "
        "(default: %(default)s)",
    )
    rig.add_argument(
        "--max-backoff",
        type=float,
        default=30.0,
        help="longest wait in seconds between retries while the server is unreachable (default: %(default)s)",
    )
    rig.set_defaults(run=rig_command)


def rig_command(args: argparse.Namespace) -> None:
    from evostim.clients.http.client import Client
    from evostim.clients.rig.bridge import RigBridge

    logging.basicConfig(level=logging.INFO, format="%(asctime)s evostim rig: %(message)s")
    for name in ("httpx", "httpcore"):  # a line per request would bury the bridge's own; their warnings stay
        logging.getLogger(name).setLevel(logging.WARNING)
    with Client(args.server, token=client_token(args.token)) as client:
        print(f"bridging session {args.session} through {args.watch} (Ctrl-C to stop)", flush=True)
        bridge = RigBridge(client, args.session, Path(args.watch), server_poll_seconds=args.server_poll)
        try:
            bridge.run(poll_seconds=args.poll, max_backoff=args.max_backoff)
        except KeyboardInterrupt:
            raise SystemExit("evostim rig: stopped") from None
        print("the session finished")
