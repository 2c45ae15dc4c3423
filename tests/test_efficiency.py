"""Sample efficiency read from a real (small, in-process) sweep, against a plain recount of its Parquet rows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from evostim.clients.sweeps.efficiency import sample_efficiency
from evostim.clients.sweeps.sweep import SweepConfig, read_results, run_sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("efficiency")
    config = SweepConfig.model_validate(
        {
            "panel": "synthetic",
            "units": ["bump0.k8", "bump1.k16"],
            "optimizers": ["cholesky-cma", "ga", "sep-cma"],
            "seeds": 2,
            "noise": ["0", "poisson"],
            "generations": 8,
            "population": 10,
            "random_codes": 200,
        }
    )
    run_sweep(config, out, workers=0, progress=False)
    return out


def test_evaluations_to_reach_the_baseline_s_final_score_match_a_recount_of_the_curves(sweep: Path) -> None:
    lines: list[str] = []
    efficiency = sample_efficiency(sweep, checkpoints=(40, 80), echo=lines.append)
    runs, generations = read_results(sweep)
    curve = {
        run["key"]: [
            g["best_clean"] for g in sorted(generations, key=lambda g: g["generation"]) if g["key"] == run["key"]
        ]
        for run in runs
    }
    by_pairing = {(r["optimizer"], r["unit"], r["noise"], r["seed"]): curve[r["key"]] for r in runs}
    for name in ("ga", "sep-cma"):
        costs = []
        for (optimizer, unit, noise, seed), values in by_pairing.items():
            if optimizer == name and noise == "poisson":
                target = by_pairing[("cholesky-cma", unit, noise, seed)][-1]
                reached = [10 * (g + 1) for g, value in enumerate(values) if value >= target]
                costs.append(reached[0] if reached else math.inf)
        row = efficiency.row(name, "poisson")
        assert row.pairings == 4 and row.reached == np.mean(np.isfinite(costs))
        assert row.median_ratio[0] == np.median(np.array(costs) / 80)
        successes = sum(math.isfinite(c) for c in costs)  # ERT: all evaluations spent / successes
        spent = sum(c if math.isfinite(c) else 80 for c in costs)
        assert row.ert_ratio[0] == (spent / successes / 80 if successes else math.inf)
        ceiling = {u: max(r["best_clean_seen"] for r in runs if r["unit"] == u) for u in ("bump0.k8", "bump1.k16")}
        pairings = sorted((u, s) for (o, u, n, s) in by_pairing if o == name and n == "poisson")
        mine = np.mean([np.array(by_pairing[(name, u, "poisson", s)]) / ceiling[u] for u, s in pairings], axis=0)
        target = np.mean([by_pairing[("cholesky-cma", u, "poisson", s)][-1] / ceiling[u] for u, s in pairings])
        crossed = [g + 1 for g, value in enumerate(mine) if value >= target]
        assert row.ratio[0] == pytest.approx(crossed[0] / 8 if crossed else math.inf)
    own = efficiency.row("cholesky-cma")
    assert own.reached == 1.0 and own.ratio[0] <= 1.0 and own.pairings == 8  # it reaches its own final score
    assert 0 < own.normalized[40][0] <= own.normalized[80][0] <= 1.0
    assert own.ratio[0] <= 1.0  # its mean curve reaches its own mean final value, at the end at the latest
    assert efficiency.budget == 80 and lines[1].split()[:5] == ["optimizer", "noise", "runs", "ratio", "reached"]
    assert len(lines) == 2 + 3 * 3  # a row per optimizer for noise 0, poisson and all


def test_a_sweep_without_the_baseline_is_refused_by_name(sweep: Path) -> None:
    with pytest.raises(ValueError, match="no runs of the baseline 'pycma'"):
        sample_efficiency(sweep, baseline="pycma", echo=lambda line: None)
