"""`make run` writes `.env` on a fresh checkout: readable by its owner alone from the first
byte, with a random secret that never appears on a command line."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import read_dotenv
from tests.support import ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture
def checkout() -> Iterator[Path]:
    """The scripts and .env.example of this checkout, its virtual environment linked in."""
    directory = Path(tempfile.mkdtemp(prefix="jwt-dotenv-"))
    try:
        shutil.copytree(ROOT / "scripts", directory / "scripts")
        shutil.copy(ROOT / ".env.example", directory / ".env.example")
        (directory / ".venv").symlink_to(ROOT / ".venv")
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def dotenv(checkout: Path, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"umask {umask:03o}; scripts/dotenv.sh"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_dotenv_is_created_0600_with_a_random_secret(checkout: Path, umask: int) -> None:
    result = dotenv(checkout, umask)
    assert result.returncode == 0, result.stderr
    written = checkout / ".env"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    values, example = read_dotenv(written), read_dotenv(checkout / ".env.example")
    assert len(values["JWT_SECRET"].encode()) >= 32
    assert {k: v for k, v in values.items() if k != "JWT_SECRET"} == {
        k: v for k, v in example.items() if k != "JWT_SECRET"
    }
    assert values["JWT_SECRET"] not in result.stdout + result.stderr


def test_dotenv_keeps_an_existing_file_and_makes_new_secrets(checkout: Path) -> None:
    assert dotenv(checkout).returncode == 0
    first = (checkout / ".env").read_text()
    assert dotenv(checkout).returncode == 0
    assert (checkout / ".env").read_text() == first  # never overwritten
    os.remove(checkout / ".env")
    assert dotenv(checkout).returncode == 0
    assert read_dotenv(checkout / ".env")["JWT_SECRET"] != read_dotenv_text(first)


def read_dotenv_text(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("JWT_SECRET=")).split("=", 1)[
        1
    ]
