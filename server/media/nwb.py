"""The NWB export (pynwb, the ``nwb`` extra): the session's table as a processing module's ``stimuli`` table, every
image shown as a stimulus template, each generation as a time interval. pynwb holds the whole file once, images
included."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.extras import require
from evostim.server.media.export_table import SessionData, Table, codes_of

__all__ = ["write_nwb"]

EPOCH = np.datetime64(0, "us")


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
        values = np.where(np.isnat(values), -1, (values - EPOCH).astype(np.int64))
    description = _DESCRIPTIONS.get(name, f"the optimizer's summary {name.partition('.')[2]!r} of the generation")
    return VectorData(name=name, description=description, data=values if values.dtype.kind != "U" else values.tolist())


def _nwbragged_columns(name: str, rows: Sequence[list[float] | None]) -> list[Any]:
    from hdmf.common import VectorData, VectorIndex

    flat = np.array([v for row in rows for v in (row or [])], dtype=np.float64)
    ends = np.cumsum([len(row or []) for row in rows], dtype=np.int64)
    what = "posted value" if name.startswith("counts.") else "pre-stimulus baseline"
    column = VectorData(name=name, description=f"{what} per repetition (empty where none)", data=flat)
    return [column, VectorIndex(name=f"{name}_index", data=ends, target=column)]


def _nwb_stimuli(data: SessionData) -> Any:
    from hdmf.common import DynamicTable, VectorData

    table = Table.read(data)
    fixed = table.fixed()
    columns = [_nwb_column(name, values) for name, values in fixed.items()]
    for name, rows in table.ragged.items():
        columns += _nwbragged_columns(name, rows)
    codes = np.concatenate([codes_of(chunk, data.latent_dim) for chunk in data.chunks()])
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


def write_nwb(data: SessionData, path: Path) -> None:
    pynwb = require("pynwb", extra="nwb", feature="the NWB export")
    nwbfile = _nwb_file(data)
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
