"""An optimizer that needs its host: a test-only one, registered for these tests alone, runs in a session through the
API (live and replayed after a restart) and in a sweep, with nothing in server/ or clients/ written for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from evostim import generators, optimizers
from evostim.clients.sweeps.engine import RunSpec, evolve
from evostim.clients.sweeps.panels import CnnPanel
from evostim.generators.host import hosted_optimizer
from evostim.generators.metric import metric_at_code
from evostim.optimizers import Host, InvalidParameter, Need, Optimizer, Parameters, doc
from evostim.optimizers.checks import positive
from evostim.optimizers.serialization import decode_array, encode_array
from tests.conftest import counts_for
from tests.test_api import create, history

FloatArray = NDArray[np.float64]


# -- the whole of a new optimizer that needs host data: its module (this class) and one register() line ----------
@dataclass(frozen=True)
class ProbeParameters(Parameters):
    spread: float = field(
        default=1.0, metadata=doc("std of the steps along the metric's top direction", check=positive)
    )
    generator: str = field(default="", metadata=doc("the generator searched (sessions: their host's)"))


class MetricProbe(Optimizer):
    """Steps from its best code along the top direction of the generator's metric there (a test of host needs)."""

    name = "test-metric-probe"
    parameters = ProbeParameters
    needs = (Need("metric_at"),)

    @classmethod
    def session_defaults(
        cls, params: dict[str, Any], host: Host, *, generations: int | None = None, population_size: int | None = None
    ) -> dict[str, Any]:
        return {"generator": host.generator, **params}

    def __init__(self, dim: int, *, population_size: int, seed: int, params: ProbeParameters) -> None:
        super().__init__(dim, population_size=population_size, seed=seed, params=params)
        self._spread = params.spread
        self._centre = np.zeros(dim)

    def _propose(self) -> tuple[FloatArray, FloatArray]:
        metric_at = self.host.metric_at
        if metric_at is None:
            raise InvalidParameter("test-metric-probe needs the generator's metric, from its host")
        steps = self._spread * self._rng.standard_normal(self.population_size)
        codes = self._centre + steps[:, None] * top_direction(metric_at(self._centre, None))
        return codes, np.zeros((self.population_size, 0))

    def _update(self, rows: NDArray[np.intp], codes: FloatArray, aux: FloatArray, scores: FloatArray) -> None:
        self._centre = codes[int(np.argmax(scores))].copy()

    def _dynamic_state(self) -> dict[str, Any]:
        return {"centre": encode_array(self._centre)}

    def _load_dynamic_state(self, state: dict[str, Any]) -> None:
        self._centre = decode_array(state["centre"])


def top_direction(metric: FloatArray) -> FloatArray:
    values, vectors = np.linalg.eigh(metric)
    top: FloatArray = vectors[:, int(np.argmax(values))]
    return top


@pytest.fixture
def probe() -> Iterator[type[MetricProbe]]:
    """MetricProbe registered for one test (the register() line a new optimizer adds), removed afterwards."""
    optimizers.register(MetricProbe)
    try:
        yield MetricProbe
    finally:
        del optimizers.OPTIMIZERS[MetricProbe.name]


@pytest.fixture(scope="module")
def top_at_zero(dcgan: generators.ImageGenerator) -> FloatArray:
    """The top direction of dcgan-faces' metric at the zero code: where every probe's first generation lies."""
    metric: FloatArray = metric_at_code(dcgan.module)(np.zeros(100), None)
    return top_direction(metric)


def along(codes: FloatArray, direction: FloatArray) -> FloatArray:
    """|cosine| of each code (n, d) with ``direction``: 1 for codes on its line."""
    cosines: FloatArray = np.abs(codes @ direction) / np.linalg.norm(codes, axis=1)
    return cosines


def test_an_optimizer_that_needs_its_host_runs_in_a_session_and_replays_after_a_restart(
    probe: type[MetricProbe], make_api: Any, top_at_zero: FloatArray
) -> None:
    api = make_api(snapshot_every=10)  # every post after a restart replays from generation 0's snapshot
    created = create(api, population_size=4, optimizer={"name": probe.name}, references={"builtin": 0})
    session = created["session"]
    assert session["config"]["optimizer"]["params"] == {"spread": 1.0, "generator": "dcgan-faces"}  # its default
    manifest = created["generation"]
    for generation in range(2):
        answer = api.post(manifest["responses_url"], json=counts_for(manifest, seed=generation))
        assert answer.status_code == 200, answer.text
        manifest = answer.json()["next"]
    restarted = make_api(snapshot_every=10)  # a fresh service: its optimizer restored with its host, then replayed
    answer = restarted.post(manifest["responses_url"], json=counts_for(manifest, seed=2))
    assert answer.status_code == 200, answer.text
    stored = history(restarted, session["id"])["generations"]
    assert len(stored) == 4
    first = np.array([s["code"] for s in stored[0]["stimuli"]])
    np.testing.assert_allclose(along(first, top_at_zero), 1.0, atol=1e-9)  # the host's metric, at the zero code
    later = np.array([s["code"] for s in stored[-1]["stimuli"]])
    assert np.all(along(later, top_at_zero) < 1.0 - 1e-6)  # the metric where its best code now is


def test_an_optimizer_that_needs_its_host_runs_in_a_sweep(probe: type[MetricProbe], top_at_zero: FloatArray) -> None:
    panel = CnnPanel(["onet.conv3.9"])  # the panel's generator is the host: no session defaults in a sweep
    specs = [RunSpec(probe.name, "onet.conv3.9", "0", 0, generations, population=4) for generations in (1, 3)]
    one, three = evolve(panel, specs, {"onet.conv3.9": 1.0})
    assert len(one.best_clean) == 1 and len(three.best_clean) == 3
    np.testing.assert_allclose(along(np.array([one.best_code]), top_at_zero), 1.0, atol=1e-9)  # generation 0's


def no_basis(name: str) -> Any:
    raise AssertionError(f"no basis is named here, got {name!r}")


def test_a_host_that_cannot_provide_a_need_refuses_the_optimizer_and_says_why(probe: type[MetricProbe]) -> None:
    large = Host(generator="deepsim-fc6", latent_dim=4096)  # no metric at a code: too large to compute exactly
    with pytest.raises(InvalidParameter, match=r"^test-metric-probe: needs the metric at a code, computed exactly up "
                                               r"to 512-d latent spaces; deepsim-fc6's is 4096-d$"):  # fmt: skip
        hosted_optimizer(probe.name, 4096, population_size=4, seed=0, code_norm=None, host=large, find_metric=no_basis)
    alone = probe.create(8, population_size=4)  # built without a host: refused where it needs it
    with pytest.raises(InvalidParameter, match=r"needs the generator's metric, from its host"):
        alone.ask()


def test_a_need_is_declared_on_the_class_and_checked_when_registered() -> None:
    class Unknown(MetricProbe):
        name = "test-unknown-need"
        needs = (Need("surrogate"),)

    class Unasked(MetricProbe):
        name = "test-unasked-need"
        needs = (Need("metric_at", when="no_such_parameter"),)

    with pytest.raises(TypeError, match=r"needs 'surrogate', which no host provides"):
        optimizers.register(Unknown)
    with pytest.raises(TypeError, match=r"when 'no_such_parameter', which is not one of"):
        optimizers.register(Unasked)
    assert {"test-unknown-need", "test-unasked-need"}.isdisjoint(optimizers.OPTIMIZERS)
