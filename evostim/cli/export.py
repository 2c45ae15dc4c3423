"""``evostim export``: a whole session from a server into one file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from evostim.cli._common import TOKEN_HELP, URL_HELP, client_token, server_url, unreachable
from evostim.protocol import ExportFormat

if TYPE_CHECKING:
    from evostim.cli._common import Commands
    from evostim.clients.http.client import Client

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    formats = get_args(ExportFormat)  # every format the server exports
    export = commands.add_parser("export", help=f"download a whole session as {', '.join(formats)}")
    export.add_argument("session", help="the session id")
    export.add_argument("--format", choices=formats, default="npz", help="default: %(default)s")
    export.add_argument("--url", default=server_url(), help=URL_HELP)
    export.add_argument("--token", help=TOKEN_HELP)
    export.add_argument("--out", help="file to write (default: SESSION.FORMAT)")
    nwb = export.add_argument_group(
        "NWB subject and session start",
        "each over the session's metadata (metadata.subject.<field>, metadata.<field>, metadata.animal for the id); "
        "an archive (DANDI, nwbinspector) needs species, sex and age",
    )
    nwb.add_argument("--subject-id", help="the animal's id (default: metadata.animal)")
    nwb.add_argument("--species", help="a Latin binomial, e.g. 'Macaca mulatta' (or a common name: rhesus macaque)")
    nwb.add_argument("--sex", help="M, F, U (unknown) or O (other)")
    nwb.add_argument("--age", help="ISO 8601 duration, e.g. P7Y (7 years), P30W (30 weeks)")
    nwb.add_argument(
        "--session-start",
        help="when the recording started, ISO 8601 with a time zone (default: the session's creation)",
    )
    export.set_defaults(run=export_command)


def _nwb_fields(args: argparse.Namespace) -> dict[str, str]:
    names = ("subject_id", "species", "sex", "age", "session_start")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _subject_note(client: Client, session_id: str, given: dict[str, str]) -> str | None:
    """A line naming what an archive needs of the subject that neither the metadata nor the flags gave."""
    from evostim.server.media.nwb_subject import NEEDED, nwb_metadata

    try:
        missing = nwb_metadata(client.session(session_id)["config"].get("metadata") or {}, given).missing
    except ValueError:  # the server accepted it: its own check is the one that counts
        return None
    if not missing:
        return None
    flags = " ".join(f"--{name} ..." for name in NEEDED if name in missing)
    return f"note: the subject's {', '.join(missing)} not given; nwbinspector and DANDI will refuse the file: {flags}"


def export_command(args: argparse.Namespace) -> None:
    import httpx

    from evostim.clients.http.client import Client
    from evostim.clients.http.errors import EvostimError

    out = Path(args.out or f"{args.session}.{args.format}")
    given = _nwb_fields(args)
    note = None
    try:
        with Client(args.url, token=client_token(args.token), timeout=300.0) as client:
            client.export(args.session, args.format, out, nwb=given if args.format == "nwb" else None)
            note = _subject_note(client, args.session, given) if args.format == "nwb" else None
    except EvostimError as error:  # the server's problem detail, e.g. the extra it needs
        raise SystemExit(f"evostim export: {error}") from None
    except httpx.TransportError as error:  # nothing listens there, or the connection broke (after the retries)
        raise SystemExit(unreachable("export", args.url, error)) from None
    print(f"{out} ({out.stat().st_size:,} bytes)")
    if note:
        print(note)
