"""What a lab publishes about an evolution: score curves, best images, mean codes, the trajectory's PCA signature.

Pure functions on numpy arrays (no torch, no HTTP, no plotting): the dashboard, the HTML report
(:mod:`evostim.clients.analysis.report`) and notebooks all call these. Build an :class:`Evolution` from the JSON of
``GET /v1/sessions/{id}/history?codes=true`` (``client.history(session_id, codes=True)``; without codes the
score analyses still work) with :meth:`Evolution.from_history`, then::

    scores = score_trajectory(evolution)          # per generation mean / SEM / max, references, per channel
    best = best_per_generation(evolution)         # the best evolved stimulus of each generation
    signature = trajectory_signature(evolution)   # PCA of the mean codes against a high-dimensional random walk

Shapes: N stimuli in the whole session, G generations, C response channels, d latent dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from evostim.summary import Statistics, statistics

__all__ = [
    "AnalysisError",
    "BestStimuli",
    "CodesMissing",
    "Evolution",
    "ScoreTrajectory",
    "TooFewGenerations",
    "TrajectoryPCA",
    "best_per_generation",
    "mean_code_images",
    "mean_codes",
    "montage",
    "random_walk_spectrum",
    "score_trajectory",
    "trajectory_pca",
    "trajectory_signature",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
ImageArray = NDArray[np.uint8]


class AnalysisError(ValueError):
    """An analysis cannot be computed from this evolution's data (the message says what is missing)."""


class CodesMissing(AnalysisError):
    """The history carries no latent codes, so code-space analyses (mean codes, trajectory PCA) are impossible."""


class TooFewGenerations(AnalysisError):
    """The trajectory analyses need more generations than the session has so far."""


# -- the session as arrays --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Evolution:
    """One session's data as arrays: N stimuli (all generations, evolved and reference), G generations, C channels."""

    session: Mapping[str, Any]  # the session record as the server answered it (id, status, config, best_score, ...)
    numbers: IntArray  # (G,) generation numbers, ascending
    closed: NDArray[np.bool_]  # (G,) whether the generation was scored and closed
    optimizer: Mapping[str, FloatArray]  # name -> (G,) per-generation summary scalar, NaN where absent
    ids: tuple[str, ...]  # (N,) stimulus ids, e.g. "g3-e7"
    generation: IntArray  # (N,) generation number of each stimulus
    kind: NDArray[np.str_]  # (N,) "evolved" | "reference"
    index: IntArray  # (N,) index within its kind in its generation
    score: FloatArray  # (N,) the objective score, NaN where not measured
    channels: tuple[str, ...]  # (C,)
    responses: FloatArray  # (N, C) mean over repetitions of the posted values per channel, NaN where missing
    codes: FloatArray | None  # (N, d) latent codes, NaN rows where a stimulus has none; None: history without codes

    @classmethod
    def from_history(cls, history: Mapping[str, Any]) -> Evolution:
        """The JSON of GET /v1/sessions/{id}/history -> arrays over its N stimuli and G generations."""
        generations = sorted(history["generations"], key=lambda g: int(g["number"]))
        numbers = np.array([g["number"] for g in generations], dtype=np.int64)
        stimuli = [s for g in generations for s in g["stimuli"]]
        session = history["session"]
        channels = _channels(session.get("config") or {}, stimuli)
        return cls(
            session=session,
            numbers=numbers,
            closed=np.array([g["status"] == "closed" for g in generations], dtype=np.bool_),
            optimizer=_summaries([g.get("optimizer") for g in generations]),
            ids=tuple(str(i) for i in _field(stimuli, "id")),
            generation=np.repeat(numbers, [len(g["stimuli"]) for g in generations]).astype(np.int64),
            kind=np.array(_field(stimuli, "kind"), dtype=np.str_),
            index=np.array(_field(stimuli, "index"), dtype=np.int64),
            score=_optional_floats(_field(stimuli, "score")),
            channels=channels,
            responses=_responses(_field(stimuli, "counts"), channels),
            codes=_codes(_field(stimuli, "code")),
        )

    @property
    def id(self) -> str:
        """The session id."""
        return str(self.session.get("id", ""))

    @property
    def config(self) -> Mapping[str, Any]:
        """The session's configuration as the server stored it."""
        config: Mapping[str, Any] = self.session.get("config") or {}
        return config

    @property
    def evolved(self) -> NDArray[np.bool_]:
        """(N,) True for evolved stimuli, False for references."""
        return np.asarray(self.kind == "evolved", dtype=np.bool_)

    @property
    def position(self) -> IntArray:
        """(N,) each stimulus' generation as a position 0..G-1 into ``numbers``."""
        return np.searchsorted(self.numbers, self.generation).astype(np.int64)


def _field(stimuli: Sequence[Mapping[str, Any]], key: str) -> list[Any]:
    """One field of every stimulus (None where absent)."""
    return [s.get(key) for s in stimuli]


def _channels(config: Mapping[str, Any], stimuli: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The configured channels, else every channel named in the counts, in order of first appearance."""
    if config.get("channels"):
        return tuple(str(c) for c in config["channels"])
    names = dict.fromkeys(channel for s in stimuli for channel in (s.get("counts") or {}))
    return tuple(names)


def _responses(counts: Sequence[Mapping[str, Sequence[float]] | None], channels: tuple[str, ...]) -> FloatArray:
    """Per stimulus counts {channel: repetitions} -> (N, C) mean over repetitions, NaN where missing."""
    out = np.full((len(counts), len(channels)), np.nan)
    for row, posted in enumerate(counts):
        for column, channel in enumerate(channels):
            values = (posted or {}).get(channel)
            if values:
                out[row, column] = float(np.mean(values))
    return out


def _codes(codes: Sequence[Sequence[float] | None]) -> FloatArray | None:
    """Per stimulus codes (d,) or None -> (N, d) with NaN rows where absent; None when no stimulus has a code."""
    present = [c for c in codes if c is not None]
    if not present:
        return None
    out = np.full((len(codes), len(present[0])), np.nan)
    for row, code in enumerate(codes):
        if code is not None:
            out[row] = code
    return out


def _summaries(summaries: Sequence[Mapping[str, float] | None]) -> dict[str, FloatArray]:
    """Per generation optimizer summaries {name: value} or None -> name -> (G,) with NaN where absent."""
    present = [summary or {} for summary in summaries]
    names = dict.fromkeys(name for summary in present for name in summary)
    return {name: _optional_floats([summary.get(name) for summary in present]) for name in names}


def _optional_floats(values: Sequence[float | None]) -> FloatArray:
    """Numbers or None -> (len,) float array with NaN for None."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


# -- scores ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ScoreTrajectory:
    """Per generation statistics of the scores (G generations, C channels); NaN where a generation has no data."""

    numbers: IntArray  # (G,)
    evolved_n: IntArray  # (G,) measured evolved stimuli
    evolved_mean: FloatArray  # (G,)
    evolved_std: FloatArray  # (G,) sample standard deviation (ddof=1), NaN below 2 measurements
    evolved_sem: FloatArray  # (G,) standard error of the mean: std / sqrt(n)
    evolved_max: FloatArray  # (G,)
    reference_n: IntArray  # (G,)
    reference_mean: FloatArray  # (G,)
    reference_sem: FloatArray  # (G,)
    channels: tuple[str, ...]  # (C,)
    channel_evolved_mean: FloatArray  # (G, C) mean over evolved stimuli of the per-channel response
    channel_evolved_sem: FloatArray  # (G, C)
    channel_reference_mean: FloatArray  # (G, C)
    channel_reference_sem: FloatArray  # (G, C)


def _per_generation(evolution: Evolution, values: FloatArray, mask: NDArray[np.bool_]) -> list[Statistics]:
    """The statistics of ``values`` (N,) or (N, C) over the stimuli in ``mask`` (N,), one per generation."""
    return [statistics(values[mask & (evolution.position == p)]) for p in range(len(evolution.numbers))]


def _stacked(described: list[Statistics], field: str, shape: tuple[int, ...]) -> Any:
    """One field of per-generation statistics as one array of ``shape`` (G,) or (G, C)."""
    return np.array([getattr(d, field) for d in described]).reshape(shape)


def score_trajectory(evolution: Evolution) -> ScoreTrajectory:
    """Per generation (G,) mean / std / SEM / max of evolved scores and mean / SEM of references; (G, C) per channel.

    Each generation's numbers are :func:`evostim.summary.statistics` of its scores, the server's summary's own.
    """
    size, evolved = len(evolution.numbers), evolution.evolved
    mine, theirs = (
        _per_generation(evolution, evolution.score, evolved),
        _per_generation(evolution, evolution.score, ~evolved),
    )
    by_channel = (size, len(evolution.channels))
    channel_mine = _per_generation(evolution, evolution.responses, evolved)
    channel_theirs = _per_generation(evolution, evolution.responses, ~evolved)
    return ScoreTrajectory(
        numbers=evolution.numbers,
        evolved_n=_stacked(mine, "n", (size,)).astype(np.int64),
        evolved_mean=_stacked(mine, "mean", (size,)),
        evolved_std=_stacked(mine, "sd", (size,)),
        evolved_sem=_stacked(mine, "sem", (size,)),
        evolved_max=_stacked(mine, "max", (size,)),
        reference_n=_stacked(theirs, "n", (size,)).astype(np.int64),
        reference_mean=_stacked(theirs, "mean", (size,)),
        reference_sem=_stacked(theirs, "sem", (size,)),
        channels=evolution.channels,
        channel_evolved_mean=_stacked(channel_mine, "mean", by_channel),
        channel_evolved_sem=_stacked(channel_mine, "sem", by_channel),
        channel_reference_mean=_stacked(channel_theirs, "mean", by_channel),
        channel_reference_sem=_stacked(channel_theirs, "sem", by_channel),
    )


# -- best stimuli and images ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BestStimuli:
    """The best measured evolved stimulus of each of G generations (None / NaN where none was measured)."""

    numbers: IntArray  # (G,)
    ids: tuple[str | None, ...]  # (G,)
    scores: FloatArray  # (G,)


def best_per_generation(evolution: Evolution) -> BestStimuli:
    """(G,) id and score of each generation's highest-scoring evolved stimulus (the first one on ties)."""
    ids: list[str | None] = []
    scores = np.full(len(evolution.numbers), np.nan)
    for g, number in enumerate(evolution.numbers):
        rows = np.flatnonzero(evolution.evolved & (evolution.generation == number))
        described = statistics(evolution.score[rows])
        ids.append(None if described.n == 0 else evolution.ids[rows[int(described.argmax)]])
        scores[g] = described.max
    return BestStimuli(numbers=evolution.numbers, ids=tuple(ids), scores=scores)


def mean_codes(evolution: Evolution) -> FloatArray:
    """(G, d) mean latent code of each generation's evolved stimuli; raises CodesMissing when codes are absent."""
    if evolution.codes is None:
        raise CodesMissing(
            f"session {evolution.id}: its history carries no latent codes, so mean codes and the trajectory PCA "
            "cannot be computed; fetch the history with codes (client.history(session_id, codes=True))"
        )
    rows = evolution.evolved & ~np.isnan(evolution.codes).any(axis=1)
    n = np.bincount(evolution.position[rows], minlength=len(evolution.numbers))
    if (n == 0).any():
        lacking = ", ".join(str(number) for number in evolution.numbers[n == 0])
        raise CodesMissing(f"session {evolution.id}: generations {lacking} have no evolved stimulus with a code")
    sums = np.zeros((len(evolution.numbers), evolution.codes.shape[1]))
    np.add.at(sums, evolution.position[rows], evolution.codes[rows])
    return np.asarray(sums / n[:, None], dtype=np.float64)


def mean_code_images(
    evolution: Evolution, decode: Callable[[FloatArray], ImageArray], *, norm: float | None = None
) -> ImageArray:
    """(G, H, W, 3) uint8 images of each generation's mean code, drawn by decode: codes (B, d) -> (B, H, W, 3) uint8.

    The mean of codes on a sphere lies inside it; pass the session's ``code_norm`` as norm to rescale each mean code
    onto that sphere first, as the server does before rendering any code. With an evostim generator,
    ``decode = generators.load_generator(name).decode_uint8``.
    """
    codes = mean_codes(evolution)
    if norm is not None:
        lengths = np.linalg.norm(codes, axis=1, keepdims=True)
        codes = codes * (norm / np.maximum(lengths, 1e-12))
    images = np.asarray(decode(codes))
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[0] != len(codes) or images.shape[3] != 3:
        raise AnalysisError(
            f"decode must return ({len(codes)}, H, W, 3) uint8 images, got {images.dtype} {images.shape}"
        )
    return images


def montage(images: ImageArray, labels: Sequence[str], *, columns: int | None = None, tile: int = 128) -> ImageArray:
    """(N, H, W, 3) uint8 images and N labels -> one (rows * (h + strip), columns * w, 3) uint8 labelled montage.

    Each image is enlarged by the whole factor that brings its width to about ``tile`` pixels (nearest neighbour:
    the pixels the animal saw, only bigger; never shrunk) and gets its label on a white strip below it, in Pillow's
    default font sized to the tile. ``columns`` defaults to min(N, 10).
    """
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8 or len(images) != len(labels):
        raise AnalysisError(
            f"montage needs (N, H, W, 3) uint8 images and N labels, got {images.shape} and {len(labels)}"
        )
    if len(images) == 0:
        raise AnalysisError("montage needs at least one image")
    columns = columns or min(len(images), 10)
    factor = max(1, round(tile / images.shape[2]))
    height, width = images.shape[1] * factor, images.shape[2] * factor
    font = ImageFont.load_default(size=int(np.clip(width // 8, 11, 28)))
    strip = int(font.size * 1.6) if isinstance(font, ImageFont.FreeTypeFont) else 16
    rows = math.ceil(len(images) / columns)
    canvas = Image.new("RGB", (columns * width, rows * (height + strip)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        x, y = (i % columns) * width, (i // columns) * (height + strip)
        canvas.paste(Image.fromarray(image).resize((width, height), Image.Resampling.NEAREST), (x, y))
        draw.text((x + width // 2, y + height + strip // 2), label, fill="black", font=font, anchor="mm")
    return np.asarray(canvas, dtype=np.uint8)


# -- the trajectory's random-walk signature --------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TrajectoryPCA:
    """PCA of a trajectory of G points in d dimensions against a d-dimensional random walk of G steps.

    ``variance_ratio`` and ``theory_ratio`` cover the M = min(G - 1, d) components; the K compared components
    are the first ``len(correlation)``.
    """

    variance_ratio: FloatArray  # (M,) explained variance ratio of each principal component
    theory_ratio: FloatArray  # (M,) the same for a random walk: proportional to 1 / sin^2(pi k / 2G) ~ 6 / (pi k)^2
    projections: FloatArray  # (G, K) the trajectory on its first K components, signed to correlate positively
    cosines: FloatArray  # (G, K) cos(pi k (t + 1/2) / G), t = 0..G-1: a random walk's k-th component
    correlation: FloatArray  # (K,) Pearson correlation of each projection with its cosine (>= 0 by the sign choice)
    shape_similarity: float  # mean of correlation: how cosine-like the projections are
    spectrum_similarity: float  # 1 - total-variation distance of the first K variance ratios from theory's
    random_walk_similarity: float  # shape_similarity * spectrum_similarity, in [0, 1]


def random_walk_spectrum(steps: int) -> FloatArray:
    """(steps - 1,) expected explained variance ratios of a high-dimensional random walk of ``steps`` points.

    The centred walk's time-by-time covariance has the cosines cos(pi k (t + 1/2) / G) as eigenvectors with
    eigenvalues proportional to 1 / sin^2(pi k / 2G) (Antognini & Sohl-Dickstein 2018); for large G the ratio of
    component k tends to (6 / pi^2) / k^2.
    """
    k = np.arange(1, steps)
    weights = 1.0 / np.sin(np.pi * k / (2 * steps)) ** 2
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _oriented_correlations(projections: FloatArray, cosines: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(G, K) projections and cosines -> projections flipped to correlate positively, and the (K,) correlations."""
    centred = projections - projections.mean(axis=0)
    norms = np.linalg.norm(centred, axis=0) * np.linalg.norm(cosines, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.where(norms > 0, (centred * cosines).sum(axis=0) / norms, 0.0)
    signs = np.where(correlation < 0, -1.0, 1.0)
    return projections * signs, np.abs(correlation)


def trajectory_pca(codes: FloatArray, *, components: int = 4) -> TrajectoryPCA:
    """PCA of a (G, d) trajectory (centred over its G points) compared with a random walk on the first K components.

    ``random_walk_similarity`` = shape x spectrum, in [0, 1]:

    - shape: the mean over k = 1..K of |corr(projection on PC k, cos(pi k (t + 1/2) / G))|. A high-dimensional
      random walk's k-th component traces exactly this cosine of k half periods (Antognini & Sohl-Dickstein 2018;
      Moore et al. 2018), the signature Wang & Ponce found in CMA-ES trajectories. It alone cannot tell a straight
      drift (PC 1 is a ramp, which correlates ~0.97 with the half cosine) from a walk, so K >= 2 matters: a drift's
      other components are noise (|corr| ~ 0.1).
    - spectrum: 1 - the total-variation distance between the first K explained variance ratios and the random
      walk's (both renormalized to sum 1 over those K), i.e. how well the variance falls as ~1/k^2. It separates a
      walk with a strong drift (PC 1 too dominant) from a pure walk, which shape barely does.

    Seeded simulations (K = 4, 40 seeds each): a Gaussian random walk of G = 60 steps in d = 200 scores
    0.90-0.98 (0.99 at d = 4096), the same walk plus a drift of 0.2 step per step per dimension 0.76-0.85, a straight
    drift with noise 0.19-0.31, unrelated points 0.02-0.10. Raises TooFewGenerations below 3 points.
    """
    size = codes.shape[0]
    if size < 3:
        raise TooFewGenerations(f"the trajectory PCA needs at least 3 generations with codes, got {size}")
    centred = codes - codes.mean(axis=0)
    left, singular, _ = np.linalg.svd(centred, full_matrices=False)
    total = float(np.sum(singular**2))
    if total <= 0.0:
        raise AnalysisError("the mean code never moved: there is no trajectory to analyse")
    count = min(size - 1, codes.shape[1])
    ratio = singular[:count] ** 2 / total
    theory = random_walk_spectrum(size)[:count]
    k = min(components, count)
    t = np.arange(size) + 0.5
    cosines = np.cos(np.pi * np.outer(t, np.arange(1, k + 1)) / size)
    projections, correlation = _oriented_correlations(left[:, :k] * singular[:k], cosines)
    distance = 0.5 * float(np.abs(ratio[:k] / ratio[:k].sum() - theory[:k] / theory[:k].sum()).sum())
    shape = float(correlation.mean())
    return TrajectoryPCA(
        variance_ratio=ratio,
        theory_ratio=theory,
        projections=projections,
        cosines=cosines,
        correlation=correlation,
        shape_similarity=shape,
        spectrum_similarity=1.0 - distance,
        random_walk_similarity=shape * (1.0 - distance),
    )


def trajectory_signature(evolution: Evolution, *, components: int = 4) -> TrajectoryPCA:
    """The (G, d) mean codes' PCA against a random walk (see trajectory_pca); raises CodesMissing without codes."""
    return trajectory_pca(mean_codes(evolution), components=components)
