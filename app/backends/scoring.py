"""BM25F over posting arrays with NumPy: true scores, exact totals, milliseconds per query.

Whoosh's own matchers score one posting at a time in Python; a 30-term question over three
fields costs it hundreds of milliseconds. Here each term's postings come as arrays
(indexer.whoosh_format.IndexArrays reads them; this module knows no file layout), are normalised
once per field and b, cached, and scored for all documents at once.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from types import MappingProxyType

import numpy as np

from app.understanding.stopwords import has_stopwords, too_common
from indexer.backend import Clause, Phrase, Ranking, check_deadline
from indexer.fields import FACET_FIELDS, LISTING_FIELDS, SYLLABLES, TAG_FIELDS, TAG_SEPARATOR, TEXT_NAMES, index_field
from indexer.whoosh_format.reader import IndexArrays

POSTINGS_CACHE_BYTES = 96 * 1024 * 1024
# What a clause adds to each document's score, per (kind, term, weight, k1, b and boost of each field): a bulk
# asks the same terms again and again (1,000 eval queries: 42,000 clauses, most of them asked before), and
# merging the fields and saturating the sums costs more than the lookup.
CLAUSE_CACHE_BYTES = 48 * 1024 * 1024
# The documents holding a phrase, per (index field, syllables): checking positions decodes every block of
# the phrase's rarest syllable, a third of a bulk's time at 10,000 articles when nothing else is read.
PHRASE_CACHE_BYTES = 16 * 1024 * 1024
# Stored fields a hit without snippet shows, kept per document (≈ 650 bytes each, 13 MB at most): Whoosh
# decompresses and unpickles the whole article, body included, to give its title.
LISTING_CACHE_ENTRIES = 20_000

PostingKey = tuple[str, str, float]  # (index field, term, b)
ClauseKey = tuple[str, str, float, float, tuple[tuple[float, float], ...]]  # kind, term, weight, k1, (b, boost)s
ClausePostings = tuple[np.ndarray, np.ndarray]  # (docnums, a float per document)
NOTHING = (np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32))  # a stop word, or no posting


class Scorer:
    """Scores rankings against one fixed version of an index, read through its IndexArrays."""

    def __init__(self, arrays: IndexArrays):
        self.arrays = arrays
        self.doc_count_all = arrays.doc_count_all
        self._norms: dict[tuple[str, float], np.ndarray] = {}  # (field, b) -> length_norm()
        self._cache: OrderedDict[PostingKey, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_bytes = 0
        self._cache_lock = threading.Lock()
        self._clauses = ByteLRU(CLAUSE_CACHE_BYTES)
        self._phrases = ByteLRU(PHRASE_CACHE_BYTES)
        self._listings: OrderedDict[int, MappingProxyType] = OrderedDict()  # docnum -> LISTING_FIELDS
        self._months: np.ndarray | None = None
        self._tags: dict[str, TagIndex] = {}
        self._facet_codes: dict[str, tuple[np.ndarray, list[str]]] = {}  # see _codes()

    def after_fork(self) -> None:
        """In a forked process: a new lock for the caches (another thread may have held the parent's)."""
        self._cache_lock = threading.Lock()

    # --- postings, normalised and cached -------------------------------------------------------

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

    def _load(self, key: PostingKey, deadline: float | None) -> tuple[np.ndarray, np.ndarray]:
        """Read, normalise and cache the postings of (field, term, b)."""
        fieldname, term, b = key
        ids, tfs = self.arrays.postings(fieldname, term, deadline)
        value = (ids.astype(np.int32), (tfs / self.length_norm(fieldname, b)[ids]).astype(np.float32))
        self._remember(key, value)
        return value

    def _remember(self, key: PostingKey, value: tuple[np.ndarray, np.ndarray]) -> None:
        """Keep a posting list in the LRU cache, evicting the oldest past the byte budget."""
        with self._cache_lock:
            if key in self._cache:
                return
            self._cache[key] = value
            self._cache_bytes += value[0].nbytes + value[1].nbytes
            while self._cache_bytes > POSTINGS_CACHE_BYTES and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= old[0].nbytes + old[1].nbytes

    def length_norm(self, fieldname: str, b: float) -> np.ndarray:
        """BM25's 1 - b + b * length / average length of every document, worked out once per field and b
        (element by element the same float32 arithmetic as on a term's documents alone)."""
        key = (fieldname, b)
        norm = self._norms.get(key)
        if norm is None:
            lengths = self.arrays.lengths(fieldname)
            norm = 1.0 - b + b * lengths / self.arrays.average_length(fieldname)
            if len(self._norms) < 64:  # 9 fields x the b of one Weights; bench/tune.py tries a few more
                self._norms[key] = norm
        return norm

    def _clause_postings(self, clause: Clause, ranking: Ranking,
                         deadline: float | None) -> list[tuple[np.ndarray, np.ndarray, float]] | None:
        """(docnums, normalised tf, field boost) of a clause in each text field; None for a stop word.

        One cache lock per clause instead of six: a bulk of 1,000 queries looks up some 130,000 postings,
        nearly all of them cached.
        """
        fields = [(index_field(name, clause.kind), ranking.b.get(name, 0.75), ranking.boosts.get(name, 1.0))
                  for name in TEXT_NAMES]
        keys = [(f, clause.term, b) for f, b, _ in fields]
        with self._cache_lock:
            cached = [self._cache.get(key) for key in keys]
            for key, hit in zip(keys, cached, strict=True):
                if hit is not None:
                    self._cache.move_to_end(key)
        if has_stopwords(self.doc_count_all):
            df = max(self.arrays.doc_frequencies([(f, clause.term) for f, _, _ in fields]))
            if too_common(df, self.doc_count_all):
                return None
        return [(*(hit if hit is not None else self._load(key, deadline)), boost)
                for key, hit, (_, _, boost) in zip(keys, cached, fields, strict=True)]

    def contribution(self, clause: Clause, ranking: Ranking, deadline: float | None = None,
                     fields: tuple[tuple[float, float], ...] | None = None) -> ClausePostings | None:
        """(docnums, float32 BM25F score the clause adds to each), None for a stop word or no posting; cached (an
        LRU bounded in bytes) for the next query that asks the same term with the same weights.

        fields is field_weights(ranking), which a caller scoring many clauses works out once.
        """
        key: ClauseKey = (clause.kind, clause.term, clause.weight, ranking.k1, fields or field_weights(ranking))
        with self._cache_lock:
            hit = self._clauses.get(key)
        if hit is None:
            hit = self._merge(clause, ranking, deadline)
            if hit is not NOTHING:
                uniq, combined = hit
                df = len(uniq)
                idf = np.log(1.0 + (self.arrays.live_count - df + 0.5) / (df + 0.5))
                hit = uniq, (clause.weight * idf * combined / (ranking.k1 + combined)).astype(np.float32)
            with self._cache_lock:
                self._clauses.put(key, hit)
        return None if hit is NOTHING else hit

    def _merge(self, clause: Clause, ranking: Ranking, deadline: float | None) -> ClausePostings:
        """A clause's postings over the text fields as one list (NOTHING for a stop word or no posting)."""
        postings = self._clause_postings(clause, ranking, deadline)
        if postings is None:
            return NOTHING
        parts_ids, parts_tf = [], []
        for ids, tf_norm, boost in postings:
            if len(ids):
                parts_ids.append(ids)
                parts_tf.append(tf_norm * boost if boost != 1.0 else tf_norm)
        if not parts_ids:
            return NOTHING
        if len(parts_ids) == 1:
            return parts_ids[0], parts_tf[0]
        ids, pseudo = np.concatenate(parts_ids), np.concatenate(parts_tf)
        if len(ids) * 8 > self.doc_count_all:
            # Long lists: summing into a dense array beats sorting them.
            dense = np.bincount(ids, weights=pseudo, minlength=self.doc_count_all)
            uniq = np.flatnonzero(dense)
            return uniq, dense[uniq]
        uniq, inverse = _unique_with_inverse(ids)
        return uniq, np.bincount(inverse, weights=pseudo)

    # --- scoring ------------------------------------------------------------------------

    def score(self, ranking: Ranking, allowed: np.ndarray | None = None, *,
              deadline: float | None = None) -> np.ndarray:
        """BM25F score of every document (0 where nothing matched, a phrase is missing, or not allowed).

        Past deadline (a time.monotonic() instant) it raises SearchTimeout between reads.
        """
        scores = np.zeros(self.doc_count_all, dtype=np.float32)
        fields = field_weights(ranking)
        for clause in ranking.clauses:
            check_deadline(deadline)
            if clause.weight == 0.0:
                continue  # adds exactly 0 to every score (restored lone syllables by default): nothing to read
            found = self.contribution(clause, ranking, deadline, fields)
            if found is not None:
                scores[found[0]] += found[1]
        for boost in ranking.tag_boosts:
            check_deadline(deadline)
            tags = self.tags(boost.field)
            scores[tags.docs_where(boost.accepts)] += np.float32(boost.weight)
        for phrase in ranking.required:
            scores[~self.phrase_mask(phrase, ranking, deadline)] = 0.0
        for phrase in ranking.excluded:
            scores[self.phrase_mask(phrase, ranking, deadline)] = 0.0
        if allowed is not None:
            scores[~allowed] = 0.0
        scores[~self.arrays.live] = 0.0
        return scores

    def phrase_mask(self, phrase: Phrase, ranking: Ranking, deadline: float | None = None) -> np.ndarray:
        """The documents holding the phrase's syllables in order in any text field (one syllable: anywhere).

        A lone syllable reuses the postings the ranking has just read (same field and b).
        """
        mask = np.zeros(self.doc_count_all, dtype=bool)
        words = list(phrase.syllables)
        for name in TEXT_NAMES:
            fieldname = index_field(name, SYLLABLES)
            if len(words) == 1:
                ids = self.normalised(fieldname, words[0], ranking.b.get(name, 0.75), deadline)[0]
            else:
                key = (fieldname, tuple(words))
                with self._cache_lock:
                    ids = self._phrases.get(key)
                if ids is None:
                    ids = self.arrays.phrase_docs(fieldname, words, deadline)
                    with self._cache_lock:
                        self._phrases.put(key, ids)
            mask[ids] = True
        return mask

    def top(self, scores: np.ndarray, k: int, order: str = "relevance") -> tuple[int, list[tuple[int, float]]]:
        """(total matched, [(docnum, score)] best first) for the first k."""
        matched = np.flatnonzero(scores > 0)
        total = len(matched)
        if k <= 0 or not total:
            return total, []
        if order == "relevance":
            if total > k:
                # Every document tied with the k-th score stays in, so that ties go to the lowest docnum
                # (argpartition alone keeps an arbitrary few of them).
                kth = np.partition(scores[matched], total - k)[total - k]
                matched = matched[scores[matched] >= kth]
            order_idx = np.lexsort((matched, -scores[matched]))
        else:
            keys = self.arrays.published_keys()[matched]
            # Undated articles go last either way; ties broken by score.
            missing = np.isnan(keys)
            keyed = np.where(missing, -np.inf if order == "newest" else np.inf, keys)
            primary = -keyed if order == "newest" else keyed
            order_idx = np.lexsort((-scores[matched], primary))[:k]
        chosen = matched[order_idx][:k]
        return total, [(int(d), float(scores[d])) for d in chosen]

    # --- facets and listings ----------------------------------------------------------------

    def months(self) -> np.ndarray:
        """Published year * 100 + month of every document (0 where undated)."""
        if self._months is None:
            from whoosh.util.times import long_to_datetime

            keys = self.arrays.published_keys()
            months = np.zeros(self.doc_count_all, dtype=np.int32)
            dated = ~np.isnan(keys)
            uniq, inverse = np.unique(keys[dated], return_inverse=True)
            by_key = np.array([(d := long_to_datetime(int(k))).year * 100 + d.month for k in uniq], dtype=np.int32)
            months[dated] = by_key[inverse] if len(uniq) else 0
            self._months = months
        return self._months

    def facets(self, scores: np.ndarray, limit: int = 10) -> dict[str, list[tuple[str, int]]]:
        """Counts of each facet field, year and month among the matched documents, largest (or latest) first."""
        # Docnums, not a mask: gathering ~20% of 150k codes by index is 3x faster than by boolean mask, and
        # a field no document has a value for (undated news, no categories) is not gathered at all.
        matched = np.flatnonzero(scores > 0)
        out: dict[str, list[tuple[str, int]]] = {}
        for name in FACET_FIELDS:
            codes, labels = self._codes("column:" + name)
            out[name] = _largest(np.bincount(codes[matched], minlength=len(labels) + 1)[1:], labels, limit) \
                if labels else []
        codes, months = self._codes("month")
        if not months:
            out["year"] = out["month"] = []
            return out
        counts = np.bincount(codes[matched], minlength=len(months) + 1)[1:]
        by_year: dict[str, int] = {}
        for month, count in zip(months, counts.tolist(), strict=True):
            if count:
                by_year[month[:4]] = by_year.get(month[:4], 0) + count
        out["year"] = sorted(by_year.items(), reverse=True)[:limit]
        out["month"] = [(m, c) for m, c in zip(months, counts.tolist(), strict=True) if c][::-1][:24]
        return out

    def _codes(self, what: str) -> tuple[np.ndarray, list[str]]:
        """A number per document for its value of a facet ("column:<field>", or "month"): 0 where it has none,
        i + 1 for labels[i]; labels in ascending order. Worked out once per index version: counting is then
        a bincount over the matches, not a sort of their strings."""
        hit = self._facet_codes.get(what)
        if hit is None:
            if what == "month":
                months = self.months()
                values = np.array([f"{m // 100}-{m % 100:02d}" if m else "" for m in np.unique(months).tolist()])
                uniq, inverse = np.unique(months, return_inverse=True)
                strings = values[inverse]
            else:
                strings = self.arrays.column_values(what.split(":", 1)[1]).astype(str)
            labels, codes = np.unique(strings, return_inverse=True)
            labels = labels.tolist()
            if labels and labels[0] == "":
                labels = labels[1:]  # "" sorts first: code 0, "no value", as wanted
            else:
                codes = codes + 1
            hit = self._facet_codes[what] = (codes.astype(np.int32), labels)
        return hit

    def tags(self, name: str) -> TagIndex:
        """The values of a tag field, indexed both ways (built once per index version)."""
        index = self._tags.get(name)
        if index is None:
            index = self._tags[name] = TagIndex(self.arrays.column_values(name))
        return index

    def tag_facets(self, scores: np.ndarray, limit: int = 10) -> dict[str, list[tuple[str, int]]]:
        """Counts of each tag field's values among the matched documents, largest first."""
        matched = scores > 0
        return {name: self.tags(name).counts(matched, limit) for name in TAG_FIELDS}

    def listing(self, docnum: int) -> MappingProxyType:
        """The LISTING_FIELDS a document stores (read-only; an LRU bounded in entries)."""
        with self._cache_lock:
            hit = self._listings.get(docnum)
            if hit is not None:
                self._listings.move_to_end(docnum)
                return hit
        stored = self.arrays.stored_fields(docnum)
        value = MappingProxyType({name: stored[name] for name in LISTING_FIELDS if name in stored})
        with self._cache_lock:
            self._listings[docnum] = value
            if len(self._listings) > LISTING_CACHE_ENTRIES:
                self._listings.popitem(last=False)
        return value


def _largest(counts: np.ndarray, labels: list[str], limit: int) -> list[tuple[str, int]]:
    """The limit labels with the largest counts (none of 0), ties in label order."""
    top = np.argsort(-counts, kind="stable")[:limit]
    return [(labels[i], int(counts[i])) for i in top.tolist() if counts[i] > 0]


def field_weights(ranking: Ranking) -> tuple[tuple[float, float], ...]:
    """(b, boost) of each text field in TEXT_NAMES order: what a clause's cached contribution depends on."""
    return tuple((ranking.b.get(name, 0.75), ranking.boosts.get(name, 1.0)) for name in TEXT_NAMES)


class ByteLRU:
    """Arrays (or tuples of arrays) by key, least recently used first out past a budget in bytes; the caller
    holds its lock."""

    def __init__(self, budget: int):
        self.budget = budget
        self.nbytes = 0
        self._items: OrderedDict = OrderedDict()

    def get(self, key: object) -> object | None:
        """The value kept for key (now the most recent), or None."""
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
        return hit

    def put(self, key: object, value: np.ndarray | tuple[np.ndarray, ...]) -> None:
        """Keep value unless key is kept already, forgetting the oldest past the budget (never the newest)."""
        if key in self._items:
            return
        self._items[key] = value
        self.nbytes += _size(value)
        while self.nbytes > self.budget and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self.nbytes -= _size(old)

    def __len__(self) -> int:
        """How many values are kept."""
        return len(self._items)


def _size(value: np.ndarray | tuple[np.ndarray, ...]) -> int:
    """Bytes of an array or of a tuple of arrays."""
    return value.nbytes if isinstance(value, np.ndarray) else sum(part.nbytes for part in value)


class TagIndex:
    """A multi-valued field as (document, value number) pairs, read from a column of joined values."""

    def __init__(self, column: np.ndarray):
        self.column = column
        pairs = [(doc, value) for doc, joined in enumerate(column.tolist()) if joined
                 for value in joined.split(TAG_SEPARATOR)]
        self.values = sorted({value for _, value in pairs})
        number = {value: i for i, value in enumerate(self.values)}
        self.docs = np.fromiter((doc for doc, _ in pairs), dtype=np.int64, count=len(pairs))
        self.value_ids = np.fromiter((number[value] for _, value in pairs), dtype=np.int64, count=len(pairs))

    def of(self, doc: int) -> list[str]:
        """The values of one document, in the order the indexer found them."""
        joined = self.column[doc]
        return joined.split(TAG_SEPARATOR) if joined else []

    def docs_where(self, accepts) -> np.ndarray:
        """The documents holding a value that accepts(value) is true of."""
        wanted = np.fromiter((accepts(value) for value in self.values), dtype=bool, count=len(self.values))
        return np.unique(self.docs[wanted[self.value_ids]]) if wanted.any() else np.empty(0, dtype=np.int64)

    def mask(self, value: str, size: int) -> np.ndarray:
        """Boolean mask (of size documents) of those holding value."""
        out = np.zeros(size, dtype=bool)
        at = bisect.bisect_left(self.values, value)
        if at < len(self.values) and self.values[at] == value:
            out[self.docs[self.value_ids == at]] = True
        return out

    def counts(self, matched: np.ndarray, limit: int) -> list[tuple[str, int]]:
        """The most frequent values among the matched documents, with their counts."""
        if not len(self.docs):
            return []
        counts = np.bincount(self.value_ids[np.flatnonzero(matched[self.docs])], minlength=len(self.values))
        top = np.argsort(-counts, kind="stable")[:limit]
        return [(self.values[i], int(counts[i])) for i in top if counts[i] > 0]


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
