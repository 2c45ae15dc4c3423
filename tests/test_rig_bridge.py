"""The file bridge against a real server: a rig that only reads and writes files runs a session; crashes of the
bridge between post and acknowledgement never count a generation twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from evostim.clients import rig_bridge
from evostim.clients.client import Client
from evostim.clients.errors import ValidationError
from evostim.clients.local_server import LocalServer
from evostim.clients.rig_bridge import RigBridge, write_atomically


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(Path(tmp_path_factory.mktemp("rig-data"))) as running:
        yield running


def rig_answers(folder: Path, number: int, channels: list[str]) -> None:
    """What a rig does: read the manifest, show the images in order, write all counts at once (one trial aborted)."""
    manifest = json.loads((folder / f"gen_{number:04d}" / "manifest.json").read_text())
    assert manifest["number"] == number and len(manifest["order"]) == len(manifest["stimuli"])
    assert all((folder / f"gen_{number:04d}" / s["file"]).stat().st_size > 100 for s in manifest["stimuli"])
    shown = manifest["order"][1:]  # the first trial was aborted
    body = {"responses": [{"stimulus": s, "counts": {ch: [float(i % 7), 2.0, 3.0, 4.0] for ch in channels}}
                          for i, s in enumerate(shown)]}  # fmt: skip
    write_atomically(folder / f"gen_{number:04d}" / "responses.json", json.dumps(body).encode())


def test_a_file_rig_runs_a_session_and_a_crashed_bridge_never_double_posts(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channels = ["ch1", "ch2", "ch3"]
    with Client(server.url) as client:
        session_id = client.create_session(
            population_size=6, channels=channels, max_generations=4, seed=2, references={"builtin": 2}
        )["session"]["id"]
        bridge = RigBridge(client, session_id, tmp_path)
        assert bridge.step()  # publishes generation 0
        for number in range(2):
            rig_answers(tmp_path, number, channels)
            assert bridge.step()
            assert json.loads((tmp_path / f"gen_{number:04d}" / "accepted.json").read_text())["measured"] == 7

        # The bridge crashes after posting generation 2, before acknowledging it.
        rig_answers(tmp_path, 2, channels)
        real_write = rig_bridge.write_atomically

        def crash_on_ack(path: Path, data: bytes) -> None:
            if path.name == "accepted.json":
                raise KeyboardInterrupt("the bridge process dies here")
            real_write(path, data)

        monkeypatch.setattr(rig_bridge, "write_atomically", crash_on_ack)
        with pytest.raises(KeyboardInterrupt):
            bridge.step()
        monkeypatch.setattr(rig_bridge, "write_atomically", real_write)

        restarted = RigBridge(client, session_id, tmp_path)  # a new bridge process
        assert restarted.step()  # publishes generation 3, does not post 2 again
        assert (tmp_path / "gen_0003" / "manifest.json").is_file()
        rig_answers(tmp_path, 3, channels)
        assert not restarted.step()  # generation 3 was the last: the session finished

        history = client.history(session_id)
        assert [g["number"] for g in history["generations"]] == [0, 1, 2, 3]
        for generation in history["generations"]:
            measured = [s for s in generation["stimuli"] if s["counts"] is not None]
            assert len(measured) == 7  # 8 stimuli, one aborted, each counted once
            assert all(len(s["counts"]["ch2"]) == 4 for s in measured)


def test_the_bridge_runs_until_the_session_finishes_with_a_rig_in_another_thread(
    server: LocalServer, tmp_path: Path
) -> None:
    with Client(server.url) as client:
        session_id = client.create_session(population_size=4, max_generations=3, seed=5)["session"]["id"]

        def rig() -> None:
            for number in range(3):
                manifest = tmp_path / f"gen_{number:04d}" / "manifest.json"
                for _ in range(600):
                    if manifest.is_file():
                        break
                    threading.Event().wait(0.05)
                rig_answers(tmp_path, number, ["ch0"])

        thread = threading.Thread(target=rig)
        thread.start()
        RigBridge(client, session_id, tmp_path).run(poll_seconds=0.05)
        thread.join(timeout=30)
        assert client.session(session_id)["status"] == "finished"
        assert not list(tmp_path.glob(".*partial*"))  # no half-written files left behind


def test_the_rigs_baselines_reach_the_server_and_a_bad_file_is_never_posted(
    server: LocalServer, tmp_path: Path
) -> None:
    with Client(server.url) as client:
        session_id = client.create_session(
            population_size=4,
            seed=6,
            references={"builtin": 0},
            response={"unit": "count", "window_ms": 200, "baseline_window_ms": 100},
            objective={"weights": {"ch0": 1}, "subtract_baseline": True},
        )["session"]["id"]
        bridge = RigBridge(client, session_id, tmp_path)
        assert bridge.step()
        folder = tmp_path / "gen_0000"
        order = json.loads((folder / "manifest.json").read_text())["order"]

        bad = {"responses": [{"stimulus": s, "counts": {"ch0": [3.0]}, "baseline": {"ch0": [-1.0]}} for s in order]}
        write_atomically(folder / "responses.json", json.dumps(bad).encode())
        with pytest.raises(ValidationError) as raised:
            bridge.step()
        assert "baseline" in raised.value.detail and raised.value.detail.startswith("not sent")
        assert client.session(session_id)["generation"] == 0 and not (folder / "accepted.json").exists()

        body = {"responses": [{"stimulus": s, "counts": {"ch0": [10.0, 12.0]}, "baseline": {"ch0": [float(i), 0.0]}}
                              for i, s in enumerate(order)]}  # fmt: skip
        write_atomically(folder / "responses.json", json.dumps(body).encode())
        assert bridge.step()
        stored = {s["id"]: s for s in client.history(session_id)["generations"][0]["stimuli"]}
        for i, stimulus in enumerate(order):
            assert stored[stimulus]["baseline"] == {"ch0": [float(i), 0.0]}
            assert stored[stimulus]["score"] == 55.0 - 5.0 * i  # 11 / 0.2 s minus (i / 2) / 0.1 s
        assert json.loads((folder / "accepted.json").read_text())["evolved_max"] == 55.0
