"""The source layout: the owner's top-level folders import as ``evostim.<folder>``, also without symlinks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("server", "clients", "optimizers", "generators")


def _checkout_without_symlinks(target: Path) -> None:
    """A copy of the source as Git for Windows checks it out by default: each evostim/<folder> link is a small text
    file holding the link's target."""
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "evostim", target / "evostim", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in FOLDERS:
        link = target / "evostim" / folder
        assert link.is_symlink(), f"evostim/{folder} should be a link in the repository"
        link.unlink()
        link.write_text(f"../{folder}")


def test_a_checkout_without_symlinks_imports_the_subpackages_from_the_top_level_folders(tmp_path: Path) -> None:
    _checkout_without_symlinks(tmp_path)
    probe = (
        "import evostim.server.app, evostim.clients.http.client, evostim.optimizers, evostim.cli; "
        "print(evostim.server.app.__file__); print(evostim.clients.http.client.__file__)"
    )
    # The copy comes first on the path, ahead of this environment's editable install of the repository.
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    server_file, client_file = (Path(line) for line in done.stdout.split())
    assert server_file == tmp_path / "server" / "app.py"
    assert client_file == tmp_path / "clients" / "http" / "client.py"


def test_the_links_point_at_the_owners_folders() -> None:
    for folder in FOLDERS:
        link = ROOT / "evostim" / folder
        assert link.is_symlink() and link.resolve() == ROOT / folder
