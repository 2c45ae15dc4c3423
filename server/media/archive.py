"""Zip archives streamed as they are written: the first bytes leave before the last member is rendered, and nothing
is written to disk (a server killed mid-answer leaves no file behind).

Python's ``zipfile`` writes to a stream it cannot seek (each member's sizes follow it in a data descriptor); here that
stream is a buffer emptied after every member, so a request holds one member in memory at a time.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator

__all__ = ["zip_stream"]


class _Chunks:
    """A write-only stream that keeps what was written until it is taken (no seek: zipfile streams then)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: the bytes wait to be taken."""

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def zip_stream(members: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
    """The bytes of a zip of the named files (stored: PNG and JPEG are compressed already), a member at a time as
    ``members`` yields them. A reader that stops early (a client gone) stops the rendering of the rest."""
    sink = _Chunks()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:  # type: ignore[call-overload]
        for name, content in members:
            archive.writestr(name, content)
            yield sink.take()
    yield sink.take()  # the central directory, written when the archive closes
