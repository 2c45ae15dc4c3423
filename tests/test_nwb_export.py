"""The NWB export as an archive takes it: nwbinspector (with the DANDI archive's configuration) finds nothing
critical and no best-practice violation when the session's metadata, or the export's fields, give the subject;
stimuli are images with a time-based record of what was shown when; a value an archive would refuse is a 422."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from evostim.cli import main as cli
from evostim.clients.http.client import Client
from evostim.clients.http.local_server import LocalServer
from tests.test_api import assert_problem, create

SUBJECT = {"subject_id": "Beto", "species": "Macaca mulatta", "sex": "M", "age": "P7Y"}


def archive_findings(path: Path) -> list[str]:
    """What would stop the file at the archive: nwbinspector's findings from best-practice violations up, its checks
    that crashed included (ERROR), under DANDI's configuration."""
    from nwbinspector import Importance, inspect_nwbfile, load_config

    messages = inspect_nwbfile(nwbfile_path=path, config=load_config("dandi"))
    return [
        f"{m.importance.name} {m.check_function_name} {m.location}: {m.message.splitlines()[0]}"
        for m in messages
        if m is not None and m.importance.value >= Importance.BEST_PRACTICE_VIOLATION.value
    ]


def _run(api: TestClient, metadata: dict[str, Any], *, baselines: bool = False, generations: int = 3) -> str:
    """A session of ``generations`` closed generations (counts only unless ``baselines``, as the demo posts them)."""
    created = create(api, population_size=5, references={"builtin": 2}, metadata=metadata)
    manifest = created["generation"]
    for g in range(generations):
        responses = []
        for s in manifest["stimuli"]:
            response: dict[str, Any] = {"stimulus": s["id"], "counts": {"ch0": [float(s["index"] + g), 3.0]}}
            if baselines:
                response["baseline"] = {"ch0": [1.0, 2.0]}
            responses.append(response)
        manifest = api.post(manifest["responses_url"], json={"responses": responses}).json()["next"]
    return str(created["session"]["id"])


def _export(api: TestClient, session_id: str, path: Path, **fields: str) -> Path:
    answer = api.get(f"/v1/sessions/{session_id}/export", params={"format": "nwb", **fields})
    assert answer.status_code == 200, answer.text
    path.write_bytes(answer.content)
    return path


@pytest.mark.parametrize("baselines", [False, True])
def test_an_nwb_export_whose_metadata_gives_the_subject_passes_nwbinspector(
    api: TestClient, tmp_path: Path, baselines: bool
) -> None:
    session_id = _run(api, {"animal": "Beto", "subject": {k: v for k, v in SUBJECT.items() if k != "subject_id"}},
                      baselines=baselines)  # fmt: skip
    path = _export(api, session_id, tmp_path / "s.nwb")
    assert archive_findings(path) == []
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        subject = nwbfile.subject
        assert (subject.subject_id, subject.species, subject.sex, subject.age) == tuple(SUBJECT.values())
        presentations = nwbfile.intervals["presentations"].to_dataframe()
        assert ("baseline.ch0" in presentations) is baselines  # no empty column where no baseline was posted
        assert [image.name for image in nwbfile.stimulus_template["stimuli"].order_of_images.data] == list(
            presentations["stimulus_id"]
        )


def test_the_presentations_say_what_was_shown_when_in_seconds(api: TestClient, tmp_path: Path) -> None:
    session_id = _run(api, {"subject": SUBJECT})
    path = _export(api, session_id, tmp_path / "s.nwb")
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        presentations = nwbfile.intervals["presentations"].to_dataframe()
        assert not any(name.endswith("_at") for name in presentations)  # no integer microseconds since 1970
        start, stop = presentations["start_time"].to_numpy(), presentations["stop_time"].to_numpy()
        assert presentations["start_time"].dtype == np.float64 and 0 <= start[0] < 60  # seconds since the start
        assert np.all(np.diff(start) >= 0) and np.all(stop[:-7] > start[:-7]) and np.isnan(stop[-7:]).all()
        for number in range(3):
            manifest = api.get(f"/v1/sessions/{session_id}/generations/{number}").json()
            shown = presentations[presentations["generation"] == number]
            assert [manifest["order"].index(s) for s in shown["stimulus_id"]] == list(shown["order"])
        counts = presentations["counts.ch0"]
        assert list(counts.iloc[0]) == [0.0, 3.0] and list(counts.iloc[-1]) == []  # the open generation: pending
        session = api.get(f"/v1/sessions/{session_id}").json()
        assert nwbfile.session_start_time == datetime.fromisoformat(session["created_at"])


def test_the_exports_fields_give_the_subject_and_start_over_the_metadata(api: TestClient, tmp_path: Path) -> None:
    session_id = _run(api, {"animal": "A", "sex": "F"})
    start = "2026-03-02T09:15:00+01:00"
    fields = {"species": "rhesus macaque", "sex": "male", "age": "P7Y", "session_start": start}
    path = _export(api, session_id, tmp_path / "s.nwb", **fields)
    assert archive_findings(path) == []
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        assert nwbfile.subject.species == "Macaca mulatta" and nwbfile.subject.sex == "M"
        assert nwbfile.subject.subject_id == "A" and nwbfile.session_start_time == datetime.fromisoformat(start)
        generations = nwbfile.intervals["generations"].to_dataframe()
        session = api.get(f"/v1/sessions/{session_id}").json()
        created = (datetime.fromisoformat(session["created_at"]) - datetime.fromisoformat(start)).total_seconds()
        assert generations["start_time"].iloc[0] == pytest.approx(created, abs=5)


def test_a_session_nothing_was_posted_to_is_refused_as_nwb_and_its_first_posted_generation_passes(
    api: TestClient, tmp_path: Path
) -> None:
    session_id = _run(api, {"subject": SUBJECT}, generations=0)
    answer = api.get(f"/v1/sessions/{session_id}/export", params={"format": "nwb"})
    assert_problem(answer, 409, "needs a generation whose responses were posted", "npz, parquet or csv")
    assert api.get(f"/v1/sessions/{session_id}/export", params={"format": "npz"}).status_code == 200
    assert api.get(f"/v1/sessions/{session_id}").json()["generation"] == 0  # the refusal changed nothing
    manifest = api.get(f"/v1/sessions/{session_id}/generations/0").json()
    responses = [{"stimulus": s["id"], "counts": {"ch0": [float(s["index"]), 3.0]}} for s in manifest["stimuli"]]
    assert api.post(manifest["responses_url"], json={"responses": responses}).status_code == 200
    assert archive_findings(_export(api, session_id, tmp_path / "s.nwb")) == []  # one closed generation, one open


def test_without_the_subject_nwbinspector_names_what_is_missing(api: TestClient, tmp_path: Path) -> None:
    path = _export(api, _run(api, {"animal": "A"}), tmp_path / "s.nwb")
    findings = "\n".join(archive_findings(path))
    for check in ("check_subject_sex", "check_subject_age", "check_subject_species_exists"):
        assert check in findings
    assert "ERROR" not in findings  # no check crashes on the file


@pytest.mark.parametrize(
    ("metadata", "fields", "fragment"),
    [
        ({}, {"sex": "maybe"}, "sex: 'maybe' is not one of M, F, U"),
        ({}, {"age": "7 years"}, "ISO 8601 duration, e.g. P7Y"),
        ({}, {"species": "monkey"}, "species: 'monkey' is neither a Latin binomial"),
        ({}, {"session_start": "2026-03-02T09:15:00"}, "has no time zone"),
        ({}, {"session_start": "yesterday"}, "not an ISO 8601 time"),
        ({"subject": {"age": "seven"}}, {}, "metadata.subject.age: 'seven' is not an ISO 8601 duration"),
        ({"age": "seven"}, {"age": "P7Y"}, None),  # the export's field wins over the metadata
    ],
)
def test_a_subject_an_archive_would_refuse_is_a_422_naming_the_field(
    api: TestClient, tmp_path: Path, metadata: dict[str, Any], fields: dict[str, str], fragment: str | None
) -> None:
    session_id = _run(api, metadata, generations=1)
    answer = api.get(f"/v1/sessions/{session_id}/export", params={"format": "nwb", **fields})
    if fragment is None:
        assert answer.status_code == 200
    else:
        assert_problem(answer, 422, "the NWB export: ", fragment)
        assert api.get(f"/v1/sessions/{session_id}/export", params={"format": "npz", **fields}).status_code == 200


def test_evostim_export_takes_the_subject_as_flags_and_names_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalServer(tmp_path / "data") as server, Client(server.url) as client:
        created = client.create_session(population_size=4, metadata={"animal": "Beto"})
        manifest = created["generation"]
        for _ in range(2):
            counts = {s["id"]: {"ch0": [float(s["index"])]} for s in manifest["stimuli"]}
            manifest = client.post_responses(created["session"]["id"], manifest["number"], counts)["next"]
        session_id = created["session"]["id"]
        bare, flagged = tmp_path / "bare.nwb", tmp_path / "flagged.nwb"
        cli(["export", session_id, "--format", "nwb", "--url", server.url, "--out", str(bare)])
        assert "note: the subject's species, sex, age not given" in capsys.readouterr().out
        flags = ["--species", "Macaca mulatta", "--sex", "M", "--age", "P7Y", "--session-start", "2026-03-02T09:15Z"]
        cli(["export", session_id, "--format", "nwb", "--url", server.url, "--out", str(flagged), *flags])
        assert "note" not in capsys.readouterr().out
        with pytest.raises(SystemExit, match=r"evostim export: .*the NWB export: age: 'seven' is not"):
            cli(["export", session_id, "--format", "nwb", "--url", server.url, "--age", "seven"])
    assert archive_findings(flagged) == []
