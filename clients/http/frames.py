"""A session's data as a notebook wants it: the npz export as arrays, a long-form DataFrame, the best per generation.

The arrays come from ``GET /v1/sessions/{id}/export?format=npz`` (codes travel as binary, bit-exact, never as JSON
text). One row per stimulus: ``stimulus_id``, ``generation``, ``kind``, ``index``, ``status``, ``score``, ``code``
(N, d), and per channel ``counts.<channel>`` / ``baseline.<channel>`` (N, most repetitions), NaN where a stimulus
was not measured or had fewer repetitions.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from evostim.extras import require
from evostim.summary import statistics

if TYPE_CHECKING:
    import pandas

__all__ = ["FRAME_COLUMNS", "BestImages", "best_stimuli", "history_frame", "read_arrays"]

FRAME_COLUMNS = ("generation", "stimulus", "kind", "index", "channel", "repetition", "count", "baseline", "score")


def read_arrays(npz: bytes) -> dict[str, NDArray[Any]]:
    """The npz export's arrays by name (``code`` included; ``session`` is the session's JSON as a 0-d string)."""
    with np.load(io.BytesIO(npz), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def history_frame(arrays: dict[str, NDArray[Any]]) -> pandas.DataFrame:
    """Long form: one row per measured value (stimulus x channel x repetition), columns ``FRAME_COLUMNS``.

    Stimuli that were not measured (aborted trials, the open generation) have no rows; ``baseline`` is NaN where
    none was posted."""
    pd = require("pandas", extra="frames", feature="Client.history_frame")
    parts = [_channel_rows(arrays, str(channel)) for channel in arrays["channels"]]
    columns: dict[str, Any] = {
        name: np.concatenate([p[name] for p in parts]) if parts else [] for name in FRAME_COLUMNS
    }
    frame: pandas.DataFrame = pd.DataFrame(columns)
    return frame.sort_values(["generation", "kind", "index", "channel", "repetition"], kind="stable", ignore_index=True)


def _channel_rows(arrays: dict[str, NDArray[Any]], channel: str) -> dict[str, NDArray[Any]]:
    counts = arrays[f"counts.{channel}"]  # (N, R)
    baseline = arrays.get(f"baseline.{channel}")
    if baseline is None or baseline.shape != counts.shape:  # no baselines posted for this channel
        baseline = np.full(counts.shape, np.nan)
    stimulus, repetition = np.nonzero(~np.isnan(counts))
    return {
        "generation": arrays["generation"][stimulus],
        "stimulus": arrays["stimulus_id"][stimulus].astype(object),
        "kind": arrays["kind"][stimulus].astype(object),
        "index": arrays["index"][stimulus],
        "channel": np.full(len(stimulus), channel, dtype=object),
        "repetition": repetition.astype(np.int64),
        "count": counts[stimulus, repetition],
        "baseline": baseline[stimulus, repetition],
        "score": arrays["score"][stimulus],
    }


@dataclass(frozen=True, eq=False)
class BestImages:
    """The best-scoring evolved image of each scored generation, G of them, generations ascending."""

    generations: list[int]  # (G,)
    stimuli: list[str]  # (G,) stimulus ids
    scores: list[float]  # (G,)
    images: NDArray[np.uint8]  # (G, H, W, 3)

    def labels(self) -> list[str]:
        """One tile label per image, e.g. ``"gen 12: 31.5"`` (for ``evostim.clients.analysis.evolution.montage``)."""
        return [f"gen {g}: {s:.1f}" for g, s in zip(self.generations, self.scores, strict=True)]


def best_stimuli(arrays: dict[str, NDArray[Any]]) -> list[tuple[int, str, float]]:
    """(generation, stimulus id, score) of the best-scoring evolved stimulus of each generation that has a score
    (the first one on ties, as the server's summary names it)."""
    best = []
    evolved = arrays["kind"] == "evolved"
    for generation in np.unique(arrays["generation"][evolved & ~np.isnan(arrays["score"])]):
        rows = np.flatnonzero(evolved & (arrays["generation"] == generation))
        described = statistics(arrays["score"][rows])
        best.append((int(generation), str(arrays["stimulus_id"][rows[int(described.argmax)]]), float(described.max)))
    return best
