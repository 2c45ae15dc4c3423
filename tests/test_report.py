"""The HTML report: one self-contained file whose figures and images are inline PNGs that decode."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from evostim.clients.analysis.evolution import Evolution, best_per_generation
from evostim.clients.analysis.report import ReportImages, write_report
from tests.test_analysis import random_walk, synthetic_history

DATA_PNG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def inline_pngs(text: str) -> list[Image.Image]:
    images: list[Image.Image] = []
    for payload in DATA_PNG.findall(text):
        image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
        image.load()
        images.append(image)
    return images


def tiles(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 64, 64, 3), dtype=np.uint8)


def test_the_report_is_one_self_contained_file_with_every_figure_and_image_inline(tmp_path: Path) -> None:
    evolution = Evolution.from_history(synthetic_history(random_walk(12, 50, seed=0)))
    best = best_per_generation(evolution)
    images = ReportImages(
        best={i: tile for i, tile in zip(best.ids, tiles(12, 1), strict=True) if i is not None},
        mean_code=tiles(12, 2),
    )
    path = write_report(evolution, tmp_path / "report.html", images=images, title="Beto <ch 12>")

    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    text = path.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert not re.search(r'(src|href)="(?!data:)', text) and "<link" not in text and "<script" not in text
    assert "Beto &lt;ch 12&gt;" in text and "s_synthetic" in text and "cholesky-cma" in text
    assert "Random-walk similarity <b>" in text
    pngs = inline_pngs(text)
    # scores, optimizer step size, best-image montage, mean-code montage, trajectory PCA
    assert len(pngs) == text.count("<img") == 5
    montages = [p for p in pngs if p.width == 10 * 128]  # 12 tiles of 64 px, doubled, 10 to a row
    assert len(montages) == 2 and all(p.height > 2 * 128 for p in montages)


def test_the_report_says_what_is_missing_when_there_are_no_codes_scores_or_images(tmp_path: Path) -> None:
    history = synthetic_history(random_walk(3, 5, seed=0), codes=False)
    for generation in history["generations"]:
        generation["optimizer"] = None
        for stimulus in generation["stimuli"]:
            stimulus["score"] = stimulus["counts"] = None
    text = write_report(Evolution.from_history(history), tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "No generation has been scored yet" in text
    assert "no latent codes" in text
    assert "<img" not in text


def test_every_generation_axis_ticks_whole_generations_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evostim.clients.analysis import report

    figures: list[Figure] = []
    embed = report._png

    def kept(figure: Figure) -> str:
        figures.append(figure)
        return embed(figure)

    monkeypatch.setattr(report, "_png", kept)
    evolution = Evolution.from_history(synthetic_history(random_walk(4, 50, seed=0)))  # 0.5 ticks by default
    write_report(evolution, tmp_path / "report.html", title="short")
    axes = [a for f in figures for a in f.axes if a.get_xlabel() == "generation" or a.get_ylabel().startswith("PC")]
    assert len(axes) >= 3  # the scores, the optimizer's step size and the trajectory's projections
    for each in axes:
        ticks = [t for t in each.get_xticks() if each.get_xlim()[0] <= t <= each.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), (each.get_xlabel(), ticks)
