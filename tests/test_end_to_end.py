"""End to end: a real uvicorn server process, the simulated neuron over HTTP, kill -9 and restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evostim import optimizers
from evostim.clients.http.client import Client
from evostim.clients.http.local_server import LocalServer
from evostim.clients.simulation.insilico import run_closed_loop
from evostim.clients.simulation.neurons import CnnUnit, ResponseModel, SimulatedNeuron, UnitSpec
from evostim.generators import ImageGenerator
from evostim.generators.host import generator_host
from evostim.generators.metric import packaged_metric, with_saved_metric
from evostim.optimizers.geometry import project_to_sphere


@pytest.fixture(scope="module")
def neuron(dcgan: ImageGenerator) -> SimulatedNeuron:
    unit = CnnUnit(UnitSpec.parse("onet.conv3.9"))
    calibration = dcgan.decode(np.random.default_rng(11).standard_normal((500, 100)))
    return SimulatedNeuron(unit, ResponseModel.calibrated(unit.activation(calibration)), seed=0)


def local_replay(history: dict[str, Any], generator: ImageGenerator) -> list[np.ndarray]:
    """Re-run the session's optimizer in this process on the stored scores: the codes it proposes."""
    config = history["session"]["config"]
    name, params = config["optimizer"]["name"], config["optimizer"]["params"]
    if params.get("basis") == "dcgan-faces.metric":  # metric-cma on the shipped metric, stored by its name
        metric = packaged_metric("dcgan-faces")
        assert metric is not None
        params = with_saved_metric(params, metric, optimizers.parameter_names(optimizers.lookup(name)))
    host = generator_host(generator.spec, lambda: generator.module)  # the session's generator's metric at a code
    optimizer = optimizers.create_optimizer(
        name, 100, population_size=config["population_size"], seed=config["seed"], host=host, **params
    )
    proposals = []
    for generation in history["generations"]:
        population = optimizer.ask()
        proposals.append(project_to_sphere(population.codes, config["code_norm"]))
        evolved = [s for s in generation["stimuli"] if s["kind"] == "evolved"]
        measured = [(population.ids[s["index"]], s["score"]) for s in evolved if s["score"] is not None]
        if generation["status"] == "closed":
            optimizer.tell([i for i, _ in measured], [score for _, score in measured])
    return proposals


def stored_codes(history: dict[str, Any]) -> list[np.ndarray]:
    return [np.array([s["code"] for s in g["stimuli"] if s["kind"] == "evolved"]) for g in history["generations"]]


def test_a_simulated_neuron_drives_scores_up_and_a_crash_loses_nothing(
    tmp_path: Path, neuron: SimulatedNeuron, dcgan: ImageGenerator
) -> None:
    data = tmp_path / "data"
    server = LocalServer(data).start()
    try:
        with Client(server.url) as client:
            created = client.create_session(seed=3, channels=["unit"], population_size=40, references={"builtin": 4})
            session_id = created["session"]["id"]
            assert created["session"]["config"]["optimizer"]["name"] == "metric-cma"  # dcgan-faces' default
            results = run_closed_loop(
                client, session_id, created["generation"], neuron, channel="unit", generations=8, repetitions=2
            )
            # Scores rise: the last generations' mean is far above the random first generation's.
            first, last = results[0].evolved_mean, np.mean([r.evolved_mean for r in results[-2:]])
            assert last > 1.5 * first, [r.evolved_mean for r in results]
            before_crash = client.history(session_id, codes=True)
            open_manifest = client.generation(session_id)
            assert open_manifest["number"] == 8

            # A rig posts generation 8 and the server dies right after answering.
            posted = {s["id"]: {"unit": [3.0, 4.0]} for s in open_manifest["stimuli"]}
            answer = client.post_responses(session_id, 8, posted, idempotency_key="block-8")
        server.kill()

        server = LocalServer(data).start()
        with Client(server.url) as client:
            # The rig never saw the answer and retries: the stored answer is replayed, nothing doubles.
            assert client.post_responses(session_id, 8, posted, idempotency_key="block-8") == answer
            after = client.history(session_id, codes=True)
            assert after["generations"][:8] == before_crash["generations"][:8]
            assert len(after["generations"]) == 10 and after["generations"][8]["status"] == "closed"
            # The session goes on, and every proposal equals what an uninterrupted optimizer proposes.
            manifest = answer["next"]
            client.post_responses(session_id, 9, {s["id"]: {"unit": [5.0]} for s in manifest["stimuli"]})
            final = client.history(session_id, codes=True)
        for replayed, stored in zip(local_replay(final, dcgan), stored_codes(final), strict=True):
            np.testing.assert_array_equal(replayed, stored)
    finally:
        server.stop()
    assert json.loads(json.dumps(final))["session"]["generation"] == 10


def test_the_demo_prints_a_table_writes_pictures_and_ends_with_the_gain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from evostim.clients.simulation.demo import run_demo

    gain = run_demo(out_dir=tmp_path, unit="onet.conv4.113", generations=3, seed=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith(f"best score gain: {gain:.2f} x (noise-free; between the measured, noisy maxima: ")
    table = [line.split() for line in lines if line.strip()[:1].isdigit()]
    assert [int(row[0]) for row in table] == [0, 1, 2]
    for picture in ("best_per_generation.png", "score_curve.png"):
        assert (tmp_path / picture).read_bytes()[:4] == b"\x89PNG"


def _hide_facenet(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if facenet-pytorch (the MTCNN weights) were not installed."""
    import importlib.util

    from evostim.clients.simulation import neurons

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "facenet_pytorch" else real(name, *a)
    )
    neurons._network.cache_clear()  # networks loaded by earlier tests


def _hide_gan_face_generate(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if gan-face-generate (dcgan-faces' weights) were not installed."""
    import dataclasses

    from evostim import generators

    spec = generators.generator_spec("dcgan-faces")
    assert isinstance(spec.weights, generators.PackageWeights)
    absent = dataclasses.replace(spec, weights=dataclasses.replace(spec.weights, module="evostim_absent_pkg"))
    monkeypatch.setitem(generators.GENERATORS, "dcgan-faces", absent)


def _hide_cma(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if pycma (the pycma optimizer's extra) were not installed."""
    from evostim import extras

    installed = extras.is_installed
    monkeypatch.setattr(extras, "is_installed", lambda module: module != "cma" and installed(module))


@pytest.mark.parametrize(
    ("hide", "argv", "message"),
    [
        (_hide_facenet, [], "evostim demo: simulated MTCNN units need facenet-pytorch: pip install --no-deps"),
        (_hide_gan_face_generate, [], "evostim demo: dcgan-faces needs the package gan-face-generate, which is not"),
        (None, ["--unit", "onet.conv9.1"], "evostim demo: --unit: unknown layer onet.conv9; known: "),
        (None, ["--optimizer", "nope"], "evostim demo: --optimizer: unknown optimizer 'nope'; known: cholesky-cma, "),
        (_hide_cma, ["--optimizer", "pycma"], "evostim demo: --optimizer: the pycma optimizer needs the optional"),
    ],
)
def test_the_demo_without_its_weights_or_with_a_bad_unit_says_so_in_one_line(
    hide: Any, argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evostim.cli import main

    if hide is not None:
        hide(monkeypatch)
    with pytest.raises(SystemExit) as stopped:
        main(["demo", "--out", str(tmp_path), *argv])
    line = str(stopped.value.code)
    assert line.startswith(message) and "\n" not in line


@pytest.mark.parametrize("argv", [["--generations", "0"], ["--repetitions", "-1"], ["--generations", "x"]])
def test_the_demo_refuses_counts_below_one_before_anything_loads(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from evostim.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["demo", *argv])
    assert stopped.value.code == 2
    assert f"argument {argv[0]}: must be " in capsys.readouterr().err


def test_the_demo_says_in_one_line_why_the_server_refused_its_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evostim.cli import main
    from evostim.clients.http.errors import InternalError, InvalidSessionConfig
    from evostim.clients.simulation import demo

    def refused(**options: Any) -> None:
        raise InvalidSessionConfig(422, {"title": "Unprocessable Entity", "detail": "momentum must be in [0, 1)"})

    monkeypatch.setattr(demo, "run_demo", refused)
    with pytest.raises(SystemExit) as stopped:
        main(["demo", "--out", str(tmp_path)])
    assert str(stopped.value.code) == (
        "evostim demo: the server refused: 422 Unprocessable Entity: momentum must be in [0, 1)"
    )

    def failed(**options: Any) -> None:
        raise InternalError(500, {"title": "Internal Server Error", "detail": "a bug"})

    monkeypatch.setattr(demo, "run_demo", failed)
    with pytest.raises(InternalError):  # a server's bug is not a refusal: its traceback stays
        main(["demo", "--out", str(tmp_path)])
