"""The sweep engine: batched runs equal runs alone, Ray workers equal one process, resume skips finished runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from evostim.cli import main as evostim
from evostim.clients.sweeps.engine import RunResult, evolve
from evostim.clients.sweeps.panels import CnnPanel
from evostim.clients.sweeps.sweep import SweepConfig, ratio_ci, run_sweep, summarize
from evostim.generators.metric import packaged_metric

GRID: dict[str, Any] = {
    "units": ["onet.conv3.9", "rnet.dense4.3"],
    "optimizers": ["cholesky-cma", "ga", {"name": "sphere-cma", "label": "sphere", "params": {"learning_rate": 1.0}}],
    "seeds": 2,
    "noise": ["0.2", "poisson"],
    "generations": 3,
    "population": 8,
    "random_codes": 100,
    "runs_per_task": 7,
}


@pytest.fixture(scope="module")
def panel() -> CnnPanel:
    return CnnPanel(GRID["units"])


def _values(result: RunResult) -> tuple[list[float], ...]:
    return result.best_clean, result.best_observed, result.best_clean_seen, result.mean_observed


def _runs(out: Path) -> dict[str, dict[str, Any]]:
    rows = [row for path in sorted((out / "runs").glob("*.parquet")) for row in pq.read_table(path).to_pylist()]
    return {row["key"]: row for row in rows}


def test_runs_stepped_together_give_exactly_what_each_gives_alone(panel: CnnPanel) -> None:
    specs = SweepConfig.model_validate(GRID).specs()
    gains = {unit: 0.5 for unit in GRID["units"]}
    together = evolve(panel, specs, gains)
    for spec, result in zip(specs, together, strict=True):
        (alone,) = evolve(panel, [spec], gains)
        assert _values(alone) == _values(result), spec  # bit for bit (fp32 on the CPU)
        assert len(result.best_clean) == 3 and result.best_clean_seen[-1] >= result.best_clean[-1]


@pytest.fixture
def local_ray() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_a_sweep_on_two_ray_workers_gives_the_results_of_the_runs_one_by_one(
    tmp_path: Path, panel: CnnPanel, local_ray: None
) -> None:
    config = SweepConfig.model_validate(GRID)
    assert run_sweep(config, tmp_path, workers=2, progress=False) == 24
    runs = _runs(tmp_path)
    assert len(runs) == 24 and len(list((tmp_path / "runs").glob("*.parquet"))) == 4  # 24 runs in tasks of 7
    gains = {unit: gain for unit, (_, gain) in _calibration(tmp_path).items()}
    for spec in config.specs():
        (alone,) = evolve(panel, [spec], gains)
        row = runs[spec.key]
        assert (row["best_clean"], row["best_observed"]) == (alone.best_clean[-1], alone.best_observed[-1]), spec
    generations = [
        row for path in (tmp_path / "generations").glob("*.parquet") for row in pq.read_table(path).to_pylist()
    ]
    assert len(generations) == 24 * 3 and {row["evaluations"] for row in generations} == {8, 16, 24}


def _calibration(out: Path) -> dict[str, tuple[float, float]]:
    import json

    return {unit: (m, g) for unit, (m, g) in json.loads((out / "calibration.json").read_text())["units"].items()}


def test_an_interrupted_sweep_resumes_where_it_stopped_and_a_grown_one_runs_only_the_new_runs(tmp_path: Path) -> None:
    first = SweepConfig.model_validate({**GRID, "seeds": [0]})
    assert run_sweep(first, tmp_path, workers=0, progress=False) == 12
    kept = sorted((tmp_path / "runs").glob("*.parquet"))
    lost = kept.pop()  # the task that was running when the sweep was interrupted: never written
    lost_keys = set(_runs_of(lost))
    lost.unlink()
    before = {path: path.read_bytes() for path in kept}
    assert run_sweep(first, tmp_path, workers=0, progress=False) == len(lost_keys)
    assert all(path.read_bytes() == data for path, data in before.items())  # finished runs were not run again
    grown = SweepConfig.model_validate(GRID)  # seeds 0 and 1
    assert run_sweep(grown, tmp_path, workers=0, progress=False) == 12
    assert set(_runs(tmp_path)) == {spec.key for spec in grown.specs()}
    assert run_sweep(grown, str(tmp_path), workers=0, progress=False) == 0  # a folder named by a string as well

    lines: list[str] = []
    summary = summarize(str(tmp_path), echo=lines.append)
    assert len(summary.rows) == 3 * 2 and all(row.runs == 4 for row in summary.rows)
    assert any(row.optimizer == "sphere" and row.wins is not None for row in summary.rows)
    for row in summary.rows:
        mean, lo, hi = row.best_any_run
        assert 0 < mean <= 1 and lo <= mean <= hi
    assert (tmp_path / "summary.csv").exists() and (tmp_path / "curves_3.png").read_bytes()[:4] == b"\x89PNG"
    assert "wins vs ga" in lines[1]


def _runs_of(path: Path) -> list[str]:
    return [row["key"] for row in pq.read_table(path).to_pylist()]


def test_the_grid_comes_from_yaml_or_toml_and_a_bad_one_is_one_line_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    yaml_file = tmp_path / "grid.yaml"
    yaml_file.write_text("units: [onet.conv3.9]\noptimizers: [ga, {name: cholesky-cma, params: {sigma: 1.0}}]\n"
                         "seeds: 3\nnoise: [0.5]\ngenerations: [10, 20]\n")  # fmt: skip
    toml_file = tmp_path / "grid.toml"
    toml_file.write_text('units = ["onet.conv3.9"]\nseeds = 3\nnoise = ["0.5"]\ngenerations = [10, 20]\n'
                         'optimizers = ["ga", {name = "cholesky-cma", params = {sigma = 1.0}}]\n')  # fmt: skip
    from_yaml, from_toml = SweepConfig.from_file(str(yaml_file)), SweepConfig.from_file(toml_file)
    assert from_yaml == from_toml and len(from_yaml.specs()) == 1 * 2 * 3 * 1 * 2
    assert {spec.key for spec in from_yaml.specs()} == {spec.key for spec in from_toml.specs()}

    (tmp_path / "bad.yaml").write_text("noise: [loud]\noptimizers: [nonesuch]\n")
    with pytest.raises(ValueError, match="sphere-cma: no parameters \\['sigma'\\]"):
        SweepConfig.model_validate({"optimizers": [{"name": "sphere-cma", "params": {"sigma": 1}}]})
    with pytest.raises(SystemExit) as refused:
        evostim(["sweep", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "out"), "--workers", "0"])
    message = str(refused.value)
    assert "\n" not in message and "noise" in message and "unknown optimizer 'nonesuch'" in message
    assert not (tmp_path / "out").exists()


def test_evostim_sweep_runs_a_grid_from_flags_and_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("population: 8\nrandom_codes: 100\n")
    flags = ["--units", "onet.conv3.9", "--optimizers", "cholesky-cma,ga", "--seeds", "1", "--noise", "poisson"]
    evostim(["sweep", str(grid), "--out", str(tmp_path), "--workers", "0", *flags, "--generations", "2"])
    printed = capsys.readouterr().out
    assert "sweep: 2 runs (1 units x 2 optimizers x 1 seeds x 1 noise levels x 1 budgets)" in printed
    assert "ran 2 runs" in printed and "cholesky-cma" in printed and "poisson" in printed


def test_a_sweep_into_a_folder_of_another_problem_or_at_an_emulated_precision_is_refused_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = {**GRID, "units": ["onet.conv3.9"], "optimizers": ["ga"], "seeds": [0], "noise": ["0.2"]}
    assert run_sweep(SweepConfig.model_validate(small), tmp_path, workers=0, progress=False) == 1
    before = sorted(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
    # precision and calibration are not in the run keys: resuming would mix the two problems' runs silently
    for changed, named in (({"precision": "bf16"}, "precision: 'fp32' in the folder, 'bf16' now"),
                           ({"random_codes": 200}, "random_codes: 100 in the folder, 200 now")):  # fmt: skip
        with pytest.raises(ValueError, match=f"holds runs of another problem \\({named}\\)"):
            run_sweep(SweepConfig.model_validate({**small, **changed}), tmp_path, workers=0, progress=False)
    assert sorted(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()) == before
    # where bfloat16 is emulated (an AVX2-only CPU: 80x slower), a local bf16 sweep is refused with the reason
    monkeypatch.setattr("evostim.clients.sweeps.sweep.native_bf16", lambda: False)
    with pytest.raises(SystemExit) as refused:
        evostim(["sweep", "--out", str(tmp_path / "new"), "--workers", "0", "--units", "onet.conv3.9",
                 "--optimizers", "ga", "--seeds", "1", "--precision", "bf16"])  # fmt: skip
    assert "bfloat16 only by emulation" in str(refused.value) and "use fp32" in str(refused.value)
    assert not (tmp_path / "new" / "runs").exists()


def test_a_ratio_ci_of_unpaired_runs_is_refused_not_computed_on_misaligned_pairs() -> None:
    rng = np.random.default_rng(0)
    lo, hi = ratio_ci(np.array([2.0, 2.2, 1.8]), np.array([1.0, 1.1, 0.9]), rng)
    assert lo == pytest.approx(2.0) and hi == pytest.approx(2.0)  # every pair has ratio 2, so every resample does
    with pytest.raises(ValueError, match="paired runs: 3 against 2"):
        ratio_ci(np.array([2.0, 2.2, 1.8]), np.array([1.0, 1.1]), rng)


def test_a_basis_is_found_as_sessions_find_it_and_the_readmes_grid_works_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    grid = "# grid.yaml" + readme.split("# grid.yaml", 1)[1].split("```", 1)[0]  # the example as printed
    monkeypatch.chdir(tmp_path)  # a folder outside the repository, without weights/
    monkeypatch.delenv("EVOSTIM_WEIGHTS_DIR", raising=False)
    (tmp_path / "grid.yaml").write_text(grid)
    config = SweepConfig.from_file(Path("grid.yaml"))
    top20 = next(entry for entry in config.optimizers if entry.label == "top20")
    assert top20.params["basis"] == "dcgan-faces.metric"  # the shipped metric, kept by name for the workers

    def basis(name: str) -> str:
        entry = {"name": "subspace", "params": {"basis": name, "dimensions": 5}}
        found: str = SweepConfig.model_validate({"optimizers": [entry]}).optimizers[0].params["basis"]
        return found

    shipped = packaged_metric("dcgan-faces")
    assert shipped is not None
    (tmp_path / "weights").mkdir()
    shipped.save(tmp_path / "weights" / "lab.metric.npz")  # where `evostim metric` saves it
    assert basis("lab.metric") == basis("weights/lab.metric.npz") == str(tmp_path / "weights" / "lab.metric.npz")
    monkeypatch.setenv("EVOSTIM_WEIGHTS_DIR", str(tmp_path / "elsewhere"))  # the lab's folder is another one
    (tmp_path / "bad.yaml").write_text("optimizers: [{name: subspace, params: {basis: lab.metric}}]\n")
    with pytest.raises(SystemExit) as refused:
        evostim(["sweep", "bad.yaml", "--out", "out", "--workers", "0"])
    assert str(refused.value) == (
        f"evostim sweep: bad.yaml: optimizers.0.params: basis 'lab.metric': no file {tmp_path / 'lab.metric'}, and "
        "evostim ships no metric of that name (it ships dcgan-faces.metric); make one with `evostim metric`"
    )
    assert not (tmp_path / "out").exists()
