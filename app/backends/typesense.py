"""A Typesense cluster as a search backend (indexer.backend's SearchBackend and Snapshot).

Queries are analysed by our own module, exactly as the documents were (indexer.typesense_docs
encodes both). Typesense has no BM25 and no OR: a multi-token query must match every token, and
it drops tokens when it cannot. So each query token of each kind (words with marks, folded
syllables, folded bigrams) is one search of a multi-search request, and the rankings are fused
here, each weighted by its token's rarity (an IDF from the number of articles Typesense found).
Quoted phrases, -exclusions and date sorting use Typesense's own syntax on the syllable fields.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from calendar import timegm
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from datetime import time as dtime
from pathlib import Path

from app.understanding.expansion import Expander
from app.understanding.stopwords import too_common
from app.understanding.vocabulary import Vocabulary
from indexer import acronyms
from indexer.analysis import fold
from indexer.backend import (
    BackendSettings,
    Filters,
    IndexMissing,
    IndexProblem,
    Matches,
    Phrase,
    Ranking,
    TagBoost,
    check_deadline,
)
from indexer.fields import (
    ARTICLE_FIELDS,
    DATE_FIELD,
    FACET_FIELDS,
    KINDS,
    LISTING_FIELDS,
    SYLLABLES,
    TAG_FIELDS,
    TEXT_NAMES,
    typesense_field,
)
from indexer.stories import StoryGroups
from indexer.typesense_docs import alias_name, connect, document_id, encode, live_collection, meta_stamp, read_meta

# Fusion: a search's n-th hit counts RRF_K / (RRF_K + n); large, so being found matters more than the
# place (Typesense's text match knows no term frequency). Weights and depth tuned on alqac (bench/relevance.md).
RRF_K = 300
KIND_WEIGHTS = {"w": 1.0, "s": 0.3, "b": 2.0}
MAX_PER_PAGE = 250  # Typesense's own limit
MULTI_SEARCH_LIMIT = 50  # searches per multi-search request (Typesense's default cap)
ALIAS_CHECK_SECONDS = 2.0
# Typesense's own "id" is a hash of ours (document_id): our id is stored as doc_id.
STORED = ",".join("doc_id" if f == "id" else f for f in ARTICLE_FIELDS)
LISTED = ",".join("doc_id" if f == "id" else f for f in LISTING_FIELDS)  # a hit without snippet needs no text


@dataclass(frozen=True)
class FanOut:
    """How many searches a query becomes. Each query token of each kind is one search (Typesense has no OR);
    at most per_kind tokens of a kind and budget searches in all (0: no budget) are sent, the tokens that weigh
    most in the fusion first (kind weight × clause weight × IDF estimated from the collection's own counts)
    when by_weight, else in query order. Within a batch (a bulk request, `app bulk`), the answers of up to cache
    token searches are kept: a query that shares a token with an earlier one does not search it again."""

    per_kind: int = 24
    budget: int = 0
    by_weight: bool = False
    cache: int = 0
    # Hits asked of each search (at least the page's depth); Typesense keeps dropping query tokens until it has
    # this many. Most of a search's time is its hits (3.5 ms for 100, 1.4 ms for 30, alqac on 3 nodes), but
    # the fusion counts being found at all: 30 took alqac's nDCG@10 from 0.906 to 0.888.
    candidates: int = 100
    parallel: int = 1  # requests a query's searches are split into, sent at once; 0: one per node


PARALLEL_MIN_SEARCHES = 6  # fewer searches a request are not worth a thread
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child (a bulk worker): the parent's threads are not there, and its lock may be held."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _request_pool() -> ThreadPoolExecutor:
    """The threads that send a query's other multi-search requests while the caller sends the first (as many
    as the server's request threads, so that a busy server does not queue them)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="typesense")
        return _pool


_batch = threading.local()  # answers: the token searches of this thread's batch, snapshot: whose they are

# One search per token in query order, nothing kept: the fan-out before 2026-12-05, kept for bench/typesense_fanout.py.
EVERY_TOKEN = FanOut(per_kind=24)
# The budget, on alqac (100 legal questions, median 57 token searches before), nDCG@10 typed / no marks against
# 0.909 / 0.908: 48 0.909 / 0.913, 40 0.903 / 0.913, 24 about 0.03 lower; 12 per kind and no budget 0.893 / 0.906
# (bench/typesense_fanout.py). 48 searches fit one request of each node's share.
DEFAULT_FAN_OUT = FanOut(per_kind=24, budget=48, by_weight=True, cache=1_000, parallel=0)  # ~7 kB a search kept


class TypesenseBackend:
    """The collection an index folder's alias points at, looked up again every ALIAS_CHECK_SECONDS."""

    def __init__(self, index_dir: Path, settings: BackendSettings, fan_out: FanOut = DEFAULT_FAN_OUT):
        self.alias = alias_name(index_dir)
        self.client = connect(settings)
        self.nodes = len(settings.nodes)
        self.fan_out = fan_out
        self._snapshot: TypesenseSnapshot | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Within it, this thread's token searches are answered once: the queries of a bulk batch that share
        a token share its search. (Every snapshot() is already at most ALIAS_CHECK_SECONDS old.) Outside a
        batch nothing is kept, so a search right after an acknowledged write sees it."""
        if getattr(_batch, "answers", None) is not None:
            yield  # nested: the outer batch's memory
            return
        _batch.answers, _batch.snapshot = OrderedDict(), None
        try:
            yield
        finally:
            _batch.answers = _batch.snapshot = None

    def snapshot(self) -> TypesenseSnapshot:
        """The live collection, reloaded when the alias moved or an update committed."""
        now = time.monotonic()
        with self._lock:
            if self._snapshot is not None and now - self._checked < ALIAS_CHECK_SECONDS:
                return self._snapshot
            try:
                collection = live_collection(self.client, self.alias)
                if collection is None:
                    raise IndexMissing(f"no index {self.alias} in the Typesense cluster")
                info = self.client.collections[collection].retrieve()
                stamp = meta_stamp(self.client, collection)
                if self._snapshot is None or self._snapshot.version != collection \
                        or self._snapshot.documents != info["num_documents"] or self._snapshot.stamp != stamp:
                    fan_out = self.fan_out if self.fan_out.parallel else replace(self.fan_out, parallel=self.nodes)
                    self._snapshot = TypesenseSnapshot(self.client, collection, read_meta(self.client, collection),
                                                       info["num_documents"], fan_out)
                    self._snapshot.stamp = stamp
            except IndexMissing:
                raise
            except Exception as err:  # the client's HTTP and connection errors
                raise IndexProblem(f"the Typesense cluster cannot be reached: {type(err).__name__}") from None
            self._checked = now
            return self._snapshot

    def warm_up(self) -> None:
        """Load the vocabulary and acronym tables before the first query."""
        with contextlib.suppress(IndexProblem):
            self.snapshot()


class TypesenseSnapshot:
    """One collection of the cluster, with the vocabulary and acronyms its metadata holds."""

    def __init__(self, client, collection: str, meta: dict, documents: int, fan_out: FanOut = DEFAULT_FAN_OUT):
        self.client = client
        self.version = collection
        self.documents = documents
        self.fan_out = fan_out
        self.searches_sent = 0  # token, tag and facet searches sent to the cluster (not answered from the cache)
        self.stamp = ""  # of the metadata read: the vocabulary, acronyms, cited documents and story groups
        self._word_df: dict[str, int] = meta.get("words", {})  # compound word -> articles (those in 2 or more)
        self._syllable_counts: dict[str, int] = meta.get("syllables", {})  # body syllable, marked and folded
        self._vocabulary = Vocabulary.from_counts(self._word_df, self._syllable_counts)
        self._cited = sorted(meta.get("documents", {}))  # every document number the collection's articles cite
        self._groups = StoryGroups(meta.get("stories") or {})
        self._expander = Expander(acronyms.table(meta.get("acronyms", {})))

    def vocabulary(self) -> Vocabulary:
        """Tone-mark restoration and spelling table."""
        return self._vocabulary

    def expander(self) -> Expander:
        """Acronym table: glossary plus what the build mined."""
        return self._expander

    def is_stopword(self, folded: str) -> bool:
        """A syllable in more than a tenth of a large index ranks nothing on its own."""
        return too_common(self._vocabulary.syllable_df.get(folded, 0), self.documents)

    def story_groups(self) -> StoryGroups:
        """The near-duplicate groups the indexer saved in the collection's metadata."""
        return self._groups

    def listings(self, ids: list[str]) -> list[dict | None]:
        """The listing fields of articles by id, in one request."""
        return self.fetch(ids, full=False)

    def matches(self, ranking: Ranking, filters: Filters | None, sort: str, k: int, *,
                facets: bool = False, stories: bool = False, deadline: float | None = None,
                exact_total: bool = False) -> Matches:
        """Per-token searches in one multi-search request, fused; total is the largest count of one token."""
        filter_by = _filter_by(filters) if filters else ""
        depth = min(MAX_PER_PAGE, max(self.fan_out.candidates, k))
        searches = self._searches(ranking, depth, filter_by, sort, facets)
        responses = self._answer(searches, deadline)
        fused = _fuse(searches, responses, self.documents)
        total = max((r.get("found", 0) for s, r in zip(searches, responses) if s["kind"] in (*KIND_WEIGHTS, "tag")),
                    default=0)
        # Distinct stories among all matches are not known here: the search flow estimates them from the page.
        return Matches(total, fused[:k], _facets(responses) if facets else None)

    def _searches(self, ranking: Ranking, depth: int, filter_by: str, sort: str, facets: bool) -> list[dict]:
        """One Typesense search per query token and kind (or per kind, for phrases, exclusions and date order)."""
        tokens: dict[str, dict[str, float]] = {kind.code: {} for kind in KINDS}
        terms: dict[tuple[str, str], str] = {}  # (kind, encoded token) -> the analysed term, for its rarity
        for clause in ranking.clauses:
            code, term = clause.kind.code, clause.term
            if clause.kind is SYLLABLES and (fold(term) != term or self.is_stopword(term)):
                continue  # marked syllables are not stored apart; common ones rank nothing alone
            token = encode(term)
            if token:
                tokens[code][token] = max(tokens[code].get(token, 0.0), clause.weight)
                terms.setdefault((code, token), term)
        # Advanced syntax ("phrases", -exclusions) is Typesense's own on the syllable fields only.
        advanced = bool(ranking.required or ranking.excluded)
        kinds = (SYLLABLES.code,) if advanced or sort != "relevance" \
            else tuple(k for k in KIND_WEIGHTS if tokens[k])
        searches = [self._tag_search(boost, depth, filter_by) for boost in ranking.tag_boosts]
        searches = [s for s in searches if s is not None]
        if not advanced and sort == "relevance":
            for kind, token in self._chosen(tokens, terms, kinds):
                search = self._search(ranking, kind, token, depth, filter_by, sort, False)
                search["weight"] = tokens[kind][token]
                searches.append(search)
            if facets and tokens[SYLLABLES.code]:
                # Counts over the articles holding the query's syllables (all of them, or as many as Typesense
                # can find together), from one more search that ranks nothing.
                counter = self._search(ranking, SYLLABLES.code, " ".join(tokens[SYLLABLES.code]), 1, filter_by,
                                       sort, True)
                counter["kind"] = "facets"
                searches.append(counter)
            return searches
        for kind in kinds:
            # Typesense drops query tokens it cannot match all together; measured, the query's own
            # order (by clause weight) dropped them better than rarest-first.
            words = sorted(tokens[kind], key=lambda t: -tokens[kind][t])[:32]
            if kind == SYLLABLES.code and advanced:
                words = words + [_phrase(p) for p in ranking.required] + [f"-{t}" for t in _excluded(ranking)]
            if words:
                searches.append(self._search(ranking, kind, " ".join(words), depth, filter_by, sort,
                                             facets and kind == kinds[0]))
        return searches

    def _chosen(self, tokens: dict[str, dict[str, float]], terms: dict[tuple[str, str], str],
                kinds: tuple[str, ...]) -> list[tuple[str, str]]:
        """The (kind, token) pairs searched one by one, as the fan-out allows (by weight: heaviest first)."""
        plan = self.fan_out
        if not plan.by_weight:
            chosen = [(kind, token) for kind in kinds for token in list(tokens[kind])[:plan.per_kind]]
            return chosen[:plan.budget] if plan.budget else chosen

        expected = {(kind, token): KIND_WEIGHTS[kind] * weight
                    * math.log(1 + self.documents / (1 + self._df(kind, terms[kind, token])))
                    for kind in kinds for token, weight in tokens[kind].items()}
        chosen = []
        for kind in kinds:
            ranked = sorted(((kind, token) for token in tokens[kind]), key=lambda pair: -expected[pair])
            chosen += ranked[:plan.per_kind]
        chosen.sort(key=lambda pair: -expected[pair])
        return chosen[:plan.budget] if plan.budget else chosen

    def _df(self, kind: str, term: str) -> int:
        """Articles estimated to hold a term, from the collection's own counts: a compound word's (0 when seen
        in fewer than two), a one-syllable word's or a body syllable's, and for a bigram the rarer of its
        syllables' (an upper bound)."""
        syllable_df = self._vocabulary.syllable_df
        if kind == "w":
            if "_" in term:
                return self._word_df.get(term, 0)
            # The counts of words hold compounds only: "và", "của" are counted as syllables.
            return self._syllable_counts.get(term, syllable_df.get(fold(term), 0))
        if kind == "s":
            return syllable_df.get(term, 0)
        return min((syllable_df.get(s, 0) for s in term.split()), default=0)

    def _answer(self, searches: list[dict], deadline: float | None) -> list[dict]:
        """The searches' answers: within a batch, token searches answered before come from the batch's memory;
        the rest go in one multi-search request (or as many as the per-request limit needs)."""
        memory: OrderedDict[str, tuple[int, tuple[str, ...]]] | None = getattr(_batch, "answers", None)
        if memory is None or not self.fan_out.cache:
            self.searches_sent += len(searches)
            return self._multi_search(searches, deadline)
        if _batch.snapshot is not self:
            # An update or delete writes into the same collection and makes a new snapshot: what the batch
            # remembered of the old one may name deleted or changed articles.
            memory.clear()
            _batch.snapshot = self
        keys = [json.dumps({k: v for k, v in s.items() if k != "weight"}, sort_keys=True)
                if s["kind"] in KIND_WEIGHTS and "facet_by" not in s else None for s in searches]
        answers: list[dict | None] = [None] * len(searches)
        for i, key in enumerate(keys):
            if key is not None and key in memory:
                memory.move_to_end(key)
                found, ids = memory[key]
                answers[i] = {"found": found, "hits": [{"document": {"doc_id": doc_id}} for doc_id in ids]}
        missing = [i for i, a in enumerate(answers) if a is None]
        self.searches_sent += len(missing)
        fresh = self._multi_search([searches[i] for i in missing], deadline)
        for i, response in zip(missing, fresh, strict=True):
            answers[i] = response
            # A search cut short by the time bound, or refused, is not the token's answer.
            if keys[i] is not None and not response.get("search_cutoff") and not response.get("refused"):
                memory[keys[i]] = (response.get("found", 0),
                                   tuple(h["document"]["doc_id"] for h in response.get("hits", [])))
                if len(memory) > self.fan_out.cache:
                    memory.popitem(last=False)
        return answers

    def _tag_search(self, boost: TagBoost, depth: int, filter_by: str) -> dict | None:
        """A search of the articles whose tag field holds a value the boost accepts (None when none does)."""
        values = [v for v in self._cited if boost.accepts(v)] if boost.field == "document" else list(boost.values)
        if not values:
            return None
        tag_filter = f"{boost.field}:=[{','.join(_value(v) for v in values[:100])}]"
        return {"collection": self.version, "kind": "tag", "weight": boost.weight, "q": "*",
                "filter_by": f"{tag_filter} && {filter_by}" if filter_by else tag_filter,
                "per_page": depth, "page": 1, "include_fields": "doc_id"}

    def _search(self, ranking: Ranking, kind: str, q: str, depth: int, filter_by: str, sort: str,
                facets: bool) -> dict:
        """One search of a multi-search request over the fields of one token kind."""
        kind_of = {k.code: k for k in KINDS}[kind]
        search = {
                "collection": self.version, "kind": kind, "q": q,
                "query_by": ",".join(typesense_field(f, kind_of) for f in TEXT_NAMES),
                "query_by_weights": ",".join(str(max(1, round(ranking.boosts.get(f, 1.0) * 2))) for f in TEXT_NAMES),
                "num_typos": 0, "typo_tokens_threshold": 0, "prefix": False,
                "drop_tokens_threshold": depth, "per_page": depth, "page": 1,
                "include_fields": "doc_id", "highlight_fields": "none", "highlight_full_fields": "none",
            }
        if filter_by:
            search["filter_by"] = filter_by
        if sort == "newest":
            search["sort_by"] = "published_ts:desc,_text_match:desc"
        elif sort == "oldest":
            search["sort_by"] = "oldest_key:asc,_text_match:desc"
        if facets:
            search["facet_by"] = ",".join((*FACET_FIELDS, "year", "month", *TAG_FIELDS))
            search["max_facet_values"] = 50
        return search

    def _multi_search(self, searches: list[dict], deadline: float | None = None) -> list[dict]:
        """The searches' answers, in order; a refused search counts as no match. A node runs the searches of
        one multi-search request one after another, so many searches are split into one request per node,
        sent at once (their order interleaved, to even out the shares): 36 searches 106 -> 65 ms on 3 nodes."""
        if not searches:
            return []
        parts = max(math.ceil(len(searches) / MULTI_SEARCH_LIMIT),
                    min(self.fan_out.parallel, len(searches) // PARALLEL_MIN_SEARCHES))
        if parts <= 1:
            return self._perform(searches, deadline)
        shares = [list(range(i, len(searches), parts)) for i in range(parts)]
        pool = _request_pool()
        others = [pool.submit(self._perform, [searches[j] for j in share], deadline) for share in shares[1:]]
        try:
            found = [self._perform([searches[j] for j in shares[0]], deadline)] + [f.result() for f in others]
        finally:
            for f in others:  # the query failed: its other shares need not be sent
                f.cancel()
        answers: list[dict] = [{}] * len(searches)
        for share, share_answers in zip(shares, found, strict=True):
            for j, answer in zip(share, share_answers, strict=True):
                answers[j] = answer
        return answers

    def _perform(self, searches: list[dict], deadline: float | None) -> list[dict]:
        """One multi-search request (at most MULTI_SEARCH_LIMIT searches) to the client's next node."""
        check_deadline(deadline)
        body = {"searches": [{k: v for k, v in s.items() if k not in ("kind", "weight")} for s in searches]}
        common = {}
        if deadline is not None:
            # Typesense stops a search past its cutoff and answers with what it found so far.
            common["search_cutoff_ms"] = max(1, int((deadline - time.monotonic()) * 1000))
        try:
            out = self.client.multi_search.perform(body, common)
        except Exception as err:  # the client's HTTP and connection errors
            raise IndexProblem(f"the Typesense cluster cannot be reached: {type(err).__name__}") from None
        return [r if "error" not in r else {"found": 0, "hits": [], "refused": True} for r in out["results"]]

    def fetch(self, keys: list, full: bool) -> list[dict | None]:
        """The stored fields of a page of hits, by article id, in one request."""
        docs: dict[str, dict] = {}
        # Typesense answers at most MAX_PER_PAGE documents a search: a collapsed search asks for more.
        chunks = [keys[at:at + MAX_PER_PAGE] for at in range(0, len(keys), MAX_PER_PAGE)]
        searches = [{"collection": self.version, "q": "*", "per_page": len(chunk),
                     "filter_by": f"id:[{','.join(document_id(k) for k in chunk)}]",
                     "include_fields": STORED if full else LISTED} for chunk in chunks]
        for response in self._multi_search(searches):
            docs.update((hit["document"]["doc_id"], hit["document"]) for hit in response.get("hits", []))
        return [_stored(docs[key]) if key in docs else None for key in keys]

    def stored(self, doc_id: str) -> dict | None:
        """Every stored field of the article with this id (published as a datetime), or None."""
        import typesense.exceptions as tse

        try:
            doc = self.client.collections[self.version].documents[document_id(doc_id)].retrieve()
        except tse.ObjectNotFound:
            return None
        except Exception as err:
            raise IndexProblem(f"the Typesense cluster cannot be reached: {type(err).__name__}") from None
        return _stored(doc)


def _stored(doc: dict) -> dict:
    """The Whoosh-shaped stored fields of a Typesense document."""
    out = {"id": doc["doc_id"]}
    for name in ARTICLE_FIELDS:
        if name in ("id", DATE_FIELD):
            continue
        if doc.get(name) not in (None, ""):
            out[name] = doc[name]
    if doc.get("published"):
        out["published"] = datetime.fromisoformat(doc["published"])
    return out


def _fuse(searches: list[dict], responses: list[dict], documents: int) -> list[tuple[str, float]]:
    """Weighted reciprocal-rank fusion of the searches' rankings; a one-token search also counts
    its token's rarity (Typesense reports how many articles hold it)."""
    scores: dict[str, float] = {}
    for search, response in zip(searches, responses):
        if search["kind"] == "tag":  # an article citing the document the query names: above any other
            for hit in response.get("hits", []):
                key = hit["document"]["doc_id"]
                scores[key] = scores.get(key, 0.0) + search["weight"] * RRF_K
            continue
        if search["kind"] not in KIND_WEIGHTS:
            continue
        weight = KIND_WEIGHTS[search["kind"]]
        if "weight" in search:
            weight *= search["weight"] * math.log(1 + documents / (1 + response.get("found", 0)))
        for rank, hit in enumerate(response.get("hits", [])):
            key = hit["document"]["doc_id"]
            scores[key] = scores.get(key, 0.0) + weight * RRF_K / (RRF_K + rank + 1)
    order = sorted(scores.items(), key=lambda kv: -kv[1])
    return [(k, round(v, 6)) for k, v in order]


def _facets(responses: list[dict]) -> dict[str, list[tuple[str, int]]]:
    """Facet counts in the shape of Engine.facets."""
    out: dict[str, list[tuple[str, int]]] = {name: [] for name in (*FACET_FIELDS, "year", "month", *TAG_FIELDS)}
    for response in responses:
        for facet in response.get("facet_counts", []):
            name = facet["field_name"]
            counts = [(c["value"], int(c["count"])) for c in facet["counts"] if c["value"]]
            if name in ("year", "month"):
                out[name] = sorted(counts, reverse=True)[:24 if name == "month" else 10]
            else:
                out[name] = sorted(counts, key=lambda kv: -kv[1])[:10]
    return out


def _value(text: str) -> str:
    """A filter value quoted for Typesense (backticks keep commas and spaces literal)."""
    return "`" + text.replace("`", "") + "`"


def _filter_by(filters: Filters) -> str:
    """Typesense's filter_by for source, category and a date range (validated by the search flow)."""
    parts = []
    if filters.source:
        parts.append(f"source:={_value(filters.source)}")
    if filters.category:
        parts.append(f"category:={_value(filters.category)}")
    for name, value in filters.tags().items():
        parts.append(f"{name}:=[{_value(value)}]")
    if filters.date_from:
        parts.append(f"published_ts:>={timegm(datetime.combine(filters.date_from, dtime.min).timetuple())}")
    if filters.date_to:
        parts.append(f"published_ts:<={timegm(datetime.combine(filters.date_to, dtime.max).timetuple())}")
        if not filters.date_from:
            parts.append("published_ts:>0")
    return " && ".join(parts)


def _phrase(phrase: Phrase) -> str:
    """A quoted phrase of encoded folded syllables (Typesense cannot see marks)."""
    return '"' + " ".join(t for t in (encode(s) for s in phrase.folded) if t) + '"'


def _excluded(ranking: Ranking) -> list[str]:
    """Encoded folded syllables of the exclusions (marks ignored, as Typesense cannot see them)."""
    return [t for p in ranking.excluded for t in (encode(s) for s in p.folded) if t]
