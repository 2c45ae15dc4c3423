"""A whole session as one file a lab archives: ``.npz`` (numpy), ``.parquet`` (pyarrow) or ``.nwb`` (pynwb); or
opens in a spreadsheet: ``.csv`` (the same rows, each code as its norm).

Every format holds the same table, one row per stimulus (all generations, evolved and reference; docs/protocol.md,
"Data out", lists its columns), with the generation's columns (timestamps, optimizer summary) repeated on each of its
rows, and the session (configuration, metadata) as JSON beside it. Codes are binary float64, bit-exact; counts and
baselines keep every repetition. The session is read from the store a few generations at a time: the npz codes
are streamed into their array a chunk at a time and Parquet writes one row group per chunk, so memory holds one
chunk plus the small per-stimulus columns (NWB, through pynwb, holds the whole file once, images included).

pyarrow and pynwb are extras (``parquet``, ``nwb``), imported through :func:`evostim.extras.require`, so a missing
one is a 422 problem that names it before anything is written.

Here: npz and Parquet, and the entry points the routes call; the table they share in
:mod:`~evostim.server.media.export_table`, the NWB file in :mod:`~evostim.server.media.nwb`.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.extras import require
from evostim.protocol import ExportFormat
from evostim.server.media.export_table import (
    FORMAT_VERSION,
    Chunk,
    SessionData,
    Table,
    codes_of,
    padded,
    ragged_columns,
    row_columns,
)
from evostim.server.media.nwb import write_nwb
from evostim.server.media.scratch import temporary_prefix

__all__ = [
    "FORMAT_VERSION",
    "MEDIA_TYPES",
    "SessionData",
    "check_extra",
    "read_and_remove",
    "temporary_file",
    "write_export",
]

MEDIA_TYPES: Mapping[str, str] = {
    "npz": "application/octet-stream",
    "parquet": "application/vnd.apache.parquet",
    "nwb": "application/x-hdf5",
    "csv": "text/csv; charset=utf-8",
    "zip": "application/zip",
}
_EXTRAS = {"parquet": ("pyarrow.parquet", "parquet", "the Parquet export"), "nwb": ("pynwb", "nwb", "the NWB export")}


# -- npz ---------------------------------------------------------------------------------------------------------
def _write_npy(archive: zipfile.ZipFile, name: str, array: NDArray[Any]) -> None:
    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array(member, array, allow_pickle=False)


def _streamcodes_of(archive: zipfile.ZipFile, data: SessionData, rows: int) -> None:
    """``code`` (N, d) float64, written a chunk at a time under one .npy header."""
    header = {"descr": "<f8", "fortran_order": False, "shape": (rows, data.latent_dim)}
    with archive.open("code.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_2_0(member, header)
        for chunk in data.chunks():
            member.write(np.ascontiguousarray(codes_of(chunk, data.latent_dim), dtype="<f8").tobytes())


def _write_npz(data: SessionData, path: Path) -> None:
    table = Table.read(data)
    fixed = table.fixed()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in fixed.items():
            _write_npy(archive, name, array)
        for name, rows in table.ragged.items():
            _write_npy(archive, name, padded(rows))
        _write_npy(archive, "channels", np.array(data.channels, dtype=np.str_))
        _write_npy(archive, "session", np.array(json.dumps(data.about())))
        _streamcodes_of(archive, data, len(fixed["generation"]))


# -- Parquet -----------------------------------------------------------------------------------------------------
def _arrow_schema(pa: ModuleType, data: SessionData) -> Any:
    """The table's columns in their order (as in npz), typed; the session as JSON in the schema's metadata."""
    types = {
        "session_id": pa.string(),
        "generation": pa.int64(),
        "stimulus_id": pa.string(),
        "kind": pa.string(),
        "index": pa.int64(),
        "reference_id": pa.int64(),  # null for evolved stimuli
        "status": pa.string(),
        "score": pa.float64(),  # null where not measured
        "opened_at": pa.timestamp("us", tz="UTC"),
        "closed_at": pa.timestamp("us", tz="UTC"),
        **{f"optimizer.{key}": pa.float64() for key in data.summary_keys},
        **{f"{what}.{ch}": pa.list_(pa.float64()) for ch in data.channels for what in ("counts", "baseline")},
        "code": pa.list_(pa.float64(), data.latent_dim),
    }
    return pa.schema(
        [pa.field(name, kind) for name, kind in types.items()], metadata={"evostim": json.dumps(data.about())}
    )


def _arrow_chunk(pa: ModuleType, schema: Any, chunk: Chunk, data: SessionData) -> Any:
    columns: dict[str, Any] = {**row_columns(chunk, data), **ragged_columns(chunk, data.channels)}
    score = columns["score"]
    columns["score"] = pa.array(score, mask=np.isnan(score))  # null where not measured
    reference = columns["reference_id"]
    columns["reference_id"] = pa.array(reference, mask=reference < 0)  # null for evolved stimuli
    codes = pa.array(codes_of(chunk, data.latent_dim).ravel())
    columns["code"] = pa.FixedSizeListArray.from_arrays(codes, data.latent_dim)
    return pa.Table.from_pydict({f.name: columns[f.name] for f in schema}, schema=schema)


def _write_parquet(data: SessionData, path: Path) -> None:
    pa = require("pyarrow", extra="parquet", feature="the Parquet export")
    pq = require("pyarrow.parquet", extra="parquet", feature="the Parquet export")
    schema = _arrow_schema(pa, data)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for chunk in data.chunks():  # one row group per chunk of generations
            writer.write_table(_arrow_chunk(pa, schema, chunk, data))


# -- CSV ---------------------------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    """A table value as CSV text: empty for none (NaN, NaT, an evolved stimulus's reference id, nothing posted),
    numbers as Python writes them back exactly, repetitions separated by spaces, moments in ISO 8601 UTC."""
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(_cell(v) for v in value)
    if isinstance(value, np.datetime64):
        return "" if np.isnat(value) else str(np.datetime_as_string(value, unit="us", timezone="UTC"))
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else repr(float(value))
    return str(value)


def _csv_rows(chunk: Chunk, data: SessionData, header: list[str]) -> Iterator[list[str]]:
    columns: dict[str, Any] = {**row_columns(chunk, data), **ragged_columns(chunk, data.channels)}
    columns["reference_id"] = [None if r < 0 else int(r) for r in columns["reference_id"]]
    columns["code_norm"] = np.linalg.norm(codes_of(chunk, data.latent_dim), axis=1)
    for i in range(len(chunk.stimuli)):
        yield [_cell(columns[name][i]) for name in header]


def _write_csv(data: SessionData, path: Path) -> None:
    """The table's rows, a chunk of generations at a time; ``code`` (d numbers) is given as ``code_norm``."""
    header = [
        *("session_id", "generation", "stimulus_id", "kind", "index", "reference_id", "status", "score"),
        *("opened_at", "closed_at", *(f"optimizer.{key}" for key in data.summary_keys)),
        *(f"{what}.{ch}" for ch in data.channels for what in ("counts", "baseline")),
        "code_norm",
    ]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for chunk in data.chunks():
            writer.writerows(_csv_rows(chunk, data, header))


# -- entry points ------------------------------------------------------------------------------------------------
_WRITERS: Mapping[str, Callable[[SessionData, Path], None]] = {
    "npz": _write_npz,
    "parquet": _write_parquet,
    "nwb": write_nwb,
    "csv": _write_csv,
}


def check_extra(fmt: ExportFormat) -> None:
    """Raise MissingExtra (a 422 naming the extra) when ``fmt`` needs an optional package that is not installed."""
    if fmt in _EXTRAS:
        module, extra, feature = _EXTRAS[fmt]
        require(module, extra=extra, feature=feature)


def write_export(data: SessionData, fmt: ExportFormat, path: Path) -> None:
    check_extra(fmt)
    _WRITERS[fmt](data, path)


def temporary_file(suffix: str, write: Callable[[Path], None]) -> Path:
    """A new temporary file filled by ``write``; removed again if ``write`` fails. The caller removes it after use."""
    descriptor, name = tempfile.mkstemp(prefix=temporary_prefix(), suffix=suffix)
    os.close(descriptor)
    path = Path(name)
    try:
        write(path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def read_and_remove(path: Path, chunk_bytes: int = 1 << 20) -> tuple[int, Iterator[bytes]]:
    """The file's size and an iterator over its bytes; its name is removed now (the open file stays readable)."""
    handle = path.open("rb")
    path.unlink()
    size = os.fstat(handle.fileno()).st_size

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(chunk_bytes):
                yield block

    return size, chunks()
