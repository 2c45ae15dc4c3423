"""A throwaway PostgreSQL 15 cluster for the tests: Debian's binaries, a unix socket in a temp dir, no TCP port.

Durability is switched off (fsync, synchronous_commit, full_page_writes): the cluster lives as long as one pytest
run, and a test never crashes the machine. Its time zone is not UTC, as a lab's server's may not be. PostgreSQL
refuses to run as root, so as root the cluster runs as the ``postgres`` user (Debian's package makes it) or, failing
that, ``nobody``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

__all__ = ["PostgresCluster", "postgres_bindir"]

# Debian's postgresql-15 package; EVOSTIM_TEST_POSTGRES_BINDIR points elsewhere (another version, a build).
_BINDIRS = ("/usr/lib/postgresql/15/bin",)
_SUPERUSER = "evostim"


def postgres_bindir() -> Path | None:
    """The folder with initdb and pg_ctl, or None when PostgreSQL is not installed."""
    candidates = [os.environ["EVOSTIM_TEST_POSTGRES_BINDIR"]] if "EVOSTIM_TEST_POSTGRES_BINDIR" in os.environ else []
    for folder in map(Path, [*candidates, *_BINDIRS]):
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _unprivileged_user() -> str | None:
    """The user to run the server as when we are root (None: run it as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


class PostgresCluster:
    """initdb + pg_ctl start in a fresh folder; ``database()`` makes an empty database and returns its URL."""

    def __init__(self, bindir: Path) -> None:
        self._bindir = bindir
        self._user = _unprivileged_user()
        # Not pytest's tmp_path: its folders are private to root, and the server may run as another user.
        self._root = Path(tempfile.mkdtemp(prefix="evostim-pg-"))
        self._data = self._root / "data"
        self._log = self._root / "server.log"
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self._root, entry.pw_uid, entry.pw_gid)
        self._started = False

    @property
    def socket_dir(self) -> Path:
        return self._root

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self._user, "--"] if self._user else []
        result = subprocess.run([*prefix, *command], capture_output=True, text=True, check=False, cwd=self._root)
        if result.returncode != 0:
            log = self._log.read_text() if self._log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr}{log}")

    def start(self) -> None:
        self._run(
            str(self._bindir / "initdb"),
            *("-D", str(self._data), "-U", _SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"),
            "--no-sync",
            "--no-instructions",
        )
        options = (
            f"-k {self._root} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200 -c timezone=America/New_York"
        )
        self._run(
            str(self._bindir / "pg_ctl"), "-D", str(self._data), "-l", str(self._log), "-o", options, "-w", "start"
        )
        self._started = True

    def stop(self) -> None:
        if self._started:
            self._run(str(self._bindir / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "-w", "-s", "stop")
            self._started = False
        shutil.rmtree(self._root, ignore_errors=True)

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(host=str(self._root), user=_SUPERUSER, dbname="postgres", autocommit=True)

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` (psycopg 3, over the unix socket)."""
        return f"postgresql+psycopg://{_SUPERUSER}@/{database}?host={self._root}"

    def create_database(self, name: str) -> str:
        with self._admin() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        # FORCE: a connection a failed test left open must not keep the database (and the next test's name) alive.
        with self._admin() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def allow_connections(self, name: str, allowed: bool) -> None:
        """Open or shut ``name`` to new connections; shutting it ends the open ones too, waiting till they are gone."""
        with self._admin() as connection:
            connection.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                    sql.Identifier(name), sql.SQL("true" if allowed else "false")
                )
            )
            if not allowed:
                connection.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s", (name,)
                )
