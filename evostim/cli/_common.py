"""What several commands share: the version, the server's address and token, one-line refusals of settings."""

from __future__ import annotations

import argparse
import os
from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]
    """The subcommands of a parser, as ``add_subparsers`` returns them."""

__all__ = [
    "DEFAULT_URL",
    "TOKEN_HELP",
    "URL_HELP",
    "client_token",
    "redacted",
    "server_url",
    "setting_error",
    "unreachable",
    "version",
]

DEFAULT_URL = "http://127.0.0.1:8000"
URL_HELP = f"the server's address (default: EVOSTIM_URL or {DEFAULT_URL})"
TOKEN_HELP = "bearer token (default: EVOSTIM_TOKEN)"


def server_url() -> str:
    return os.environ.get("EVOSTIM_URL", DEFAULT_URL)


def client_token(given: str | None) -> str | None:
    return given or os.environ.get("EVOSTIM_TOKEN")


def version() -> str:
    try:
        return metadata.version("evostim")
    except metadata.PackageNotFoundError:
        return "unknown"


def redacted(url: str) -> str:
    """A database URL without its password, for the log."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def setting_error(error: Any) -> str:
    """One of pydantic's validation errors of the settings, named by its variable."""
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"EVOSTIM_{where.upper()}: {message}" if where else message


def unreachable(command: str, url: str, error: Exception) -> str:
    """The one line a client command ends with when no server answers at ``url`` (after the client's retries)."""
    reason = " ".join(f"{type(error).__name__}: {error}".split())
    return (
        f"evostim {command}: no server answers at {url} ({reason}); start it, or give its address with --url or "
        "EVOSTIM_URL"
    )
