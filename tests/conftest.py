"""Shared fixtures and helpers for the two tiers of tests.

Unit tests (`make test-unit`, `pytest -m "not system"`) run in this process in seconds: indexes are built
with indexer.build.build_index, the app is driven through TestClient, and no process is started (a unit
test that starts one fails and says so). System tests carry the `system` marker: they run the command
lines as a user would (`run_cli`), servers, a browser or a Typesense cluster. `make test` runs both.
Nothing sleeps for a fixed time: what takes a while is awaited with `wait_until`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
SHARED = ROOT.parent / "shared"

# The seed pages (corpus/*.txt) by what a reader finds in them.
SEED_IDS = ("000_c148fd66da705f65", "001_0c1619dc2afa53c4", "002_31e144db15d30624", "003_89bf614c203d309a",
            "004_206058703f9fac61")
# The three seed pages whose text says "cải cách hành chính" (004 only in its portal's header line, which the
# reader drops; 003, on the provincial party meeting, not at all).
CCHC_SEEDS = frozenset({"000_c148fd66da705f65", "001_0c1619dc2afa53c4", "002_31e144db15d30624"})

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 60.0, what: str = "the condition", *,
               interval: float = 0.05, ignore: tuple[type[BaseException], ...] = ()) -> T:
    """Poll predicate until it returns something true, and return that; past timeout, fail naming what.

    Exceptions of the types in ignore count as "not yet" (a server that is starting refuses connections);
    any other exception, an AssertionError of the predicate included, ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = predicate()
            if last:
                return last  # type: ignore[return-value]
        except ignore as err:
            last = err
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)


def run_cli(*args: str, stdin: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run `python -m <args>` in the project like a user would, capturing text output (system tier)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", *args], input=stdin, capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def write_jsonl(path: Path, records: Iterable[dict]) -> Path:
    """Articles as JSON Lines, one record a line."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def build_in_process(index: Path, *sources: Path) -> Path:
    """An index of sources built in this process (one writer, no writer processes), as the CLI would build it."""
    from indexer.build import build_index

    report = build_index(index, list(sources), workers=1)
    assert not report.bad, report.bad
    return index


def index_of(folder: Path, articles: list[dict]) -> Path:
    """An index of these articles (JSON Lines records) under folder, built in this process."""
    folder.mkdir(parents=True, exist_ok=True)
    return build_in_process(folder / "ix", write_jsonl(folder / "articles.jsonl", articles))


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory) -> Path:
    """An index of the five seed pages, built once per test session, in this process."""
    index = build_in_process(tmp_path_factory.mktemp("seed") / "index", CORPUS)
    from app.search import SearchService

    assert SearchService(index).stats()["documents"] == len(SEED_IDS)
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


@pytest.fixture(autouse=True)
def _unit_tests_start_no_process(request, monkeypatch):
    """In a run of the unit tier alone (-m "not system"), a test that starts a process fails, saying how to
    mark it. Writer processes forked by multiprocessing are the library's own and are not counted."""
    if request.node.get_closest_marker("system") or "not system" not in (request.config.getoption("markexpr") or ""):
        return

    def refuse(*args, **kwargs):
        command = args[0] if args else kwargs.get("args")
        raise AssertionError(f"a unit test started a process ({command!r}): mark the test "
                             "@pytest.mark.system (or the module: pytestmark = pytest.mark.system)")

    monkeypatch.setattr(subprocess, "Popen", refuse)
