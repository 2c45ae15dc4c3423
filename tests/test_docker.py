"""The lab deployment's files, checked without a Docker engine: hadolint on the Dockerfile, the compose file
against the compose-spec schema (both as `make lint-docker` runs them), and what a lab relies on in each."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (the test extra installs it)")
    return found


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    done = subprocess.run([tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_the_compose_file_follows_the_compose_spec() -> None:
    command = [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_unprivileged_and_reports_its_health() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and not users[-1].startswith(("0", "root"))
    healthcheck = next(i for i, line in enumerate(lines) if line.startswith("HEALTHCHECK"))
    assert "/healthz" in " ".join(lines[healthcheck : healthcheck + 3])
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "data", "weights", ".env"} <= ignored


def test_compose_restarts_waits_for_a_healthy_database_and_takes_secrets_from_the_environment() -> None:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    postgres, server = compose["services"]["postgres"], compose["services"]["server"]
    assert postgres["restart"] == server["restart"] == "unless-stopped"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert server["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    environment = server["environment"]
    assert environment["EVOSTIM_TOKENS"].startswith("${EVOSTIM_TOKENS")
    assert "${POSTGRES_PASSWORD}" in environment["EVOSTIM_DATABASE_URL"]
    assert any(volume.endswith(":/weights:ro") for volume in server["volumes"])
