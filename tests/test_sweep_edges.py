"""The edges of ``evostim sweep`` a user meets: a unit the network lacks is refused before anything starts, every
worker gets work, the calibration shows its progress, Ctrl-C says what was saved, a worker's exception is one line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evostim.cli import main as evostim
from evostim.clients.sweeps import sweep
from evostim.clients.sweeps.grid import SweepConfig, validated
from evostim.clients.sweeps.panels import CnnPanel, calibrate
from evostim.clients.sweeps.results import read_rows, write_task

GRID: dict[str, Any] = {
    "units": ["onet.conv3.9"],
    "optimizers": ["ga", "cholesky-cma"],
    "seeds": 4,
    "noise": ["0.2", "poisson"],
    "generations": 2,
    "population": 8,
    "random_codes": 100,
}  # 16 runs


@pytest.mark.parametrize(
    ("unit", "said"),
    [
        ("onet.conv3.99", "onet.conv3 has 64 channels, 0..63"),
        ("rnet.dense4.128", "rnet.dense4 has 128 units, 0..127"),
    ],
)
def test_a_unit_the_network_lacks_is_refused_before_anything_starts(
    unit: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import ray

    with pytest.raises(SystemExit) as refused:
        evostim(["sweep", "--units", f"onet.conv3.9,{unit}", "--out", str(tmp_path / "out"), "--seeds", "1"])
    assert str(refused.value) == f"evostim sweep: units: unit {unit}: {said}"
    assert not (tmp_path / "out").exists() and not ray.is_initialized()
    assert "sweep:" not in capsys.readouterr().out  # refused before the grid was announced


@pytest.mark.parametrize(("missing", "options"), [("ray", []), ("pyarrow", ["--workers", "0"])])
def test_a_sweep_without_its_extra_is_refused_in_one_line_before_anything_is_calibrated_or_written(
    missing: str,
    options: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from evostim.extras import is_installed

    def hidden(module: str) -> bool:
        return module != missing and is_installed(module)

    monkeypatch.setattr("evostim.clients.sweeps.sweep.is_installed", hidden)
    with pytest.raises(SystemExit) as refused:
        evostim(["sweep", "--units", "onet.conv3.9", "--out", str(tmp_path / "out"), "--seeds", "1", *options])
    assert str(refused.value) == (
        f"evostim sweep: a sweep needs the optional package '{missing}', which is not installed: "
        "pip install 'evostim[sweep]'"
    )
    assert not (tmp_path / "out").exists() and capsys.readouterr().out == ""


def test_a_units_position_is_checked_against_its_map() -> None:
    assert validated({"units": ["onet.conv4.1@2,0"]}).units == ["onet.conv4.1@2,0"]
    with pytest.raises(ValueError, match=r"^units: unit onet.conv4.1@3,0: onet.conv4's map is 3x3, positions 0..2$"):
        validated({"units": ["onet.conv4.1@3,0"]})
    with pytest.raises(ValueError, match=r"onet.dense5 is a dense layer, without positions; name it onet.dense5.1"):
        validated({"units": ["onet.dense5.1@0,0"]})


def test_a_synthetic_unit_is_checked_by_its_name() -> None:
    assert validated({"panel": "synthetic", "units": ["bump0.k8", "bump4.k16"]}).units == ["bump0.k8", "bump4.k16"]
    with pytest.raises(ValueError, match=r"units: unknown synthetic units \['bump4.k8'\]; they are named like"):
        validated({"panel": "synthetic", "units": ["bump4.k8"]})


@pytest.mark.parametrize(
    ("runs", "size", "workers", "sizes"),
    [(16, 16, 2, [8, 8]), (16, 16, 1, [16]), (16, 7, 2, [7, 7, 2]), (5, 16, 8, [1, 1, 1, 1, 1]), (3, 16, 0, [3])],
)
def test_tasks_keep_every_worker_busy(runs: int, size: int, workers: int, sizes: list[int]) -> None:
    specs = SweepConfig.model_validate(GRID).specs()[:runs]
    tasks = sweep._tasks(specs, size, workers)
    assert [len(task) for task in tasks] == sizes and [s for task in tasks for s in task] == specs


def test_the_calibration_shows_its_progress_and_gives_what_one_pass_gives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = SweepConfig.model_validate({**GRID, "seeds": 1, "noise": ["0.2"], "random_codes": 2500})
    sweep.run_sweep(config, tmp_path, workers=0, progress=True)
    printed = capsys.readouterr().err
    assert re.search(r"calibrating: 100%.*2500/2500", printed) and "sweep: 100%" in printed
    maxima, gains = calibrate(CnnPanel(config.units), 2500)  # the whole pass at once, as before the blocks
    stored = json.loads((tmp_path / "calibration.json").read_text())["units"]["onet.conv3.9"]
    assert stored == [float(maxima[0]), float(gains[0])]


def test_ctrl_c_says_what_was_saved_and_how_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(json.dumps({**GRID, "runs_per_task": 5}))
    written = write_task

    def interrupted_after_the_first_task(out: Path, results: list[Any]) -> None:
        written(out, results)
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "write_task", interrupted_after_the_first_task)
    with pytest.raises(SystemExit) as stopped:
        evostim(["sweep", str(grid), "--out", str(tmp_path / "out"), "--workers", "0"])
    assert stopped.value.code == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"evostim sweep: interrupted: 5 of 16 runs are saved in {tmp_path / 'out'}; run the same command " \
                  "again to resume"  # fmt: skip
    assert "Traceback" not in err
    monkeypatch.setattr(sweep, "write_task", written)
    assert sweep.run_sweep(SweepConfig.from_file(grid), tmp_path / "out", workers=0, progress=False) == 11


@pytest.fixture
def local_ray() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_sixteen_runs_on_two_workers_run_as_two_tasks_and_a_workers_exception_is_one_line(
    tmp_path: Path, local_ray: None
) -> None:
    config = SweepConfig.model_validate(GRID)
    assert config.runs_per_task == 16
    assert sweep.run_sweep(config, tmp_path, workers=2, progress=False) == 16
    tasks = [path.stem for path in (tmp_path / "runs").glob("*.parquet")]
    assert sorted(len(read_rows(tmp_path / "runs", {task})) for task in tasks) == [8, 8]
    maxima, gains = calibrate(CnnPanel(config.units), 100)
    stored = json.loads((tmp_path / "calibration.json").read_text())["units"]["onet.conv3.9"]
    np.testing.assert_allclose(stored, [maxima[0], gains[0]], rtol=1e-12)

    pool = sweep._RayPool(config, None, 2)
    try:
        with pytest.raises(sweep.SweepFailed) as failed:
            list(pool.map([config.specs()[:1]], {}))  # no gain for the unit: a KeyError in the worker
    finally:
        pool.close()
    assert str(failed.value) == "a sweep worker failed: KeyError: 'onet.conv3.9'"
    assert "\x1b" not in str(failed.value) and not isinstance(failed.value, KeyError)
