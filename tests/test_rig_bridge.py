"""The file bridge against a real server: a rig that only reads and writes files runs a session; crashes of the
bridge between post and acknowledgement never count a generation twice."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evostim.clients.http.client import Client
from evostim.clients.http.errors import SessionNotRunning, ValidationError
from evostim.clients.http.local_server import LocalServer
from evostim.clients.rig import bridge as rig_bridge
from evostim.clients.rig.bridge import ERROR_FILE, STATUS_FILE, RigBridge, write_atomically

ROOT = Path(__file__).resolve().parents[1]


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


def test_the_folder_says_when_the_session_is_stopped_resumed_and_finished(server: LocalServer, tmp_path: Path) -> None:
    def status() -> dict[str, Any]:
        return dict(json.loads((tmp_path / STATUS_FILE).read_text()))

    with Client(server.url) as client:
        session_id = client.create_session(population_size=4, max_generations=2, seed=6)["session"]["id"]
        bridge = RigBridge(client, session_id, tmp_path, server_poll_seconds=0.0)
        assert bridge.step() and status()["status"] == "running" and status()["generation"] == 0
        client.stop(session_id)
        assert bridge.step()  # a stopped session: the bridge keeps watching, and the rig is told
        assert status()["status"] == "stopped" and "resumed" in status()["detail"]
        client.resume(session_id)
        assert bridge.step() and status()["status"] == "running"
        rig_answers(tmp_path, 0, ["ch0"])
        assert bridge.step() and status() | {"time": None} == {
            "session": session_id, "status": "running", "generation": 1, "time": None,
            "detail": "the session is running: wait for the next generation's manifest.json",
        }  # fmt: skip
        rig_answers(tmp_path, 1, ["ch0"])
        assert not bridge.step()  # generation 1 was the last
        assert status()["status"] == "finished" and status()["generation"] == 1
        assert "no more generations" in status()["detail"]


def test_a_file_posted_just_as_the_session_is_stopped_is_posted_as_it_is_after_the_resume(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client(server.url) as client:
        session_id = client.create_session(population_size=4, seed=8)["session"]["id"]
        bridge = RigBridge(client, session_id, tmp_path, server_poll_seconds=0.0)
        assert bridge.step()
        running = client.session(session_id)
        client.stop(session_id)  # elsewhere, after the bridge's look at the server and before its post
        real_session = client.session
        monkeypatch.setattr(client, "session", lambda sid: running)
        rig_answers(tmp_path, 0, ["ch0"])
        with pytest.raises(SessionNotRunning) as refused:
            bridge.step()
        bridge._report(refused.value, 1, 0.1, 1.0)  # what run() does with it
        report = json.loads((tmp_path / ERROR_FILE).read_text())
        assert report["action"] == "none" and report["file"] is None  # not the rig's fault: nothing to rewrite
        monkeypatch.setattr(client, "session", real_session)
        assert bridge.step() and json.loads((tmp_path / STATUS_FILE).read_text())["status"] == "stopped"
        client.resume(session_id)
        assert bridge.step()  # the same file, posted now
        assert client.session(session_id)["generation"] == 1 and (tmp_path / "gen_0001" / "manifest.json").is_file()


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


# -- errors: the bridge writes error.json for the rig and keeps running -----------------------------------------
def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def error_report(folder: Path) -> dict[str, Any] | None:
    try:
        report: dict[str, Any] = json.loads((folder / ERROR_FILE).read_text())
    except FileNotFoundError:
        return None
    return report


class Running:
    """A bridge's run loop in a thread, stopped on exit."""

    def __init__(self, bridge: RigBridge, **options: Any) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=bridge.run, kwargs={"poll_seconds": 0.02, "stop": self.stop, **options})

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def test_a_bad_responses_file_is_reported_to_the_rig_and_a_rewritten_one_is_posted(
    server: LocalServer, tmp_path: Path
) -> None:
    with Client(server.url) as client:
        session_id = client.create_session(population_size=4, seed=7, references={"builtin": 0})["session"]["id"]
        with Running(RigBridge(client, session_id, tmp_path)) as running:
            wait_for(lambda: (tmp_path / "gen_0000" / "manifest.json").is_file())
            write_atomically(tmp_path / "gen_0000" / "responses.json", b'{"responses": [{"stimulus": ')
            wait_for(lambda: error_report(tmp_path) is not None)
            report = error_report(tmp_path)
            assert report is not None and report["action"] == "rig" and report["generation"] == 0
            assert report["file"] == "gen_0000/responses.json" and "Invalid JSON" in report["detail"]
            assert report["problem"]["type"] == "/problems/validation-error" and report["problem"]["status"] == 422
            assert running.thread.is_alive() and client.session(session_id)["generation"] == 0

            (tmp_path / ERROR_FILE).unlink()  # what evostim_bridge_respond does before writing again
            rig_answers(tmp_path, 0, ["ch0"])
            wait_for(lambda: (tmp_path / "gen_0001" / "manifest.json").is_file())
            assert error_report(tmp_path) is None
        assert client.session(session_id)["generation"] == 1


def test_a_wrong_channel_is_reported_once_and_not_posted_again_until_the_file_changes(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client(server.url) as client:
        session_id = client.create_session(population_size=4, seed=8, channels=["ch1"])["session"]["id"]
        posts: list[int] = []
        real_post = client.post_responses

        def counting_post(*args: Any, **kwargs: Any) -> dict[str, Any]:
            posts.append(args[1])
            return real_post(*args, **kwargs)

        monkeypatch.setattr(client, "post_responses", counting_post)
        with Running(RigBridge(client, session_id, tmp_path)):
            wait_for(lambda: (tmp_path / "gen_0000" / "manifest.json").is_file())
            rig_answers(tmp_path, 0, ["ch7"])  # a channel the session does not record
            wait_for(lambda: error_report(tmp_path) is not None)
            report = error_report(tmp_path)
            assert report is not None and report["action"] == "rig"
            assert report["problem"]["type"] == "/problems/invalid-responses" and "ch7" in report["detail"]
            time.sleep(0.3)  # many polls
            assert posts == [0]  # refused once, not re-posted while the file stays as it is
            assert error_report(tmp_path) == report  # and the rig is still told why

            rig_answers(tmp_path, 0, ["ch1"])
            wait_for(lambda: (tmp_path / "gen_0001" / "manifest.json").is_file())
            wait_for(lambda: error_report(tmp_path) is None)
        assert posts == [0, 0]


def test_an_unknown_session_is_reported_for_the_operator_and_the_bridge_keeps_running(
    server: LocalServer, tmp_path: Path
) -> None:
    with Client(server.url) as client, Running(RigBridge(client, "s_0000000000000000", tmp_path), max_backoff=0.1) as r:
        wait_for(lambda: error_report(tmp_path) is not None)
        report = error_report(tmp_path)
        assert report is not None and report["action"] == "operator" and report["generation"] is None
        assert report["problem"]["type"] == "/problems/session-not-found"
        time.sleep(0.3)
        assert r.thread.is_alive()


def test_a_refused_connection_is_retried_with_backoff_until_the_server_is_back(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", tmp_path / "rig"
    first = LocalServer(data)
    with first, Client(first.url) as client:
        session_id = client.create_session(population_size=4, seed=9)["session"]["id"]
    # the server is down now: nothing listens on its port
    with Client(first.url, retries=0) as client, Running(RigBridge(client, session_id, folder), max_backoff=0.2):
        wait_for(lambda: error_report(folder) is not None)
        report = error_report(folder)
        assert report is not None and report["action"] == "none"
        assert report["problem"]["type"] == "/problems/server-unreachable" and "ConnectError" in report["detail"]
        assert 0 < report["retry_in_s"] <= 0.2
        with LocalServer(data, port=first.port):  # back, on the same port and database
            wait_for(lambda: (folder / "gen_0000" / "manifest.json").is_file(), timeout=60)
            wait_for(lambda: error_report(folder) is None)


# -- polling: the folder often, the server rarely ---------------------------------------------------------------
def test_while_the_rig_has_written_nothing_the_bridge_looks_at_the_folder_not_the_server(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client(server.url) as client:
        session_id = client.create_session(population_size=4, seed=11, references={"builtin": 0})["session"]["id"]
        asked: list[str] = []

        def counted(name: str) -> Callable[..., dict[str, Any]]:
            real: Callable[..., dict[str, Any]] = getattr(client, name)

            def call(*args: Any, **kwargs: Any) -> dict[str, Any]:
                asked.append(name)
                return real(*args, **kwargs)

            return call

        for name in ("session", "generation"):
            monkeypatch.setattr(client, name, counted(name))
        with Running(RigBridge(client, session_id, tmp_path, server_poll_seconds=0.4)):
            wait_for(lambda: (tmp_path / "gen_0000" / "manifest.json").is_file())
            time.sleep(1.0)  # 50 looks at the folder
            idle = len(asked)
            assert idle <= 8, asked  # the first pass, then the session every 0.4 s (was 2 requests per look: 100)
            rig_answers(tmp_path, 0, ["ch0"])
            wait_for(lambda: (tmp_path / "gen_0001" / "manifest.json").is_file(), timeout=5)  # posted at once
            client.stop(session_id)  # elsewhere, e.g. on the dashboard: noticed at the next look at the server
            rig_answers(tmp_path, 1, ["ch0"])
            time.sleep(1.0)
            assert client.session(session_id)["generation"] == 1 and not (tmp_path / "gen_0002").exists()
            client.resume(session_id)
            wait_for(lambda: (tmp_path / "gen_0002" / "manifest.json").is_file(), timeout=5)


def test_evostim_rig_logs_its_own_lines_not_one_per_request(server: LocalServer, tmp_path: Path) -> None:
    with Client(server.url) as client:
        session_id = client.create_session(population_size=4, seed=12, max_generations=1)["session"]["id"]
    command = [sys.executable, "-m", "evostim", "rig", "--watch", str(tmp_path), "--session", session_id]
    command += ["--server", server.url, "--poll", "0.05", "--server-poll", "0.5"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as bridge:
        try:
            wait_for(lambda: (tmp_path / "gen_0000" / "manifest.json").is_file())
            time.sleep(1.5)  # idle: 30 looks at the folder
            rig_answers(tmp_path, 0, ["ch0"])
            out, err = bridge.communicate(timeout=60)
        finally:
            bridge.kill()
    assert bridge.returncode == 0 and out.splitlines()[-1] == "the session finished", out + err
    assert "HTTP Request" not in err and "httpx" not in err, err


@pytest.mark.skipif(shutil.which("octave") is None, reason="GNU Octave is not installed here (.ci/run installs it)")
def test_an_octave_rig_raises_on_the_bridges_error_file_and_goes_on_after_rewriting(
    server: LocalServer, tmp_path: Path
) -> None:
    folder, out = tmp_path / "rig", tmp_path / "seen.json"
    script = f"""
addpath("{ROOT / "clients" / "rig" / "matlab"}");
folder = "{folder}";
m = evostim_bridge_wait(folder, 0, 60);
ids = {{m.stimuli.id}};
bad = cellfun(@(id) sprintf('{{"stimulus": "%s", "counts": {{"ch9": [4, 5]}}}}', id), ids, 'UniformOutput', false);
evostim_bridge_respond(folder, 0, ['{{"responses": [' strjoin(bad, ', ') ']}}']);
raised = struct('identifier', '', 'message', '');
try
  evostim_bridge_wait(folder, 1, 60);
catch err
  raised = struct('identifier', err.identifier, 'message', err.message);
end
good = cellfun(@(id) sprintf('{{"stimulus": "%s", "counts": {{"ch0": [4, 5]}}}}', id), ids, 'UniformOutput', false);
evostim_bridge_respond(folder, 0, ['{{"responses": [' strjoin(good, ', ') ']}}']);
next = evostim_bridge_wait(folder, 1, 60);
evostim_bridge_respond(folder, 1, ['{{"responses": [' strjoin(strrep(good, 'g0-', 'g1-'), ', ') ']}}']);
ended = evostim_bridge_wait(folder, 2, 60);
fid = fopen("{out}", 'w');
fwrite(fid, jsonencode(struct('raised', raised, 'next', next.number, 'images', numel(next.stimuli), ...
                              'status', next.status, 'ended', ended.status, 'left', numel(ended.stimuli))));
fclose(fid);
"""
    with Client(server.url) as client:
        session_id = client.create_session(population_size=4, seed=10, references={"builtin": 0}, max_generations=2)[
            "session"
        ]["id"]
        with Running(RigBridge(client, session_id, folder)):
            done = subprocess.run(
                ["octave", "--no-gui", "--quiet", "--eval", script], capture_output=True, text=True, timeout=240
            )
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(out.read_text())
    assert seen["raised"]["identifier"] == "evostim:bridge"
    assert "the bridge needs the rig to act" in seen["raised"]["message"] and "ch9" in seen["raised"]["message"]
    assert seen["next"] == 1 and seen["images"] == 4 and seen["status"] == "running"
    assert seen["ended"] == "finished" and seen["left"] == 0  # returned on status.json, not after a timeout
