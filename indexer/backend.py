"""The backend contract: what a search backend and an index writer must do, and the one registry.

Two engines can hold an index: the embedded Whoosh index (default) and a Typesense cluster. The
app's search flow (app/search.py) and the indexer's command line speak only to the protocols
below; which implementation they get is decided here, from TRACUU_BACKEND, and nowhere else.

Read side: a SearchBackend stands for one index (a folder, or a Typesense alias) and hands out
Snapshots, each one fixed version of it. A snapshot answers a Ranking (backend-neutral clauses,
required phrases, exclusions) with Matches, fetches stored fields, and lends the query planner
its vocabulary and acronym table.

Write side: an IndexWriter builds, updates, deletes and drops, and says what it did in a Report.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from indexer.fields import Kind

# --- settings -------------------------------------------------------------------------------


class BackendSettings(BaseSettings):
    """TRACUU_BACKEND and the Typesense connection; every field can be set as TRACUU_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="TRACUU_")

    backend: Literal["whoosh", "typesense"] = "whoosh"
    # Comma-separated node URLs of one Typesense cluster, e.g. http://127.0.0.1:8108,http://127.0.0.1:8109
    typesense_nodes: str = "http://127.0.0.1:8108"
    typesense_api_key: str = ""
    # Seconds before a node counts as down and the client tries the next one.
    typesense_timeout: float = 5.0

    @field_validator("typesense_nodes")
    @classmethod
    def _nodes_are_urls(cls, value: str) -> str:
        """Every node must be an http(s) URL with a port."""
        for url in node_urls(value):
            if not url.startswith(("http://", "https://")) or url.count(":") < 2:
                raise ValueError(f"not a node URL with a port: {url!r} (e.g. http://127.0.0.1:8108)")
        return value

    @property
    def nodes(self) -> list[str]:
        """The node URLs as a list."""
        return node_urls(self.typesense_nodes)


def node_urls(value: str) -> list[str]:
    """Split a comma-separated node list, dropping blanks and trailing slashes."""
    return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]


def backend_settings() -> BackendSettings:
    """The backend settings of this process's environment."""
    return BackendSettings()


# --- errors, shared by both backends ---------------------------------------------------------


class IndexProblem(Exception):
    """A problem with the index (folder or cluster), worded for the person at the terminal."""


class IndexMissing(IndexProblem):
    """No built index there."""


class IndexBusy(IndexProblem):
    """Another writer holds the lock."""


class QueryError(ValueError):
    """A request the service cannot answer as asked (bad filter, bad sort, …); the message is bilingual."""


class SearchTimeout(Exception):
    """A search ran past its deadline and was stopped part-way."""

    query_id: object = None  # set by a bulk run: which of its queries overran


def check_deadline(deadline: float | None) -> None:
    """Raise SearchTimeout once time.monotonic() has passed deadline; None means no bound."""
    if deadline is not None and time.monotonic() > deadline:
        raise SearchTimeout


# --- what the read side asks a backend ---------------------------------------------------------

SORTS = ("relevance", "newest", "oldest")


@dataclass
class Filters:
    """Restrictions on which articles a search may return."""

    source: str | None = None
    category: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    province: str | None = None  # a current province or a former one (the unit it merged into is meant)
    document: str | None = None  # a legal document number, as typed

    def normalised(self) -> Filters:
        """The filters as the index holds their values; QueryError (bilingual) for impossible ones."""
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise QueryError("'from' is after 'to' / ngày 'from' sau ngày 'to'")
        out = replace(self)
        for name, shown in (("source", "source"), ("category", "category"), ("province", "province"),
                            ("document", "doc")):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise QueryError(f"'{shown}' must be text / '{shown}' phải là chuỗi ký tự")
        if self.province:
            from indexer.provinces import current_unit

            unit = current_unit(self.province)
            if unit is None:
                raise QueryError(f"no province called {self.province!r} / không có tỉnh, thành phố nào tên "
                                 f"{self.province!r}")
            out.province = unit.name
        if self.document:
            from indexer.legal_refs import parse_number

            try:
                out.document = parse_number(self.document)
            except ValueError as err:
                raise QueryError(str(err)) from None
        return out

    def tags(self) -> dict[str, str]:
        """The tag-field filters set: field -> value."""
        return {name: value for name, value in (("province", self.province), ("document", self.document)) if value}


@dataclass(frozen=True)
class Clause:
    """One scored concept of a query: a term of one token kind, looked up in every text field."""

    weight: float
    kind: Kind
    term: str


@dataclass(frozen=True)
class Phrase:
    """Syllables that must appear in this order (a quoted phrase) or must not appear (an exclusion)."""

    marked: tuple[str, ...]  # as typed, lower case, with marks
    folded: tuple[str, ...]  # the same syllables without marks
    use_marks: bool  # typed with marks: match them exactly

    @property
    def syllables(self) -> tuple[str, ...]:
        """The syllables to match."""
        return self.marked if self.use_marks else self.folded


@dataclass(frozen=True)
class TagBoost:
    """Articles whose tag field holds a value this accepts score weight more (a cited document number)."""

    field: str
    weight: float
    values: tuple[str, ...] = ()  # exact values
    prefixes: tuple[str, ...] = ()  # or values starting with one of these ...
    kind: str | None = None  # ... of this kind of document (thông tư, nghị định, ...) when given

    def accepts(self, value: str) -> bool:
        """Whether one tag value is what the boost is for."""
        if value in self.values:
            return True
        if not self.prefixes or not value.startswith(self.prefixes):
            return False
        if self.kind is None:
            return True
        from indexer.legal_refs import RefQuery

        return RefQuery(None, self.prefixes, self.kind, 0, 0).matches(value)


@dataclass
class Ranking:
    """What a backend scores and which articles may appear, with the ranking parameters."""

    clauses: list[Clause]
    required: list[Phrase] = field(default_factory=list)
    excluded: list[Phrase] = field(default_factory=list)
    boosts: dict[str, float] = field(default_factory=dict)  # per text field
    k1: float = 1.2
    b: dict[str, float] = field(default_factory=dict)  # BM25 length normalisation per text field
    tag_boosts: list[TagBoost] = field(default_factory=list)


# Matches counted exactly before a total becomes a lower bound, as Elasticsearch's track_total_hits: past it a
# backend may stop counting (and skip what cannot reach the page), and the flow says "more than 10,000".
TRACK_TOTAL_HITS = 10_000


@dataclass
class Matches:
    """A backend's answer: how many articles matched and the best k of them as (key, score)."""

    total: int
    ranked: list[tuple[Any, float]]  # keys are the backend's own (a document number, an id)
    facets: dict[str, list[tuple[str, int]]] | None = None
    collapsed: bool = False  # one match per story already (total counts stories), when asked and able to
    total_relation: str = "eq"  # "gte": total is a lower bound (at least TRACK_TOTAL_HITS matched)


class Snapshot(Protocol):
    """One fixed version of an index, as the search flow reads it."""

    version: str  # changes whenever the index changed
    documents: int  # live articles

    def vocabulary(self) -> Any:
        """The tone-restoration and spelling table (app.understanding.vocabulary.Vocabulary)."""

    def expander(self) -> Any:
        """The acronym table (app.understanding.acronyms.Expander)."""

    def matches(self, ranking: Ranking, filters: Filters | None, sort: str, k: int, *,
                facets: bool = False, stories: bool = False, deadline: float | None = None,
                exact_total: bool = False) -> Matches:
        """The total and the first k matches in sort order, facet counts when asked; with stories, one match
        per near-duplicate story if the backend can (Matches.collapsed), else the search flow collapses.
        Unless exact_total, a total past TRACK_TOTAL_HITS may be a lower bound (Matches.total_relation)."""

    def fetch(self, keys: list, full: bool) -> list[dict | None]:
        """Stored fields of the matches with these keys (the listing fields only unless full), in order."""

    def listings(self, ids: list[str]) -> list[dict | None]:
        """The listing fields of articles by id, in order (None for an id not in the index)."""

    def story_groups(self) -> Any:
        """The near-duplicate groups of this version (indexer.stories.StoryGroups)."""

    def stored(self, doc_id: str) -> dict | None:
        """Every stored field of the article with this id (published as a datetime), or None."""


class SearchBackend(Protocol):
    """One index as the read side sees it: the live snapshot, and a batch mode for bulk lookups."""

    def snapshot(self) -> Snapshot:
        """The live version; raises IndexMissing or IndexProblem when there is none to read."""

    def batch(self) -> AbstractContextManager[None]:
        """Within it, this thread may reuse a snapshot for a second instead of checking for a newer one."""

    def warm_up(self) -> None:
        """Load what the first query would otherwise wait for."""


# --- what the write side does ------------------------------------------------------------------


@dataclass
class Report:
    """What a write operation did: the summary line for people, JSON for scripts and the HTTP write path."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    deleted: int = 0
    missing: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # what `drop` removed: generations, collections
    warnings: list[str] = field(default_factory=list)  # done, with something the person should know
    bad: list = field(default_factory=list)  # readers.BadRecord: file, line, reason
    seconds: float = 0.0
    total: int = 0
    generation: str = ""

    @property
    def skipped(self) -> int:
        """Records not indexed because they were malformed."""
        return len(self.bad)

    def to_json(self) -> str:
        """The report as one JSON object (bad records as {path, line, reason})."""
        data = asdict(self)
        data["skipped"] = self.skipped
        return json.dumps(data, ensure_ascii=False)


class IndexWriter(Protocol):
    """The one writer of an index; every operation holds the index's writer lock (or fails at once)."""

    def build(self, root: Path, sources: Iterable[str | Path], *, workers: int | None = None,
              progress: bool = False, wait: bool = False) -> Report:
        """A fresh index from sources, made live only once complete."""

    def update(self, root: Path, sources: Iterable[str | Path], *, workers: int | None = None,
               progress: bool = False, wait: bool = False) -> Report:
        """Add or replace articles by id; unchanged ones are skipped."""

    def delete(self, root: Path, ids: Iterable[str], *, wait: bool = False) -> Report:
        """Remove articles by id; the ids not found are listed in the report."""

    def drop(self, root: Path, *, wait: bool = False) -> Report:
        """Remove the whole index; a place that holds none is refused."""

    def drop_orphans(self) -> Report:
        """Remove indexes whose folder is gone (raises IndexProblem where that means nothing)."""


# --- the registry ------------------------------------------------------------------------------

# backend name -> (its IndexWriter, its SearchBackend), as "module:attribute": imported only when chosen,
# so the Whoosh path never loads the Typesense client and the indexer never loads the app.
BACKENDS: dict[str, tuple[str, str]] = {
    "whoosh": ("indexer.build:WhooshWriter", "app.backends.whoosh:WhooshBackend"),
    "typesense": ("indexer.typesense_build:TypesenseWriter", "app.backends.typesense:TypesenseBackend"),
}


def _load(spec: str):
    """The attribute a "module:attribute" spec names."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def index_writer(settings: BackendSettings) -> IndexWriter:
    """The writer of the configured backend."""
    return _load(BACKENDS[settings.backend][0])(settings)


def search_backend(index_dir: Path, settings: BackendSettings) -> SearchBackend:
    """The read side of the configured backend over one index."""
    return _load(BACKENDS[settings.backend][1])(Path(index_dir), settings)
