"""JSON API: search, bulk lookups, documents and health."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from app.bulk_workers import BulkError, BulkPool
from app.deps import get_app_settings, get_bulk_pool, get_service
from app.search import Filters, QueryError, SearchService, SearchTimeout
from app.settings import Settings

router = APIRouter()

SortName = Literal["relevance", "newest", "oldest"]


class SimilarOut(BaseModel):
    """Another copy of a hit's story (the same press release on another portal, lightly edited)."""

    id: str
    title: str
    source: str | None = None
    published: str | None = None


class HitOut(BaseModel):
    """One hit as the API returns it."""

    id: str
    title: str
    url: str | None = None
    source: str | None = None
    published: str | None = None
    score: float
    snippet: str = ""
    similar: list[SimilarOut] = Field(default=[], description="the story's other copies, earliest first "
                                                             "(collapse=true)")


class FacetValue(BaseModel):
    """One value of a facet and how many matching articles have it."""

    value: str = Field(description="the value, as the filter of the same name takes it")
    count: int
    label: str | None = Field(default=None, description="province: the unit and the former provinces it includes")


class Facets(BaseModel):
    """Counts over the whole result set, largest first (year: latest first)."""

    source: list[FacetValue] = []
    category: list[FacetValue] = []
    year: list[FacetValue] = []
    province: list[FacetValue] = Field(default=[], description="current provinces (since 1 July 2025)")
    document: list[FacetValue] = Field(default=[], description="legal documents cited, normalised numbers")


class SearchOut(BaseModel):
    """A page of search results."""

    query: str
    total: int = Field(description="matches (stories when collapsed), exact up to 10,000: see total_relation")
    total_relation: Literal["eq", "gte"] = Field(
        default="eq", description="eq: total is exact; gte: at least total matched (exact_total=true counts them)")
    took_ms: float
    hits: list[HitOut]
    expansions: list[dict] = []
    relaxed: bool = False
    corrected: str | None = Field(default=None, description="the query as searched, when it was typed with "
                                                            "Telex or VNI keys left in")
    facets: Facets = Facets()


class BulkQuery(BaseModel):
    """One query of a bulk request, with optional filters."""

    id: str | int
    q: str = Field(max_length=2000)
    source: str | None = None
    category: str | None = None
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    province: str | None = None
    doc: str | None = None
    sort: SortName = "relevance"

    model_config = {"populate_by_name": True}

    @field_validator("q")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise PydanticCustomError("nul_character", "query contains a NUL character")
        return value


class BulkIn(BaseModel):
    """A bulk request: up to 1,000 queries answered in order."""

    queries: list[BulkQuery]
    limit: int = Field(default=10, ge=0, le=100)


class BulkHit(BaseModel):
    """A hit in a bulk answer (no snippet)."""

    id: str
    score: float
    title: str


class BulkResult(BaseModel):
    """The answer to one query of a bulk request."""

    id: str | int
    total: int
    total_relation: Literal["eq", "gte"] = "eq"
    hits: list[BulkHit]


class BulkOut(BaseModel):
    """The answers of a bulk request, in the order asked."""

    results: list[BulkResult]


def check_query(q: str, settings: Settings) -> str:
    """Reject empty, oversized or NUL-bearing queries with a clear 422."""
    if not q.strip():
        raise HTTPException(422, "empty query: type something to search for / hãy nhập từ khóa")
    if len(q) > settings.max_query_chars:
        raise HTTPException(422, f"query is longer than {settings.max_query_chars} characters"
                                 f" / truy vấn dài quá {settings.max_query_chars} ký tự")
    if "\x00" in q:
        raise HTTPException(422, "query contains a NUL character / truy vấn chứa ký tự NUL")
    return q


@router.get("/api/search", response_model=SearchOut, summary="Ranked full-text search with snippets")
def api_search(
    service: Annotated[SearchService, Depends(get_service)],
    settings: Annotated[Settings, Depends(get_app_settings)],
    q: Annotated[str, Query(description="query: words, \"phrases\", -exclusions")],
    limit: Annotated[int, Query(ge=0, le=100)] = 10,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    source: str | None = None,
    category: str | None = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
    province: Annotated[str | None, Query(max_length=100, description="a province, current or former: "
                                          "Thái Bình finds articles of today's Hưng Yên")] = None,
    doc: Annotated[str | None, Query(max_length=120, description="a legal document number: 01/2024/TT-BNV")] = None,
    sort: SortName = "relevance",
    collapse: Annotated[bool, Query(description="one hit per story: the copies of a press release reposted by "
                                                "other portals are listed in its `similar`, and `total` counts "
                                                "stories; false lists every copy")] = True,
    exact_total: Annotated[bool, Query(description="count every match: without it a total past 10,000 is "
                                                   "given as 10,000 with total_relation gte")] = False,
) -> dict:
    """Search the index; `from`/`to` are ISO dates, `sort` is relevance, newest or oldest."""
    check_query(q, settings)
    try:
        result = service.search(q, limit=min(limit, settings.max_limit), offset=offset, sort=sort,
                                filters=Filters(source, category, from_, to, province, doc), facets=True,
                                collapse=collapse, exact_total=exact_total)
    except QueryError as err:
        raise HTTPException(422, str(err)) from None
    out = result.as_dict()
    out["facets"] = facets_out(result.facets)
    return out


def facets_out(facets: dict[str, list[tuple[str, int]]]) -> dict[str, list[dict]]:
    """Facet counts as the API shows them: value, count, and for provinces the units' former provinces."""
    from indexer.provinces import facet_label

    out = {name: [{"value": value, "count": count} for value, count in facets.get(name, [])]
           for name in Facets.model_fields}
    for item in out["province"]:
        item["label"] = facet_label(item["value"])
    return out


@router.post("/api/search/bulk", response_model=BulkOut, summary="Many queries in one request")
def api_bulk(body: BulkIn, pool: Annotated[BulkPool, Depends(get_bulk_pool)],
             settings: Annotated[Settings, Depends(get_app_settings)]) -> dict:
    """Answer up to 1,000 queries in order, top hits without snippets."""
    if len(body.queries) > settings.max_bulk_queries:
        raise HTTPException(413, f"at most {settings.max_bulk_queries} queries per request"
                                 f" (got {len(body.queries)}) / tối đa {settings.max_bulk_queries} truy vấn"
                                 f" mỗi yêu cầu (nhận {len(body.queries)})")
    for item in body.queries:
        if len(item.q) > settings.max_query_chars:
            raise HTTPException(422, f"query {item.id!r} is longer than {settings.max_query_chars} characters"
                                     f" / truy vấn {item.id!r} dài quá {settings.max_query_chars} ký tự")
    items = [{"id": item.id, "q": item.q, "sort": item.sort,
              "filters": Filters(item.source, item.category, item.from_, item.to, item.province, item.doc)}
             for item in body.queries]
    answers = pool.answer(items, limit=body.limit, stop_at_error=True)
    for item, answer in zip(items, answers, strict=True):
        if isinstance(answer, BulkError):  # the first in order, as if the queries had been answered one by one
            if answer.timeout:
                err = SearchTimeout(answer.message)
                err.query_id = item["id"]
                raise err
            raise HTTPException(422, answer.message)
    return {"results": answers}


@router.get("/api/suggest", summary="Autocomplete from the index's frequent words")
def api_suggest(service: Annotated[SearchService, Depends(get_service)],
                q: Annotated[str, Query(max_length=100)], limit: Annotated[int, Query(ge=1, le=20)] = 8) -> dict:
    """Completions of what was typed so far, with or without tone marks: `cai c` -> `cải cách`."""
    if not q.strip() or not service.is_ready():
        return {"query": q, "suggestions": []}
    return {"query": q, "suggestions": service.suggest(q.replace("\x00", " "), limit)}


@router.get("/api/documents/{doc_id}", summary="One stored article")
def api_document(doc_id: str, service: Annotated[SearchService, Depends(get_service)]) -> dict:
    """The stored article; 404 for an unknown id."""
    doc = service.document(doc_id)
    if doc is None:
        raise HTTPException(404, f"no article with id {doc_id!r} / không có bài viết mã {doc_id!r}")
    return doc


@router.get("/healthz", summary="Index size and version")
def healthz(service: Annotated[SearchService, Depends(get_service)]) -> dict:
    """Liveness plus the live index's document count and version."""
    if not service.is_ready():
        return {"status": "empty", "documents": 0, "version": None}
    return {"status": "ok", **service.stats()}
