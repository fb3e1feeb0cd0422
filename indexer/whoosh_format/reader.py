"""IndexArrays: one fixed version of a Whoosh index read as NumPy arrays, for scoring outside Whoosh.

Whoosh's own matchers give one posting at a time in Python. Here a term's entry is found with one hash
lookup per segment (terms.hash_get), its posting list read whole and decoded block by block into arrays
(blocks.list_arrays), phrases found from whole blocks, and per-document data (field lengths, stored
columns, published dates, the deleted-documents mask) read once into one array each over global docnums.

Whoosh's file reads are not thread-safe: every read goes through the object's lock (an RLock, so a
caller can hold it around several calls); the arrays returned are the caller's to compute on outside it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from types import TracebackType

import numpy as np
from whoosh import formats
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3TermInfo, _lenfield
from whoosh.filedb.filestore import FileStorage
from whoosh.formats import Format
from whoosh.index import Index
from whoosh.reading import ReaderClosed, SegmentReader
from whoosh.searching import Searcher

from indexer.backend import IndexProblem, check_deadline
from indexer.whoosh_format.blocks import (
    POSTINGS_READ_AT_ONCE,
    block_arrays,
    leaf_matcher,
    list_arrays,
    position_arrays,
    read_postings,
)
from indexer.whoosh_format.columns import length_bytes
from indexer.whoosh_format.constants import EXTENT, LENGTH_TABLE, NO_DATE, TERMINFO, TERMINFO_HEAD
from indexer.whoosh_format.flat_postings import FlatPostings, open_flat, term_digest
from indexer.whoosh_format.terms import hash_get, use_pread

# Terms whose per-segment statistics are kept (≈ 400 bytes each, 40 MB at most): a bulk of 1,000 queries asks
# for 131,000 (field, term) statistics, 36,000 of them distinct, and each miss is a hash-table walk per segment.
TERM_CACHE_ENTRIES = 100_000

# (leaf number, postings offset, postings length, inlined TermInfo or None): where a term's postings are in
# one segment; the offset is None when they are inlined in the term's entry.
TermEntry = tuple[int, int | None, int, W3TermInfo | None]
TermStats = tuple[int, tuple[TermEntry, ...]]  # (document frequency over all segments, entries)


class IndexArrays:
    """The postings, phrases and per-document arrays of one searcher's version of a Whoosh index."""

    def __init__(self, index: Index, searcher: Searcher | None = None):
        """Read the version searcher sees (a new searcher of index when None); close() closes that searcher."""
        self.index = index
        self.searcher = searcher if searcher is not None else index.searcher()
        self.lock = threading.RLock()
        self.doc_count_all: int = self.searcher.doc_count_all()
        # An index of no article reads through an EmptyReader: no segment, nothing to read.
        self._leaves = [(r, o) for r, o in self.searcher.reader().leaf_readers() if isinstance(r, SegmentReader)]
        for reader, _ in self._leaves:
            use_pread(reader._terms._tindex)
        # The flat copy of each segment's postings (None for a segment without one: see postings()).
        self._flat: list[FlatPostings | None] = [
            open_flat(reader._storage.folder, reader._segment) if isinstance(reader._storage, FileStorage) else None
            for reader, _ in self._leaves]
        self._flat_fields: dict[str, bool] = {}
        self._rows: dict[tuple[str, str | bytes], tuple[int, ...]] = {}  # see _flat_rows()
        live = np.ones(self.doc_count_all, dtype=bool)
        for reader, offset in self._leaves:
            if reader.has_deletions():
                for d in reader.deleted_docs_set:
                    live[offset + d] = False
        live.flags.writeable = False  # shared by every caller
        self.live: np.ndarray = live
        self._deletions = not live.all()
        self.live_count: int = max(1, int(live.sum()))  # the N of an IDF: never 0
        self._per_doc: dict[str, np.ndarray] = {}  # field lengths, stored columns: one array each
        self._avg: dict[str, float] = {}
        self._published: np.ndarray | None = None
        self._cache_lock = threading.Lock()
        # (field, term) -> (document frequency, entries): an LRU bounded in entries.
        self._terms: OrderedDict[tuple[str, str | bytes], TermStats] = OrderedDict()
        self._term_keys: dict[str, list[tuple]] = {}  # field -> [(leaf, reader, terms table, key prefix)]

    def after_fork(self) -> None:
        """In a process forked from the one that opened this object: new locks and Whoosh's files opened again
        for the same commit (their file positions are shared with the parent); the arrays and caches already
        read stay. IndexProblem when the index has another commit now (then open a new IndexArrays)."""
        self.lock = threading.RLock()
        self._cache_lock = threading.Lock()
        generation = self.searcher.reader().generation()
        searcher = self.index.refresh().searcher() if hasattr(self.index, "refresh") else self.index.searcher()
        if searcher.reader().generation() != generation:
            searcher.close()
            raise IndexProblem("the index has a newer commit than the parent process read")
        # Not closed: the parent's files; this process's copies of them go with the old objects.
        self.searcher = searcher
        self._leaves = [(r, o) for r, o in searcher.reader().leaf_readers() if isinstance(r, SegmentReader)]
        for reader, _ in self._leaves:
            use_pread(reader._terms._tindex)
        self._term_keys = {}

    def __enter__(self) -> IndexArrays:
        """The object itself; leaving the block closes it."""
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Close the searcher."""
        self.close()

    def close(self) -> None:
        """Release the searcher's files."""
        with self.lock:
            self.searcher.close()
            for flat in self._flat:
                if flat is not None:
                    flat.close()
            self._flat = [None] * len(self._flat)
            self._flat_fields.clear()

    # --- what Whoosh's searcher answers, under the lock ----------------------------------------

    def stored_fields(self, docnum: int) -> dict:
        """The stored fields of a document by global docnum."""
        with self.lock:
            return self.searcher.stored_fields(docnum)

    def document_by_id(self, doc_id: str) -> dict | None:
        """The stored fields of the live document whose id field is doc_id, or None."""
        with self.lock:
            return self.searcher.document(id=doc_id)

    def doc_count(self) -> int:
        """Number of live (not deleted) documents."""
        with self.lock:
            return self.searcher.doc_count()

    def commit_generation(self) -> int:
        """Generation number of the commit this object reads."""
        with self.lock:
            return self.searcher.reader().generation()

    # --- per-document data ----------------------------------------------------------------

    def lengths(self, fieldname: str) -> np.ndarray:
        """Token count of fieldname for every document (as Whoosh stores it, one byte per doc), not normalised."""
        if fieldname not in self._per_doc:
            out = np.zeros(self.doc_count_all, dtype=np.float32)
            with self.lock:
                for reader, offset in self._leaves:
                    col = reader._perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
                    if col is None:
                        continue
                    raw = length_bytes(col, reader.doc_count_all())
                    out[offset:offset + len(raw)] = LENGTH_TABLE[raw]
            live = out[self.live]
            self._avg[fieldname] = float(live[live > 0].mean()) if (live > 0).any() else 1.0
            self._per_doc[fieldname] = out
        return self._per_doc[fieldname]

    def average_length(self, fieldname: str) -> float:
        """Mean of lengths(fieldname) over the live documents that have the field (1.0 when none has)."""
        self.lengths(fieldname)
        return self._avg[fieldname]

    def published_keys(self) -> np.ndarray:
        """A sortable number per document for its published date (NaN where none)."""
        if self._published is None:
            keys = np.full(self.doc_count_all, np.nan)
            with self.lock:
                for reader, offset in self._leaves:
                    if not reader.has_column("published"):
                        continue
                    col = reader.column_reader("published", translate=False)
                    for d in range(reader.doc_count_all()):
                        value = col[d]
                        if 0 < value < NO_DATE:  # Whoosh fills undated rows with the largest uint64
                            keys[offset + d] = float(value)
            self._published = keys
        return self._published

    def column_values(self, fieldname: str) -> np.ndarray:
        """A stored column's value for every document ('' where none), for facet counts."""
        key = "column:" + fieldname
        if key not in self._per_doc:
            values = np.full(self.doc_count_all, "", dtype=object)
            with self.lock:
                for reader, offset in self._leaves:
                    # An index built before the field was declared has no such field at all.
                    if fieldname in reader.schema and reader.has_column(fieldname):
                        col = reader.column_reader(fieldname)
                        for d in range(reader.doc_count_all()):
                            values[offset + d] = col[d] or ""
            self._per_doc[key] = values
        return self._per_doc[key]

    # --- postings -----------------------------------------------------------------------

    def term_stats(self, fieldname: str, term: str | bytes) -> TermStats:
        """(document frequency, ((leaf number, postings offset, length, inlined TermInfo or None), ...)) of a term.

        One hash-table lookup per segment, cached: Whoosh's doc_frequency(), `in` and postings() each walk
        the on-disk table again, and the stop-word check asks for every clause of every query. The document
        frequency counts deleted documents too, as Whoosh's does. A bytes term is taken as already encoded.
        """
        key = (fieldname, term)
        with self._cache_lock:
            hit = self._terms.get(key)
            if hit is not None:
                self._terms.move_to_end(key)
                return hit
        found, df = [], 0
        lookups = self._term_keys.get(fieldname)
        if lookups is None:  # per segment: its terms table and the field's key prefix there
            lookups = self._term_keys[fieldname] = [
                (leaf, reader, reader._terms._tindex, reader._terms._keycoder(fieldname, b""))
                for leaf, (reader, _) in enumerate(self._leaves) if fieldname in reader.schema]
        if not lookups:
            tbytes = b""
        elif isinstance(term, bytes):  # e.g. a numeric or date term as reader.all_terms() gives it
            tbytes = term
        else:
            tbytes = self.searcher.schema[fieldname].to_bytes(term)
        with self.lock:
            for leaf, reader, tindex, prefix in lookups:
                if reader.is_closed:
                    raise ReaderClosed
                data = hash_get(tindex, prefix + tbytes)
                if data is None:
                    continue
                # W3TermInfo's fields as its from_bytes() reads them; only where the postings are is kept, not
                # the TermInfo object (≈ 700 bytes with its __dict__).
                flags, _, docs = TERMINFO_HEAD.unpack_from(data)
                df += docs
                if flags:  # postings inlined in the entry
                    found.append((leaf, None, 0, W3TermInfo.from_bytes(data)))
                else:
                    start, length = EXTENT.unpack_from(data, TERMINFO.size)
                    found.append((leaf, start, length, None))
        value = (df, tuple(found))
        with self._cache_lock:
            self._terms[key] = value
            if len(self._terms) > TERM_CACHE_ENTRIES:
                self._terms.popitem(last=False)
        return value

    def _flat_for(self, fieldname: str) -> bool:
        """Whether every segment has a flat copy of fieldname's postings (a mix reads Whoosh's blocks)."""
        covered = self._flat_fields.get(fieldname)
        if covered is None:
            covered = self._flat_fields[fieldname] = bool(self._flat) and all(
                flat is not None and flat.covers(fieldname) for flat in self._flat)
        return covered

    def _term_bytes(self, fieldname: str, term: str | bytes) -> bytes | None:
        """A term as the index stores it, or None when the schema has no such field."""
        if isinstance(term, bytes):
            return term
        field = self.searcher.schema[fieldname] if fieldname in self.searcher.schema else None
        return None if field is None else field.to_bytes(term)

    def doc_frequencies(self, keys: list[tuple[str, str | bytes]]) -> list[int]:
        """The document frequency of each (field, term) over all segments, deleted documents counted as Whoosh
        counts them: from the flat copies where there are, else from term_stats()."""
        out = []
        for fieldname, term in keys:
            if self._flat_for(fieldname):
                out.append(sum(flat.doc_frequency(row) for flat, row in
                               zip(self._flat, self._flat_rows(fieldname, term), strict=True)))
            else:
                out.append(self.term_stats(fieldname, term)[0])
        return out

    def _flat_rows(self, fieldname: str, term: str | bytes) -> tuple[int, ...]:
        """The flat key table row of (field, term) in each segment (-1 where it has none, or no copy), cached:
        the stop-word check asks for a term's document frequency and then its postings."""
        key = (fieldname, term)
        with self._cache_lock:
            rows = self._rows.get(key)
        if rows is None:
            tbytes = self._term_bytes(fieldname, term)
            digest = None if tbytes is None else term_digest(fieldname, tbytes)
            rows = tuple(-1 if digest is None or flat is None else flat.row_of(*digest) for flat in self._flat)
            with self._cache_lock:
                self._rows[key] = rows
                if len(self._rows) > TERM_CACHE_ENTRIES:
                    del self._rows[next(iter(self._rows))]  # the oldest looked up (insertion order)
        return rows

    def postings(self, fieldname: str, term: str | bytes,
                 deadline: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(global docnums, term frequencies float32) of one term's live documents, read from the flat
        copies of the segments' postings when every segment has one (docnums int32), else segment by segment
        from its flat copy or Whoosh's blocks (int64).

        Past deadline (a time.monotonic() instant) it raises SearchTimeout between posting blocks.
        """
        if self._flat_for(fieldname):
            return self._flat_postings(fieldname, term, deadline)
        ids_parts, tf_parts = [], []
        _, found = self.term_stats(fieldname, term)
        with self.lock:
            for leaf, start, length, inlined in found:
                reader, offset = self._leaves[leaf]
                flat = self._flat[leaf]
                if flat is not None and flat.covers(fieldname):
                    # A segment with the flat copy among others without (e.g. one written by Whoosh's writer).
                    check_deadline(deadline)
                    row = flat.row(fieldname, self._term_bytes(fieldname, term))
                    if row >= 0:
                        docs, tfs = flat.postings(row)
                        ids_parts.append(docs.astype(np.int64) + offset)
                        tf_parts.append(tfs)
                    continue
                if inlined is not None:  # a short list kept in the term entry itself
                    ids, weights, _ = inlined.inlined_postings()
                    ids_parts.append(np.asarray(ids, dtype=np.int64) + offset)
                    tf_parts.append(np.asarray(weights, dtype=np.float32))
                    continue
                if length <= POSTINGS_READ_AT_ONCE:
                    # Most lists: one read, and the blocks decoded from memory without a matcher.
                    for ids, tfs in list_arrays(read_postings(reader, start, length), deadline):
                        ids_parts.append(ids + offset)
                        tf_parts.append(tfs)
                    continue
                m = leaf_matcher(reader, fieldname, term, start, length)
                # Read whole blocks, decoded as arrays.
                while m.is_active():
                    # Between blocks: a term in most of a large index has thousands of them.
                    check_deadline(deadline)
                    m._read_data()
                    ids, tfs = block_arrays(m._data, m._blocklength, m._byteids)
                    ids_parts.append(ids + offset)
                    tf_parts.append(tfs)
                    m._next_block()
        if ids_parts:
            ids, tfs = np.concatenate(ids_parts), np.concatenate(tf_parts)
            keep = self.live[ids]
            ids, tfs = ids[keep], tfs[keep]
        else:
            ids, tfs = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        return ids, tfs

    def _flat_postings(self, fieldname: str, term: str | bytes,
                       deadline: float | None) -> tuple[np.ndarray, np.ndarray]:
        """postings() read from the flat copies: one binary search and two reads per segment."""
        check_deadline(deadline)
        ids_parts, tf_parts = [], []
        for flat, (_, offset), row in zip(self._flat, self._leaves, self._flat_rows(fieldname, term), strict=True):
            if row >= 0:
                docs, tfs = flat.postings(row)
                ids_parts.append(docs + offset if offset else docs)
                tf_parts.append(tfs)
        if not ids_parts:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32)
        ids = ids_parts[0] if len(ids_parts) == 1 else np.concatenate(ids_parts)
        tfs = tf_parts[0] if len(tf_parts) == 1 else np.concatenate(tf_parts)
        if self._deletions:
            keep = self.live[ids]
            ids, tfs = ids[keep], tfs[keep]
        return ids, tfs

    def phrase_docs(self, fieldname: str, words: list[str], deadline: float | None = None) -> np.ndarray:
        """Live documents whose field holds the words at consecutive positions, as global docnums (int64).

        What Whoosh's Phrase (slop 1) matches, found with whole posting blocks: the rarest word gives the
        candidates, the other words' blocks are decoded only where a candidate can be, and positions only
        for the documents left. Whoosh walks the intersection one id at a time in Python (a quoted phrase of
        two common syllables took 50 ms on 10,000 articles).
        """
        if not words:  # Whoosh's Phrase of no word matches nothing
            return np.empty(0, dtype=np.int64)
        fmt = self.searcher.schema[fieldname].format
        per_word: list[dict[int, TermEntry]] | None = None
        # Each word's row in every segment's copy, looked up once (all -1 where no segment has a copy).
        flat_rows = [self._flat_rows(fieldname, w) for w in words] if any(self._flat) else None
        found = []
        for leaf, (reader, offset) in enumerate(self._leaves):
            flat = self._flat[leaf]
            if flat is not None and flat.covers(fieldname):
                rows = [word_rows[leaf] for word_rows in flat_rows]
                if min(rows) < 0:
                    continue  # Whoosh too gives up on a segment missing a word
                if all(flat.has_positions(row) for row in rows):
                    found.append(_flat_phrase(flat, rows, deadline) + offset)
                    continue
            if per_word is None:
                per_word = [dict((e[0], e) for e in self.term_stats(fieldname, w)[1]) for w in words]
            entries = [entries.get(leaf) for entries in per_word]
            if all(e is not None for e in entries):
                local = self._leaf_phrase(reader, fieldname, fmt, words, entries, deadline)
                found.append(local + offset)
        docs = np.concatenate(found) if found else np.empty(0, dtype=np.int64)
        return docs[self.live[docs]]

    def _leaf_phrase(self, reader: SegmentReader, fieldname: str, fmt: Format, words: list[str],
                     entries: list[TermEntry], deadline: float | None) -> np.ndarray:
        """phrase_docs() in one segment, with local docnums; entries are the words' term_stats() there."""
        kept: list[tuple[np.ndarray, list]] = [(np.empty(0, dtype=np.int64), []) for _ in words]
        candidates = None
        # Rarest first (shortest posting list): it bounds the blocks the others need to decode.
        for i in sorted(range(len(words)), key=lambda k: entries[k][2]):
            _, start, length, inlined = entries[i]
            if inlined is not None:
                ids, _, vals = inlined.inlined_postings()
                blocks = [(np.asarray(ids, dtype=np.int64), vals)]
            else:
                blocks = self._blocks_near(reader, fieldname, words[i], start, length, candidates, deadline)
            ids = np.concatenate([b[0] for b in blocks]) if blocks else np.empty(0, dtype=np.int64)
            values = [v for b in blocks for v in b[1]]
            if candidates is not None and len(ids):
                # Both ascending: a binary search per id tells whether it is a candidate.
                at = np.minimum(np.searchsorted(candidates, ids), len(candidates) - 1)
                keep = np.flatnonzero(candidates[at] == ids)
                ids, values = ids[keep], [values[k] for k in keep.tolist()]
            candidates = ids
            kept[i] = (candidates, values)
            if not len(candidates):
                return candidates
        check_deadline(deadline)
        if type(fmt) is not formats.Positions:  # another format's values: its own decoder, one at a time
            return _phrase_by_document(fmt, candidates, kept)

        def positions_of(k: int, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """(count, positions) of word k in the candidates numbered docs."""
            ids, values = kept[k]
            at = np.searchsorted(ids, candidates[docs])  # every candidate is in every word's kept ids
            return position_arrays([values[j] for j in at.tolist()])

        return candidates[_consecutive(len(words), len(candidates), positions_of)].astype(np.int64)

    def _blocks_near(self, reader: SegmentReader, fieldname: str, term: str | bytes, start: int, length: int,
                     candidates: np.ndarray | None, deadline: float | None) -> list[tuple[np.ndarray, tuple]]:
        """(local docnums, values) of the posting blocks of a term that may hold one of the candidates
        (every block when candidates is None); the others are skipped on their header alone."""
        out = []
        with self.lock:
            m = leaf_matcher(reader, fieldname, term, start, length)
            last = -1
            while m.is_active():
                check_deadline(deadline)
                if candidates is None or (np.searchsorted(candidates, last, "right")
                                          < np.searchsorted(candidates, m._maxid, "right")):
                    m._read_data()
                    ids, _ = block_arrays(m._data, m._blocklength, m._byteids)
                    out.append((ids, m._data[2]))
                last = m._maxid
                m._next_block()
        return out


def _phrase_by_document(fmt: Format, candidates: np.ndarray, kept: list[tuple[np.ndarray, list]]) -> np.ndarray:
    """The candidates whose words are at consecutive positions, decoded document by document."""
    values = [dict(zip(ids.tolist(), vals, strict=True)) for ids, vals in kept]
    matched = []
    for doc in candidates.tolist():
        first = fmt.decode_positions(values[0][doc])
        rest = [set(fmt.decode_positions(values[k][doc])) for k in range(1, len(kept))]
        # Whoosh's SpanNear2 (ordered, slop 1, mindist 1): each next word exactly one position on.
        if any(all(p + k in later for k, later in enumerate(rest, 1)) for p in first):
            matched.append(doc)
    return np.asarray(matched, dtype=np.int64)


def _consecutive(length: int, n: int, positions_of) -> np.ndarray:
    """The candidates (numbered 0 to n - 1) holding words 0 to length - 1 at consecutive positions, as Whoosh's
    SpanNear2 (ordered, slop 1, mindist 1) finds them; positions_of(k, docs) gives (count, positions) of
    word k in the candidates numbered docs, ascending. Words are checked in order, each in the candidates the
    ones before left."""
    starts: np.ndarray | None = None  # (candidate << 32) + position of word 0, for the starts still possible
    docs = np.arange(n, dtype=np.int64)
    for k in range(length):
        counts, positions = positions_of(k, docs)
        owner = np.repeat(docs, counts)
        shifted = positions - k
        ok = shifted >= 0
        keys = (owner[ok] << 32) + shifted[ok]
        starts = keys if starts is None else np.intersect1d(starts, keys, assume_unique=True)
        if not len(starts):
            return docs[:0]
        docs = np.unique(starts >> 32)
    return docs


def _flat_phrase(flat: FlatPostings, rows: list[int], deadline: float | None) -> np.ndarray:
    """Local docnums of a segment where a phrase's words (their flat rows) are at consecutive positions."""
    lists = [flat.postings(row) for row in rows]
    candidates = None
    for k in sorted(range(len(rows)), key=lambda k: len(lists[k][0])):  # rarest first: smallest intersections
        ids = lists[k][0]
        candidates = ids if candidates is None else np.intersect1d(candidates, ids, assume_unique=True)
        if not len(candidates):
            return candidates.astype(np.int64)
    check_deadline(deadline)
    read: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def positions_of(k: int, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(count, positions) of word k in the candidates numbered docs: slices of its whole positions run."""
        check_deadline(deadline)
        if k not in read:
            ids, tfs = lists[k]
            counts = tfs.astype(np.int64)
            first = np.zeros(len(counts) + 1, dtype=np.int64)
            np.cumsum(counts, out=first[1:])
            read[k] = (ids, first, flat.positions(rows[k], int(first[-1])))
        ids, first, positions = read[k]
        at = np.searchsorted(ids, candidates[docs])
        counts = first[at + 1] - first[at]
        # The positions of each chosen posting, one run after the other.
        begin = np.repeat(first[at] - np.cumsum(counts) + counts, counts)
        return counts, positions[begin + np.arange(int(counts.sum()))]

    return candidates[_consecutive(len(rows), len(candidates), positions_of)].astype(np.int64)
