"""Data out: history paging, the npz / Parquet / NWB exports, a generation's images as a zip, the best image's URL,
the client's and the command line's downloads. Every export must give back exactly what was posted."""

from __future__ import annotations

import asyncio
import io
import json
import math
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from evostim.cli import main as cli
from evostim.clients.http.client import AsyncClient, Client
from evostim.clients.http.local_server import LocalServer
from tests.test_api import assert_problem, create, history

CHANNELS = ("a", "b.1")
Row = dict[str, Any]


def _body(manifest: dict[str, Any], generation: int) -> dict[str, Any]:
    """Counts with 3 repetitions (4 on the first stimulus, 2 on the last), baselines, the first stimulus left out."""
    rng = np.random.default_rng(generation)
    responses = []
    shown = manifest["stimuli"][1:]
    for i, stimulus in enumerate(shown):
        n = 4 if i == 0 else 2 if i == len(shown) - 1 else 3
        counts = {ch: (rng.poisson(6, n) + rng.random(n)).tolist() for ch in CHANNELS}
        baseline = {ch: rng.poisson(2, n).astype(float).tolist() for ch in CHANNELS}
        responses.append({"stimulus": stimulus["id"], "counts": counts, "baseline": baseline})
    return {"responses": responses}


@pytest.fixture
def session(api: TestClient) -> tuple[str, dict[str, Any]]:
    """A session with 3 closed generations (one aborted trial each) and the open generation 3; what was posted."""
    created = create(  # cholesky-cma: its step size is the optimizer summary the exports are checked on
        api, population_size=6, references={"builtin": 2}, channels=list(CHANNELS), metadata={"animal": "A"},
        optimizer={"name": "cholesky-cma"},
    )  # fmt: skip
    posted: dict[str, Any] = {}
    manifest = created["generation"]
    for g in range(3):
        body = _body(manifest, g)
        posted.update({r["stimulus"]: r for r in body["responses"]})
        manifest = api.post(manifest["responses_url"], json=body).json()["next"]
    return created["session"]["id"], posted


# -- what every export must hold ------------------------------------------------------------------------------------
def expected_rows(api: TestClient, session_id: str, posted: dict[str, Any]) -> list[Row]:
    stored = history(api, session_id)
    rows = []
    for generation in stored["generations"]:
        for s in generation["stimuli"]:
            sent = posted.get(s["id"])
            status = "measured" if sent else "pending" if generation["status"] == "open" else "missing"
            rows.append({
                "generation": generation["number"], "stimulus_id": s["id"], "kind": s["kind"], "index": s["index"],
                "reference_id": s["index"] if s["kind"] == "reference" else -1, "status": status, "score": s["score"],
                "counts": sent and sent["counts"], "baseline": sent and sent["baseline"],
                "code": np.array(s["code"]), "sigma": (generation["optimizer"] or {}).get("sigma"),
            })  # fmt: skip
    return rows


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _channels(row: dict[str, Any], what: str) -> dict[str, list[float]] | None:
    values = {ch: list(row[f"{what}.{ch}"]) for ch in CHANNELS if row[f"{what}.{ch}"] is not None}
    values = {ch: v for ch, v in values.items() if v}
    return values or None


def _row(row: dict[str, Any]) -> Row:
    """One exported row in the form of ``expected_rows``."""
    sigma = row["optimizer.sigma"]
    return {
        "generation": int(row["generation"]), "stimulus_id": str(row["stimulus_id"]), "kind": str(row["kind"]),
        "index": int(row["index"]), "reference_id": int(row["reference_id"]), "status": str(row["status"]),
        "score": _none_if_nan(row["score"]), "counts": _channels(row, "counts"),
        "baseline": _channels(row, "baseline"), "code": np.asarray(row["code"]),
        "sigma": None if sigma is None else _none_if_nan(sigma),
    }  # fmt: skip


def read_npz(path: Path) -> tuple[list[Row], dict[str, Any]]:
    with np.load(path, allow_pickle=False) as data:
        columns = {name: data[name] for name in data.files}
    rows = []
    for i in range(len(columns["generation"])):
        row = {name: values[i] for name, values in columns.items() if values.ndim and name != "channels"}
        for name in [n for n in row if n.startswith(("counts.", "baseline."))]:
            row[name] = [float(v) for v in row[name] if not math.isnan(v)]
        rows.append(_row(row))
    assert list(columns["channels"]) == list(CHANNELS)
    return rows, json.loads(str(columns["session"][()]))


def read_parquet(path: Path) -> tuple[list[Row], dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    rows = []
    for row in table.to_pylist():
        row["reference_id"] = -1 if row["reference_id"] is None else row["reference_id"]
        row["score"] = math.nan if row["score"] is None else row["score"]
        rows.append(_row(row))
    return rows, json.loads(table.schema.metadata[b"evostim"])


def read_nwb(path: Path) -> tuple[list[Row], dict[str, Any]]:
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        frame = nwbfile.intervals["presentations"].to_dataframe()
        images = nwbfile.stimulus_template["stimuli"]
        assert [image.name for image in images.order_of_images.data] == list(frame["stimulus_id"])
        assert nwbfile.subject.subject_id == "A"
        intervals = nwbfile.intervals["generations"].to_dataframe()
        assert list(intervals["generation"]) == [0, 1, 2, 3] and math.isnan(intervals["stop_time"].iloc[-1])
        assert (intervals["stop_time"].iloc[:-1] > intervals["start_time"].iloc[:-1]).all()
        # each presentation spans its generation, in seconds since the session's start
        spans = intervals.set_index("generation").loc[frame["generation"], ["start_time", "stop_time"]]
        np.testing.assert_array_equal(frame[["start_time", "stop_time"]].to_numpy(), spans.to_numpy())
        assert 0 <= intervals["start_time"].iloc[0] < 60
        rows = [_row(row) for row in frame.to_dict("records")]
        return rows, json.loads(nwbfile.notes)


READERS: dict[str, Callable[[Path], tuple[list[Row], dict[str, Any]]]] = {
    "npz": read_npz,
    "parquet": read_parquet,
    "nwb": read_nwb,
}


def assert_same_rows(exported: list[Row], expected: list[Row]) -> None:
    assert [r["stimulus_id"] for r in exported] == [r["stimulus_id"] for r in expected]
    for got, want in zip(exported, expected, strict=True):
        np.testing.assert_array_equal(got.pop("code"), want["code"])  # bit-exact float64
        assert got == {k: v for k, v in want.items() if k != "code"}, want["stimulus_id"]


# -- exports -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["npz", "parquet", "nwb"])
def test_every_export_gives_back_exactly_what_was_posted(
    api: TestClient, session: tuple[str, dict[str, Any]], fmt: str, tmp_path: Path, scratch_dir: Path
) -> None:
    session_id, posted = session
    answer = api.get(f"/v1/sessions/{session_id}/export", params={"format": fmt})
    assert answer.status_code == 200, answer.text
    assert int(answer.headers["content-length"]) == len(answer.content) and not list(scratch_dir.iterdir())
    assert f'filename="{session_id}.{fmt}"' in answer.headers["content-disposition"]
    path = tmp_path / f"s.{fmt}"
    path.write_bytes(answer.content)
    rows, about = READERS[fmt](path)

    expected = expected_rows(api, session_id, posted)
    assert_same_rows(rows, expected)
    statuses = [r["status"] for r in expected]
    assert statuses.count("missing") == 3 and statuses.count("pending") == 8
    assert about["session"] == api.get(f"/v1/sessions/{session_id}").json()
    assert about["session"]["config"]["metadata"] == {"animal": "A"} and about["channels"] == list(CHANNELS)
    assert about["format_version"] == 1 and about["latent_dim"] == 100


def test_the_npz_export_has_the_documented_arrays(api: TestClient, session: tuple[str, dict[str, Any]]) -> None:
    session_id, _ = session
    answer = api.get(f"/v1/sessions/{session_id}/export")  # npz is the default
    with np.load(io.BytesIO(answer.content), allow_pickle=False) as data:
        assert data["code"].shape == (32, 100) and data["code"].dtype == np.float64
        assert data["counts.a"].shape == (32, 4) and data["counts.b.1"].shape == (32, 4)
        assert data["opened_at"].dtype == np.dtype("datetime64[us]")
        assert np.isnat(data["closed_at"][-1]) and not np.isnat(data["closed_at"][0])
        sigma = data["optimizer.sigma"]
        assert np.isnan(sigma[-1]) and sigma[0] > 0


def test_a_missing_extra_is_a_problem_naming_it(
    api: TestClient, session: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, scratch_dir: Path
) -> None:
    session_id, _ = session
    for module in ("pyarrow", "pyarrow.parquet", "pynwb"):
        monkeypatch.setitem(sys.modules, module, None)  # importing it now raises ImportError
    for fmt, extra in (("parquet", "parquet"), ("nwb", "nwb")):
        answer = api.get(f"/v1/sessions/{session_id}/export", params={"format": fmt})
        problem = assert_problem(answer, 422, f"evostim[{extra}]'")
        assert "in the server's environment" in problem["detail"]
        assert problem["type"] == "/problems/extra-missing" and problem["extra"] == extra
    assert not list(scratch_dir.iterdir())  # nothing left behind
    assert api.get(f"/v1/sessions/{session_id}/export", params={"format": "npz"}).status_code == 200


def test_bad_export_requests_are_problems(api: TestClient, session: tuple[str, dict[str, Any]]) -> None:
    session_id, _ = session
    assert_problem(api.get(f"/v1/sessions/{session_id}/export", params={"format": "xlsx"}), 422)
    assert_problem(api.get("/v1/sessions/s_nope/export"), 404)


# -- history paging -------------------------------------------------------------------------------------------------
def test_history_leaves_codes_out_unless_asked(api: TestClient, session: tuple[str, dict[str, Any]]) -> None:
    session_id, _ = session
    plain = api.get(f"/v1/sessions/{session_id}/history")
    stimuli = [s for g in plain.json()["generations"] for s in g["stimuli"]]
    assert all(s["code"] is None for s in stimuli) and any(s["counts"] for s in stimuli)
    full = history(api, session_id)
    assert all(len(s["code"]) == 100 for g in full["generations"] for s in g["stimuli"])
    assert len(plain.content) * 3 < len(api.get(f"/v1/sessions/{session_id}/history?codes=true").content)
    for g_plain, g_full in zip(plain.json()["generations"], full["generations"], strict=True):
        assert g_plain["stimuli"] == [{**s, "code": None} for s in g_full["stimuli"]]


@pytest.mark.parametrize(
    ("query", "numbers"),
    [
        ({}, [0, 1, 2, 3]),
        ({"from_generation": 1}, [1, 2, 3]),
        ({"from_generation": 1, "to_generation": 3}, [1, 2]),
        ({"to_generation": 1}, [0]),
        ({"from_generation": 2, "to_generation": 2}, []),
        ({"from_generation": 3, "to_generation": 99}, [3]),
        ({"from_generation": 4}, []),
        ({"from_generation": 2**31 - 1}, []),
    ],
)
def test_history_pages_by_generation(
    api: TestClient, session: tuple[str, dict[str, Any]], query: dict[str, int], numbers: list[int]
) -> None:
    session_id, _ = session
    answer = api.get(f"/v1/sessions/{session_id}/history", params=query).json()
    assert [g["number"] for g in answer["generations"]] == numbers
    assert all(s["id"].startswith(f"g{g['number']}-") for g in answer["generations"] for s in g["stimuli"])
    assert answer["session"]["id"] == session_id


@pytest.mark.parametrize(
    "query",
    [{"from_generation": -1}, {"to_generation": -1}, {"from_generation": 2**31}, {"to_generation": 10**40},
     {"from_generation": 3, "to_generation": 2}, {"codes": "maybe"}, {"from_generation": "1.5"}],
)  # fmt: skip
def test_bad_history_bounds_are_422_problems(
    api: TestClient, session: tuple[str, dict[str, Any]], query: dict[str, Any]
) -> None:
    assert_problem(api.get(f"/v1/sessions/{session[0]}/history", params=query), 422)


# -- images ----------------------------------------------------------------------------------------------------------
def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("query", [{}, {"size": 32}, {"format": "jpg", "size": 96}])
def test_images_zip_holds_the_generation_as_the_single_image_route_serves_it(
    api: TestClient, session: tuple[str, dict[str, Any]], query: dict[str, Any], scratch_dir: Path
) -> None:
    session_id, _ = session
    answer = api.get(f"/v1/sessions/{session_id}/generations/1/images.zip", params=query)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    assert not list(scratch_dir.iterdir())
    fmt = query.get("format", "png")
    manifest = api.get(f"/v1/sessions/{session_id}/generations/1").json()
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        assert sorted(archive.namelist()) == sorted(f"{s['id']}.{fmt}" for s in manifest["stimuli"])
        for stimulus in manifest["stimuli"]:
            sized = {"size": query["size"]} if "size" in query else {}
            single = api.get(stimulus["url"].replace(".png", f".{fmt}"), params=sized)
            assert single.status_code == 200, single.text
            zipped = archive.read(f"{stimulus['id']}.{fmt}")
            np.testing.assert_array_equal(_pixels(zipped), _pixels(single.content))
            assert _pixels(zipped).shape[0] == query.get("size", 64)


def test_images_zip_of_an_unknown_generation_is_a_problem(api: TestClient, session: tuple[str, dict[str, Any]]) -> None:
    session_id, _ = session
    assert_problem(api.get(f"/v1/sessions/{session_id}/generations/4/images.zip"), 404)
    assert_problem(api.get(f"/v1/sessions/{session_id}/generations/{2**40}/images.zip"), 422)
    assert_problem(api.get(f"/v1/sessions/{session_id}/generations/1/images.zip", params={"format": "gif"}), 422)


def test_the_best_image_url_resolves_to_the_best_stimulus(api: TestClient) -> None:
    created = create(api, population_size=4, references={"builtin": 1})
    assert created["session"]["best_image_url"] is None
    stimuli = created["generation"]["stimuli"]
    body = {"responses": [{"stimulus": s["id"], "counts": {"ch0": [float(s["index"])]}} for s in stimuli]}
    session = api.post(created["generation"]["responses_url"], json=body).json()["session"]
    assert session["best_stimulus"] == "g0-e3" and session["best_image_url"].endswith("/stimuli/g0-e3.png")
    assert api.get(f"/v1/sessions/{session['id']}").json()["best_image_url"] == session["best_image_url"]
    image = api.get(session["best_image_url"])
    assert image.status_code == 200 and image.content == api.get(created["generation"]["stimuli"][3]["url"]).content


# -- the client and the command line against a real server -------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(Path(tmp_path_factory.mktemp("exports-data"))) as running:
        yield running


def _run_session(client: Client, generations: int) -> str:
    created = client.create_session(seed=3, population_size=5, references={"builtin": 1})
    manifest = created["generation"]
    for _ in range(generations):
        counts = {s["id"]: {"ch0": [float(s["index"]), 1.0]} for s in manifest["stimuli"]}
        manifest = client.post_responses(created["session"]["id"], manifest["number"], counts)["next"]
    return str(created["session"]["id"])


def test_the_clients_page_history_and_download_exports(server: LocalServer, tmp_path: Path) -> None:
    with Client(server.url) as client:
        session_id = _run_session(client, 3)
        page = client.history(session_id, from_generation=1, to_generation=3)
        assert [g["number"] for g in page["generations"]] == [1, 2]
        assert page["generations"][0]["stimuli"][0]["code"] is None
        coded = client.history(session_id, codes=True, from_generation=3)
        assert [g["number"] for g in coded["generations"]] == [3]
        assert len(coded["generations"][0]["stimuli"][0]["code"]) == 100
        path = client.export(session_id, "npz", tmp_path / "s.npz")
    with np.load(path) as data:
        assert list(data["generation"][::6]) == [0, 1, 2, 3] and data["code"].shape == (24, 100)

    async def download() -> tuple[dict[str, Any], Path]:
        async with AsyncClient(server.url) as client:
            page = await client.history(session_id, to_generation=1)
            return page, await client.export(session_id, "parquet", tmp_path / "s.parquet")

    page, parquet = asyncio.run(download())
    assert [g["number"] for g in page["generations"]] == [0]
    import pyarrow.parquet as pq

    table = pq.read_table(parquet)
    assert table.num_rows == 24 and json.loads(table.schema.metadata[b"evostim"])["session"]["id"] == session_id
    assert table.column("counts.ch0").to_pylist()[:2] == [[0.0, 1.0], [1.0, 1.0]]


def test_evostim_export_writes_a_file(server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Client(server.url) as client:
        session_id = _run_session(client, 2)
    out = tmp_path / "session.nwb"
    cli(["export", session_id, "--format", "nwb", "--url", server.url, "--out", str(out)])
    assert str(out) in capsys.readouterr().out
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(out), "r") as io:
        assert io.read().identifier == session_id
    table = tmp_path / "session.csv"  # every format the server exports, csv too
    cli(["export", session_id, "--format", "csv", "--url", server.url, "--out", str(table)])
    assert table.read_text().startswith("session_id,") and str(table) in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no session 's_unknown'"):
        cli(["export", "s_unknown", "--url", server.url, "--out", str(tmp_path / "none.npz")])
    assert not (tmp_path / "none.npz").exists()


def test_evostim_report_writes_one_html_file_of_a_session_on_the_server(
    server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Client(server.url) as client:
        session_id = _run_session(client, 4)
    out = tmp_path / "report.html"
    cli(["report", session_id, "--url", server.url, "--out", str(out), "--title", "Beto, channel 12"])
    assert str(out) in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    assert "<h1>Beto, channel 12</h1>" in text and session_id in text and "http://" not in text
    assert "Best image of each generation" in text and text.count('src="data:image/png;base64,') >= 3
    with pytest.raises(SystemExit, match=r"evostim report: .*no session 's_unknown'"):
        cli(["report", "s_unknown", "--url", server.url, "--out", str(tmp_path / "none.html")])
    assert not (tmp_path / "none.html").exists()
