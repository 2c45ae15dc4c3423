"""One self-contained HTML report of an evolution: summary, score curves, step size, best images, trajectory PCA.

Every figure is an inline base64 PNG drawn with matplotlib's Agg canvas (no pyplot state), the CSS is inline, and
nothing is fetched from anywhere: the file opens offline and can be mailed or archived as it is. From a session on
a server (what ``evostim report SESSION`` does)::

    report_from_server(client, session_id, "session.html")

or from an evolution and the images you have::

    evolution = Evolution.from_history(client.history(session_id, codes=True))
    best = best_per_generation(evolution)
    images = ReportImages(best={i: client.image(stimulus_url(session_id, i)) for i in best.ids if i is not None})
    write_report(evolution, "session.html", images=images)

(``stimulus_url`` from :mod:`evostim.clients.http.calls`.)
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from evostim.clients.analysis.evolution import (
    AnalysisError,
    Evolution,
    FloatArray,
    ImageArray,
    IntArray,
    ScoreTrajectory,
    TrajectoryPCA,
    best_per_generation,
    montage,
    score_trajectory,
    trajectory_signature,
)
from evostim.summary import SCORE_SUMMARIES

if TYPE_CHECKING:
    from evostim.clients.http.client import Client

__all__ = ["ReportImages", "report_from_server", "write_report"]

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: .92em; } td, th { padding: .2em .8em; border-bottom: 1px solid #eee;
        text-align: left; vertical-align: top; } th { color: #555; font-weight: 600; white-space: nowrap; }
td code { white-space: pre-wrap; word-break: break-word; }
img { max-width: 100%; height: auto; display: block; margin: .6em 0; }
.note { color: #555; } .big { font-size: 1.15em; }
"""


@dataclass(frozen=True)
class ReportImages:
    """Images a report shows: best stimuli by id, and the (G, H, W, 3) uint8 images of each generation's mean code."""

    best: Mapping[str, ImageArray] | None = None  # stimulus id -> (H, W, 3) uint8, e.g. each generation's best
    mean_code: ImageArray | None = None  # (G, H, W, 3) uint8, one per generation (see analysis.mean_code_images)


def write_report(
    evolution: Evolution, path: str | Path, *, images: ReportImages | None = None, title: str | None = None
) -> Path:
    """Write one self-contained HTML file about the evolution to path; returns the path."""
    title = title or f"Evolution {evolution.id}"
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        _summary_section(evolution),
        _scores_section(evolution),
        _optimizer_section(evolution),
        _images_section(evolution, images or ReportImages()),
        _trajectory_section(evolution),
    ]
    body = "\n".join(s for s in sections if s)
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
    target = Path(path)
    target.write_text(document, encoding="utf-8")
    return target


def report_from_server(client: Client, session_id: str, path: str | Path, *, title: str | None = None) -> Path:
    """Write the report of a session on a server: its history with codes, and each generation's best image."""
    from evostim.clients.http.calls import stimulus_url

    evolution = Evolution.from_history(client.history(session_id, codes=True))
    best = [i for i in best_per_generation(evolution).ids if i is not None]
    images = ReportImages(best={i: client.image(stimulus_url(session_id, i)) for i in best})
    return write_report(evolution, path, images=images, title=title)


# -- sections ---------------------------------------------------------------------------------------------------
def _summary_section(evolution: Evolution) -> str:
    """The session's state and configuration as one table."""
    session = {k: v for k, v in evolution.session.items() if k != "config"}
    closed = int(evolution.closed.sum())
    rows = [
        *((key, value) for key, value in session.items()),
        ("generations", f"{len(evolution.numbers)} ({closed} closed)"),
        ("stimuli measured", f"{int((~np.isnan(evolution.score)).sum())} of {len(evolution.ids)}"),
        *((f"config.{key}", value) for key, value in evolution.config.items()),
    ]
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_cell(v)}</td></tr>" for k, v in rows)
    return f"<h2>Session</h2><table>{cells}</table>"


def _cell(value: Any) -> str:
    """A table cell: scalars as text, nested values as compact JSON."""
    if isinstance(value, dict | list):
        return f"<code>{html.escape(json.dumps(value, separators=(', ', ': ')))}</code>"
    if isinstance(value, float):
        return html.escape(f"{value:.4g}")
    return html.escape("—" if value is None else str(value))


def _scores_section(evolution: Evolution) -> str:
    """The score trajectory figure (objective and, with several channels, each channel)."""
    scores = score_trajectory(evolution)
    if not np.isfinite(scores.evolved_mean).any():
        return "<h2>Scores</h2><p class='note'>No generation has been scored yet.</p>"
    channels = len(scores.channels) if len(scores.channels) > 1 else 0
    columns, rows = min(max(channels, 1), 3), (channels + 2) // 3
    figure = Figure(figsize=(10, 3.6 + 2.6 * rows), layout="constrained")
    grid = figure.add_gridspec(1 + rows, columns)
    _plot_scores(figure.add_subplot(grid[0, :]), scores)
    for c in range(channels):
        _plot_channel(figure.add_subplot(grid[1 + c // columns, c % columns]), scores, c)
    text = (
        "<p class='note'>Evolved mean with its standard error (band), the generation's best, and the reference "
        "images' mean. Channel panels show the mean over repetitions of the posted values.</p>"
    )
    return f"<h2>Scores</h2>{_png(figure)}{text}"


def _plot_scores(axes: Axes, scores: ScoreTrajectory) -> None:
    """Objective per generation: evolved mean +- SEM band, max, reference mean +- SEM."""
    x = scores.numbers
    axes.fill_between(x, *_band(scores.evolved_mean, scores.evolved_sem), color="C0", alpha=0.25, lw=0)
    axes.plot(x, scores.evolved_mean, "-o", color="C0", ms=3, label="evolved mean ± SEM")
    axes.plot(x, scores.evolved_max, "^", color="C0", ms=4, alpha=0.7, label="evolved best")
    if np.isfinite(scores.reference_mean).any():
        axes.fill_between(x, *_band(scores.reference_mean, scores.reference_sem), color="C1", alpha=0.25, lw=0)
        axes.plot(x, scores.reference_mean, "-s", color="C1", ms=3, label="references mean ± SEM")
    axes.set(xlabel="generation", ylabel="score (objective)", title="Score per generation")
    _whole_generations(axes)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=9)


def _plot_channel(axes: Axes, scores: ScoreTrajectory, column: int) -> None:
    """One channel's mean response per generation, evolved against references."""
    x = scores.numbers
    mean, sem = scores.channel_evolved_mean[:, column], scores.channel_evolved_sem[:, column]
    axes.fill_between(x, *_band(mean, sem), color="C0", alpha=0.25, lw=0)
    axes.plot(x, mean, "-", color="C0", label="evolved")
    axes.plot(x, scores.channel_reference_mean[:, column], "-", color="C1", label="references")
    axes.set(xlabel="generation", ylabel="mean response", title=f"channel {scores.channels[column]}")
    _whole_generations(axes)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=8)


def _whole_generations(axes: Axes) -> None:
    """Ticks on whole generations only (a short session's axis would otherwise read 2.5, 7.5, ...)."""
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def _band(mean: FloatArray, sem: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Lower and upper edge of mean +- SEM (the mean itself where the SEM is undefined)."""
    half = np.nan_to_num(sem)
    return mean - half, mean + half


def _optimizer_section(evolution: Evolution) -> str:
    """The optimizer's own per-generation scalars (step size sigma first), when it reported any."""
    names = sorted((n for n in evolution.optimizer if n not in SCORE_SUMMARIES), key=lambda n: (n != "sigma", n))
    names = [n for n in names if np.isfinite(evolution.optimizer[n]).any()][:6]
    if not names:
        return ""
    figure = Figure(figsize=(10, 3.0 * ((len(names) + 1) // 2)), layout="constrained")
    for i, name in enumerate(names):
        axes = figure.add_subplot((len(names) + 1) // 2, 2 if len(names) > 1 else 1, i + 1)
        axes.plot(evolution.numbers, evolution.optimizer[name], "-o", ms=3, color="C2")
        label = "step size \u03c3" if name == "sigma" else name
        axes.set(xlabel="generation", ylabel=label, title=label)
        _whole_generations(axes)
        axes.grid(alpha=0.3)
    return f"<h2>Optimizer</h2>{_png(figure)}"


def _images_section(evolution: Evolution, images: ReportImages) -> str:
    """Montages of each generation's best image and of each generation's mean-code image, when given."""
    parts = [_best_montage(evolution, images.best)] if images.best else []
    if images.mean_code is not None:
        labels = [f"g{n}" for n in evolution.numbers]
        parts.append("<h3>Image of each generation's mean code</h3>" + _png_image(montage(images.mean_code, labels)))
    parts = [p for p in parts if p]
    return "<h2>Images</h2>" + "".join(parts) if parts else ""


def _best_montage(evolution: Evolution, images: Mapping[str, ImageArray]) -> str:
    """Each generation's best image that was given, labelled "g<generation>  <score>"; empty when none was."""
    best = best_per_generation(evolution)
    shown = [
        (int(n), i, float(v))
        for n, i, v in zip(best.numbers, best.ids, best.scores, strict=True)
        if i is not None and i in images
    ]
    if not shown:
        return ""
    tiles = np.stack([images[i] for _, i, _ in shown])
    labels = [f"g{n}  {v:.1f}" for n, _, v in shown]
    return "<h3>Best image of each generation (generation, score)</h3>" + _png_image(montage(tiles, labels))


def _trajectory_section(evolution: Evolution) -> str:
    """The trajectory PCA against a random walk, or a sentence saying why it is absent."""
    try:
        signature = trajectory_signature(evolution)
    except AnalysisError as error:
        return f"<h2>Trajectory</h2><p class='note'>No trajectory analysis: {html.escape(str(error))}.</p>"
    count = signature.projections.shape[1]
    figure = Figure(figsize=(10, 1.0 + 1.1 * max(count, 3)), layout="constrained")
    grid = figure.add_gridspec(count, 2, width_ratios=[1, 1.3])
    _plot_spectrum(figure.add_subplot(grid[:, 0]), signature)
    _plot_projections([figure.add_subplot(grid[k, 1]) for k in range(count)], signature, evolution.numbers)
    return f"<h2>Trajectory of the mean code</h2>{_similarity_words(signature)}{_png(figure)}"


def _similarity_words(signature: TrajectoryPCA) -> str:
    """The random-walk similarity stated in words, with what the number means."""
    value = signature.random_walk_similarity
    verdict = (
        "looks like a high-dimensional random walk"
        if value >= 0.8
        else "resembles a random walk only in part"
        if value >= 0.5
        else "does not look like a random walk"
    )
    correlations = ", ".join(f"{c:.2f}" for c in signature.correlation)
    return (
        f"<p class='big'>Random-walk similarity <b>{value:.2f}</b>: the trajectory of the mean code {verdict}.</p>"
        "<p class='note'>Similarity = shape &times; spectrum. Shape "
        f"{signature.shape_similarity:.2f}: mean |correlation| of the first {len(signature.correlation)} principal "
        f"components' projections with cos(πk(t+½)/G), a random walk's components ({correlations}). Spectrum "
        f"{signature.spectrum_similarity:.2f}: 1 &minus; total-variation distance of their explained variance from the "
        "random walk's ~6/(π²k²). For reference, simulated walks give 0.9&ndash;1, a straight drift "
        "about 0.2&ndash;0.3, unrelated points about 0.05.</p>"
    )


def _plot_spectrum(axes: Axes, signature: TrajectoryPCA) -> None:
    """Explained variance ratio per component against the random walk's (log-log)."""
    k = np.arange(1, len(signature.variance_ratio) + 1)
    axes.loglog(k, signature.theory_ratio, "-", color="0.4", label="random walk ≈ 6/(π²k²)")
    axes.loglog(k, signature.variance_ratio, "o", color="C3", ms=4, label="this session")
    axes.set(xlabel="principal component k", ylabel="explained variance ratio", title="Variance per component")
    axes.grid(alpha=0.3, which="both")
    axes.legend(loc="lower left", fontsize=9)


def _plot_projections(axes_list: list[Axes], signature: TrajectoryPCA, numbers: IntArray) -> None:
    """The first K projections (one panel each) with the cosine of k half periods scaled to the same spread."""
    for k, axes in enumerate(axes_list):
        projection, cosine = signature.projections[:, k], signature.cosines[:, k]
        scale = np.std(projection) / max(float(np.std(cosine)), 1e-12)
        axes.plot(numbers, cosine * scale, "-", color="0.5", lw=1.2)
        axes.plot(numbers, projection, "-", color="C3", lw=1.5)
        axes.set_ylabel(f"PC{k + 1}", fontsize=9)
        label = f"r = {signature.correlation[k]:.2f}"
        axes.text(0.99, 0.94, label, transform=axes.transAxes, ha="right", va="top", bbox={"fc": "white", "ec": "0.8"})
        axes.tick_params(labelsize=8)
        _whole_generations(axes)
    axes_list[0].set_title("Projections (red) and cos(πk(t+½)/G) (grey)")
    axes_list[-1].set_xlabel("generation")


# -- embedding ----------------------------------------------------------------------------------------------------
def _png(figure: Figure) -> str:
    """A matplotlib figure as an inline <img> (PNG, base64)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return _img(buffer.getvalue())


def _png_image(image: ImageArray) -> str:
    """A (H, W, 3) uint8 image as an inline <img> (PNG, base64), shown at its own pixel size at most."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="png")
    return _img(buffer.getvalue(), width=image.shape[1])


def _img(png: bytes, *, width: int | None = None) -> str:
    """An <img> element carrying PNG bytes as a data: URL."""
    style = f' style="max-width:min(100%, {width}px)"' if width else ""
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}"{style}>'
