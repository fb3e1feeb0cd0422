"""Ranking over Whoosh postings with NumPy: true BM25F, exact totals, milliseconds per query.

Whoosh's own matchers score one posting at a time in Python; a 30-term question over three
fields costs it hundreds of milliseconds.  Here each term's posting list is read block by block
(arrays, not postings) once, cached, and scored for all documents at once.  Whoosh stays the
store: postings, stored fields, character offsets for snippets, filters and phrases.

One Engine serves one version of the index; a new commit or generation gets a new Engine.
Whoosh calls go through the engine's lock (its file reads are not thread-safe); NumPy scoring
runs outside it.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import islice
from types import MappingProxyType

import numpy as np
from whoosh import query as wq
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, WHOOSH3_HEADER_MAGIC, W3LeafMatcher, W3TermInfo, _lenfield
from whoosh.filedb.filetables import _lengths as _LENGTHS
from whoosh.filedb.filetables import _pointer as _POINTER
from whoosh.filedb.structfile import BufferFile, StructFile
from whoosh.reading import ReaderClosed, SegmentReader
from whoosh.util.numeric import byte_to_length

from indexer.backend import check_deadline

POSTINGS_CACHE_BYTES = 96 * 1024 * 1024
# Terms whose per-segment statistics are kept (≈ 400 bytes each, 40 MB at most): a bulk of 1,000 queries asks
# for 131,000 (field, term) statistics, 36,000 of them distinct, and each miss is a hash-table walk per segment.
TERM_CACHE_ENTRIES = 100_000
# A posting list up to this size is fetched with one read and decoded in memory: most are a few hundred
# bytes, and Whoosh's matcher made six seeks and reads for its header and first block alone.
POSTINGS_READ_AT_ONCE = 1024 * 1024
# Stored fields a hit without snippet shows, kept per document (≈ 650 bytes each, 13 MB at most): Whoosh
# decompresses and unpickles the whole article, body included, to give its title.
LISTING_FIELDS = ("id", "title", "url", "source", "category", "published")
LISTING_CACHE_ENTRIES = 20_000
# Bytes read past a term's key in the same call: a W3TermInfo entry is 35 bytes unless its postings are inlined.
_ENTRY_GUESS = 48
# A term in more than this share of documents is skipped as a lone clause (large indexes only): its
# IDF is small and its postings the longest (150k articles: p50 240 -> 27 ms, news-known-item unchanged).
STOPWORD_SHARE = 0.1
STOPWORD_MIN_DOCS = 5000

# Documents Whoosh may match between two looks at the clock while it checks phrases or filters.
_DOCS_PER_CHECK = 256

_NO_DATE = 2**64 - 1
_LENGTH_TABLE = np.array([byte_to_length(i) for i in range(256)], dtype=np.float32)


@dataclass
class Clause:
    """One concept of the query: alternative (field, term, field weight) postings scored together."""

    weight: float
    postings: list[tuple[str, str, float]]


@dataclass
class Ranking:
    """What to score and which documents may appear."""

    clauses: list[Clause]
    required: list = field(default_factory=list)  # Whoosh queries every hit must match
    excluded: list = field(default_factory=list)  # Whoosh queries no hit may match
    k1: float = 1.2
    b: dict[str, float] = field(default_factory=dict)  # length normalisation per text field


class Engine:
    """Scores rankings against one fixed version of the index."""

    def __init__(self, index, folder=None):
        self.index = index
        self.searcher = index.searcher()
        self.folder = folder  # the generation folder, for files the build wrote beside the index
        self.lock = threading.RLock()
        self.doc_count_all = self.searcher.doc_count_all()
        # An index of no article reads through an EmptyReader: no segment, nothing to score.
        self._leaves = [(r, o) for r, o in self.searcher.reader().leaf_readers() if isinstance(r, SegmentReader)]
        for reader, _ in self._leaves:
            tindex = reader._terms._tindex
            if getattr(tindex.dbfile, "is_real", False):
                tindex.dbfile = _PreadFile(tindex.dbfile)
        self._live = np.ones(self.doc_count_all, dtype=bool)
        for reader, offset in self._leaves:
            if reader.has_deletions():
                for d in reader.deleted_docs_set:
                    self._live[offset + d] = False
        self._live_count = max(1, int(self._live.sum()))  # N of the IDF
        self._per_doc: dict[str, np.ndarray] = {}  # field lengths, facet columns, months: one array each
        self._avg: dict[str, float] = {}
        self._norms: dict[tuple[str, float], np.ndarray] = {}  # (field, b) -> _length_norm()
        self._cache: OrderedDict[tuple[str, str, float], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_bytes = 0
        self._cache_lock = threading.Lock()
        # (field, term) -> (document frequency, ((leaf number, TermInfo), ...)): an LRU bounded in entries.
        self._terms: OrderedDict[tuple[str, str], tuple[int, tuple]] = OrderedDict()
        self._term_keys: dict[str, list[tuple]] = {}  # field -> [(leaf, reader, terms table, key prefix)]
        self._listings: OrderedDict[int, MappingProxyType] = OrderedDict()  # docnum -> LISTING_FIELDS
        self._published: np.ndarray | None = None
        self._vocabulary = None
        self._vocabulary_lock = threading.Lock()
        self._expander = None

    def vocabulary(self):
        """Tone-mark restoration table of this index version (built on first use)."""
        with self._vocabulary_lock:
            if self._vocabulary is None:
                from app.understanding.vocabulary import Vocabulary
                from indexer import lexicon

                # A reader of its own: reading the lexicons takes seconds on a large index, and the
                # searcher's lock must stay free for queries meanwhile. Term statistics of a commit
                # newer than the searcher's would do no harm here.
                with self.index.reader() as reader:
                    counts = lexicon.load(self.folder, reader) if self.folder is not None else None
                    self._vocabulary = Vocabulary.from_counts(*(counts or lexicon.read_counts(reader)))
        return self._vocabulary

    def expander(self):
        """Acronym table: the glossary plus what the build mined from this index's articles."""
        if self._expander is None:
            from app.understanding.expansion import Expander
            from indexer import acronyms

            self._expander = Expander(acronyms.table(acronyms.load(self.folder / acronyms.FILE)))
        return self._expander

    def close(self) -> None:
        """Release the searcher's files."""
        with self.lock:
            self.searcher.close()

    # --- per-document data ----------------------------------------------------------------

    def lengths(self, fieldname: str) -> np.ndarray:
        """Token count of fieldname for every document (as Whoosh stores it, one byte per doc)."""
        if fieldname not in self._per_doc:
            out = np.zeros(self.doc_count_all, dtype=np.float32)
            with self.lock:
                for reader, offset in self._leaves:
                    col = reader._perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
                    if col is None:
                        continue
                    raw = np.fromiter(iter(col), dtype=np.uint8, count=reader.doc_count_all())
                    out[offset:offset + len(raw)] = _LENGTH_TABLE[raw]
            live = out[self._live]
            self._avg[fieldname] = float(live[live > 0].mean()) if (live > 0).any() else 1.0
            self._per_doc[fieldname] = out
        return self._per_doc[fieldname]

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
                        if 0 < value < _NO_DATE:  # Whoosh fills undated rows with the largest uint64
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
                    if reader.has_column(fieldname):
                        col = reader.column_reader(fieldname)
                        for d in range(reader.doc_count_all()):
                            values[offset + d] = col[d] or ""
            self._per_doc[key] = values
        return self._per_doc[key]

    def months(self) -> np.ndarray:
        """Published year * 100 + month of every document (0 where undated)."""
        if "months" not in self._per_doc:
            from whoosh.util.times import long_to_datetime

            keys = self.published_keys()
            months = np.zeros(self.doc_count_all, dtype=np.int32)
            dated = ~np.isnan(keys)
            uniq, inverse = np.unique(keys[dated], return_inverse=True)
            by_key = np.array([(d := long_to_datetime(int(k))).year * 100 + d.month for k in uniq], dtype=np.int32)
            months[dated] = by_key[inverse] if len(uniq) else 0
            self._per_doc["months"] = months
        return self._per_doc["months"]

    def facets(self, scores: np.ndarray, limit: int = 10) -> dict[str, list[tuple[str, int]]]:
        """Counts of source, category and year among the matched documents, largest first."""
        matched = scores > 0
        out: dict[str, list[tuple[str, int]]] = {}
        for name in ("source", "category"):
            values = self.column_values(name)[matched]
            values = values[values != ""]
            uniq, counts = np.unique(values.astype(str), return_counts=True) if len(values) else ([], [])
            out[name] = sorted(zip(uniq, (int(c) for c in counts), strict=True), key=lambda kv: -kv[1])[:limit]
        months = self.months()[matched]
        months = months[months > 0]
        uniq, counts = np.unique(months // 100, return_counts=True)
        out["year"] = sorted(((str(y), int(c)) for y, c in zip(uniq, counts, strict=True)), reverse=True)[:limit]
        uniq, counts = np.unique(months, return_counts=True)
        out["month"] = sorted(((f"{m // 100}-{m % 100:02d}", int(c)) for m, c in zip(uniq, counts, strict=True)),
                              reverse=True)[:24]
        return out

    def listing(self, docnum: int) -> MappingProxyType:
        """The LISTING_FIELDS a document stores (read-only; an LRU bounded in entries)."""
        with self._cache_lock:
            hit = self._listings.get(docnum)
            if hit is not None:
                self._listings.move_to_end(docnum)
                return hit
        with self.lock:
            stored = self.searcher.stored_fields(docnum)
        value = MappingProxyType({name: stored[name] for name in LISTING_FIELDS if name in stored})
        with self._cache_lock:
            self._listings[docnum] = value
            if len(self._listings) > LISTING_CACHE_ENTRIES:
                self._listings.popitem(last=False)
        return value

    # --- postings -----------------------------------------------------------------------

    def term_stats(self, fieldname: str, term: str) -> tuple[int, tuple]:
        """(document frequency, ((leaf number, postings offset, length, inlined TermInfo or None), ...)) of a term.

        One hash-table lookup per segment, cached: Whoosh's doc_frequency(), `in` and postings() each walk
        the on-disk table again, and the stop-word check asks for every clause of every query.
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
        tbytes = self.searcher.schema[fieldname].to_bytes(term) if lookups else b""
        with self.lock:
            for leaf, reader, tindex, prefix in lookups:
                if reader.is_closed:
                    raise ReaderClosed
                data = _hash_get(tindex, prefix + tbytes)
                if data is None:
                    continue
                # W3TermInfo's fields as its from_bytes() reads them; only where the postings are is kept, not
                # the TermInfo object (≈ 700 bytes with its __dict__).
                flags, _, docs = _TERMINFO_HEAD.unpack_from(data)
                df += docs
                if flags:  # postings inlined in the entry
                    found.append((leaf, None, 0, W3TermInfo.from_bytes(data)))
                else:
                    start, length = _EXTENT.unpack_from(data, W3TermInfo._struct.size)
                    found.append((leaf, start, length, None))
        value = (df, tuple(found))
        with self._cache_lock:
            self._terms[key] = value
            if len(self._terms) > TERM_CACHE_ENTRIES:
                self._terms.popitem(last=False)
        return value

    def postings(self, fieldname: str, term: str,
                 deadline: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(global docnums, term frequencies) of one term, read from Whoosh's blocks."""
        ids_parts, tf_parts = [], []
        _, found = self.term_stats(fieldname, term)
        with self.lock:
            for leaf, start, length, inlined in found:
                reader, offset = self._leaves[leaf]
                if inlined is not None:  # a short list kept in the term entry itself
                    ids, weights, _ = inlined.inlined_postings()
                    ids_parts.append(np.asarray(ids, dtype=np.int64) + offset)
                    tf_parts.append(np.asarray(weights, dtype=np.float32))
                    continue
                if length <= POSTINGS_READ_AT_ONCE:
                    # Most lists: one read, and the blocks decoded from memory without a matcher.
                    for ids, tfs in _list_arrays(_read_postings(reader, start, length), deadline):
                        ids_parts.append(ids + offset)
                        tf_parts.append(tfs)
                    continue
                m = _leaf_matcher(reader, fieldname, term, start, length)
                # Read whole blocks, decoded as arrays.
                while m.is_active():
                    # Between blocks: a term in most of a large index has thousands of them.
                    check_deadline(deadline)
                    m._read_data()
                    ids, tfs = _block_arrays(m._data, m._blocklength, m._byteids)
                    ids_parts.append(ids + offset)
                    tf_parts.append(tfs)
                    m._next_block()
        if ids_parts:
            ids, tfs = np.concatenate(ids_parts), np.concatenate(tf_parts)
            keep = self._live[ids]
            ids, tfs = ids[keep], tfs[keep]
        else:
            ids, tfs = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        return ids, tfs

    def phrase_docs(self, fieldname: str, words: list[str], deadline: float | None = None) -> np.ndarray:
        """Live documents whose field holds the words at consecutive positions, as global docnums.

        What Whoosh's Phrase (slop 1) matches, found with whole posting blocks: the rarest word gives the
        candidates, the other words' blocks are decoded only where a candidate can be, and positions only
        for the documents left. Whoosh walks the intersection one id at a time in Python (a quoted phrase of
        two common syllables took 50 ms on 10,000 articles).
        """
        fmt = self.searcher.schema[fieldname].format
        per_word = [dict((e[0], e) for e in self.term_stats(fieldname, w)[1]) for w in words]
        found = []
        for leaf, (reader, offset) in enumerate(self._leaves):
            entries = [entries.get(leaf) for entries in per_word]
            if all(e is not None for e in entries):  # Whoosh too gives up on a segment missing a word
                local = self._leaf_phrase(reader, fieldname, fmt, words, entries, deadline)
                found.append(local + offset)
        docs = np.concatenate(found) if found else np.empty(0, dtype=np.int64)
        return docs[self._live[docs]]

    def _leaf_phrase(self, reader, fieldname: str, fmt, words: list[str], entries: list[tuple],
                     deadline: float | None) -> np.ndarray:
        """phrase_docs() in one segment, with local docnums; entries are the words' term_stats() there."""
        values: list[dict[int, bytes]] = [{} for _ in words]
        candidates = None
        # Rarest first (shortest posting list): it bounds the blocks the others need to decode.
        for i in sorted(range(len(words)), key=lambda k: entries[k][2]):
            _, start, length, inlined = entries[i]
            ids_parts, kept_values = [], []
            if inlined is not None:
                ids, _, vals = inlined.inlined_postings()
                blocks = [(np.asarray(ids, dtype=np.int64), list(vals))]
            else:
                blocks = self._blocks_near(reader, fieldname, words[i], start, length, candidates, deadline)
            for ids, vals in blocks:
                if candidates is not None:
                    keep = np.flatnonzero(np.isin(ids, candidates, assume_unique=True))
                    ids, vals = ids[keep], [vals[k] for k in keep]
                ids_parts.append(ids)
                kept_values.extend(vals)
            candidates = np.concatenate(ids_parts) if ids_parts else np.empty(0, dtype=np.int64)
            values[i] = dict(zip(candidates.tolist(), kept_values, strict=True))
            if not len(candidates):
                return candidates
        check_deadline(deadline)
        matched = []
        for doc in candidates.tolist():
            first = fmt.decode_positions(values[0][doc])
            rest = [set(fmt.decode_positions(values[k][doc])) for k in range(1, len(words))]
            # Whoosh's SpanNear2 (ordered, slop 1, mindist 1): each next word exactly one position on.
            if any(all(p + k in later for k, later in enumerate(rest, 1)) for p in first):
                matched.append(doc)
        return np.asarray(matched, dtype=np.int64)

    def _blocks_near(self, reader, fieldname: str, term: str, start: int, length: int,
                     candidates: np.ndarray | None, deadline: float | None):
        """(local docnums, values) of the posting blocks of a term that may hold one of the candidates
        (every block when candidates is None); the others are skipped on their header alone."""
        out = []
        with self.lock:
            m = _leaf_matcher(reader, fieldname, term, start, length)
            last = -1
            while m.is_active():
                check_deadline(deadline)
                if candidates is None or (np.searchsorted(candidates, last, "right")
                                          < np.searchsorted(candidates, m._maxid, "right")):
                    m._read_data()
                    ids, _ = _block_arrays(m._data, m._blocklength, m._byteids)
                    out.append((ids, m._data[2]))
                last = m._maxid
                m._next_block()
        return out

    def fast_matching(self, query, b: dict[str, float] | None = None,
                      deadline: float | None = None) -> np.ndarray | None:
        """docs_matching() of the queries the planner builds for "phrases" and -exclusions (an Or of Terms
        or Phrases over syllable fields), from cached postings and phrase_docs(); None for any other query.

        b (per text field) picks the cached postings a ranking with that normalisation has read already.
        """
        b = b if isinstance(b, _FieldB) else _FieldB(b or {})
        if not isinstance(query, wq.Or):
            return None
        mask = np.zeros(self.doc_count_all, dtype=bool)
        for sub in query.subqueries:
            if type(sub) is wq.Term and isinstance(sub.text, str) and sub.fieldname in self.searcher.schema:
                ids = self.normalised(sub.fieldname, sub.text, b[sub.fieldname], deadline)[0]
            elif type(sub) is wq.Phrase and sub.slop == 1 and sub.words and sub.fieldname in self.searcher.schema \
                    and all(isinstance(w, str) for w in sub.words):
                ids = self.phrase_docs(sub.fieldname, list(sub.words), deadline)
            else:
                return None
            mask[ids] = True
        return mask

    def _remember(self, key, value) -> None:
        """Keep a posting list in the LRU cache, evicting the oldest past the byte budget."""
        with self._cache_lock:
            if key in self._cache:
                return
            self._cache[key] = value
            self._cache_bytes += value[0].nbytes + value[1].nbytes
            while self._cache_bytes > POSTINGS_CACHE_BYTES and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= old[0].nbytes + old[1].nbytes

    def docs_matching(self, query, deadline: float | None = None) -> np.ndarray:
        """Boolean mask of the documents a Whoosh query matches."""
        mask = np.zeros(self.doc_count_all, dtype=bool)
        docs: list[int] = []
        with self.lock:
            check_deadline(deadline)
            # Whoosh checks phrase positions one document at a time, in Python: look at the clock as it goes.
            found = iter(self.searcher.docs_for_query(query))
            while chunk := list(islice(found, _DOCS_PER_CHECK)):
                docs.extend(chunk)
                check_deadline(deadline)
        if docs:
            mask[np.fromiter(docs, dtype=np.int64, count=len(docs))] = True
        return mask

    # --- scoring ------------------------------------------------------------------------

    def normalised(self, fieldname: str, term: str, b: float,
                   deadline: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(docnums, tf / length normalisation) of a term, cached per b (an LRU bounded in bytes)."""
        key = (fieldname, term, b)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        return self._load(key, deadline)

    def _load(self, key: tuple[str, str, float], deadline: float | None) -> tuple[np.ndarray, np.ndarray]:
        """Read, normalise and cache the postings of (field, term, b)."""
        fieldname, term, b = key
        ids, tfs = self.postings(fieldname, term, deadline)
        value = (ids.astype(np.int32), (tfs / self._length_norm(fieldname, b)[ids]).astype(np.float32))
        self._remember(key, value)
        return value

    def _length_norm(self, fieldname: str, b: float) -> np.ndarray:
        """BM25's 1 - b + b * length / average length of every document, worked out once per field and b
        (element by element the same float32 arithmetic as on a term's documents alone)."""
        key = (fieldname, b)
        norm = self._norms.get(key)
        if norm is None:
            lengths = self.lengths(fieldname)
            norm = 1.0 - b + b * lengths / self._avg[fieldname]
            if len(self._norms) < 64:  # 9 fields x the b of one Weights; bench/tune.py tries a few more
                self._norms[key] = norm
        return norm

    def too_common(self, clause: Clause) -> bool:
        """A clause whose term is in most documents: its IDF is near zero and its postings the longest.

        Such stop words ("của", "và", "các") still count inside bigrams and phrases.
        """
        n = self.doc_count_all
        if n < STOPWORD_MIN_DOCS:
            return False
        df = max((self.term_stats(f, t)[0] for f, t, _ in clause.postings), default=0)
        return df > STOPWORD_SHARE * n

    def _clause_postings(self, clause: Clause, b: _FieldB,
                         deadline: float | None) -> list[tuple[np.ndarray, np.ndarray, float]] | None:
        """(docnums, normalised tf, field weight) of each posting of a clause; None for a too common one.

        What normalised() and too_common() do, with one cache lock per clause instead of six: a bulk of
        1,000 queries looks up some 130,000 postings, nearly all of them cached.
        """
        keys = [(f, t, b[f]) for f, t, _ in clause.postings]
        terms = [(f, t) for f, t, _ in clause.postings] if self.doc_count_all >= STOPWORD_MIN_DOCS else []
        with self._cache_lock:
            cached = [self._cache.get(key) for key in keys]
            # Statistics are not moved to the LRU end here: a term whose postings are cached needs them
            # again only once its postings are evicted, and a stale position costs one re-read then.
            stats = [self._terms.get(term) for term in terms]
            for key, hit in zip(keys, cached, strict=True):
                if hit is not None:
                    self._cache.move_to_end(key)
        if terms:  # too_common(), from the statistics just looked up
            df = max(stat[0] if stat is not None else self.term_stats(*term)[0]
                     for term, stat in zip(terms, stats, strict=True))
            if df > STOPWORD_SHARE * self.doc_count_all:
                return None
        return [(*(hit if hit is not None else self._load(key, deadline)), fweight)
                for key, hit, (_, _, fweight) in zip(keys, cached, clause.postings, strict=True)]

    def score(self, ranking: Ranking, allowed: np.ndarray | None = None, *,
              deadline: float | None = None) -> np.ndarray:
        """BM25F score of every document (0 where nothing matched or not allowed).

        Past deadline (a time.monotonic() instant) it raises SearchTimeout between reads.
        """
        n = self._live_count
        scores = np.zeros(self.doc_count_all, dtype=np.float32)
        b = _FieldB(ranking.b)
        for clause in ranking.clauses:
            check_deadline(deadline)
            if clause.weight == 0.0:
                continue  # adds exactly 0 to every score (restored lone syllables by default): nothing to read
            postings = self._clause_postings(clause, b, deadline)
            if postings is None:
                continue
            parts_ids, parts_tf = [], []
            for ids, tf_norm, fweight in postings:
                if len(ids):
                    parts_ids.append(ids)
                    parts_tf.append(tf_norm * fweight if fweight != 1.0 else tf_norm)
            if not parts_ids:
                continue
            if len(parts_ids) == 1:
                uniq, combined = parts_ids[0], parts_tf[0]
            else:
                ids, pseudo = np.concatenate(parts_ids), np.concatenate(parts_tf)
                if len(ids) * 8 > self.doc_count_all:
                    # Long lists: summing into a dense array beats sorting them.
                    dense = np.bincount(ids, weights=pseudo, minlength=self.doc_count_all)
                    uniq = np.flatnonzero(dense)
                    combined = dense[uniq]
                else:
                    uniq, inverse = _unique_with_inverse(ids)
                    combined = np.bincount(inverse, weights=pseudo)
            df = len(uniq)
            idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
            scores[uniq] += (clause.weight * idf * combined / (ranking.k1 + combined)).astype(np.float32)
        for q in ranking.required:
            scores[~self._matching(q, b, deadline)] = 0.0
        for q in ranking.excluded:
            scores[self._matching(q, b, deadline)] = 0.0
        if allowed is not None:
            scores[~allowed] = 0.0
        scores[~self._live] = 0.0
        return scores

    def _matching(self, query, b: dict[str, float], deadline: float | None) -> np.ndarray:
        """Boolean mask of the documents a required or excluded query matches."""
        mask = self.fast_matching(query, b, deadline)
        return self.docs_matching(query, deadline) if mask is None else mask

    def top(self, scores: np.ndarray, k: int, order: str = "relevance") -> tuple[int, list[tuple[int, float]]]:
        """(total matched, [(docnum, score)] best first) for the first k."""
        matched = np.flatnonzero(scores > 0)
        total = len(matched)
        if k <= 0 or not total:
            return total, []
        if order == "relevance":
            if total > k:
                part = np.argpartition(-scores[matched], k - 1)[:k]
                matched = matched[part]
            order_idx = np.lexsort((matched, -scores[matched]))
        else:
            keys = self.published_keys()[matched]
            # Undated articles go last either way; ties broken by score.
            missing = np.isnan(keys)
            keyed = np.where(missing, -np.inf if order == "newest" else np.inf, keys)
            primary = -keyed if order == "newest" else keyed
            order_idx = np.lexsort((-scores[matched], primary))[:k]
        chosen = matched[order_idx][:k]
        return total, [(int(d), float(scores[d])) for d in chosen]


def _leaf_matcher(reader, fieldname: str, term: str, start: int, length: int) -> W3LeafMatcher:
    """The matcher Whoosh's postings() builds, from the term entry already read (call with the engine's lock).

    A list up to POSTINGS_READ_AT_ONCE is read with one call and decoded from memory. Deletions are left in:
    the engine masks them with _live instead of Whoosh's filtering wrapper.
    """
    source = reader._terms._postfile
    if length <= POSTINGS_READ_AT_ONCE:
        source, start = BufferFile(source.get(start, length)), 0
    return W3LeafMatcher(source, start, length, reader.schema[fieldname].format, term=(fieldname, term))


class _FieldB(dict):
    """Length normalisation b of each index field ("body_s" -> b of "body", 0.75 if unset), worked out once."""

    def __init__(self, by_text_field: dict[str, float]):
        super().__init__()
        self._by_text_field = by_text_field

    def __missing__(self, fieldname: str) -> float:
        value = self[fieldname] = self._by_text_field.get(fieldname.split("_")[0], 0.75)
        return value


def _unique_with_inverse(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(ids, return_inverse=True), sorting with timsort: ids are a few sorted posting lists one
    after the other, runs that a stable sort merges in linear time (2-3x faster for a clause's fields)."""
    order = np.argsort(ids, kind="stable")
    ordered = ids[order]
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    inverse = np.empty(len(ids), dtype=np.intp)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def _block_arrays(data: tuple, count: int, byteids: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(docnums, weights) of a block's unpickled (ids, weights, values), decoded with NumPy as Whoosh's
    _read_ids and _read_weights decode them in Python loops (ids are stored as gaps; weights as None = all
    1, one float for all, or one each)."""
    ids, weights = data[0], data[1]
    ids = np.asarray(ids, dtype=np.int64)
    if not byteids:
        ids = np.cumsum(ids)
    if weights is None:
        tfs = np.ones(count, dtype=np.float32)
    elif isinstance(weights, float):
        tfs = np.full(count, weights, dtype=np.float32)
    else:
        tfs = np.asarray(weights, dtype=np.float32)
    return ids, tfs


def _read_postings(reader, start: int, length: int) -> bytes:
    """The bytes of a posting list (call with the engine's lock: a file without a descriptor is seeked)."""
    postfile = reader._terms._postfile
    if getattr(postfile, "is_real", False):
        return os.pread(postfile.fileno(), length, start)
    return postfile.get(start, length)


def _list_arrays(buf: bytes, deadline: float | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(docnums, weights) of each block of a whole posting list in memory, read as W3LeafMatcher reads it.

    Per block: its length (negative for the last), a pickled (count, max id, max weight, compression,
    min length, max length), then the (compressed) pickled (ids, weights, values).
    """
    if buf[:4] != WHOOSH3_HEADER_MAGIC:
        raise ValueError(f"posting list header {buf[:4]!r}")
    stream = io.BytesIO(buf)  # shares buf: pickle.load reads the block header and says where it ended
    out, pos = [], 4
    while True:
        # Between blocks: a term in most of a large index has thousands of them.
        check_deadline(deadline)
        (size,) = _BLOCK_SIZE.unpack_from(buf, pos)
        stream.seek(pos + _BLOCK_SIZE.size)
        count, _, _, compression, _, _ = pickle.load(stream)
        end = pos + _BLOCK_SIZE.size + abs(size)
        data = buf[stream.tell():end]
        out.append(_block_arrays(pickle.loads(zlib.decompress(data) if compression else data), count))
        if size < 0:
            return out
        pos = end


_BLOCK_SIZE = struct.Struct("!i")  # a posting block's byte length, as StructFile.read_int reads it
_TERMINFO_HEAD = struct.Struct("!BfI")  # flags, weight, document frequency: the start of W3TermInfo._struct
_EXTENT = struct.Struct("!qi")  # postings offset and length, after W3TermInfo._struct when not inlined


def _hash_get(tindex, key: bytes) -> bytes | None:
    """The value of key in a Whoosh hash file, or None: HashReader.get() in two reads instead of four or five.

    Same walk as HashReader.ranges_for_key (slot of the key's hash, linear probing, first equal key wins);
    the entry's lengths, key and (usually whole) value come in one read.
    """
    dbfile = tindex.dbfile
    if not isinstance(dbfile, _PreadFile):
        return tindex.get(key)
    fd = dbfile._fd
    keyhash = tindex.hashfn(key)
    tablestart, numslots = tindex.tables[keyhash & 255]
    if not numslots:
        return None
    size, head = _POINTER.size, _LENGTHS.size
    tableend = tablestart + numslots * size
    slotpos = tablestart + ((keyhash >> 8) % numslots) * size
    for _ in range(numslots):
        slothash, itempos = _POINTER.unpack(os.pread(fd, size, slotpos))
        if not itempos:
            return None
        if slothash == keyhash:
            entry = os.pread(fd, head + len(key) + _ENTRY_GUESS, itempos)
            keylen, datalen = _LENGTHS.unpack_from(entry)
            if keylen == len(key) and entry[head:head + keylen] == key:
                datapos = itempos + head + keylen
                data = entry[head + keylen:head + keylen + datalen]
                return data if len(data) == datalen else os.pread(fd, datalen, datapos)
        slotpos += size
        if slotpos == tableend:
            slotpos = tablestart
    return None


class _PreadFile(StructFile):
    """The terms file of a segment, whose get() is one os.pread: a term lookup makes four small reads at
    scattered places, each a seek and a buffer refill through Python's buffered file otherwise.

    The file position is not used, so threads need no lock for it; everything else reads as before.
    """

    def __init__(self, original: StructFile):
        super().__init__(original.file, name=original._name, onclose=original.onclose)
        self._fd = original.file.fileno()

    def get(self, position: int, length: int) -> bytes:
        """length bytes at position."""
        return os.pread(self._fd, length, position)
