"""Totals follow Elasticsearch's track_total_hits: exact up to a bound (10,000), past it the bound and
total_relation "gte" ("hơn 10.000 kết quả" on the page), exact when asked (exact_total). The bound is lowered
here so that the five seed pages pass it."""

from __future__ import annotations

import io
import json

import pytest
from conftest import SEED_IDS

import app.search
from app.cli import main, run_bulk
from app.search import SearchService

Q = "tỉnh"  # in every seed page


@pytest.fixture
def bound_of_two(monkeypatch):
    """A total past 2 is a lower bound."""
    monkeypatch.setattr(app.search, "TRACK_TOTAL_HITS", 2)


def test_a_total_past_the_bound_is_a_lower_bound_unless_exact_is_asked(client, bound_of_two):
    exact = client.get("/api/search", params={"q": Q, "exact_total": "true", "collapse": "false"}).json()
    assert exact["total"] == len(SEED_IDS) and exact["total_relation"] == "eq"
    bounded = client.get("/api/search", params={"q": Q, "collapse": "false"}).json()
    assert bounded["total"] == 2 and bounded["total_relation"] == "gte"
    assert [h["id"] for h in bounded["hits"]] == [h["id"] for h in exact["hits"]]  # the page is the same
    none = client.get("/api/search", params={"q": "xyzxyz"}).json()
    assert (none["total"], none["total_relation"]) == (0, "eq")
    bad = client.get("/api/search", params={"q": Q, "exact_total": "maybe"})
    assert bad.status_code == 422


def test_the_page_says_more_than(client, bound_of_two):
    page = client.get("/", params={"q": Q}).text
    assert "Tìm thấy hơn 2 kết quả" in page


def test_the_page_says_the_exact_number_under_the_bound(client):
    page = client.get("/", params={"q": Q}).text
    assert "Tìm thấy hơn" not in page and "Tìm thấy" in page


def test_bulk_answers_say_how_their_total_counts(seed_index, client, bound_of_two):
    res = client.post("/api/search/bulk", json={"queries": [{"id": 1, "q": Q}, {"id": 2, "q": "xyzxyz"}]})
    first, second = res.json()["results"]
    assert (first["total"], first["total_relation"]) == (2, "gte")
    assert (second["total"], second["total_relation"]) == (0, "eq")
    out = io.StringIO()
    run_bulk(SearchService(seed_index), [Q + "\n"], out, limit=1)
    line = json.loads(out.getvalue())
    assert (line["total"], line["total_relation"]) == (2, "gte")


def test_cli_search_prints_more_than_and_counts_on_request(seed_index, bound_of_two, capsys):
    assert main(["search", "--index", str(seed_index), Q]) == 0
    assert capsys.readouterr().out.startswith("hơn 2 kết quả")
    assert main(["search", "--index", str(seed_index), "--exact-total", Q]) == 0
    assert capsys.readouterr().out.startswith(f"{len(SEED_IDS)} kết quả")
