"""Bulk lookups spread over worker processes (app.bulk_workers): the same answers, in the same order, as one
process gives; errors stay on their own line; a script that writes a line and waits is answered at once."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from conftest import CORPUS, ROOT, index_of, run_cli

from app import bulk_workers
from app.bulk_workers import BulkError, BulkPool
from app.cli import run_bulk
from app.search import Filters, SearchService
from indexer.readers import ReadResult, expand_sources, iter_articles


@pytest.fixture(scope="module")
def paragraph_index(tmp_path_factory) -> str:
    """An index of the seed pages' paragraphs, one article each (some hundred articles)."""
    articles = []
    for article in iter_articles(expand_sources([CORPUS]), ReadResult()):
        for n, para in enumerate(p for p in article.body.split("\n") if len(p) > 40):
            articles.append({"id": f"{article.id}-{n}", "title": para[:60], "body": para, "source": article.source})
    assert len(articles) > 40
    return str(index_of(tmp_path_factory.mktemp("paragraphs"), articles))


def _queries(index: str, count: int) -> list[str]:
    """Distinct queries made of words of the indexed paragraphs, with and without tone marks."""
    service = SearchService(index)
    words = sorted({w for hit in service.search("tỉnh", limit=50).hits for w in hit.title.split() if w.isalpha()})
    assert len(words) > 20
    out = [f"{words[i % len(words)]} {words[(i * 7 + 3) % len(words)]}" for i in range(count)]
    return list(dict.fromkeys(out))


@pytest.fixture
def small_batches(monkeypatch):
    """Workers used from 6 distinct questions on, 4 at a time (a test batch is small)."""
    monkeypatch.setattr(bulk_workers, "MIN_PARALLEL", 6)
    monkeypatch.setattr(bulk_workers, "CHUNK", 4)


def test_a_pool_of_two_answers_as_one_process_does(paragraph_index, small_batches):
    queries = _queries(paragraph_index, 60)
    items = [{"id": i, "q": q} for i, q in enumerate(queries)]
    items += [{"id": "again", "q": queries[0]},
              {"id": "bad", "q": queries[1], "filters": Filters(document="không phải số")},
              {"id": "newest", "q": queries[2], "sort": "newest"}]
    alone = SearchService(paragraph_index)
    want = []
    for item in items:
        try:
            want.append(alone.bulk([item], limit=5)[0])
        except Exception as err:  # noqa: BLE001 - the filter error, compared below
            want.append(BulkError(str(err)))
    with BulkPool(SearchService(paragraph_index), workers=2) as pool:
        got = pool.answer(items, limit=5)
        assert pool._pools, "the batch was large enough for a worker"
        assert all(p.pid != os.getpid() for ex in pool._pools for p in ex._processes.values())
    assert got == want
    assert got[len(queries)]["id"] == "again" and got[len(queries)]["hits"] == got[0]["hits"]
    assert isinstance(got[-2], BulkError) and got[-2].message
    assert sum(1 for g in got if isinstance(g, dict) and g["hits"]) > len(queries) // 2


def test_run_bulk_with_workers_keeps_lines_in_order(paragraph_index, small_batches):
    queries = _queries(paragraph_index, 40)
    lines = [json.dumps({"id": f"q{i}", "q": q}, ensure_ascii=False) + "\n" for i, q in enumerate(queries)]
    lines.insert(5, "{not json\n")
    lines.insert(9, "\n")  # blank lines are skipped, as before
    outs = []
    for workers in (1, 2):
        out = io.StringIO()
        assert run_bulk(SearchService(paragraph_index), list(lines), out, limit=3, workers=workers) == 1
        outs.append([json.loads(line) for line in out.getvalue().splitlines()])
    assert outs[0] == outs[1]
    answers = outs[1]
    assert len(answers) == len(queries) + 1
    assert answers[5]["error"].startswith("line 6: bad JSON")
    assert [a["id"] for a in answers if "error" not in a] == [f"q{i}" for i in range(len(queries))]


@pytest.mark.system
def test_cli_workers_give_the_same_output_and_refuse_zero(paragraph_index, tmp_path):
    queries = _queries(paragraph_index, 300)
    stdin = "".join(q + "\n" for q in queries)
    one = run_cli("app", "bulk", "--index", paragraph_index, "--workers", "1", stdin=stdin)
    two = run_cli("app", "bulk", "--index", paragraph_index, "--workers", "2", stdin=stdin)
    assert one.returncode == two.returncode == 0, two.stderr
    assert one.stdout == two.stdout and len(one.stdout.splitlines()) == len(queries)
    bad = run_cli("app", "bulk", "--index", paragraph_index, "--workers", "0", stdin="x\n")
    assert bad.returncode == 2 and "--workers must be 1 or more" in bad.stderr
    assert "--workers" in run_cli("app", "bulk", "--help").stdout


@pytest.mark.system
def test_a_script_that_waits_for_each_answer_gets_it(paragraph_index):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "app", "bulk", "--index", paragraph_index, "--limit", "2"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        for n, q in enumerate(["ủy ban nhân dân", "cai cach hanh chinh"], 1):
            proc.stdin.write(q + "\n")
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline())  # would hang if the CLI waited for more lines
            assert answer["id"] == n
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()


def test_the_bulk_endpoint_answers_on_workers_as_in_one_process(paragraph_index, small_batches):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    queries = _queries(paragraph_index, 40)
    body = {"queries": [{"id": i, "q": q} for i, q in enumerate(queries)] + [{"id": "again", "q": queries[3]}],
            "limit": 4}
    answers = []
    for workers in (1, 2):
        client = TestClient(create_app(Settings(index_dir=paragraph_index, bulk_workers=workers)))
        res = client.post("/api/search/bulk", json=body)
        assert res.status_code == 200, res.text
        answers.append(res.json()["results"])
        bad = client.post("/api/search/bulk", json={"queries": body["queries"] + [{"id": "x", "q": "a", "doc": "?"}]})
        assert bad.status_code == 422 and "doc" in bad.text.lower()
    assert answers[0] == answers[1]
    assert answers[1][-1]["id"] == "again" and answers[1][-1]["hits"] == answers[1][3]["hits"]


def _die(items: list[dict], limit: int, stop_at_error: bool) -> tuple:
    """A worker's chunk that kills the worker (as an out-of-memory kill would)."""
    os._exit(3)


def test_a_worker_that_dies_leaves_its_questions_to_the_caller(paragraph_index, small_batches, monkeypatch):
    queries = _queries(paragraph_index, 30)
    items = [{"id": i, "q": q} for i, q in enumerate(queries)]
    want = SearchService(paragraph_index).bulk(items, limit=3)
    monkeypatch.setattr(bulk_workers, "_answer_in_worker", _die)
    with BulkPool(SearchService(paragraph_index), workers=2) as pool:
        assert pool.answer(items, limit=3) == want
        assert not pool._pools, "the broken pool was dropped"
        monkeypatch.undo()
        small = {"MIN_PARALLEL": 6, "CHUNK": 4}
        for name, value in small.items():
            monkeypatch.setattr(bulk_workers, name, value)
        assert pool.answer(items, limit=3) == want  # new workers forked
        assert pool._pools


def test_the_bulk_endpoint_stops_each_process_at_its_first_error(paragraph_index, small_batches, monkeypatch):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    queries = _queries(paragraph_index, 20)
    asked: list[str] = []
    service_bulk = SearchService.bulk

    def counted(self, items, limit=10, **kwargs):
        asked.extend(item["q"] for item in items)
        return service_bulk(self, items, limit, **kwargs)

    monkeypatch.setattr(SearchService, "bulk", counted)
    client = TestClient(create_app(Settings(index_dir=paragraph_index, bulk_workers=1)))
    body = {"queries": [{"id": "bad", "q": "x", "doc": "?"}] + [{"id": i, "q": q} for i, q in enumerate(queries)]}
    res = client.post("/api/search/bulk", json=body)
    assert res.status_code == 422
    assert asked == ["x"], "the queries after the failing one were not searched"
