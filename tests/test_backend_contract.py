"""The search flow speaks only to the backend contract: any backend gets the same errors, time bound and
phrase relaxation; the registry picks the implementation from the settings (unit tests: no server)."""

from __future__ import annotations

import contextlib
import time
from datetime import date

import pytest

from app.search import SearchService
from app.understanding.expansion import Expander
from app.understanding.vocabulary import Vocabulary
from indexer.backend import (
    BACKENDS,
    BackendSettings,
    Filters,
    Matches,
    QueryError,
    Ranking,
    SearchTimeout,
    index_writer,
    search_backend,
)
from indexer.fields import KINDS, SYLLABLES, TEXT_NAMES, WORDS, index_field, typesense_field
from indexer.schema import make_schema
from indexer.stories import StoryGroups
from indexer.typesense_docs import collection_schema

ARTICLE = {"id": "a1", "title": "Cải cách hành chính tỉnh Thái Bình", "body": "UBND tỉnh họp về cải cách hành chính."}


class FakeSnapshot:
    """A backend of one article that records what the flow asked of it."""

    version = "fake.1"
    documents = 1

    def __init__(self):
        self.asked: list[tuple[Ranking, float | None]] = []

    def vocabulary(self) -> Vocabulary:
        return Vocabulary.from_counts({"cải_cách": 3, "hành_chính": 3}, {"cai": 3, "cải": 3})

    def expander(self) -> Expander:
        return Expander({"ubnd": ["ủy ban nhân dân"]})

    def matches(self, ranking, filters, sort, k, *, facets=False, stories=False, deadline=None,
                exact_total=False) -> Matches:
        self.asked.append((ranking, deadline))
        if deadline is not None and time.monotonic() > deadline:
            raise SearchTimeout
        # The article holds no quoted phrase: a query with one finds nothing until it is relaxed.
        found = not ranking.required
        return Matches(1 if found else 0, [("a1", 2.5)] if found else [], {"source": []} if facets else None)

    def fetch(self, keys, full):
        return [dict(ARTICLE) if key == "a1" else None for key in keys]

    def stored(self, doc_id):
        return dict(ARTICLE) if doc_id == "a1" else None

    def listings(self, ids):
        return [self.stored(doc_id) for doc_id in ids]

    def story_groups(self):
        return StoryGroups({})


class FakeBackend:
    def __init__(self):
        self.snap = FakeSnapshot()

    def snapshot(self):
        return self.snap

    def batch(self):
        return contextlib.nullcontext()

    def warm_up(self):
        pass


@pytest.fixture
def service(tmp_path) -> SearchService:
    service = SearchService(tmp_path)
    service.backend = FakeBackend()
    return service


def test_the_flow_plans_by_token_kind_and_makes_hits_with_snippets(service):
    result = service.search("cai cach hanh chinh UBND")
    assert [h.id for h in result.hits] == ["a1"] and result.total == 1
    assert result.hits[0].title_html.startswith("<mark>Cải cách hành chính</mark>")
    ranking = service.backend.snap.asked[0][0]
    kinds = {c.kind for c in ranking.clauses}
    assert SYLLABLES in kinds and WORDS in kinds  # words from the restored marks, syllables as typed
    assert {"from": "UBND", "to": "ủy ban nhân dân"} in result.expansions


def test_bad_sort_and_dates_are_bilingual_errors_before_the_backend_is_asked(service):
    with pytest.raises(QueryError, match="sort must be one of .* / sort phải là"):
        service.search("cải cách", sort="best")
    with pytest.raises(QueryError, match="'from' is after 'to' / ngày 'from' sau ngày 'to'"):
        service.search("cải cách", filters=Filters(date_from=date(2024, 5, 1), date_to=date(2024, 1, 1)))
    with pytest.raises(QueryError, match="no province called 'Gotham' / không có tỉnh"):
        service.search("cải cách", filters=Filters(province="Gotham"))
    with pytest.raises(QueryError, match="not a document number: '12/xyz' / không phải số hiệu văn bản"):
        service.search("cải cách", filters=Filters(document="12/xyz"))
    assert service.backend.snap.asked == []


def test_the_time_bound_reaches_the_backend(service):
    service.timeout_s = 5
    service.search("cải cách")
    deadline = service.backend.snap.asked[0][1]
    assert deadline is not None and 0 < deadline - time.monotonic() <= 5
    with pytest.raises(SearchTimeout):
        service.search("cải cách", deadline=time.monotonic() - 1)


def test_a_phrase_found_nowhere_is_searched_as_words(service):
    result = service.search('"cải cách thể chế" tỉnh')
    assert result.relaxed and result.total == 1
    first, second = (ranking for ranking, _ in service.backend.snap.asked)
    assert [p.marked for p in first.required] == [("cải", "cách", "thể", "chế")] and not second.required


def test_facets_and_did_you_mean_come_when_asked(service):
    plain = service.search("cai cach")
    assert plain.suggestion is None
    result = service.search("cai cach", facets=True, suggest=True)
    assert result.facets == {"source": []}
    assert result.suggestion == "cải cách"


def test_a_query_typed_with_telex_or_vni_keys_is_searched_decoded(service):
    for typed in ("cari cachs hanhf chinhs", "ca3i ca1ch ha2nh chi1nh"):
        result = service.search(typed)
        assert result.corrected == "cải cách hành chính" and result.query == typed
        ranking = service.backend.snap.asked[-1][0]
        assert "cải_cách" in {c.term for c in ranking.clauses}  # the decoded words are what was searched
    assert service.search("UBND cải cách").corrected is None


def test_the_registry_picks_the_backend_from_the_settings(tmp_path):
    assert type(index_writer(BackendSettings(backend="whoosh"))).__name__ == "WhooshWriter"
    assert type(index_writer(BackendSettings(backend="typesense"))).__name__ == "TypesenseWriter"
    assert type(search_backend(tmp_path, BackendSettings(backend="whoosh"))).__name__ == "WhooshBackend"
    assert set(BACKENDS) == {"whoosh", "typesense"}


def test_both_stores_index_every_declared_field_and_kind():
    schema = make_schema()
    collection = {f["name"] for f in collection_schema("x")["fields"]}
    for name in TEXT_NAMES:
        for kind in KINDS:
            assert index_field(name, kind) in schema.names()
            assert typesense_field(name, kind) in collection
    assert schema["body_s"].format.supports("positions") and not schema["body_b"].format.supports("positions")
