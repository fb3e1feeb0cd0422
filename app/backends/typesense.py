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
import math
import threading
import time
from calendar import timegm
from collections.abc import Iterator
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
PER_KIND = 24  # query tokens searched one by one, per kind
MAX_PER_PAGE = 250  # Typesense's own limit
MULTI_SEARCH_LIMIT = 50  # searches per multi-search request (Typesense's default cap)
CANDIDATES = 100  # per token kind, fused; Typesense keeps dropping query tokens until it has this many
ALIAS_CHECK_SECONDS = 2.0
# Typesense's own "id" is a hash of ours (document_id): our id is stored as doc_id.
STORED = ",".join("doc_id" if f == "id" else f for f in ARTICLE_FIELDS)
LISTED = ",".join("doc_id" if f == "id" else f for f in LISTING_FIELDS)  # a hit without snippet needs no text


class TypesenseBackend:
    """The collection an index folder's alias points at, looked up again every ALIAS_CHECK_SECONDS."""

    def __init__(self, index_dir: Path, settings: BackendSettings):
        self.alias = alias_name(index_dir)
        self.client = connect(settings)
        self._snapshot: TypesenseSnapshot | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Nothing to hold: every snapshot() is already at most ALIAS_CHECK_SECONDS old."""
        yield

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
                    self._snapshot = TypesenseSnapshot(self.client, collection, read_meta(self.client, collection),
                                                       info["num_documents"])
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

    def __init__(self, client, collection: str, meta: dict, documents: int):
        self.client = client
        self.version = collection
        self.documents = documents
        self.stamp = ""  # of the metadata read: the vocabulary, acronyms, cited documents and story groups
        self._vocabulary = Vocabulary.from_counts(meta.get("words", {}), meta.get("syllables", {}))
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
        depth = min(MAX_PER_PAGE, max(CANDIDATES, k))
        searches = self._searches(ranking, depth, filter_by, sort, facets)
        responses = self._multi_search(searches, deadline)
        fused = _fuse(searches, responses, self.documents)
        total = max((r.get("found", 0) for s, r in zip(searches, responses) if s["kind"] in (*KIND_WEIGHTS, "tag")),
                    default=0)
        # Distinct stories among all matches are not known here: the search flow estimates them from the page.
        return Matches(total, fused[:k], _facets(responses) if facets else None)

    def _searches(self, ranking: Ranking, depth: int, filter_by: str, sort: str, facets: bool) -> list[dict]:
        """One Typesense search per query token and kind (or per kind, for phrases, exclusions and date order)."""
        tokens: dict[str, dict[str, float]] = {kind.code: {} for kind in KINDS}
        for clause in ranking.clauses:
            code, term = clause.kind.code, clause.term
            if clause.kind is SYLLABLES and (fold(term) != term or self.is_stopword(term)):
                continue  # marked syllables are not stored apart; common ones rank nothing alone
            token = encode(term)
            if token:
                tokens[code][token] = max(tokens[code].get(token, 0.0), clause.weight)
        # Advanced syntax ("phrases", -exclusions) is Typesense's own on the syllable fields only.
        advanced = bool(ranking.required or ranking.excluded)
        kinds = (SYLLABLES.code,) if advanced or sort != "relevance" \
            else tuple(k for k in KIND_WEIGHTS if tokens[k])
        searches = [self._tag_search(boost, depth, filter_by) for boost in ranking.tag_boosts]
        searches = [s for s in searches if s is not None]
        if not advanced and sort == "relevance":
            for kind in kinds:
                for token in list(tokens[kind])[:PER_KIND]:
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
        """Send the searches in one request; a refused search counts as no match."""
        if not searches:
            return []
        results = []
        for at in range(0, len(searches), MULTI_SEARCH_LIMIT):
            check_deadline(deadline)
            chunk = searches[at:at + MULTI_SEARCH_LIMIT]
            body = {"searches": [{k: v for k, v in s.items() if k not in ("kind", "weight")} for s in chunk]}
            common = {}
            if deadline is not None:
                # Typesense stops a search past its cutoff and answers with what it found so far.
                common["search_cutoff_ms"] = max(1, int((deadline - time.monotonic()) * 1000))
            try:
                out = self.client.multi_search.perform(body, common)
            except Exception as err:  # the client's HTTP and connection errors
                raise IndexProblem(f"the Typesense cluster cannot be reached: {type(err).__name__}") from None
            results += [r if "error" not in r else {"found": 0, "hits": []} for r in out["results"]]
        return results

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
