"""The search service: a plain Python API over the live index (no HTTP in here).

One service object is shared by every request. It holds one Engine over the live index and
replaces it only when the index changed (a new generation, or a commit by `indexer update`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path

from whoosh import query as wq
from whoosh.index import TOC

from app import query as query_mod
from app.engine import Engine, SearchTimeout, check_deadline
from app.snippets import mark, snippet, text_spans
from app.weights import DEFAULT, Weights
from indexer.analysis import analyse, fold, has_marks
from indexer.backend import BackendSettings
from indexer.schema import BIGRAM_SUFFIX, SYLLABLE_SUFFIX
from indexer.store import IndexMissing, IndexProblem, current_generation, open_index

SORTS = ("relevance", "newest", "oldest")
# Inside batch() (a bulk run) a thread looks for a new index version at most this often, not per query: the
# look is a file read and a directory listing, a few percent of a quick query.
BATCH_RECHECK_S = 1.0


class QueryError(ValueError):
    """A request the service cannot answer as asked (bad filter, bad sort, …)."""


@dataclass
class Filters:
    """Restrictions on which articles a search may return."""

    source: str | None = None
    category: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    def to_query(self) -> wq.Query | None:
        """A Whoosh filter query, or None when nothing is restricted."""
        parts: list[wq.Query] = []
        if self.source:
            parts.append(wq.Term("source", self.source))
        if self.category:
            parts.append(wq.Term("category", self.category))
        if self.date_from or self.date_to:
            if self.date_from and self.date_to and self.date_from > self.date_to:
                raise QueryError("'from' is after 'to' / ngày 'from' sau ngày 'to'")
            start = datetime.combine(self.date_from, dtime.min) if self.date_from else None
            end = datetime.combine(self.date_to, dtime.max) if self.date_to else None
            parts.append(wq.DateRange("published", start, end))
        return wq.And(parts) if parts else None


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


@dataclass
class SearchResult:
    """A page of results and how the query was read."""

    query: str
    total: int
    took_ms: float
    hits: list[Hit] = field(default_factory=list)
    expansions: list[dict] = field(default_factory=list)
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    suggestion: str | None = None  # the query with its tone marks restored, when typed without
    relaxed: bool = False  # no article had the quoted phrase; its words were searched instead


class SearchService:
    """Ranked search, bulk lookups and document access over one index folder."""

    def __init__(self, index_dir: Path, weights: Weights = DEFAULT, *, timeout_s: float | None = None):
        self.index_dir = Path(index_dir)
        self.weights = weights
        # Each search (each query of a bulk) stops with SearchTimeout past this many seconds; None: no bound.
        self.timeout_s = timeout_s or None
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._version: tuple[str, int] | None = None
        self._batch = threading.local()  # per thread: batch() depth, its engine and when it was checked

    # --- opening and reopening ----------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Within it, this thread's engine() looks for a new index version at most every BATCH_RECHECK_S."""
        local = self._batch
        local.depth = getattr(local, "depth", 0) + 1
        try:
            yield
        finally:
            local.depth -= 1
            if not local.depth:
                local.engine = None

    def engine(self) -> Engine:
        """The engine over the live index, replaced only when a build or update committed."""
        local = self._batch
        if getattr(local, "depth", 0):
            now = time.monotonic()
            if getattr(local, "engine", None) is None or now - local.checked >= BATCH_RECHECK_S:
                local.engine, local.checked = self._live_engine(), now
            return local.engine
        return self._live_engine()

    def _live_engine(self) -> Engine:
        """The engine over the index version live now (a look at the folder each time)."""
        gen = current_generation(self.index_dir)
        if gen is None:
            raise IndexMissing(f"no index in {self.index_dir}")
        version = (gen.name, latest_generation(gen))
        with self._lock:
            if version != self._version or self._engine is None:
                ix = open_index(self.index_dir)
                old = self._engine
                self._engine = Engine(ix, gen)
                self._version = (gen.name, self._engine.searcher.reader().generation())
                if old is not None:
                    threading.Timer(30.0, old.close).start()  # requests in flight still read it
            return self._engine

    def warm_up(self) -> None:
        """Load what the first query would otherwise wait for: pyvi, lengths, vocabulary, acronyms."""
        try:
            engine = self.engine()
        except (IndexMissing, IndexProblem):
            return
        analyse("khởi động")
        for name in ("title", "abstract", "body"):
            for suffix in ("", SYLLABLE_SUFFIX, BIGRAM_SUFFIX):
                engine.lengths(name + suffix)
        engine.vocabulary()
        engine.expander()

    def is_ready(self) -> bool:
        """True when a built index is present and readable."""
        try:
            self.engine()
            return True
        except (IndexMissing, IndexProblem):
            return False

    def stats(self) -> dict:
        """Document count and version of the live index."""
        engine = self.engine()
        with engine.lock:
            count = engine.searcher.doc_count()
        return {"documents": count, "version": f"{self._version[0]}.{self._version[1]}"}

    # --- searching ----------------------------------------------------------------------------

    def search(self, q: str, *, limit: int = 10, offset: int = 0, filters: Filters | None = None,
               sort: str = "relevance", snippets: bool = True, facets: bool = False,
               deadline: float | None = None) -> SearchResult:
        """Run one query and return a page of hits, with snippets unless told otherwise.

        deadline is a time.monotonic() instant (default: now + the service's timeout_s); past it the
        search stops between two reads of the index and raises SearchTimeout.
        """
        started = time.perf_counter()
        if deadline is None and self.timeout_s:
            deadline = time.monotonic() + self.timeout_s
        if sort not in SORTS:
            raise QueryError(f"sort must be one of {', '.join(SORTS)} / sort phải là {', '.join(SORTS)}")
        flt = filters.to_query() if filters else None
        engine = self.engine()
        parsed = query_mod.parse(q)
        check_deadline(deadline)
        plan = query_mod.build(parsed, self.weights, engine, deadline=deadline)
        if plan.empty:
            return SearchResult(query=q, total=0, took_ms=_ms(started), expansions=plan.expansions)
        allowed = engine.docs_matching(flt, deadline) if flt is not None else None
        scores = engine.score(plan.ranking, allowed, deadline=deadline)
        relaxed = False
        if parsed.phrases and not (scores > 0).any():
            # A quoted phrase found nowhere (often a typo inside the quotes): search its words instead.
            parsed.text, parsed.phrases, relaxed = " ".join([parsed.text, *parsed.phrases]), [], True
            check_deadline(deadline)
            plan = query_mod.build(parsed, self.weights, engine, deadline=deadline)
            scores = engine.score(plan.ranking, allowed, deadline=deadline)
        total, ranked = engine.top(scores, offset + limit, sort)
        page = ranked[offset:offset + limit]
        check_deadline(deadline)
        if snippets:
            with engine.lock:
                stored_page = [(engine.searcher.stored_fields(docnum), score) for docnum, score in page]
        else:  # no body needed: the few fields a listing shows, cached
            stored_page = [(engine.listing(docnum), score) for docnum, score in page]
        hits = [_hit(stored, score, plan.highlight_terms if snippets else None) for stored, score in stored_page]
        result = SearchResult(query=q, total=total, took_ms=_ms(started), hits=hits, expansions=plan.expansions,
                              relaxed=relaxed)
        if facets:
            check_deadline(deadline)
            result.facets = engine.facets(scores)
            check_deadline(deadline)
            result.suggestion = self.corrected_query(q) or self.restored_query(q)
            result.took_ms = _ms(started)
        return result

    def corrected_query(self, q: str) -> str | None:
        """The query with its typing slips mended: each syllable the index never saw, replaced by the
        most frequent known syllable one slip away (marks restored when the query had none)."""
        if '"' in q:
            return None
        vocabulary = self.engine().vocabulary()
        words, changed, marked = q.split(), False, has_marks(q)
        folded = [fold(w) for w in words]
        for i, word in enumerate(folded):
            before, after = folded[i - 1] if i else "", folded[i + 1] if i + 1 < len(folded) else ""
            if word.isalpha() and (fixed := vocabulary.correct(word, before, after)):
                words[i] = vocabulary.marked_syllable(fixed, before, after) if marked else fixed
                folded[i], changed = fixed, True
        if not changed:
            return None
        candidate = " ".join(words)
        return self.restored_query(candidate) or candidate

    def restored_query(self, q: str) -> str | None:
        """The query with tone marks restored from the index's vocabulary ("cai cach" -> "cải cách")."""
        if has_marks(q) or '"' in q or "-" in q:
            return None
        folded = analyse(q).folded
        if not folded:
            return None
        restored = self.engine().vocabulary().restore(folded)
        covered = sum(r.end - r.start for r in restored)
        if covered < len(folded) or not any("_" in r.text for r in restored):
            return None  # only a query whose every syllable has one clear reading
        return " ".join(r.text.replace("_", " ") for r in restored)

    def suggest(self, prefix: str, limit: int = 8) -> list[str]:
        """Autocomplete: frequent words of the index that complete what was typed, marks restored."""
        words = prefix.split()
        vocabulary = self.engine().vocabulary()
        # Complete the longest tail of the input that is the start of a known word.
        for n in range(min(4, len(words)), 0, -1):
            head, tail = " ".join(words[:-n]), " ".join(words[-n:])
            found = vocabulary.complete(tail, limit)
            if found:
                return [f"{head} {w}".strip() for w in found]
        return []

    def bulk(self, queries: list[dict], limit: int = 10) -> list[dict]:
        """Answer many queries with one searcher; each result is {id, total, hits[{id, score, title}]}.

        Each query has the time bound of one search (timeout_s), not the batch as a whole.
        """
        out = []
        with self.batch():
            for item in queries:
                filters = item.get("filters") or Filters()
                try:
                    res = self.search(item["q"], limit=limit, filters=filters, sort=item.get("sort", "relevance"),
                                      snippets=False)
                except SearchTimeout as err:
                    err.query_id = item["id"]
                    raise
                out.append({"id": item["id"], "total": res.total,
                            "hits": [{"id": h.id, "score": h.score, "title": h.title} for h in res.hits]})
        return out

    def article_view(self, doc_id: str, q: str = "") -> dict | None:
        """An article for reading: paragraphs as HTML with the query's words marked, and related articles."""
        stored = self.stored(doc_id)
        if stored is None:
            return None
        wanted = query_mod.build(query_mod.parse(q), self.weights, self.engine()).highlight_terms \
            if q.strip() else set()
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
        doc = self.document(doc_id) or {}
        title = stored.get("title", "")
        return {"doc": doc, "title_html": mark(title, text_spans(title, wanted)),
                "paragraphs": paragraphs, "related": related}

    def stored(self, doc_id: str) -> dict | None:
        """Every stored field of the article with this id (published as a datetime), or None."""
        engine = self.engine()
        with engine.lock:
            return engine.searcher.document(id=doc_id)

    def document(self, doc_id: str) -> dict | None:
        """The stored article with this id, or None."""
        stored = self.stored(doc_id)
        if stored is None:
            return None
        stored.pop("content_hash", None)
        if stored.get("published"):
            stored["published"] = stored["published"].isoformat()
        return stored


def _hit(stored: Mapping, score: float, wanted: set[str] | None) -> Hit:
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


def latest_generation(gen: Path) -> int:
    """The newest Whoosh commit number in a generation folder (cheap: one directory listing)."""
    from whoosh.filedb.filestore import FileStorage

    return TOC._latest_generation(FileStorage(str(gen)), "MAIN")


def make_service(index_dir: Path, settings: BackendSettings) -> SearchService:
    """The search service of the configured backend: the embedded Whoosh index or a Typesense cluster.

    Here rather than beside the HTTP dependencies, so the command line does not import FastAPI (0.15 s).
    """
    if settings.backend == "typesense":
        from app.typesense_search import TypesenseSearchService

        return TypesenseSearchService(index_dir, settings)
    return SearchService(index_dir)
