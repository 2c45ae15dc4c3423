"""A whole session as one file a lab archives: ``.npz`` (numpy), ``.parquet`` (pyarrow) or ``.nwb`` (pynwb).

Every format holds the same table, one row per stimulus (all generations, evolved and reference; docs/protocol.md,
"Data out", lists its columns), with the generation's columns (timestamps, optimizer summary) repeated on each of its
rows, and the session (configuration, metadata) as JSON beside it. Codes are binary float64, bit-exact; counts and
baselines keep every repetition. The session is read from the store a few generations at a time: the npz codes
are streamed into their array a chunk at a time and Parquet writes one row group per chunk, so memory holds one
chunk plus the small per-stimulus columns (NWB, through pynwb, holds the whole file once, images included).

pyarrow and pynwb are extras (``parquet``, ``nwb``), imported through :func:`evostim.extras.require`, so a missing
one is a 422 problem that names it before anything is written.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim import __version__
from evostim.extras import require
from evostim.protocol import ExportFormat, SessionPublic
from evostim.server.storage.store import GenerationRecord, ResponseRecord, StimulusRecord

__all__ = [
    "FORMAT_VERSION",
    "MEDIA_TYPES",
    "SessionData",
    "check_extra",
    "read_and_remove",
    "temporary_file",
    "write_export",
    "write_zip",
]

FORMAT_VERSION = 1  # of the layout below; bumped when a column changes meaning
MEDIA_TYPES: Mapping[str, str] = {
    "npz": "application/octet-stream",
    "parquet": "application/vnd.apache.parquet",
    "nwb": "application/x-hdf5",
    "zip": "application/zip",
}
_EXTRAS = {"parquet": ("pyarrow.parquet", "parquet", "the Parquet export"), "nwb": ("pynwb", "nwb", "the NWB export")}
_EPOCH = np.datetime64(0, "us")

FloatArray = NDArray[np.float64]
Pixels = Callable[[Sequence[FloatArray]], NDArray[np.uint8]]  # codes -> (B, H, W, 3) uint8 images
Reader = Callable[[int, int], tuple[list[StimulusRecord], dict[str, ResponseRecord]]]  # generations first..last


@dataclass(frozen=True)
class Chunk:
    """A few consecutive generations with their stimuli (in table order) and responses by stimulus id."""

    generations: list[GenerationRecord]
    stimuli: list[StimulusRecord]
    responses: Mapping[str, ResponseRecord]


@dataclass(frozen=True)
class SessionData:
    """What an export reads: the session, its generations, and readers of stimuli and images."""

    session: SessionPublic
    channels: tuple[str, ...]
    latent_dim: int
    generations: list[GenerationRecord]
    read: Reader
    pixels: Pixels
    chunk_generations: int = 8

    def chunks(self) -> Iterator[Chunk]:
        step = self.chunk_generations
        for start in range(0, len(self.generations), step):
            generations = self.generations[start : start + step]
            stimuli, responses = self.read(generations[0].number, generations[-1].number)
            yield Chunk(generations, stimuli, responses)

    @property
    def summary_keys(self) -> list[str]:
        """Every optimizer summary entry any generation has (each becomes a column ``optimizer.<key>``)."""
        return sorted({key for g in self.generations for key in (g.summary or {})})

    def about(self) -> dict[str, Any]:
        """The session as GET /v1/sessions/{id} answers it, and what this file is."""
        return {
            "session": self.session.model_dump(mode="json"),
            "channels": list(self.channels),
            "latent_dim": self.latent_dim,
            "format_version": FORMAT_VERSION,
            "evostim_version": __version__,
            "exported_at": datetime.now(UTC).isoformat(),
        }


# -- the table, a chunk at a time ------------------------------------------------------------------------------------
def _status(response: ResponseRecord | None) -> str:
    """measured / missing (left out of its generation's post) / pending (its generation is still open)."""
    if response is None:
        return "pending"
    return "missing" if response.missing else "measured"


def _reference_id(stimulus: StimulusRecord) -> int:
    """The reference image's id (its index: the same image in every generation); -1 for an evolved stimulus."""
    return stimulus.index if stimulus.kind == "reference" else -1


def _score(response: ResponseRecord | None) -> float:
    return np.nan if response is None or response.score is None else response.score


def _reps(values: Mapping[str, list[float]] | None, channel: str) -> list[float] | None:
    return None if values is None else [float(v) for v in values[channel]]


def _stamp(moment: datetime | None) -> np.datetime64:
    """A UTC moment as numpy microseconds (NaT for none)."""
    return np.datetime64("NaT", "us") if moment is None else np.datetime64(moment.replace(tzinfo=None), "us")


def _generation_columns(chunk: Chunk, keys: Sequence[str]) -> dict[str, NDArray[Any]]:
    """The generation's columns, one value per stimulus row."""
    by_number = {g.number: g for g in chunk.generations}
    rows = [by_number[s.generation] for s in chunk.stimuli]
    columns: dict[str, NDArray[Any]] = {
        "opened_at": np.array([_stamp(g.opened_at) for g in rows], dtype="datetime64[us]"),
        "closed_at": np.array([_stamp(g.closed_at) for g in rows], dtype="datetime64[us]"),
    }
    for key in keys:
        values = [(g.summary or {}).get(key) for g in rows]
        columns[f"optimizer.{key}"] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return columns


def _stimulus_columns(chunk: Chunk, session_id: str) -> dict[str, NDArray[Any]]:
    stimuli, responses = chunk.stimuli, [chunk.responses.get(s.stimulus_id) for s in chunk.stimuli]
    return {
        "session_id": np.array([session_id] * len(stimuli), dtype=np.str_),
        "generation": np.array([s.generation for s in stimuli], dtype=np.int64),
        "stimulus_id": np.array([s.stimulus_id for s in stimuli], dtype=np.str_),
        "kind": np.array([s.kind for s in stimuli], dtype=np.str_),
        "index": np.array([s.index for s in stimuli], dtype=np.int64),
        "reference_id": np.array([_reference_id(s) for s in stimuli], dtype=np.int64),
        "status": np.array([_status(r) for r in responses], dtype=np.str_),
        "score": np.array([_score(r) for r in responses], dtype=np.float64),
    }


def _row_columns(chunk: Chunk, data: SessionData) -> dict[str, NDArray[Any]]:
    """The fixed-width columns of a chunk's rows: the stimulus's own and its generation's."""
    return {**_stimulus_columns(chunk, data.session.id), **_generation_columns(chunk, data.summary_keys)}


def _ragged(chunk: Chunk, channels: Sequence[str]) -> dict[str, list[list[float] | None]]:
    """``counts.<channel>`` and ``baseline.<channel>``: each row's repetitions, None where nothing was posted."""
    responses = [chunk.responses.get(s.stimulus_id) for s in chunk.stimuli]
    columns: dict[str, list[list[float] | None]] = {}
    for channel in channels:
        columns[f"counts.{channel}"] = [_reps(r.counts if r else None, channel) for r in responses]
        columns[f"baseline.{channel}"] = [_reps(r.baseline if r else None, channel) for r in responses]
    return columns


def _codes(chunk: Chunk, latent_dim: int) -> FloatArray:
    if not chunk.stimuli:
        return np.empty((0, latent_dim), dtype=np.float64)
    return np.stack([np.asarray(s.code, dtype=np.float64) for s in chunk.stimuli])


@dataclass
class _Table:
    """The fixed-width columns and the ragged ones of the rows read so far (codes are kept out: they stream)."""

    columns: dict[str, list[NDArray[Any]]]
    ragged: dict[str, list[list[float] | None]]

    @classmethod
    def read(cls, data: SessionData) -> _Table:
        table = cls({}, {})
        for chunk in data.chunks():
            for name, values in _row_columns(chunk, data).items():
                table.columns.setdefault(name, []).append(values)
            for name, rows in _ragged(chunk, data.channels).items():
                table.ragged.setdefault(name, []).extend(rows)
        return table

    def fixed(self) -> dict[str, NDArray[Any]]:
        return {name: np.concatenate(parts) for name, parts in self.columns.items()}


def _padded(rows: Sequence[list[float] | None]) -> FloatArray:
    """Ragged repetitions -> (N, most repetitions), NaN where a row has fewer (counts are never NaN)."""
    width = max((len(r) for r in rows if r is not None), default=0)
    out = np.full((len(rows), width), np.nan, dtype=np.float64)
    for i, row in enumerate(rows):
        if row:
            out[i, : len(row)] = row
    return out


# -- npz ---------------------------------------------------------------------------------------------------------
def _write_npy(archive: zipfile.ZipFile, name: str, array: NDArray[Any]) -> None:
    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array(member, array, allow_pickle=False)


def _stream_codes(archive: zipfile.ZipFile, data: SessionData, rows: int) -> None:
    """``code`` (N, d) float64, written a chunk at a time under one .npy header."""
    header = {"descr": "<f8", "fortran_order": False, "shape": (rows, data.latent_dim)}
    with archive.open("code.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_2_0(member, header)
        for chunk in data.chunks():
            member.write(np.ascontiguousarray(_codes(chunk, data.latent_dim), dtype="<f8").tobytes())


def _write_npz(data: SessionData, path: Path) -> None:
    table = _Table.read(data)
    fixed = table.fixed()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in fixed.items():
            _write_npy(archive, name, array)
        for name, rows in table.ragged.items():
            _write_npy(archive, name, _padded(rows))
        _write_npy(archive, "channels", np.array(data.channels, dtype=np.str_))
        _write_npy(archive, "session", np.array(json.dumps(data.about())))
        _stream_codes(archive, data, len(fixed["generation"]))


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
    columns: dict[str, Any] = {**_row_columns(chunk, data), **_ragged(chunk, data.channels)}
    score = columns["score"]
    columns["score"] = pa.array(score, mask=np.isnan(score))  # null where not measured
    reference = columns["reference_id"]
    columns["reference_id"] = pa.array(reference, mask=reference < 0)  # null for evolved stimuli
    codes = pa.array(_codes(chunk, data.latent_dim).ravel())
    columns["code"] = pa.FixedSizeListArray.from_arrays(codes, data.latent_dim)
    return pa.Table.from_pydict({f.name: columns[f.name] for f in schema}, schema=schema)


def _write_parquet(data: SessionData, path: Path) -> None:
    pa = require("pyarrow", extra="parquet", feature="the Parquet export")
    pq = require("pyarrow.parquet", extra="parquet", feature="the Parquet export")
    schema = _arrow_schema(pa, data)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for chunk in data.chunks():  # one row group per chunk of generations
            writer.write_table(_arrow_chunk(pa, schema, chunk, data))


# -- NWB ---------------------------------------------------------------------------------------------------------
def _seconds(moment: datetime | None, start: datetime) -> float:
    return float("nan") if moment is None else (moment - start).total_seconds()


def _nwb_images(data: SessionData) -> Any:
    """Every stimulus image, named by stimulus id, in table order (``order_of_images``)."""
    from pynwb.base import ImageReferences, Images
    from pynwb.image import RGBImage

    images = []
    for chunk in data.chunks():
        if not chunk.stimuli:
            continue
        for stimulus, image in zip(chunk.stimuli, data.pixels([s.code for s in chunk.stimuli]), strict=True):
            images.append(RGBImage(name=stimulus.stimulus_id, data=image, description=f"{stimulus.kind} stimulus"))
    order = ImageReferences(name="order_of_images", data=images)
    return Images(name="stimuli", images=images, description="row i of the stimuli table", order_of_images=order)


def _nwb_generations(data: SessionData) -> Any:
    from pynwb.epoch import TimeIntervals

    table = TimeIntervals(name="generations", description="each generation: opened until its responses closed it")
    table.add_column("generation", "generation number")
    keys = data.summary_keys
    for key in keys:
        table.add_column(f"optimizer.{key}", f"the optimizer's summary {key!r} (NaN where absent)")
    start = data.session.created_at
    for g in data.generations:
        summary = g.summary or {}
        values = {f"optimizer.{k}": float(summary.get(k, np.nan)) for k in keys}
        stop = _seconds(g.closed_at, start)
        table.add_interval(start_time=_seconds(g.opened_at, start), stop_time=stop, generation=g.number, **values)
    return table


_DESCRIPTIONS = {
    "session_id": "the session",
    "generation": "generation number",
    "stimulus_id": "stimulus id (the image's name in stimulus_template 'stimuli')",
    "kind": "evolved or reference",
    "index": "position within its kind in its generation",
    "reference_id": "the reference image's id (the same image in every generation); -1 for evolved",
    "status": "measured, missing (left out of its generation's post) or pending (generation still open)",
    "score": "objective score told to the optimizer (NaN where not measured)",
    "opened_at": "when the generation opened, UTC microseconds since 1970",
    "closed_at": "when the generation's responses were accepted, UTC microseconds since 1970 (-1: open)",
}


def _nwb_column(name: str, values: NDArray[Any]) -> Any:
    from hdmf.common import VectorData

    if values.dtype.kind == "M":  # timestamps as int64 microseconds since the epoch (-1: none)
        values = np.where(np.isnat(values), -1, (values - _EPOCH).astype(np.int64))
    description = _DESCRIPTIONS.get(name, f"the optimizer's summary {name.partition('.')[2]!r} of the generation")
    return VectorData(name=name, description=description, data=values if values.dtype.kind != "U" else values.tolist())


def _nwb_ragged(name: str, rows: Sequence[list[float] | None]) -> list[Any]:
    from hdmf.common import VectorData, VectorIndex

    flat = np.array([v for row in rows for v in (row or [])], dtype=np.float64)
    ends = np.cumsum([len(row or []) for row in rows], dtype=np.int64)
    what = "posted value" if name.startswith("counts.") else "pre-stimulus baseline"
    column = VectorData(name=name, description=f"{what} per repetition (empty where none)", data=flat)
    return [column, VectorIndex(name=f"{name}_index", data=ends, target=column)]


def _nwb_stimuli(data: SessionData) -> Any:
    from hdmf.common import DynamicTable, VectorData

    table = _Table.read(data)
    fixed = table.fixed()
    columns = [_nwb_column(name, values) for name, values in fixed.items()]
    for name, rows in table.ragged.items():
        columns += _nwb_ragged(name, rows)
    codes = np.concatenate([_codes(chunk, data.latent_dim) for chunk in data.chunks()])
    columns.append(VectorData(name="code", description="latent code rendered (float64, d values)", data=codes))
    ids = np.arange(len(fixed["generation"]))
    return DynamicTable(name="stimuli", description="one row per stimulus", id=ids, columns=columns)


def _nwb_file(data: SessionData) -> Any:
    pynwb = require("pynwb", extra="nwb", feature="the NWB export")
    session, config = data.session, data.session.config
    metadata = config.get("metadata") or {}
    nwbfile = pynwb.NWBFile(
        session_description=f"evostim session {session.id}: {config.get('generator')} searched by "
        f"{(config.get('optimizer') or {}).get('name')}",
        identifier=session.id,
        session_start_time=session.created_at,
        notes=json.dumps(data.about()),
        stimulus_notes="stimulus_template 'stimuli': every image shown, named by stimulus id",
    )
    if "animal" in metadata:
        nwbfile.subject = pynwb.file.Subject(subject_id=str(metadata["animal"]))
    nwbfile.add_stimulus_template(_nwb_images(data))
    nwbfile.add_time_intervals(_nwb_generations(data))
    module = nwbfile.create_processing_module("evostim", "the closed-loop evolution: stimuli, responses, codes")
    module.add(_nwb_stimuli(data))
    return nwbfile


def _write_nwb(data: SessionData, path: Path) -> None:
    pynwb = require("pynwb", extra="nwb", feature="the NWB export")
    nwbfile = _nwb_file(data)
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)


# -- entry points ------------------------------------------------------------------------------------------------
_WRITERS: Mapping[str, Callable[[SessionData, Path], None]] = {
    "npz": _write_npz,
    "parquet": _write_parquet,
    "nwb": _write_nwb,
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
    descriptor, name = tempfile.mkstemp(prefix="evostim-", suffix=suffix)
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


def write_zip(path: Path, members: Iterable[tuple[str, bytes]]) -> None:
    """Named files into a zip (stored: PNG and JPEG are compressed already), one member in memory at a time."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in members:
            archive.writestr(name, content)
