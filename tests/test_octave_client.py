"""The MATLAB client (clients/matlab), run for real by GNU Octave against a real server."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from evostim.clients.http.client import Client
from evostim.clients.http.local_server import LocalServer

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    shutil.which("octave") is None, reason="GNU Octave is not installed here (.ci/run installs the Debian package)"
)


def test_an_octave_rig_runs_three_generations_with_three_channels_and_a_safe_retry(tmp_path: Path) -> None:
    out = tmp_path / "rig.json"
    with LocalServer(tmp_path / "data") as server:
        script = f'addpath("{ROOT / "clients" / "rig" / "matlab"}"); evostim_demo_rig("{server.url}", 3, "{out}")'
        done = subprocess.run(
            ["octave", "--no-gui", "--quiet", "--eval", script], capture_output=True, text=True, timeout=240
        )
        assert done.returncode == 0, done.stdout + done.stderr
        seen = json.loads(out.read_text())
        assert seen["accepted"] == [7, 7, 7] and seen["image_size"] == 64
        with Client(server.url) as client:
            history = client.history(seen["session"])
    generations = history["generations"]
    assert [g["status"] for g in generations] == ["closed", "closed", "closed", "open"]
    for generation in generations[:3]:
        measured = [s for s in generation["stimuli"] if s["counts"] is not None]
        assert len(measured) == 7  # 8 shown, the first aborted; the re-posted block counted once
        assert all(set(s["counts"]) == {"ch1", "ch2", "ch3"} and len(s["counts"]["ch3"]) == 4 for s in measured)
        assert all(s["counts"]["ch1"][1] - s["counts"]["ch1"][0] == 1 for s in measured)  # values kept per repetition
