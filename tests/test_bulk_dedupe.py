"""Bulk lookups answer each distinct (query, filters, sort) once and reuse the answer for repeats (unit tier)."""

from __future__ import annotations

import io
import json

from app.cli import run_bulk
from app.search import BulkAnswers, Filters, SearchService

QUERIES = ["cải cách hành chính", "UBND tỉnh", "cai cach hanh chinh", "thủ tục hành chính"]


def counting(service: SearchService) -> list[str]:
    """Make service.search record each query it is asked; return the record."""
    asked: list[str] = []
    search = service.search

    def recorded(q: str, **kwargs) -> object:
        """service.search, noting q."""
        asked.append(q)
        return search(q, **kwargs)

    service.search = recorded  # type: ignore[method-assign]
    return asked


def test_repeats_are_searched_once_and_answered_alike(seed_index):
    service = SearchService(seed_index)
    items = [{"id": i, "q": QUERIES[i % len(QUERIES)]} for i in range(12)]
    items.append({"id": "newest", "q": QUERIES[0], "sort": "newest"})
    items.append({"id": "filtered", "q": QUERIES[0], "filters": Filters(source="no-such-source")})
    reference = [SearchService(seed_index).bulk([item])[0] for item in items]
    asked = counting(service)
    answers = service.bulk(items)
    assert answers == reference
    # Four distinct texts, plus the first one sorted otherwise and filtered otherwise.
    assert len(asked) == len(QUERIES) + 2
    assert [a["id"] for a in answers] == [item["id"] for item in items]
    assert any(a["hits"] for a in answers)
    assert answers[-1]["total"] == 0 and answers[0]["total"] > 0


def test_answers_are_not_shared_objects(seed_index):
    service = SearchService(seed_index)
    first, second = service.bulk([{"id": 1, "q": QUERIES[0]}, {"id": 2, "q": QUERIES[0]}])
    first["hits"].clear()
    assert second["hits"], "editing one answer changed its repeat"


def test_cli_reuses_answers_across_lines(seed_index):
    service = SearchService(seed_index)
    lines = [json.dumps({"id": i, "q": QUERIES[i % 2]}, ensure_ascii=False) + "\n" for i in range(6)]
    lines.insert(3, '{"q": \n')  # a bad line in between is reported and does not disturb the rest
    asked = counting(service)
    out = io.StringIO()
    assert run_bulk(service, lines, out, limit=3) == 1
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(answers) == 7 and "error" in answers[3]
    assert asked == QUERIES[:2]
    good = [a for a in answers if "error" not in a]
    assert [a["hits"] for a in good[0::2]] == [good[0]["hits"]] * 3
    assert [a["hits"] for a in good[1::2]] == [good[1]["hits"]] * 3


def test_answers_are_kept_per_index_version_and_bounded():
    answers = BulkAnswers(max_entries=2)
    answers.put(("v1", "a"), (1, ()))
    answers.put(("v1", "b"), (2, ()))
    assert answers.get(("v1", "a")) == (1, ())  # now the most recent
    answers.put(("v1", "c"), (3, ()))
    assert len(answers) == 2
    assert answers.get(("v1", "b")) is None and answers.get(("v1", "a")) == (1, ())
    assert answers.get(("v2", "a")) is None


def test_a_filter_that_is_not_text_is_still_rejected(seed_index):
    out = io.StringIO()
    line = json.dumps({"id": 1, "q": QUERIES[0], "source": ["a", "b"]}) + "\n"
    assert run_bulk(SearchService(seed_index), [line, line], out, limit=3) == 2
    assert all("error" in json.loads(x) for x in out.getvalue().splitlines())


# --- what a batch shares below the answers: clause contributions and phrase documents (app/backends/scoring.py)

SHARED_QUERIES = ["cải cách hành chính", "cai cach hanh chinh", "UBND tỉnh", '"cải cách hành chính" UBND',
                  "thủ tục hành chính -Thái", "hành chính công", '"hành chính"']


def rankings(service: SearchService) -> list:
    """The rankings the planner makes of SHARED_QUERIES on the service's index."""
    from app.understanding.parse import parse
    from app.understanding.plan import build

    snap = service.snapshot()
    return [build(parse(q), service.weights, snap).ranking for q in SHARED_QUERIES]


def test_cached_contributions_score_bit_for_bit_as_fresh_ones(seed_index, monkeypatch):
    from dataclasses import replace

    from app.backends import scoring
    from app.backends.scoring import Scorer

    service = SearchService(seed_index)
    arrays = service.snapshot().arrays
    warm = Scorer(arrays)
    plans = rankings(service)
    # The same terms with other field weights and k1: their contributions are not the ones cached above.
    plans += [replace(r, boosts={**r.boosts, "title": r.boosts.get("title", 1.0) * 2}, k1=1.5) for r in plans]
    for _ in range(2):
        for ranking in plans:
            fresh = Scorer(arrays).score(ranking)
            assert fresh.tobytes() == warm.score(ranking).tobytes()
    assert len(warm._clauses) and len(warm._phrases)
    monkeypatch.setattr(scoring, "CLAUSE_CACHE_BYTES", 1)
    monkeypatch.setattr(scoring, "PHRASE_CACHE_BYTES", 1)
    tiny = Scorer(arrays)  # every new entry evicts the one before
    for ranking in plans:
        assert tiny.score(ranking).tobytes() == Scorer(arrays).score(ranking).tobytes()
    assert len(tiny._clauses) == 1 and len(tiny._phrases) <= 1
