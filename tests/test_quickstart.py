"""The README's quick start runs as written: its Python cells, taken from the README itself, executed one after the
other in an empty folder, make a session, a calibrated simulated neuron, 15 generations, a DataFrame, a plot and a
montage."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Quick start: a session from a notebook"


def quickstart_cells() -> list[str]:
    """The fenced Python blocks of the README's quick-start section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```python\n(.*?)^```", section, flags=re.DOTALL | re.MULTILINE)


def test_the_readme_quick_start_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display here; a notebook draws inline
    cells = quickstart_cells()
    assert len(cells) == 4
    monkeypatch.chdir(tmp_path)  # an empty folder, as a newcomer's
    namespace: dict[str, Any] = {"__name__": "__quickstart__"}
    try:
        for cell in cells:
            exec(compile(cell, str(README), "exec"), namespace)  # the README's own code
    finally:
        server = namespace.get("server")
        if server is not None:
            server.kill()  # a cell that failed leaves no server behind (stopped already when all ran)
    results, frame, best = namespace["results"], namespace["frame"], namespace["best"]
    assert [r.number for r in results] == list(range(15))
    assert sorted(frame["generation"].unique()) == list(range(15)) and set(frame["kind"]) == {"evolved", "reference"}
    assert list(best.generations) == list(range(15)) and best.images.shape[1:] == (64, 64, 3)
    for name in ("scores.png", "best.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert namespace["neuron"].calibration.images == 1000


def test_a_calibrated_neuron_is_the_one_the_demo_built_by_hand() -> None:
    import numpy as np

    from evostim.clients.simulation import SimulatedNeuron
    from evostim.clients.simulation.neurons import CnnUnit, ResponseModel, UnitSpec
    from evostim.generators import load_generator

    neuron = SimulatedNeuron.calibrated("onet.conv4.113", seed=3, noise="negbin:1.5")
    unit = CnnUnit(UnitSpec.parse("onet.conv4.113"))
    generator = load_generator("dcgan-faces", "cpu")
    images = generator.decode(np.random.default_rng(10_003).standard_normal((1000, generator.latent_dim)))
    model = ResponseModel.calibrated(unit.activation(images), noise="negbin:1.5")
    assert neuron.model == model
    by_hand = SimulatedNeuron(unit, model, seed=3)
    np.testing.assert_array_equal(neuron.respond(images[:8], 3), by_hand.respond(images[:8], 3))
    assert neuron.calibration is not None
    assert neuron.calibration.best_expected == float(model.expected(unit.activation(images)).max())
    with pytest.raises(ValueError, match="drifts over the session: give its planned generations"):
        SimulatedNeuron.calibrated(noise="recorded")
