"""The NWB export (pynwb, the ``nwb`` extra), laid out as an archive (DANDI) and nwbinspector expect it:

- ``stimulus_template/stimuli``: every image shown (``Images``), named by stimulus id, in the order of the rows of
  ``intervals/presentations`` (``order_of_images``);
- ``intervals/presentations``: one row per stimulus, the time-based table of what was shown and what it evoked:
  ``start_time``/``stop_time`` in seconds since ``session_start_time`` (the rig reports no onset times, so each row
  spans its generation: from when it opened to when its responses were accepted; NaN while open), the stimulus's
  place in the suggested presentation order, its score, the counts and baselines per repetition (a channel's
  baseline column only where some baseline was posted), its latent code and its generation's optimizer summary;
- ``intervals/generations``: each generation's interval and optimizer summary;
- the subject and the session start from the session's metadata or the export's fields (``nwb_subject``), the
  session as JSON in ``notes``.

pynwb holds the whole file once, images included."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.extras import require
from evostim.server.media.export_table import SessionData, Table, codes_of
from evostim.server.media.nwb_subject import NwbMetadata, nwb_metadata

__all__ = ["write_nwb"]


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
    return Images(name="stimuli", images=images, description="row i of intervals/presentations", order_of_images=order)


def _nwb_generations(data: SessionData, start: datetime) -> Any:
    from pynwb.epoch import TimeIntervals

    table = TimeIntervals(name="generations", description="each generation: opened until its responses closed it")
    table.add_column("generation", "generation number")
    keys = data.summary_keys
    for key in keys:
        table.add_column(f"optimizer.{key}", f"the optimizer's summary {key!r} (NaN where absent)")
    for g in data.generations:
        summary = g.summary or {}
        values = {f"optimizer.{k}": float(summary.get(k, np.nan)) for k in keys}
        stop = _seconds(g.closed_at, start)
        table.add_interval(start_time=_seconds(g.opened_at, start), stop_time=stop, generation=g.number, **values)
    return table


_DESCRIPTIONS = {
    "session_id": "the session",
    "generation": "generation number",
    "stimulus_id": "stimulus id (the image's name in stimulus_template/stimuli, row i = image i)",
    "kind": "evolved or reference",
    "index": "position within its kind in its generation",
    "reference_id": "the reference image's id (the same image in every generation); -1 for evolved",
    "status": "measured, missing (left out of its generation's post) or pending (generation still open)",
    "score": "objective score told to the optimizer (NaN where not measured)",
    "order": "position in its generation's suggested presentation order",
}


def _column(name: str, values: NDArray[Any]) -> Any:
    from hdmf.common import VectorData

    description = _DESCRIPTIONS.get(name, f"the optimizer's summary {name.partition('.')[2]!r} of the generation")
    return VectorData(name=name, description=description, data=values if values.dtype.kind != "U" else values.tolist())


def _ragged(name: str, rows: Sequence[list[float] | None], unit: str) -> list[Any]:
    from hdmf.common import VectorData, VectorIndex

    flat = np.array([v for row in rows for v in (row or [])], dtype=np.float64)
    ends = np.cumsum([len(row or []) for row in rows], dtype=np.int64)
    what = f"response ({unit})" if name.startswith("counts.") else f"pre-stimulus baseline ({unit})"
    column = VectorData(name=name, description=f"{what} per repetition (empty where none)", data=flat)
    return [column, VectorIndex(name=f"{name}_index", data=ends, target=column)]


def _times(fixed: dict[str, NDArray[Any]], start: datetime) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each row's generation window in seconds since ``start`` (NaN: not closed yet)."""
    epoch = np.datetime64(start.astimezone(UTC).replace(tzinfo=None), "us")  # the table's stamps are UTC

    def seconds(stamps: NDArray[Any]) -> NDArray[np.float64]:
        elapsed = (stamps - epoch).astype("timedelta64[us]").astype(np.float64) / 1e6
        return np.where(np.isnat(stamps), np.nan, elapsed)

    return seconds(fixed.pop("opened_at")), seconds(fixed.pop("closed_at"))


def _positions(data: SessionData, fixed: dict[str, NDArray[Any]]) -> NDArray[np.int64]:
    """Each row's position in its generation's suggested presentation order (-1 where it is not in it)."""
    places = {(g.number, s): i for g in data.generations for i, s in enumerate(g.order)}
    pairs = zip(fixed["generation"].tolist(), fixed["stimulus_id"].tolist(), strict=True)
    return np.array([places.get(pair, -1) for pair in pairs], dtype=np.int64)


def _nwb_presentations(data: SessionData, start: datetime) -> Any:
    from hdmf.common import VectorData
    from pynwb.epoch import TimeIntervals

    table = Table.read(data)
    fixed = table.fixed()
    opened, closed = _times(fixed, start)
    fixed["order"] = _positions(data, fixed)
    columns = [
        VectorData(name="start_time", description="when its generation opened (s)", data=opened),
        VectorData(name="stop_time", description="when its generation's responses were accepted (s)", data=closed),
    ]
    columns += [_column(name, values) for name, values in fixed.items()]
    unit = str((data.session.config.get("response") or {}).get("unit", "count"))
    for name, rows in table.ragged.items():
        if any(rows):  # an empty ragged column breaks readers (nwbinspector's checks index its first value)
            columns += _ragged(name, rows, unit)
    codes = np.concatenate([codes_of(chunk, data.latent_dim) for chunk in data.chunks()])
    columns.append(VectorData(name="code", description="latent code rendered (float64, d values)", data=codes))
    description = (
        "one row per stimulus: what was shown (image i of stimulus_template/stimuli) during its generation's "
        "interval, and the responses posted for it"
    )
    return TimeIntervals(name="presentations", description=description, columns=columns)


def _subject(pynwb: Any, about: NwbMetadata) -> Any:
    if not about.subject:
        return None
    return pynwb.file.Subject(**about.subject, description="the recorded animal (from the session's metadata)")


def _nwb_file(data: SessionData) -> Any:
    pynwb = require("pynwb", extra="nwb", feature="the NWB export")
    session, config = data.session, data.session.config
    about = nwb_metadata(config.get("metadata") or {}, data.nwb)
    start = about.session_start or session.created_at
    nwbfile = pynwb.NWBFile(
        session_description=f"evostim session {session.id}: {config.get('generator')} searched by "
        f"{(config.get('optimizer') or {}).get('name')}",
        identifier=session.id,
        session_id=session.id,
        session_start_time=start,
        experiment_description="closed-loop evolution of generated images to drive a neuron (evostim)",
        keywords=["evostim", "closed-loop", "stimulus synthesis", "image generator"],
        notes=json.dumps(data.about()),
        stimulus_notes="stimulus_template/stimuli: every image shown, named by stimulus id",
        subject=_subject(pynwb, about),
    )
    nwbfile.add_stimulus_template(_nwb_images(data))
    nwbfile.add_time_intervals(_nwb_presentations(data, start))
    nwbfile.add_time_intervals(_nwb_generations(data, start))
    return nwbfile


def write_nwb(data: SessionData, path: Path) -> None:
    pynwb = require("pynwb", extra="nwb", feature="the NWB export")
    nwbfile = _nwb_file(data)
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
