"""A sweep's results on disk: each finished task written at once, atomically, as two Parquet files (``runs/`` and
``generations/``), and read back for resuming and for the summary."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from evostim.clients.sweeps.engine import RunResult, RunSpec
from evostim.extras import require

__all__ = ["read_results", "read_rows", "write_task"]


def _spec_columns(spec: RunSpec) -> dict[str, Any]:
    return {
        "key": spec.key,
        "optimizer": spec.name,
        "optimizer_name": spec.optimizer,
        "params": json.dumps(dict(spec.params), sort_keys=True),
        "unit": spec.unit,
        "noise": spec.noise,
        "seed": spec.seed,
        "generations": spec.generations,
        "population": spec.population,
        "code_norm_constraint": spec.code_norm_constraint,
        "references": spec.references,
        "drift_correction": spec.drift_correction,
    }


def _run_row(result: RunResult) -> dict[str, Any]:
    return {
        **_spec_columns(result.spec),
        "evaluations": result.spec.generations * result.spec.population,
        "best_clean": result.best_clean[-1],
        "best_observed": result.best_observed[-1],
        "best_clean_seen": result.best_clean_seen[-1],
        "best_code": result.best_code,
        "optimizer_seconds": result.optimizer_seconds,
    }


def _generation_rows(result: RunResult) -> Iterator[dict[str, Any]]:
    population = result.spec.population
    for generation, values in enumerate(
        zip(result.best_clean, result.best_observed, result.best_clean_seen, result.mean_observed, strict=True)
    ):
        clean, observed, seen, mean = values
        yield {
            "key": result.spec.key,
            "generation": generation,
            "evaluations": (generation + 1) * population,
            "best_clean": clean,
            "best_observed": observed,
            "best_clean_seen": seen,
            "mean_observed": mean,
            "reference_mean": result.reference_mean[generation] if result.reference_mean else None,
            "drift_factor": result.drift_factor[generation] if result.drift_factor else None,
        }


def _write_rows(folder: Path, name: str, rows: list[dict[str, Any]]) -> None:
    """One Parquet file, whole or not at all (written beside, then renamed into place)."""
    pa = require("pyarrow", extra="sweep", feature="a sweep")
    parquet = require("pyarrow.parquet", extra="sweep", feature="a sweep")
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{name}.partial"
    parquet.write_table(pa.Table.from_pylist(rows), partial)
    os.replace(partial, folder / f"{name}.parquet")


def write_task(out: Path, results: Sequence[RunResult]) -> None:
    # The generations file first: a run counts as done once its row is in runs/, and then its curve is there too.
    name = uuid.uuid4().hex[:12]
    _write_rows(out / "generations", name, [row for result in results for row in _generation_rows(result)])
    _write_rows(out / "runs", name, [_run_row(result) for result in results])


def read_rows(folder: Path, tasks: set[str] | None = None) -> list[dict[str, Any]]:
    """The rows of the folder's Parquet files (of the named tasks only, when given)."""
    if not folder.is_dir():
        return []
    parquet = require("pyarrow.parquet", extra="sweep", feature="a sweep")
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.parquet")):
        if tasks is None or path.stem in tasks:
            rows.extend(parquet.read_table(path).to_pylist())
    return rows


def read_results(out: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(runs, generations) rows of the finished runs in ``out``: a task whose runs file was never written (the
    sweep stopped between its two files) has its generations left out, as its runs will run again."""
    finished = {path.stem for path in (out / "runs").glob("*.parquet")}
    return read_rows(out / "runs"), read_rows(out / "generations", finished)
