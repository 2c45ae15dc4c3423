"""The benchmark scripts run end to end on a tiny configuration and print their contract's last line.

The figures themselves are measured by running the scripts (see README); these only keep them working.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()


def test_optimizer_step_prints_a_row_per_optimizer_and_the_speed_up() -> None:
    lines = run_script("benchmarks/optimizer_step.py", "--generations", "3", "--pycma-generations", "2")
    for name in ("cholesky-cma", "sphere-cma", "sep-cma", "ga", "cmaes-sep", "pycma"):
        assert any(line.startswith(name) for line in lines), name
    assert re.fullmatch(r"default [\w-]+: median [\d.]+ ms, pycma full: \d+ ms, speed-up \d+ x", lines[-1])


def test_search_quality_runs_one_sweep_per_panel_and_compares_the_default_with_ga(tmp_path: Path) -> None:
    lines = run_script(
        "benchmarks/search_quality.py", "--units", "2", "--synthetic-units", "1", "--seeds", "1",
        "--synthetic-seeds", "1", "--noise", "0,poisson", "--generations", "3", "--random-codes", "200",
        "--optimizers", "cholesky-cma,sphere-cma,ga,pycma", "--workers", "0", "--out", str(tmp_path),
    )  # fmt: skip
    pattern = r"default [\w-]+ vs ga: mean normalized score [\d.]+ vs [\d.]+ \(ratio [\d.]+, 95% CI [\d.]+\.\.[\d.]+\)"
    assert re.fullmatch(pattern, lines[-1]), lines[-1]
    for panel in ("cnn", "synthetic"):
        assert (tmp_path / panel / "curves_3.png").stat().st_size > 10_000
        with (tmp_path / panel / "summary.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 4 * 2  # optimizers x noise levels
        assert {int(row["runs"]) for row in rows} == {2 if panel == "cnn" else 1}
        values = [float(row["a_mean"]) for row in rows]
        assert max(values) <= 1 and max(values) > 0.5  # the ceiling is the best image any run saw


def test_sweep_throughput_prints_batched_against_one_run_at_a_time_and_the_scaling() -> None:
    lines = run_script("benchmarks/sweep_throughput.py", "--quick")
    assert any(line.startswith("fp32") for line in lines)
    pattern = r"sweep throughput: \d+ evaluations/s per core on 2 workers \(scaling [\d.]+ x\)"
    assert re.fullmatch(pattern, lines[-1]), lines[-1]


def test_render_prints_images_per_second_and_the_speed_up_over_the_baseline() -> None:
    lines = run_script("benchmarks/render.py", "--generators", "dcgan-faces", "--repeats", "1")
    assert re.fullmatch(r"dcgan-faces: \d+ images/s, speed-up [\d.]+ x over baseline", lines[-1])


def test_subspace_compares_eigenbasis_search_with_full_space_search(tmp_path: Path) -> None:
    lines = run_script(
        "benchmarks/subspace.py", "--units", "2", "--dimensions", "5,20", "--generations", "2", "--samples", "2",
        "--workers", "0", "--out", str(tmp_path),
    )  # fmt: skip
    assert "directions, 99% in" in lines[0]
    pattern = r"best subspace k=(5|20) vs full: mean normalized score [\d.]+ vs [\d.]+ \(ratio [\d.]+, 95% CI .+\)"
    assert re.fullmatch(pattern, lines[-1]), lines[-1]
    assert (tmp_path / "summary.csv").is_file() and list((tmp_path / "runs").glob("*.parquet"))


def test_sample_efficiency_compares_evaluations_to_cholesky_cma_s_final_score_on_held_out_units(tmp_path: Path) -> None:
    lines = run_script(
        "benchmarks/sample_efficiency.py", "--units", "2", "--seeds", "1", "--noise", "0,poisson", "--generations", "3",
        "--random-codes", "200", "--optimizers", "cholesky-cma,metric-cma", "--workers", "0", "--out", str(tmp_path),
    )  # fmt: skip
    assert lines[0] == "held-out units: onet.conv1.25, onet.conv2.48"
    # a bare name runs as a session that names it (cholesky-cma's sessions add nothing, so it has no such line)
    assert lines[1].startswith("metric-cma as a session planned to 3 generations runs it: {"), lines[1]
    assert "'starts': 2" in lines[1] and "'refresh_every': 5" in lines[1] and "'angle_end': 4.0" in lines[1]
    pattern = r"metric-cma vs cholesky-cma: evaluations to reach its final score: ratio ([\d.]+|inf) \(95% CI .+\)"
    assert re.fullmatch(pattern, lines[-1]), lines[-1]
    assert (tmp_path / "montage.png").stat().st_size > 10_000 and (tmp_path / "dcgan-faces.metric.npz").is_file()
