"""metric-cma's refreshes off the post's path (issue #34): with ``refresh_lead`` the metric a refresh needs is taken at
the mean a generation earlier and computed in the background while that generation is shown; the post that
refreshes then computes nothing. The metric is the same function either way (bit for bit, whichever thread computes
it), so codes do not depend on when it was computed, and sessions stored before (no lead) replay as they did."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from evostim import optimizers
from evostim.generators import generator_spec, load_generator, metric_ahead
from evostim.generators import host as generator_hosts
from evostim.generators.metric import metric_at_code
from evostim.generators.metric_ahead import MetricsAhead
from evostim.optimizers import Host, InvalidParameter, Optimizer
from evostim.optimizers.metric_cma_search import with_lead
from tests.conftest import counts_for
from tests.test_api import create, history
from tests.test_optimizers import basis

FloatArray = NDArray[np.float64]
DIM = 12


def smooth_metric(code: FloatArray, window: float | None) -> FloatArray:
    """A metric that changes with the code (so a refresh at another code gives another basis)."""
    values: FloatArray = np.diag(np.arange(1.0, DIM + 1)) + 3 * np.outer(np.cos(code), np.sin(code) + 2)
    return values @ values.T


class Recorder:
    """A host's metric services that record which codes were hinted and asked for."""

    def __init__(self) -> None:
        self.hinted: list[FloatArray] = []
        self.asked: list[FloatArray] = []

    def metric_at(self, code: FloatArray, window: float | None) -> FloatArray:
        self.asked.append(np.array(code))
        return smooth_metric(code, window)

    def metric_ahead(self, code: FloatArray, window: float | None) -> None:
        self.hinted.append(np.array(code))


def metric_cma(host: Host, **params: Any) -> Optimizer:
    settings = {"basis": basis(DIM, 6), "refresh_every": 3, "starts": 1, **params}
    return optimizers.create_optimizer(
        "metric-cma", DIM, population_size=8, seed=4, code_norm=3.0, host=host, **settings
    )


def run(optimizer: Optimizer, generations: int, reload: bool = False, host: Host | None = None) -> list[FloatArray]:
    """Proposals of ``generations`` generations told a fixed objective; ``reload``: through its state each time."""
    codes = []
    for _ in range(generations):
        population = optimizer.ask()
        codes.append(population.codes)
        optimizer.tell(population.ids, -np.sum((population.codes - 1.0) ** 2, axis=1))
        if reload:
            optimizer = optimizers.optimizer_from_state(optimizer.state_dict(), host=host or optimizer.host)
    return codes


def test_a_refresh_takes_the_metric_hinted_a_generation_before() -> None:
    recorder = Recorder()
    host = Host(generator="t", latent_dim=DIM, metric_at=recorder.metric_at, metric_ahead=recorder.metric_ahead)
    run(metric_cma(host, refresh_lead=1), 7)
    assert len(recorder.hinted) == 2 and len(recorder.asked) == 2  # refreshes at generations 3 and 6
    for hinted, asked in zip(recorder.hinted, recorder.asked, strict=True):
        np.testing.assert_array_equal(hinted, asked)


def test_the_codes_do_not_depend_on_whether_or_when_the_host_computes_ahead() -> None:
    recorder = Recorder()
    hinted = Host(generator="t", latent_dim=DIM, metric_at=recorder.metric_at, metric_ahead=recorder.metric_ahead)
    plain = Host(generator="t", latent_dim=DIM, metric_at=smooth_metric)
    ahead = MetricsAhead(smooth_metric, DIM)
    background = Host(generator="t", latent_dim=DIM, metric_at=ahead.at, metric_ahead=ahead.ahead)
    runs = [
        run(metric_cma(hinted, refresh_lead=1), 8),
        run(metric_cma(plain, refresh_lead=1), 8),
        run(metric_cma(background, refresh_lead=1), 8),
        run(metric_cma(plain, refresh_lead=1), 8, reload=True),  # a restart between the hint and the refresh
    ]
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)
    lagless = run(metric_cma(plain), 8)  # without a lead: the refreshes take the metric elsewhere
    assert not np.array_equal(lagless[-1], runs[0][-1])
    np.testing.assert_array_equal(lagless[3 - 1], runs[0][3 - 1])  # the same up to the first refresh


def test_a_state_stored_before_refresh_lead_existed_loads_with_no_lead_and_steps_as_before() -> None:
    plain = Host(generator="t", latent_dim=DIM, metric_at=smooth_metric)
    optimizer = metric_cma(plain)
    expected = run(metric_cma(plain), 7)
    for _ in range(2):
        population = optimizer.ask()
        optimizer.tell(population.ids, -np.sum((population.codes - 1.0) ** 2, axis=1))
    state = optimizer.state_dict()
    del state["settings"]["refresh_lead"]  # as stored before issue #34
    loaded = optimizers.optimizer_from_state(state, host=plain)
    assert loaded.settings["refresh_lead"] == 0
    for a, b in zip(expected[2:], run(loaded, 5), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("given", "lead"),
    [({"refresh_every": 5}, 2), ({"refresh_every": 2}, 1), ({"refresh_every": 5, "refresh_lead": 0}, 0),
     ({"refresh_every": 1}, None), ({"refresh_every": "5"}, None), ({"refresh_every": float("inf")}, None), ({}, None)],
)  # fmt: skip
def test_a_session_refreshes_two_generations_ahead_where_it_can(given: dict[str, Any], lead: int | None) -> None:
    assert with_lead(given).get("refresh_lead") == lead


@pytest.mark.parametrize(("lead", "every"), [(3, 3), (1, None), (5, 2)])
def test_a_lead_must_be_below_refresh_every(lead: int, every: int | None) -> None:
    host = Host(generator="t", latent_dim=DIM, metric_at=smooth_metric)
    with pytest.raises(InvalidParameter, match="refresh_lead must be below refresh_every"):
        metric_cma(host, refresh_lead=lead, refresh_every=every)


# -- the host's background computation ---------------------------------------------------------------------------------
def test_metrics_computed_ahead_are_kept_once_bounded_and_given_back_once() -> None:
    calls: list[str] = []
    release = threading.Event()

    def slow(code: FloatArray, window: float | None) -> FloatArray:
        calls.append(threading.current_thread().name)
        release.wait(10)
        result: FloatArray = np.eye(2) * code[0]
        return result

    ahead = MetricsAhead(slow, 2, kept_bytes=0)  # at least 4 kept
    codes = [np.array([float(i), 0.0]) for i in range(6)]
    for code in codes:
        ahead.ahead(code, 0.1)
    ahead.ahead(codes[5], 0.1)  # the same hint twice starts one computation
    assert ahead.pending == 4  # the two oldest hints were dropped (their computations cancelled)
    release.set()
    np.testing.assert_array_equal(ahead.at(codes[5], 0.1), np.eye(2) * 5.0)
    assert ahead.pending == 3
    np.testing.assert_array_equal(ahead.at(codes[0], 0.1), np.zeros((2, 2)))  # dropped: computed when asked
    np.testing.assert_array_equal(ahead.at(codes[5], None), np.eye(2) * 5.0)  # another window: computed when asked
    assert calls[0].startswith("metric-ahead") and calls[-1] == threading.current_thread().name


def test_a_process_warms_up_once_in_the_background_and_keeps_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metric_ahead, "_warmed_up", False)
    threads: list[str] = []
    done = threading.Event()

    def recorded(code: FloatArray, window: float | None) -> FloatArray:
        threads.append(threading.current_thread().name)
        done.set()
        return smooth_metric(code, window)

    first, second = MetricsAhead(recorded, DIM), MetricsAhead(recorded, DIM)
    first.warm_up(np.zeros(DIM))
    second.warm_up(np.zeros(DIM))  # another host of the same process: already paid
    assert done.wait(10) and first.pending == 0
    time.sleep(0.2)
    assert len(threads) == 1 and threads[0].startswith("metric-ahead")


def test_a_server_host_warms_up_a_metric_a_sweep_host_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    warmed: list[FloatArray] = []
    monkeypatch.setattr(MetricsAhead, "warm_up", lambda self, code: warmed.append(code))
    spec = generator_spec("dcgan-faces")
    generator_hosts.generator_host(spec, lambda: torch.nn.Identity())
    assert not warmed
    generator_hosts.Hosts(lambda name: torch.nn.Identity())("dcgan-faces")
    assert len(warmed) == 1 and warmed[0].shape == (spec.latent_dim,)


def test_the_metric_computed_ahead_in_its_own_thread_is_the_metric_bit_for_bit() -> None:
    spec = generator_spec("dcgan-faces")
    module = load_generator("dcgan-faces", "cpu", None).module
    direct = metric_at_code(module)
    ahead = MetricsAhead(metric_at_code(module), spec.latent_dim)
    codes = spec.sample_prior(np.random.default_rng(2), 3) * np.array([[0.5], [1.0], [2.0]])
    for code, window in zip(codes, (0.125, None, 0.3), strict=True):
        ahead.ahead(code, window)
    for code, window in zip(codes, (0.125, None, 0.3), strict=True):
        np.testing.assert_array_equal(ahead.at(code, window), direct(code, window))
    assert torch.get_num_threads() >= 1  # the worker's one thread is its own: this thread's count is untouched


# -- a session: the post that refreshes computes nothing --------------------------------------------------------------
@pytest.fixture
def metric_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The threads the generators' metric at a code is computed on, in order."""
    threads: list[str] = []

    def recorded(module: Any) -> Any:
        metric = metric_at_code(module)

        def at(code: FloatArray, window: float | None) -> FloatArray:
            threads.append(threading.current_thread().name)
            return metric(code, window)

        return at

    monkeypatch.setattr(generator_hosts, "metric_at_code", recorded)
    monkeypatch.setattr(metric_ahead, "_warmed_up", True)  # the process's warm-up is not a session's metric
    return threads


def test_the_post_that_refreshes_takes_a_metric_computed_while_the_generation_before_was_shown(
    make_api: Any, metric_threads: list[str]
) -> None:
    api = make_api()
    params = {"starts": 1, "refresh_every": 2}
    created = create(api, seed=7, population_size=6, optimizer={"name": "metric-cma", "params": params})
    assert created["session"]["config"]["optimizer"]["params"]["refresh_lead"] == 1  # a session's default
    manifest = created["generation"]
    for number in range(4):  # refreshes when generations 2 and 4 are proposed: hinted when 1 and 3 were
        manifest = api.post(manifest["responses_url"], json=counts_for(manifest, seed=number)).json()["next"]
        if number in (0, 2):
            time.sleep(0.5)  # the rig shows the generation: the metric is computed meanwhile
    assert len(metric_threads) == 2 and all(name.startswith("metric-ahead") for name in metric_threads)
    # The same session replayed from its first snapshot before every post (as after a restart) proposes the same
    # codes, bit for bit, wherever its metrics were computed.
    twin = create(api, seed=7, population_size=6, optimizer={"name": "metric-cma", "params": params})
    manifest = twin["generation"]
    for number in range(4):
        api.app.state.service.forget_optimizers()
        manifest = api.post(manifest["responses_url"], json=counts_for(manifest, seed=number)).json()["next"]
    first, second = (history(api, s["session"]["id"])["generations"] for s in (created, twin))
    assert [[s["code"] for s in g["stimuli"]] for g in first] == [[s["code"] for s in g["stimuli"]] for g in second]
