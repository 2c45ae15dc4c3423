"""What every registered optimizer declares (parameters, start, extra), and that declaring is all a new one needs."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray

from evostim import extras, optimizers
from evostim.extras import MissingExtra
from evostim.optimizers import Context, Extra, InvalidParameter, Optimizer, Parameters, Start, doc, register
from evostim.optimizers.checks import code, positive
from tests.conftest import counts_for
from tests.test_api import assert_problem, create, history
from tests.test_optimizers import DIM, NEEDS_BASIS, make

ALL = sorted(optimizers.OPTIMIZERS)
REFERENCES = ["cmaes", "cmaes-sep", "pycma"]


# -- the contract, for every registered optimizer ------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_every_parameter_of_every_optimizer_is_documented_typed_and_defaulted(name: str) -> None:
    record = optimizers.lookup(name).parameters
    assert dataclasses.is_dataclass(record) and record.__dataclass_params__.frozen  # type: ignore[attr-defined]
    specs = record.specs()
    assert [spec.name for spec in specs] == optimizers.parameter_names(optimizers.lookup(name))
    for spec in specs:
        assert len(spec.doc) > 10, spec.name
        assert spec.default is not dataclasses.MISSING, spec.name
        json.dumps(spec.default)  # the catalog shows it


@pytest.mark.parametrize("name", ALL)
def test_the_defaults_and_the_space_s_defaults_pass_their_own_checks(name: str) -> None:
    cls = optimizers.lookup(name)
    context = Context(dim=DIM, population_size=8)
    required = {"basis": np.eye(DIM)[:3].tolist()} if name in NEEDS_BASIS else {}
    built = cls.parameters.build(required, context)
    assert set(built.as_dict()) == set(cls.parameters.names())
    cls.parameters.build({**cls.defaults_for_space(DIM, math.sqrt(DIM)), **required}, context)
    assert make(name).ask().codes.shape == (8, DIM)


@pytest.mark.parametrize("name", ALL)
def test_an_optimizer_rebuilt_from_its_settings_has_the_same_settings(name: str) -> None:
    optimizer = make(name, seed=3)
    again = type(optimizer).create(DIM, population_size=8, seed=3, **optimizer.settings)
    assert json.dumps(again.settings) == json.dumps(optimizer.settings)


@pytest.mark.parametrize("name", ALL)
def test_an_optimizer_started_from_codes_proposes_around_them(name: str) -> None:
    start = optimizers.lookup(name).start
    assert start is not None, f"{name} declares no start: sessions with init would be refused"
    codes = np.random.default_rng(1).standard_normal((3, DIM)) * 0.3 + 2.0  # far from the zero code
    params = optimizers.start_parameters(name, codes)
    assert list(params) == [start.parameter]
    optimizer = make(name, **params)
    first = optimizer.ask().codes
    if start.form == "population":
        np.testing.assert_array_equal(first[: len(codes)], codes)
    else:
        np.testing.assert_allclose(optimizer.settings[start.parameter], codes.mean(axis=0))
    direction = first.mean(axis=0) / np.linalg.norm(first.mean(axis=0))
    assert direction @ codes.mean(axis=0) / np.linalg.norm(codes.mean(axis=0)) > 0.5


def test_bad_types_are_refused_naming_the_parameter_and_numbers_are_converted() -> None:
    with pytest.raises(InvalidParameter, match=r"ga: elites must be an integer or null, got 'many'"):
        make("ga", elites="many")
    with pytest.raises(InvalidParameter, match=r"mean must be a list of numbers or null"):
        make("cholesky-cma", mean=["a"] * DIM)
    with pytest.raises(InvalidParameter, match="sigma must be a number, got True"):
        make("sep-cma", sigma=True)
    settings = make("ga", elites=2.0, mutation_rate=1).settings
    assert settings["elites"] == 2 and isinstance(settings["elites"], int)
    assert settings["mutation_rate"] == 1.0 and isinstance(settings["mutation_rate"], float)


# -- a new optimizer: one class and one register call -----------------------------------------------------------
@dataclass(frozen=True)
class DriftParameters(Parameters):
    """What a session may set for the test's drift search."""

    scale: float = field(default=0.5, metadata=doc("std of the proposals around the centre", check=positive))
    centre: list[float] | None = field(default=None, metadata=doc("where the search starts (default 0)", check=code))


class DriftSearch(Optimizer):
    """Gaussian proposals around a centre that moves to the best measured code."""

    name = "test-drift"
    parameters = DriftParameters
    start = Start.from_mean("centre")

    def __init__(self, dim: int, *, population_size: int, seed: int, params: DriftParameters) -> None:
        super().__init__(dim, population_size=population_size, seed=seed, params=params)
        self._scale = params.scale
        self._centre = np.zeros(dim) if params.centre is None else np.array(params.centre)

    def _propose(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        noise = self._rng.standard_normal((self.population_size, self.dim))
        return self._centre + self._scale * noise, np.zeros((self.population_size, 0))

    def _update(self, rows: Any, codes: Any, aux: Any, scores: Any) -> None:
        self._centre = codes[int(np.argmax(scores))].copy()

    def _dynamic_state(self) -> dict[str, Any]:
        return {"centre": self._centre.tolist()}

    def _load_dynamic_state(self, state: dict[str, Any]) -> None:
        self._centre = np.array(state["centre"])


@pytest.fixture
def drift_registered() -> Iterator[None]:
    register(DriftSearch)
    yield
    optimizers.OPTIMIZERS.pop(DriftSearch.name)


def test_a_new_optimizer_module_is_listed_and_usable_in_a_session_with_no_other_edit(
    drift_registered: None, make_api: Any
) -> None:
    api = make_api(snapshot_every=2)
    catalog = {entry["name"]: entry for entry in api.get("/v1/optimizers").json()["data"]}
    entry = catalog["test-drift"]
    assert entry["summary"] == "Gaussian proposals around a centre that moves to the best measured code."
    assert entry["available"] is True and entry["extra"] is None and entry["is_default"] is False
    assert [(p["name"], p["default"], p["json_schema"]) for p in entry["parameters"]] == [
        ("scale", 0.5, {"type": "number"}),
        ("centre", None, {"anyOf": [{"items": {"type": "number"}, "type": "array"}, {"type": "null"}]}),
    ]
    assert "std of the proposals" in entry["parameters"][0]["description"]

    start = np.full((2, 100), 1.5)
    config = {"population_size": 6, "optimizer": {"name": "test-drift", "params": {"scale": 0.1}}}
    sessions = [create(api, **config, init={"codes": start.tolist()}) for _ in range(2)]
    assert sessions[0]["session"]["config"]["optimizer"]["params"] == {"scale": 0.1, "centre": [1.5] * 100}
    manifests = [s["generation"] for s in sessions]
    for generation in range(3):
        for which, manifest in enumerate(manifests):
            if which == 1:
                api.app.state.service.forget_optimizers()  # the second session replays from its stored state
            answer = api.post(manifest["responses_url"], json=counts_for(manifest, seed=generation))
            assert answer.status_code == 200, answer.text
            manifests[which] = answer.json()["next"]
    codes = [
        [[s["code"] for s in g["stimuli"]] for g in history(api, s["session"]["id"])["generations"]] for s in sessions
    ]
    assert codes[0] == codes[1] and len(codes[0]) == 4
    assert_problem(
        api.post("/v1/sessions", json={"optimizer": {"name": "test-drift", "params": {"scale": -1}}}), 422, "scale"
    )


def _declaring(**attributes: Any) -> type[Optimizer]:
    return type("Broken", (DriftSearch,), attributes)


@dataclass(frozen=True)
class _Undocumented(Parameters):
    scale: float = 1.0


class _Undecorated(Parameters):
    scale: float = field(default=1.0, metadata=doc("a number"))


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"name": "test-drift-2", "parameters": _Undocumented}, "no description"),
        ({"name": "test-drift-2", "parameters": _Undecorated}, "dataclass"),
        ({"name": "test-drift-2", "parameters": dict}, "subclass of Parameters"),
        ({"name": "test-drift-2", "start": Start.from_mean("mean")}, "start names 'mean'"),
        ({"name": ""}, "name"),
    ],
)
def test_if_an_incomplete_declaration_is_refused_at_registration(attributes: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        register(_declaring(**attributes))
    assert set(optimizers.OPTIMIZERS) == set(ALL)


def test_if_a_name_is_registered_twice_it_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register(_declaring(name="cholesky-cma"))


def test_if_an_optimizer_without_a_start_cannot_start_from_codes() -> None:
    no_start = _declaring(name="test-no-start", start=None)
    register(no_start)
    try:
        with pytest.raises(InvalidParameter, match="cannot start from given codes"):
            optimizers.start_parameters("test-no-start", np.zeros((2, DIM)))
    finally:
        optimizers.OPTIMIZERS.pop("test-no-start")


# -- optional packages ----------------------------------------------------------------------------------------------
@pytest.fixture
def references_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if evostim were installed without the references extra: cma and cmaes can be neither found nor imported."""
    for module in ("cma", "cmaes"):
        monkeypatch.setitem(sys.modules, module, None)
    installed = extras.is_installed
    monkeypatch.setattr(extras, "is_installed", lambda module: module not in ("cma", "cmaes") and installed(module))


def test_the_reference_optimizers_declare_their_extra() -> None:
    declared = {name: optimizers.lookup(name).extra for name in ALL}
    assert declared == {
        name: (Extra("references", "cmaes" if name.startswith("cmaes") else "cma") if name in REFERENCES else None)
        for name in ALL
    }


def test_without_the_extra_the_references_are_unavailable_and_refused_naming_it(references_hidden: None) -> None:
    assert [name for name in ALL if not optimizers.available(name)] == REFERENCES
    for name in REFERENCES:
        with pytest.raises(MissingExtra, match=r"evostim\[references\]") as raised:
            make(name)
        assert raised.value.extra == "references"
    assert make("cholesky-cma").ask().codes.shape == (8, DIM)


def test_a_stored_reference_optimizer_is_refused_naming_the_extra_when_it_is_gone(monkeypatch: Any) -> None:
    state = json.loads(json.dumps(make("pycma").state_dict()))
    monkeypatch.setitem(sys.modules, "cma", None)
    with pytest.raises(MissingExtra, match="references"):
        optimizers.optimizer_from_state(state)


def test_the_catalog_says_which_optimizers_need_an_extra_that_is_missing(
    references_hidden: None, api: TestClient
) -> None:
    catalog = {entry["name"]: entry for entry in api.get("/v1/optimizers").json()["data"]}
    assert {name: (entry["available"], entry["extra"]) for name, entry in catalog.items()} == {
        name: (False, "references") if name in REFERENCES else (True, None) for name in ALL
    }


def test_a_session_with_an_optimizer_whose_extra_is_missing_is_a_problem_naming_it(
    references_hidden: None, api: TestClient
) -> None:
    response = api.post("/v1/sessions", json={"optimizer": {"name": "pycma"}})
    problem = assert_problem(response, 422, "evostim[references]")
    assert problem["type"].endswith("extra-missing")
    assert api.get("/v1/sessions").json()["total"] == 0


def test_the_optimizers_import_without_the_references_extra_and_never_import_it_unasked() -> None:
    hidden = (
        "import sys; sys.modules['cma'] = None; sys.modules['cmaes'] = None\n"
        "import evostim.optimizers as o\n"
        "assert not o.available('pycma') and not o.available('cmaes') and o.available('cholesky-cma')\n"
    )
    lazy = (
        "import sys, evostim.optimizers as o\n"
        "from evostim.server.sessions.catalog import describe_optimizers\n"
        "assert all(entry.available for entry in describe_optimizers())\n"
        "assert 'cma' not in sys.modules and 'cmaes' not in sys.modules, 'imported before a session asked'\n"
        "o.create_optimizer('pycma', 4, population_size=4, seed=0)\n"
        "assert 'cma' in sys.modules\n"
    )
    for script in (hidden, lazy):
        subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
