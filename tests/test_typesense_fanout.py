"""How a query becomes Typesense searches (issue 14), over a fake cluster client: the budget keeps the
searches that weigh most, a batch asks a shared token once, and a query's searches split across nodes
come back in order. The real cluster's answers are tested in test_typesense_backend.py."""

from __future__ import annotations

import threading
from pathlib import Path

from app.backends.typesense import DEFAULT_FAN_OUT, EVERY_TOKEN, FanOut, TypesenseBackend, TypesenseSnapshot
from indexer.backend import BackendSettings, Clause, Ranking
from indexer.fields import BIGRAMS, SYLLABLES, WORDS
from indexer.typesense_docs import encode


class FakeMultiSearch:
    """Answers each search with hits named after its query; records every request."""

    def __init__(self):
        self.requests: list[list[str]] = []
        self.lock = threading.Lock()

    def perform(self, body: dict, common: dict) -> dict:
        """One multi-search request."""
        with self.lock:
            self.requests.append([s["q"] for s in body["searches"]])
        return {"results": [{"found": 3, "hits": [{"document": {"doc_id": f"{s['q']}-{i}"}} for i in range(3)]}
                            for s in body["searches"]]}


class FakeClient:
    """The one part of the Typesense client a snapshot's searches use."""

    def __init__(self):
        self.multi_search = FakeMultiSearch()


# "hành_chính" is in 900 of 1,000 articles, "thủ_tục" in 5: a budget keeps the rare one first.
# One-syllable words are counted as syllables ("và" in 990), as the indexer's metadata does.
META = {"words": {"hành_chính": 900, "thủ_tục": 5, "cải_cách": 300},
        "syllables": {"hanh": 900, "chinh": 950, "thu": 400, "tuc": 30, "cai": 300, "cach": 310, "va": 990,
                      "và": 990}}


def snapshot(fan_out: FanOut) -> TypesenseSnapshot:
    """A snapshot of a 1,000-article collection over the fake client."""
    return TypesenseSnapshot(FakeClient(), "c1", META, 1000, fan_out)


def ranking() -> Ranking:
    """Words, folded syllables and bigrams of "cải cách thủ tục và hành chính", all of weight 1."""
    words = [Clause(1.0, WORDS, w) for w in ("cải_cách", "thủ_tục", "và", "hành_chính")]
    syllables = [Clause(1.0, SYLLABLES, s) for s in ("cai", "cach", "thu", "tuc", "hanh", "chinh")]
    bigrams = [Clause(1.0, BIGRAMS, b) for b in ("cai cach", "cach thu", "thu tuc", "tuc hanh", "hanh chinh")]
    return Ranking(clauses=words + syllables + bigrams)


def searched(snap: TypesenseSnapshot) -> list[str]:
    """The tokens the snapshot sent, in the order of its requests."""
    return [q for request in snap.client.multi_search.requests for q in request]


def test_every_token_is_searched_without_a_budget():
    snap = snapshot(EVERY_TOKEN)
    snap.matches(ranking(), None, "relevance", 10)
    assert len(searched(snap)) == 15 == snap.searches_sent


def test_a_budget_keeps_the_searches_that_weigh_most():
    snap = snapshot(FanOut(per_kind=24, budget=4, by_weight=True))
    found = snap.matches(ranking(), None, "relevance", 10)
    sent = searched(snap)
    assert len(sent) == 4 == snap.searches_sent
    # Bigrams weigh 2, syllables 0.3: the rare word and the rarest bigrams go, the common syllables do not.
    assert encode("thủ_tục") in sent and encode("hành_chính") not in sent and encode("và") not in sent
    assert not {encode(s) for s in ("hanh", "chinh", "cai")} & set(sent)
    assert found.ranked and found.total == 3


def test_a_batch_asks_a_shared_token_once_and_nothing_is_kept_outside_it():
    backend = TypesenseBackend(Path("index"), BackendSettings(backend="typesense", typesense_api_key="k"))
    snap = snapshot(DEFAULT_FAN_OUT)
    with backend.batch():
        first = snap.matches(ranking(), None, "relevance", 10)
        sent = snap.searches_sent
        again = snap.matches(ranking(), None, "relevance", 10)
        assert snap.searches_sent == sent  # every token search answered from the batch's memory
    assert again.ranked == first.ranked and again.total == first.total
    snap.matches(ranking(), None, "relevance", 10)
    assert snap.searches_sent == 2 * sent


def test_a_batch_forgets_what_an_older_snapshot_answered():
    # An update writes into the same collection; the reader's next snapshot must not get the old answers.
    backend = TypesenseBackend(Path("index"), BackendSettings(backend="typesense", typesense_api_key="k"))
    old, new = snapshot(DEFAULT_FAN_OUT), snapshot(DEFAULT_FAN_OUT)
    with backend.batch():
        old.matches(ranking(), None, "relevance", 10)
        new.matches(ranking(), None, "relevance", 10)
    assert new.searches_sent == old.searches_sent > 0


def test_many_searches_are_split_across_nodes_and_answered_in_order():
    snap = snapshot(FanOut(parallel=3))
    searches = [{"kind": "w", "q": f"t{i}", "collection": "c1"} for i in range(18)]
    answers = snap._multi_search(searches)
    assert [a["hits"][0]["document"]["doc_id"] for a in answers] == [f"t{i}-0" for i in range(18)]
    requests = snap.client.multi_search.requests
    assert len(requests) == 3 and sorted(len(r) for r in requests) == [6, 6, 6]
    few = snapshot(FanOut(parallel=3))
    few._multi_search(searches[:5])  # too few to be worth a thread each
    assert len(few.client.multi_search.requests) == 1
