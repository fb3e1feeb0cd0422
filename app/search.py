"""The search service: one search flow over any backend, as a plain Python API (no HTTP in here).

    parse -> understand and plan (app.understanding) -> backend snapshot (matches) -> hits, snippets, facets

One service object is shared by every request. The backend (indexer.backend's registry picks it
from the settings) hands out snapshots of the live index; the flow, its errors and its time bound
are the same whichever backend answers.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import astuple, dataclass, field
from pathlib import Path

from app.snippets import mark, snippet, text_spans
from app.understanding import corrections
from app.understanding.parse import parse
from app.understanding.plan import QueryPlan, build
from app.weights import DEFAULT, Weights
from indexer.analysis import analyse
from indexer.backend import (
    SORTS,
    TRACK_TOTAL_HITS,
    BackendSettings,
    Filters,
    IndexMissing,
    IndexProblem,
    Matches,
    QueryError,
    SearchBackend,
    SearchTimeout,
    Snapshot,
    backend_settings,
    check_deadline,
    search_backend,
)
from indexer.stories import StoryGroups

# A collapsed search ranks this many times the page's depth, so that dropped copies leave it full.
COLLAPSE_DEPTH = 3

__all__ = ["SORTS", "Filters", "Hit", "QueryError", "SearchResult", "SearchService", "SearchTimeout"]


@dataclass
class Hit:
    """One search result."""

    id: str
    title: str
    score: float
    url: str | None = None
    source: str | None = None
    published: str | None = None
    category: str | None = None
    snippet: str = ""
    title_html: str = ""
    # The other copies of the same story (id, title, source, published), in a collapsed search.
    similar: list[dict] = field(default_factory=list)


@dataclass
class SearchResult:
    """A page of results and how the query was read."""

    query: str
    total: int
    took_ms: float
    hits: list[Hit] = field(default_factory=list)
    # "gte": more matched than total says (TRACK_TOTAL_HITS, counted exactly only when exact_total is asked)
    total_relation: str = "eq"
    expansions: list[dict] = field(default_factory=list)
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    suggestion: str | None = None  # did you mean: the query with slips mended or tone marks restored
    corrected: str | None = None  # the query as searched, when typed with Telex or VNI keys left in
    relaxed: bool = False  # no article had the quoted phrase; its words were searched instead

    def as_dict(self) -> dict:
        """The result as plain dicts and lists, for JSON (dataclasses.asdict copies every nested value
        through its own recursion: a fifth of a millisecond a page)."""
        out = dict(self.__dict__)
        out["hits"] = [dict(hit.__dict__) for hit in self.hits]
        return out


class SearchService:
    """Ranked search, bulk lookups and document access over one index, on the configured backend."""

    def __init__(self, index_dir: Path, weights: Weights = DEFAULT, *, settings: BackendSettings | None = None,
                 timeout_s: float | None = None):
        self.index_dir = Path(index_dir)
        self.weights = weights
        self.settings = settings  # None: the backend's from the environment
        self.backend: SearchBackend = search_backend(self.index_dir, settings or backend_settings())
        # Each search (each query of a bulk) stops with SearchTimeout past this many seconds; None: no bound.
        self.timeout_s = timeout_s or None

    # --- the live index ------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The live version of the index (IndexMissing when none was built)."""
        return self.backend.snapshot()

    def batch(self):
        """Within it, this thread looks for a new index version at most once a second (bulk runs)."""
        return self.backend.batch()

    def warm_up(self) -> None:
        """Load what the first query would otherwise wait for: pyvi, the index's tables."""
        analyse("khởi động")
        self.backend.warm_up()

    def after_fork(self) -> bool:
        """In a process forked from this one, make this service its own (new locks, index files reopened,
        caches kept); False when the backend cannot, or the index moved on: then make a new service."""
        renew = getattr(self.backend, "after_fork", None)
        if renew is None:
            return False
        try:
            renew()
        except IndexProblem:
            return False
        return True

    def is_ready(self) -> bool:
        """True when a built index is present and readable."""
        try:
            self.snapshot()
            return True
        except IndexProblem:
            return False

    def stats(self) -> dict:
        """Document count and version of the live index."""
        snap = self.snapshot()
        return {"documents": snap.documents, "version": snap.version}

    # --- searching ----------------------------------------------------------------------------

    def search(self, q: str, *, limit: int = 10, offset: int = 0, filters: Filters | None = None,
               sort: str = "relevance", snippets: bool = True, facets: bool = False, suggest: bool = False,
               collapse: bool = False, deadline: float | None = None, exact_total: bool = False) -> SearchResult:
        """Run one query and return a page of hits, with snippets unless told otherwise, facet counts and a
        did-you-mean when asked. The total is exact up to TRACK_TOTAL_HITS, past it "at least" that many
        (total_relation "gte") unless exact_total.

        deadline is a time.monotonic() instant (default: now + the service's timeout_s); past it the
        search stops between two reads of the index and raises SearchTimeout.
        """
        started = time.perf_counter()
        if deadline is None and self.timeout_s:
            deadline = time.monotonic() + self.timeout_s
        if sort not in SORTS:
            raise QueryError(f"sort must be one of {', '.join(SORTS)} / sort phải là {', '.join(SORTS)}")
        if filters is not None:
            filters = filters.normalised()
        snap = self.snapshot()
        asked, corrected = q, corrections.typed_keys(q, snap.vocabulary())
        groups = snap.story_groups() if collapse else None
        # Copies of one story are dropped from the page: a backend that cannot drop them itself ranks
        # enough candidates to fill the page all the same.
        depth = (offset + limit) * (COLLAPSE_DEPTH if groups else 1)
        found = self._matches(corrected or q, snap, filters, sort, depth, facets, bool(groups), deadline, exact_total)
        if corrected and not found[1].total:
            # "xe bus" is no Telex "xe bú": what was decoded finds nothing, so the query is searched as typed.
            corrected, found = None, self._matches(q, snap, filters, sort, depth, facets, bool(groups), deadline,
                                                   exact_total)
        plan, found, relaxed = found
        if plan.empty:
            return SearchResult(query=asked, total=0, took_ms=_ms(started), expansions=plan.expansions,
                                corrected=corrected)
        q = corrected or q
        total, ranked = (found.total, found.ranked) if not groups or found.collapsed \
            else _collapsed(snap, groups, found, deadline)
        relation = found.total_relation
        if not exact_total and total > TRACK_TOTAL_HITS:
            total, relation = TRACK_TOTAL_HITS, "gte"  # one rule whichever backend counted
        page = ranked[offset:offset + limit]
        check_deadline(deadline)
        stored = snap.fetch([key for key, _ in page], full=snippets)
        hits = [make_hit(doc, score, plan.highlight_terms if snippets else None)
                for doc, (_, score) in zip(stored, page, strict=True) if doc is not None]
        if groups:
            _add_similar(snap, groups, hits, deadline)
        result = SearchResult(query=asked, total=total, total_relation=relation, took_ms=_ms(started), hits=hits,
                              expansions=plan.expansions, relaxed=relaxed, corrected=corrected,
                              facets=found.facets or {})
        if suggest and not corrected:
            check_deadline(deadline)
            result.suggestion = corrections.did_you_mean(q, snap.vocabulary())
            result.took_ms = _ms(started)
        return result

    def _matches(self, q: str, snap: Snapshot, filters: Filters | None, sort: str, depth: int, facets: bool,
                 collapse: bool, deadline: float | None, exact_total: bool) -> tuple[QueryPlan, Matches, bool]:
        """(plan, matches, relaxed) of one query: a quoted phrase found nowhere is searched as its words."""
        parsed = parse(q)
        check_deadline(deadline)
        plan = build(parsed, self.weights, snap, deadline=deadline)
        if plan.empty:
            return plan, Matches(0, []), False
        found = snap.matches(plan.ranking, filters, sort, depth, facets=facets, stories=collapse, deadline=deadline,
                             exact_total=exact_total)
        if parsed.phrases and not found.total:
            # Often a typo inside the quotes: its words find what was meant.
            check_deadline(deadline)
            plan = build(parsed.relaxed(), self.weights, snap, deadline=deadline)
            found = snap.matches(plan.ranking, filters, sort, depth, facets=facets, stories=collapse,
                                 deadline=deadline, exact_total=exact_total)
            return plan, found, True
        return plan, found, False

    def plan(self, q: str) -> QueryPlan:
        """How a query is read against the live index (what is scored, marked and expanded)."""
        return build(parse(q), self.weights, self.snapshot())

    def suggest(self, prefix: str, limit: int = 8) -> list[str]:
        """Autocomplete: frequent words of the index that complete what was typed, marks restored."""
        return corrections.completions(prefix, self.snapshot().vocabulary(), limit)

    def bulk(self, queries: list[dict], limit: int = 10, *, answered: BulkAnswers | None = None) -> list[dict]:
        """Answer many queries with one snapshot; each result is {id, total, total_relation, hits[{id, score, title}]}.

        Each distinct (query, filters, sort) is searched once and its answer reused for the repeats: in
        answered when given (a caller's memory across calls, like `app bulk` reading line by line), else in
        one for this batch. Each query has the time bound of one search (timeout_s), not the batch as a whole.
        """
        answered = BulkAnswers() if answered is None else answered
        out = []
        with self.batch():
            for item in queries:
                filters = item.get("filters") or Filters()
                sort = item.get("sort", "relevance")
                # The version is in the key: an answer found before an update must not stand for one after it.
                key = bulk_key(self.snapshot().version, item["q"], filters, sort, limit)
                found = answered.get(key) if key is not None else None
                if found is None:
                    try:
                        res = self.search(item["q"], limit=limit, filters=filters, sort=sort, snippets=False)
                    except SearchTimeout as err:
                        err.query_id = item["id"]
                        raise
                    found = (res.total, tuple((h.id, h.score, h.title) for h in res.hits), res.total_relation)
                    if key is not None:
                        answered.put(key, found)
                out.append(bulk_result(item["id"], found))
        return out

    def article_view(self, doc_id: str, q: str = "") -> dict | None:
        """An article for reading: paragraphs as HTML with the query's words marked, and related articles."""
        stored = self.stored(doc_id)
        if stored is None:
            return None
        wanted = self.plan(q).highlight_terms if q.strip() else set()
        body, paragraphs, pos = stored.get("body", ""), [], 0
        body_spans = text_spans(body, wanted)
        for part in body.split("\n"):
            if part.strip():
                paragraphs.append(mark(body, body_spans, pos, pos + len(part)))
            pos += len(part) + 1
        related_query = stored.get("title") or body[:300]
        try:
            related = [h for h in self.search(related_query[:500], limit=6, snippets=False).hits
                       if h.id != doc_id][:5]
        except SearchTimeout:
            related = []  # the article itself is what was asked for; its neighbours can wait
        title = stored.get("title", "")
        return {"doc": public_document(stored), "title_html": mark(title, text_spans(title, wanted)),
                "paragraphs": paragraphs, "related": related}

    def stored(self, doc_id: str) -> dict | None:
        """Every stored field of the article with this id (published as a datetime), or None."""
        return self.snapshot().stored(doc_id)

    def document(self, doc_id: str) -> dict | None:
        """The stored article with this id, as the API returns it, or None."""
        stored = self.stored(doc_id)
        return None if stored is None else public_document(stored)


BulkAnswer = tuple[int, tuple[tuple[str, float, str], ...], str]  # (total, ((id, score, title), ...), relation)


def bulk_result(item_id: object, found: BulkAnswer) -> dict:
    """One bulk answer as the CLI and the API give it: {id, total, total_relation, hits[{id, score, title}]}."""
    total, hits, relation = found
    return {"id": item_id, "total": total, "total_relation": relation,
            "hits": [{"id": i, "score": score, "title": title} for i, score, title in hits]}


class BulkAnswers:
    """Answers of bulk queries by (index version, query, filters, sort, limit); the oldest go past max_entries."""

    def __init__(self, max_entries: int = 10_000):
        self.max_entries = max_entries
        self._answers: OrderedDict[tuple, BulkAnswer] = OrderedDict()

    def get(self, key: tuple) -> BulkAnswer | None:
        """The answer kept for key, or None."""
        found = self._answers.get(key)
        if found is not None:
            self._answers.move_to_end(key)
        return found

    def put(self, key: tuple, answer: BulkAnswer) -> None:
        """Keep an answer, forgetting the least recently used past max_entries."""
        self._answers[key] = answer
        self._answers.move_to_end(key)
        while len(self._answers) > self.max_entries:
            self._answers.popitem(last=False)

    def __len__(self) -> int:
        """How many answers are kept."""
        return len(self._answers)


def bulk_key(version: str, q: str, filters: Filters | None, sort: str, limit: int) -> tuple | None:
    """What makes two bulk queries the same question, or None when a value cannot be a key (a filter that
    is not text, which the search rejects anyway)."""
    key = (version, q, astuple(filters or Filters()), sort, limit)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _collapsed(snap: Snapshot, groups: StoryGroups, found: Matches,
               deadline: float | None) -> tuple[int, list[tuple[object, float]]]:
    """(stories matched, matches with only the best-ranked copy of each story) from a backend's candidates."""
    check_deadline(deadline)
    listings = snap.fetch([key for key, _ in found.ranked], full=False)
    check_deadline(deadline)
    kept, seen = [], set()
    for match, listing in zip(found.ranked, listings, strict=True):
        story = groups.story(listing["id"]) if listing is not None else None
        if story is None or story in seen:
            continue
        seen.add(story)
        kept.append(match)
    # Every copy seen among the candidates is one match less (an estimate: copies further down are not seen).
    return max(len(kept), found.total - (len(found.ranked) - len(kept))), kept


def _add_similar(snap: Snapshot, groups: StoryGroups, hits: list[Hit], deadline: float | None) -> None:
    """List each hit's other copies (same story) on it, earliest first: one lookup for the whole page."""
    others = {hit.id: [doc for doc in groups.members(groups.story(hit.id)) if doc != hit.id] for hit in hits}
    wanted = list(dict.fromkeys(doc for docs in others.values() for doc in docs))
    if not wanted:
        return
    check_deadline(deadline)
    listed = {d["id"]: d for d in snap.listings(wanted) if d is not None}
    for hit in hits:
        found = [listed[doc] for doc in others[hit.id] if doc in listed]
        found.sort(key=lambda d: (d.get("published") is None, d.get("published") or 0, d["id"]))
        hit.similar = [{"id": d["id"], "title": d.get("title", ""), "source": d.get("source"),
                        "published": d["published"].isoformat() if d.get("published") else None} for d in found]


def public_document(stored: Mapping) -> dict:
    """An article's stored fields as the API shows them: no internal hash, the date as ISO text."""
    doc = {k: v for k, v in stored.items() if k != "content_hash"}
    if doc.get("published"):
        doc["published"] = doc["published"].isoformat()
    return doc


def make_hit(stored: Mapping, score: float, wanted: set[str] | None) -> Hit:
    """A Hit from stored fields, with snippet and marked title unless wanted is None."""
    hit = Hit(id=stored["id"], title=stored.get("title", ""), score=round(score, 4),
              url=stored.get("url"), source=stored.get("source"), category=stored.get("category"),
              published=stored["published"].isoformat() if stored.get("published") else None)
    if wanted is not None:
        body_spans = text_spans(stored.get("body", ""), wanted)
        abstract_spans = [] if body_spans else text_spans(stored.get("abstract", ""), wanted)
        if abstract_spans:
            hit.snippet = snippet(stored["abstract"], abstract_spans)
        else:
            hit.snippet = snippet(stored.get("body", ""), body_spans)
        hit.title_html = mark(hit.title, text_spans(hit.title, wanted))
    return hit


def _ms(started: float) -> float:
    """Milliseconds since started, rounded for display."""
    return round((time.perf_counter() - started) * 1000, 2)


def missing_index_message(index_dir: Path) -> str:
    """What to tell a person whose index folder holds no index yet."""
    return f"no index in {index_dir}: build one with `python -m indexer build --index {index_dir} corpus/`"


__all__ += ["BulkAnswers", "IndexMissing", "make_hit", "missing_index_message", "public_document"]
