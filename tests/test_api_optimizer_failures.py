"""An optimizer that fails in a session (an outside library's assertion), at creation or at a later post: a 422 that
names it, nothing stored, never a 500 (issue #34)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray

from evostim import optimizers
from evostim.optimizers import Optimizer, Parameters, doc, register
from evostim.optimizers.checks import at_least
from tests.conftest import counts_for
from tests.test_api import assert_problem, create, history


def sessions(api: TestClient) -> int:
    total: int = api.get("/v1/sessions").json()["total"]
    return total


# -- an optimizer that fails anyway: an outside library's assertion ------------------------------------------------
@dataclass(frozen=True)
class BrittleParameters(Parameters):
    """What a session may set for the test's brittle search."""

    fails_at: int = field(default=0, metadata=doc("the generation whose tell asserts", check=at_least(0)))


class BrittleSearch(Optimizer):
    """Gaussian proposals whose tell asserts at one generation, as an outside library may."""

    name = "test-brittle"
    parameters = BrittleParameters

    def __init__(self, dim: int, *, population_size: int, seed: int, params: BrittleParameters) -> None:
        super().__init__(dim, population_size=population_size, seed=seed, params=params)
        self._fails_at = params.fails_at

    def _propose(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return self._rng.standard_normal((self.population_size, self.dim)), np.zeros((self.population_size, 0))

    def _update(self, rows: Any, codes: Any, aux: Any, scores: Any) -> None:
        assert self.generation != self._fails_at, "Abs of all param values must be less than 1e+32"

    def _dynamic_state(self) -> dict[str, Any]:
        return {}

    def _load_dynamic_state(self, state: dict[str, Any]) -> None:
        pass


@pytest.fixture
def brittle() -> Iterator[None]:
    register(BrittleSearch)
    yield
    optimizers.OPTIMIZERS.pop(BrittleSearch.name)


def test_if_the_dry_run_fails_in_a_library_the_session_is_refused_and_nothing_is_stored(
    brittle: None, api: TestClient
) -> None:
    body = {"population_size": 4, "optimizer": {"name": "test-brittle", "params": {"fails_at": 0}}}
    problem = assert_problem(api.post("/v1/sessions", json=body), 422, "test-brittle", "cannot take a generation")
    assert "Abs of all param values" in problem["detail"]
    assert sessions(api) == 0


def test_if_an_optimizer_fails_at_a_later_post_it_is_a_422_and_nothing_is_stored(
    brittle: None, api: TestClient
) -> None:
    created = create(api, population_size=4, optimizer={"name": "test-brittle", "params": {"fails_at": 1}})
    session_id, manifest = created["session"]["id"], created["generation"]
    manifest = api.post(manifest["responses_url"], json=counts_for(manifest)).json()["next"]
    before = history(api, session_id)
    for _ in range(2):  # the same answer again: nothing was stored, the generation stays open
        problem = assert_problem(
            api.post(manifest["responses_url"], json=counts_for(manifest)), 422, "test-brittle", "nothing was stored"
        )
        assert problem["type"] == "/problems/invalid-request"
    assert history(api, session_id) == before
    assert api.get(f"/v1/sessions/{session_id}").json()["generation"] == 1
