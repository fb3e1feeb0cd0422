"""The embedded Whoosh index as a search backend (indexer.backend's SearchBackend and Snapshot).

The index folder holds generations (indexer/store.py); a snapshot is one commit of the live one,
scored by the NumPy engine. The backend opens a new snapshot only when a build switched
generations or an update committed, and lets requests in flight finish on the old one.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from datetime import time as dtime
from functools import lru_cache
from pathlib import Path

from whoosh import query as wq

from app.engine import Clause as EngineClause
from app.engine import Engine
from app.engine import Ranking as EngineRanking
from app.understanding.stopwords import too_common
from indexer.backend import (
    BackendSettings,
    Filters,
    IndexMissing,
    IndexProblem,
    Matches,
    Phrase,
    Ranking,
    check_deadline,
)
from indexer.fields import KINDS, SYLLABLES, TEXT_NAMES, Kind, index_field
from indexer.store import current_generation, latest_commit, open_index

# Inside batch() (a bulk run) a thread looks for a new index version at most this often, not per query: the
# look is a file read and a directory listing, a few percent of a quick query.
BATCH_RECHECK_S = 1.0
# An engine replaced by a newer commit is closed this long after: requests in flight still read it.
RETIRE_AFTER_S = 30.0


class WhooshBackend:
    """The live generation of an index folder, reopened only when it changed."""

    def __init__(self, index_dir: Path, settings: BackendSettings | None = None):
        self.index_dir = Path(index_dir)
        self._lock = threading.Lock()
        self._snapshot: WhooshSnapshot | None = None
        self._version: tuple[str, int] | None = None
        self._batch = threading.local()  # per thread: batch() depth, its snapshot and when it was checked

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Within it, this thread's snapshot() looks for a new index version at most every BATCH_RECHECK_S."""
        local = self._batch
        local.depth = getattr(local, "depth", 0) + 1
        try:
            yield
        finally:
            local.depth -= 1
            if not local.depth:
                local.snapshot = None

    def snapshot(self) -> WhooshSnapshot:
        """The snapshot of the live index version, replaced only when a build or update committed."""
        local = self._batch
        if getattr(local, "depth", 0):
            now = time.monotonic()
            if getattr(local, "snapshot", None) is None or now - local.checked >= BATCH_RECHECK_S:
                local.snapshot, local.checked = self._live(), now
            return local.snapshot
        return self._live()

    def _live(self) -> WhooshSnapshot:
        """The snapshot of the version live now (a look at the folder each time)."""
        gen = current_generation(self.index_dir)
        if gen is None:
            raise IndexMissing(f"no index in {self.index_dir}")
        version = (gen.name, latest_commit(gen))
        with self._lock:
            if version != self._version or self._snapshot is None:
                old = self._snapshot
                self._snapshot = WhooshSnapshot(Engine(open_index(self.index_dir), gen), gen.name)
                self._version = (gen.name, self._snapshot.commit)
                if old is not None:
                    threading.Timer(RETIRE_AFTER_S, old.close).start()
            return self._snapshot

    def warm_up(self) -> None:
        """Read the field lengths, the vocabulary and the acronym table before the first query."""
        try:
            snap = self.snapshot()
        except IndexProblem:
            return
        for name in TEXT_NAMES:
            for kind in KINDS:
                snap.engine.lengths(index_field(name, kind))
        snap.vocabulary()
        snap.expander()


class WhooshSnapshot:
    """One commit of a Whoosh index: ranking, facets and stored fields."""

    def __init__(self, engine: Engine, generation: str):
        self.engine = engine
        self.commit = engine.searcher.reader().generation()
        self.version = f"{generation}.{self.commit}"
        with engine.lock:
            self.documents = engine.searcher.doc_count()

    def close(self) -> None:
        """Release the index files."""
        self.engine.close()

    def vocabulary(self):
        """Tone-mark restoration and spelling table of this version."""
        return self.engine.vocabulary()

    def expander(self):
        """Acronym table of this version."""
        return self.engine.expander()

    def matches(self, ranking: Ranking, filters: Filters | None, sort: str, k: int, *,
                facets: bool = False, deadline: float | None = None) -> Matches:
        """BM25F over the whole index, then the first k in sort order."""
        engine = self.engine
        flt = _filter_query(filters) if filters is not None else None
        allowed = engine.docs_matching(flt, deadline) if flt is not None else None
        clauses = [EngineClause(c.weight, list(_postings(c.kind, c.term, _frozen(ranking.boosts))))
                   for c in ranking.clauses]
        required = [_phrase_query(p) for p in ranking.required]
        excluded = [_phrase_query(p) for p in ranking.excluded]
        scores = engine.score(EngineRanking(clauses, required, excluded, k1=ranking.k1, b=ranking.b), allowed,
                              deadline=deadline)
        total, ranked = engine.top(scores, k, sort)
        out = Matches(total, ranked)
        if facets:
            check_deadline(deadline)
            out.facets = engine.facets(scores)
        return out

    def fetch(self, keys: list, full: bool) -> list[dict | None]:
        """Stored fields of documents by number: every field, or the cached listing fields."""
        if not full:
            return [dict(self.engine.listing(docnum)) for docnum in keys]
        with self.engine.lock:
            return [self.engine.searcher.stored_fields(docnum) for docnum in keys]

    def stored(self, doc_id: str) -> dict | None:
        """Every stored field of the article with this id, or None."""
        with self.engine.lock:
            return self.engine.searcher.document(id=doc_id)

    def too_common(self, df: int) -> bool:
        """The stop-word rule for this index's size."""
        return too_common(df, self.engine.doc_count_all)


def _frozen(boosts: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """A hashable copy of the field boosts, for the cache of clause fields."""
    return tuple(boosts.items())


@lru_cache(maxsize=4096)
def _postings(kind: Kind, term: str, boosts: tuple[tuple[str, float], ...]) -> tuple[tuple[str, str, float], ...]:
    """(index field, term, field boost) of a clause in every text field."""
    return tuple((index_field(name, kind), term, boost) for name, boost in boosts)


def _phrase_query(phrase: Phrase) -> wq.Query:
    """A Whoosh query for the phrase's syllables in order, in any text field."""
    sylls = list(phrase.syllables)
    fields = [index_field(name, SYLLABLES) for name in TEXT_NAMES]
    if len(sylls) == 1:
        return wq.Or([wq.Term(f, sylls[0]) for f in fields])
    return wq.Or([wq.Phrase(f, sylls) for f in fields])


def _filter_query(filters: Filters) -> wq.Query | None:
    """A Whoosh filter query, or None when nothing is restricted."""
    parts: list[wq.Query] = []
    if filters.source:
        parts.append(wq.Term("source", filters.source))
    if filters.category:
        parts.append(wq.Term("category", filters.category))
    if filters.date_from or filters.date_to:
        start = datetime.combine(filters.date_from, dtime.min) if filters.date_from else None
        end = datetime.combine(filters.date_to, dtime.max) if filters.date_to else None
        parts.append(wq.DateRange("published", start, end))
    return wq.And(parts) if parts else None

