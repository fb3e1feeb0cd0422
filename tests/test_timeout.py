"""The per-search time bound: the engine stops itself between reads, the API answers 503, the CLI says so.

Slow reads are simulated on a virtual clock (the one the deadlines are set and checked against), so no
test sleeps; the CLI test is in the system tier.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import CCHC_SEEDS, ROOT, run_cli
from fastapi.testclient import TestClient

import app.search
import indexer.backend
from app.backends.scoring import Scorer
from app.main import create_app
from app.search import SearchService, SearchTimeout
from app.settings import Settings
from indexer.whoosh_format.reader import IndexArrays

# Many distinct words: segmenting them alone takes pyvi well over a millisecond, and each is several clauses.
LONG_QUERY = " ".join(["cải cách hành chính", "tỉnh Thái Bình", "hội nghị", "công chức", "chuyển đổi số",
                       "phát triển kinh tế", "đất đai", "ngân sách", "giáo dục", "y tế", "nông nghiệp",
                       "du lịch", "thuế", "giao thông", "môi trường", "doanh nghiệp", "đầu tư"] * 2)


class VirtualClock:
    """The time module as the search's deadlines see it: monotonic() moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """As if the work at hand took that long."""
        self.now += seconds

    def __getattr__(self, name: str):
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch) -> VirtualClock:
    """A virtual clock where a search's deadline is set (app.search) and where it is checked (indexer.backend)."""
    virtual = VirtualClock()
    monkeypatch.setattr(app.search, "time", virtual)
    monkeypatch.setattr(indexer.backend, "time", virtual)
    return virtual


def test_setting_reads_its_environment_variable(monkeypatch):
    assert Settings().search_timeout_ms == 10_000
    monkeypatch.setenv("TRACUU_SEARCH_TIMEOUT_MS", "250")
    assert Settings().search_timeout_ms == 250


def test_a_past_deadline_stops_the_search(seed_index):
    service = SearchService(seed_index)
    with pytest.raises(SearchTimeout):
        service.search("cải cách hành chính", deadline=time.monotonic() - 1)
    assert {h.id for h in service.search("cải cách hành chính").hits} >= CCHC_SEEDS  # no deadline, no bound


def test_the_engine_stops_between_posting_reads(seed_index, monkeypatch, clock):
    """The thread stops working: once its 0.3 s are spent on reads of 50 ms, it reads no further."""
    reads: list[str] = []
    read_takes = 0.0
    real = IndexArrays.postings

    def slow_postings(self, fieldname, term, deadline=None):
        reads.append(term)
        clock.advance(read_takes)
        return real(self, fieldname, term, deadline)

    monkeypatch.setattr(IndexArrays, "postings", slow_postings)
    SearchService(seed_index).search(LONG_QUERY, snippets=False)  # a fresh service: no cached postings
    needed = len(reads)
    assert needed > 40
    reads.clear()
    read_takes = 0.05
    with pytest.raises(SearchTimeout):
        SearchService(seed_index).search(LONG_QUERY, snippets=False, deadline=clock.now + 0.3)
    assert len(reads) <= round(0.3 / 0.05) + 1, reads  # the reads the time allows, and one past the deadline


def test_service_timeout_bounds_each_bulk_query_not_the_batch(seed_index, monkeypatch, clock):
    """Five queries of 0.2 s each fit a 0.5 s bound per query (a bound on the batch would refuse them)."""
    real = Scorer.score

    def slow_score(self, ranking, allowed=None, *, deadline=None):
        terms = {clause.term for clause in ranking.clauses}
        clock.advance(0.7 if "cham" in terms else 0.2)
        return real(self, ranking, allowed, deadline=deadline)

    monkeypatch.setattr(Scorer, "score", slow_score)
    client = TestClient(create_app(Settings(index_dir=seed_index, search_timeout_ms=500)))
    queries = [{"id": i, "q": q} for i, q in enumerate(["UBND", "cải cách", "hội nghị", "GRDP", "Thái Bình"])]
    res = client.post("/api/search/bulk", json={"queries": queries})
    assert res.status_code == 200, res.text
    assert [r["id"] for r in res.json()["results"]] == [0, 1, 2, 3, 4]
    assert all(r["hits"] for r in res.json()["results"])
    slow = client.post("/api/search/bulk", json={"queries": [*queries[:2], {"id": "q-slow", "q": "rất chậm"}]})
    assert slow.status_code == 503 and "'q-slow'" in slow.json()["detail"] and "0.5 s" in slow.json()["detail"]
    assert int(slow.headers["Retry-After"]) >= 1


def test_api_answers_503_past_the_bound_and_keeps_serving(seed_index):
    client = TestClient(create_app(Settings(index_dir=seed_index, search_timeout_ms=1)))
    res = client.get("/api/search", params={"q": LONG_QUERY})
    assert res.status_code == 503, res.text
    detail = res.json()["detail"]
    assert set(res.json()) == {"detail"}
    assert "took longer than 0.001 s" in detail and "giây" in detail and "Traceback" not in detail
    assert int(res.headers["Retry-After"]) >= 1
    bulk = client.post("/api/search/bulk", json={"queries": [{"id": "a", "q": LONG_QUERY}]})
    assert bulk.status_code == 503 and "'a'" in bulk.json()["detail"]
    assert client.get("/feed", params={"q": LONG_QUERY}).status_code == 503
    page = client.get("/", params={"q": LONG_QUERY})
    assert page.status_code == 503 and "thử lại" in page.text and page.headers["Retry-After"]
    article = client.get("/articles/000_c148fd66da705f65")  # related articles are left out, the article shown
    assert article.status_code == 200 and "Minh Hương" in article.text
    # The same server goes on answering: requests without a search, then searches once the bound allows.
    assert client.get("/healthz").json()["documents"] == 5
    assert client.get("/api/documents/000_c148fd66da705f65").status_code == 200
    client.app.state.service.timeout_s = 10.0
    for _ in range(3):
        ok = client.get("/api/search", params={"q": LONG_QUERY})
        assert ok.status_code == 200 and {h["id"] for h in ok.json()["hits"]} >= CCHC_SEEDS


@pytest.mark.system
def test_cli_reports_a_timeout_without_a_traceback(seed_index):
    env_run = run_cli_env({"TRACUU_SEARCH_TIMEOUT_MS": "1"}, "app", "search", "--index", str(seed_index), LONG_QUERY)
    assert env_run.returncode == 2, env_run.stdout[-300:]
    assert "took longer than 0.001 s" in env_run.stderr and "Traceback" not in env_run.stderr
    stdin = json.dumps({"id": "q1", "q": LONG_QUERY}, ensure_ascii=False) + "\n" + LONG_QUERY + "\n"
    bulk = run_cli("app", "bulk", "--index", str(seed_index), "--timeout-ms", "1", stdin=stdin)
    rows = [json.loads(line) for line in bulk.stdout.splitlines()]
    assert bulk.returncode == 1 and len(rows) == 2
    assert all("took longer than" in row["error"] for row in rows)
    assert "line 1:" in bulk.stderr and "Traceback" not in bulk.stderr
    unbounded = run_cli("app", "search", "--index", str(seed_index), "--timeout-ms", "0", "--limit", "1", LONG_QUERY)
    assert unbounded.returncode == 0 and "kết quả" in unbounded.stdout


def run_cli_env(extra: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """run_cli with more environment variables."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)
