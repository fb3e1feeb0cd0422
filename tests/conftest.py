"""Shared fixtures: an index built from the project's corpus through the public CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
SHARED = ROOT.parent / "shared"


def run_cli(*args: str, stdin: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run `python -m <args>` in the project like a user would, capturing text output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", *args], input=stdin, capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory) -> Path:
    """An index of the five seed pages, built once per test session."""
    index = tmp_path_factory.mktemp("seed") / "index"
    done = run_cli("indexer", "build", "--index", str(index), str(CORPUS))
    assert done.returncode == 0, done.stderr
    return index


@pytest.fixture(scope="session")
def client(seed_index) -> TestClient:
    """An HTTP client for the app serving the seed index."""
    from app.main import create_app
    from app.settings import Settings

    return TestClient(create_app(Settings(index_dir=seed_index)))


def shared_file(*parts: str) -> Path:
    """A file under ../shared, or skip the test where it is absent (users' machines)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path.name} not available (../shared is absent)")
    return path
