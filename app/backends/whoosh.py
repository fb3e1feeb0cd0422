"""The embedded Whoosh index as a search backend (indexer.backend's SearchBackend and Snapshot).

The index folder holds generations (indexer/store.py); a snapshot is one commit of the live one,
read as arrays (indexer.whoosh_format) and scored by app.backends.scoring. The backend opens a
new snapshot only when a build switched generations or an update committed, and lets requests in
flight finish on the old one.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from datetime import time as dtime
from itertools import islice
from pathlib import Path

import numpy as np
from whoosh import query as wq

from app.backends.scoring import Scorer
from app.understanding.expansion import Expander
from app.understanding.vocabulary import Vocabulary
from indexer import acronyms, lexicon, stories
from indexer.backend import (
    BackendSettings,
    Filters,
    IndexMissing,
    IndexProblem,
    Matches,
    Ranking,
    check_deadline,
)
from indexer.fields import DATE_FIELD, KINDS, TAG_FIELDS, TEXT_NAMES, index_field
from indexer.store import current_generation, latest_commit, open_index
from indexer.stories import StoryGroups
from indexer.whoosh_format.reader import IndexArrays

# Inside batch() (a bulk run) a thread looks for a new index version at most this often, not per query: the
# look is a file read and a directory listing, a few percent of a quick query.
BATCH_RECHECK_S = 1.0
# An engine replaced by a newer commit is closed this long after: requests in flight still read it.
RETIRE_AFTER_S = 30.0
# A snapshot whose groups were not yet saved for its commit looks at the file again at most this often.
GROUPS_RECHECK_S = 2.0
# Documents Whoosh may match between two looks at the clock while it checks a filter.
DOCS_PER_CHECK = 256


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
                self._snapshot = WhooshSnapshot(IndexArrays(open_index(self.index_dir)), gen)
                # The folder's own version, not the reader's: an index of no article reads as commit -1 and
                # would otherwise be reopened at every call.
                self._version = version
                if old is not None:
                    retire = threading.Timer(RETIRE_AFTER_S, old.close)
                    retire.daemon = True  # a command that is done exits without waiting for it
                    retire.start()
            return self._snapshot

    def after_fork(self) -> None:
        """In a process just forked from this one: new locks (another thread may have held one at the fork)
        and the index files opened again (a file position must not be shared with the parent), keeping every
        table and cache already worked out for the same version; IndexProblem when the live version moved on."""
        self._lock = threading.Lock()
        self._batch = threading.local()
        if self._snapshot is not None:
            self._snapshot.after_fork()

    def lend_tables(self, other: WhooshBackend) -> None:
        """Give other's snapshot this one's vocabulary and acronym table when both read the same version
        (a bulk worker forked from this process: building them again takes it seconds on a large index).
        Read without this backend's locks: in a forked process no other thread holds them any more."""
        mine = self._snapshot
        if mine is None:
            return
        theirs = other.snapshot()
        if theirs.version == mine.version:
            if theirs._vocabulary is None:
                theirs._vocabulary = mine._vocabulary
            if theirs._expander is None:
                theirs._expander = mine._expander

    def warm_up(self) -> None:
        """Read the field lengths, the vocabulary and the acronym table before the first query."""
        try:
            snap = self.snapshot()
        except IndexProblem:
            return
        for name in TEXT_NAMES:
            for kind in KINDS:
                snap.arrays.lengths(index_field(name, kind))
        snap.vocabulary()
        snap.expander()


class WhooshSnapshot:
    """One commit of a Whoosh index: ranking, facets, stored fields and the tables the planner borrows."""

    def __init__(self, arrays: IndexArrays, folder: Path):
        self.arrays = arrays
        self.scorer = Scorer(arrays)
        self.folder = folder  # the generation folder: the build's acronyms and saved counts are there
        self.commit = arrays.commit_generation()
        self.version = f"{folder.name}.{self.commit}"
        self.documents = arrays.doc_count()
        self._vocabulary: Vocabulary | None = None
        self._vocabulary_lock = threading.Lock()
        self._expander: Expander | None = None
        self._groups: StoryGroups | None = None
        self._groups_final = False  # saved for this commit: never read again
        self._groups_read = 0.0
        self._story_array: np.ndarray | None = None

    def close(self) -> None:
        """Release the index files."""
        self.arrays.close()

    def after_fork(self) -> None:
        """WhooshBackend.after_fork() for this version: its locks renewed and its files reopened."""
        self._vocabulary_lock = threading.Lock()
        self.arrays.after_fork()
        self.scorer.after_fork()

    def vocabulary(self) -> Vocabulary:
        """Tone-mark restoration table of this version (built on first use)."""
        with self._vocabulary_lock:
            if self._vocabulary is None:
                # A reader of its own: reading the lexicons takes seconds on a large index, and the searcher's
                # lock must stay free for queries meanwhile. The counts the indexer saved are used when they
                # were read from these very segments.
                with self.arrays.index.reader() as reader:
                    counts = lexicon.load(self.folder, reader) or lexicon.read_counts(reader)
                self._vocabulary = Vocabulary.from_counts(*counts)
        return self._vocabulary

    def expander(self) -> Expander:
        """Acronym table: the glossary plus what the build mined from this index's articles."""
        if self._expander is None:
            self._expander = Expander(acronyms.table(acronyms.load(self.folder / acronyms.FILE)))
        return self._expander

    def matches(self, ranking: Ranking, filters: Filters | None, sort: str, k: int, *,
                facets: bool = False, stories: bool = False, deadline: float | None = None,
                exact_total: bool = False) -> Matches:
        """BM25F over the whole index, then the first k in sort order."""
        scores = self.scorer.score(ranking, self.allowed(filters, deadline), deadline=deadline)
        facet_scores = scores
        if stories and self.story_groups():
            scores = one_per_story(scores, self._story_keys())
        total, ranked = self.scorer.top(scores, k, sort)
        out = Matches(total, ranked, collapsed=stories and bool(self.story_groups()))
        if facets:
            check_deadline(deadline)
            out.facets = {**self.scorer.facets(facet_scores), **self.scorer.tag_facets(facet_scores)}
        return out

    def allowed(self, filters: Filters | None, deadline: float | None) -> np.ndarray | None:
        """The documents the filters let through, or None when they restrict nothing."""
        if filters is None:
            return None
        flt = _filter_query(filters)
        allowed = self.docs_matching(flt, deadline) if flt is not None else None
        for name, value in filters.tags().items():
            mask = self.scorer.tags(name).mask(value, self.arrays.doc_count_all)
            allowed = mask if allowed is None else allowed & mask
        return allowed

    def docs_matching(self, query: wq.Query, deadline: float | None = None) -> np.ndarray:
        """Boolean mask of the documents a Whoosh query (a filter) matches."""
        mask = np.zeros(self.arrays.doc_count_all, dtype=bool)
        docs: list[int] = []
        with self.arrays.lock:
            check_deadline(deadline)
            found = iter(self.arrays.searcher.docs_for_query(query))
            # Whoosh matches one document at a time, in Python: look at the clock as it goes.
            while chunk := list(islice(found, DOCS_PER_CHECK)):
                docs.extend(chunk)
                check_deadline(deadline)
        if docs:
            mask[np.fromiter(docs, dtype=np.int64, count=len(docs))] = True
        return mask

    def story_groups(self) -> StoryGroups:
        """The near-duplicate groups the indexer saved with this generation, kept once saved for this very
        commit; the indexer writes them just after committing, so until then (or for an index from before
        them) the file is looked at again at most every GROUPS_RECHECK_S, not at every query."""
        now = time.monotonic()
        if self._groups is not None and (self._groups_final or now - self._groups_read < GROUPS_RECHECK_S):
            return self._groups
        commit, groups = stories.load_groups(self.folder)
        self._groups, self._groups_final, self._groups_read = StoryGroups(groups), commit == self.commit, now
        self._story_array = None
        return self._groups

    def _story_keys(self) -> np.ndarray:
        """A number per document, the same for the copies of one story (built once per version)."""
        if self._story_array is None:
            keys = np.arange(self.arrays.doc_count_all, dtype=np.int64)
            groups = self.story_groups()
            if groups:
                numbers: dict[str, int] = {}
                for doc, doc_id in enumerate(self.arrays.column_values("id").tolist()):
                    if (story := groups.story_of.get(doc_id)) is not None:
                        keys[doc] = -1 - numbers.setdefault(story, len(numbers))
            self._story_array = keys
        return self._story_array

    def listings(self, ids: list[str]) -> list[dict | None]:
        """The listing fields of articles by id (None for an id not in this version)."""
        with self.arrays.lock:
            docnums = [self.arrays.searcher.document_number(id=doc_id) for doc_id in ids]
        return [None if d is None else dict(self.scorer.listing(d)) for d in docnums]

    def fetch(self, keys: list, full: bool) -> list[dict | None]:
        """Stored fields of documents by number: every field, or the cached listing fields."""
        if not full:
            return [dict(self.scorer.listing(docnum)) for docnum in keys]
        return [self._with_tags(self.arrays.stored_fields(docnum), docnum) for docnum in keys]

    def stored(self, doc_id: str) -> dict | None:
        """Every stored field of the article with this id (its tag fields as lists), or None."""
        with self.arrays.lock:
            docnum = self.arrays.searcher.document_number(id=doc_id)
        return None if docnum is None else self._with_tags(self.arrays.stored_fields(docnum), docnum)

    def _with_tags(self, stored: dict, docnum: int) -> dict:
        """Stored fields plus the tag fields' values, which the index keeps in columns only."""
        for name in TAG_FIELDS:
            stored[name] = self.scorer.tags(name).of(docnum)
        return stored


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
        parts.append(wq.DateRange(DATE_FIELD, start, end))
    return wq.And(parts) if parts else None


def one_per_story(scores: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Scores with every copy of a story but its best-scoring one set to 0 (ties: the lowest docnum).

    keys: _story_keys(), negative for the articles of a story with copies and the article's own number for
    the others; only the former can lose to a copy, so only they are sorted (a few percent of the matches).
    """
    matched = np.flatnonzero(scores > 0)
    grouped = matched[keys[matched] < 0]
    if not len(grouped):
        return scores
    order = np.lexsort((grouped, -scores[grouped]))  # best first
    _, first = np.unique(keys[grouped[order]], return_index=True)
    beaten = np.ones(len(grouped), dtype=bool)
    beaten[first] = False
    out = scores.copy()
    out[grouped[order[beaten]]] = 0.0
    return out
