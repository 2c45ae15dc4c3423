"""images.zip is streamed as it is written (no temporary file, its first bytes before its last image is rendered), a
request may ask for only so much (image side, pixels an archive holds: 422s naming the settings, before any image is
rendered), and the temporary files of exports a killed server left behind are removed at start (issue #34)."""

from __future__ import annotations

import io
import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from evostim.server.media import scratch
from evostim.server.media.archive import zip_stream
from evostim.server.media.renderer import Renderer
from tests.conftest import counts_for
from tests.test_api import assert_problem, create


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of images of each batch the renderer renders (encodes), in order."""
    calls: list[int] = []
    original = Renderer.render

    def counted(self: Renderer, generator: str, codes: Any, fmt: Any, size: int | None = None) -> list[bytes]:
        calls.append(len(codes))
        return original(self, generator, codes, fmt, size)

    monkeypatch.setattr(Renderer, "render", counted)
    return calls


def test_a_zip_stream_is_a_zip_whose_members_leave_one_at_a_time() -> None:
    members = [(f"m{i}.bin", bytes([i]) * (1000 + i)) for i in range(5)]
    pulled: list[str] = []

    def produced() -> Any:
        for name, data in members:
            pulled.append(name)
            yield name, data

    chunks = zip_stream(produced())
    first = next(chunks)
    assert pulled == ["m0.bin"] and first.startswith(b"PK\x03\x04")
    data = first + b"".join(chunks)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert [(info.filename, archive.read(info)) for info in archive.infolist()] == members


def test_images_zip_streams_without_a_temporary_file(
    api: TestClient, scratch_dir: Path, renders: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    created = create(api, population_size=40, references={"builtin": 4})
    session_id = created["session"]["id"]

    def no_file(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("images.zip wrote a temporary file")

    monkeypatch.setattr(tempfile, "mkstemp", no_file)
    renders.clear()
    with api.stream("GET", f"/v1/sessions/{session_id}/generations/0/images.zip", params={"size": 96}) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
        assert "content-length" not in answer.headers  # streamed: its length is not known before its end
        assert answer.headers["content-disposition"] == f'attachment; filename="{session_id}-g0.zip"'
        chunks = answer.iter_bytes()
        first = next(chunks)
        assert first.startswith(b"PK\x03\x04") and len(renders) < 3  # 44 images, 16 a batch: not all rendered yet
        data = first + b"".join(chunks)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None and len(archive.namelist()) == 44
    assert sum(renders) == 44 and not list(scratch_dir.iterdir())


def test_image_sides_above_the_limit_are_refused_before_any_image_is_rendered(
    make_api: Any, renders: list[int]
) -> None:
    api = make_api(max_image_size=256)
    created = create(api, population_size=4)
    session_id, stimulus = created["session"]["id"], created["generation"]["stimuli"][0]
    renders.clear()
    for url in (stimulus["url"], f"/v1/sessions/{session_id}/generations/0/images.zip"):
        for size in (512, 5000):  # one refusal, naming the server's limit, however far above it
            problem = assert_problem(api.get(url, params={"size": size}), 422, f"size={size}", "EVOSTIM_MAX_IMAGE_SIZE")
            assert problem["field"] == "size" and "256" in problem["detail"]
    assert renders == []
    assert api.get(stimulus["url"], params={"size": 256}).status_code == 200


def test_an_archive_above_the_pixels_limit_is_refused_before_any_image_is_rendered(
    make_api: Any, renders: list[int]
) -> None:
    api = make_api(max_archive_mb=1)  # 1 MB: 44 images of 96 x 96 (1.2 MB of pixels) are too many
    created = create(api, population_size=40, references={"builtin": 4})
    url = f"/v1/sessions/{created['session']['id']}/generations/0/images.zip"
    renders.clear()
    problem = assert_problem(
        api.get(url, params={"size": 96, "format": "bmp"}), 422, "EVOSTIM_MAX_ARCHIVE_MB", "at most 37 images"
    )
    assert problem["field"] == "size" and renders == []
    assert api.get(url, params={"size": 64}).status_code == 200  # 44 x 64 x 64 x 3 = 0.5 MB


def test_exports_name_their_temporary_files_after_their_process(
    api: TestClient, scratch_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = create(api, population_size=4)
    api.post(created["generation"]["responses_url"], json=counts_for(created["generation"]))
    made: list[str] = []
    original = tempfile.mkstemp

    def recorded(*args: Any, **kwargs: Any) -> tuple[int, str]:
        descriptor, name = original(*args, **kwargs)
        made.append(Path(name).name)
        return descriptor, name

    monkeypatch.setattr(tempfile, "mkstemp", recorded)
    assert api.get(f"/v1/sessions/{created['session']['id']}/export", params={"format": "npz"}).status_code == 200
    assert len(made) == 1 and made[0].startswith(f"evostim-export-{os.getpid()}-")
    assert not list(scratch_dir.iterdir())


def test_stale_temporary_files_are_removed_at_start_and_live_ones_kept(scratch_dir: Path, make_api: Any) -> None:
    dead = 2**22 + 12345  # above Linux's largest process id: no process has it
    old = time.time() - 2 * scratch.LEGACY_AGE_S
    files = {
        f"evostim-export-{dead}-a1b2c3.npz": False,  # its process is gone
        f"evostim-export-{os.getpid()}-d4e5f6.zip": True,  # this process's, being written
        f"evostim-export-{os.getppid()}-g7h8i9.nwb": True,  # another live process's
        "evostim-lk4y9n4n.zip": False,  # from before process ids were in the name, untouched for hours
        "evostim-q1w2e3r4.parquet": True,  # the same, but being written now
        "evostim-notes.txt": True,  # not an export
    }
    for name in files:
        (scratch_dir / name).write_bytes(b"x" * 100)
    os.utime(scratch_dir / "evostim-lk4y9n4n.zip", (old, old))
    (scratch_dir / "evostim-pg-cluster").mkdir()  # a folder (a test database's): never touched
    make_api()
    left = {path.name for path in scratch_dir.iterdir()}
    assert left == {name for name, kept in files.items() if kept} | {"evostim-pg-cluster"}
