"""HTML pages: the search page and the stored article page (work without JavaScript)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from app.deps import get_app_settings, get_service
from app.search import SORTS, Filters, QueryError, SearchService, SearchTimeout
from app.settings import Settings
from indexer.backend import IndexMissing, IndexProblem
from indexer.provinces import facet_label

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")
PAGE_SIZE = 10


def vn_number(value: float, decimals: int = 0) -> str:
    """Vietnamese number formatting: 1.234.567 and 0,02."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def vn_date(iso: str | None) -> str:
    """An ISO datetime as 18/03/2024 16:45 (or only the date when no time was known)."""
    if not iso:
        return ""
    day, _, clock = iso.partition("T")
    y, m, d = day.split("-")
    clock = clock[:5]
    return f"{d}/{m}/{y}" + (f" {clock}" if clock and clock != "00:00" else "")


def safe_url(url: str | None) -> str | None:
    """Only http(s) links are rendered; anything else (javascript:, data:) is dropped."""
    if url and url.lower().startswith(("http://", "https://")):
        return url
    return None


templates.env.filters["vn_number"] = vn_number
templates.env.filters["vn_date"] = vn_date
templates.env.filters["safe_url"] = safe_url


def _month_end(year_month: str) -> str:
    """The last day of a month given as YYYY-MM, as an ISO date."""
    year, month = (int(p) for p in year_month.split("-"))
    return (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).isoformat()


def _parse_date(value: str | None) -> date | None:
    """An ISO date from a form field; an unreadable one raises QueryError."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise QueryError(f"ngày không hợp lệ: {value!r} (dùng dạng 2024-03-18)") from None


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def search_page(request: Request, service: Annotated[SearchService, Depends(get_service)],
                settings: Annotated[Settings, Depends(get_app_settings)],
                q: str = "", page: str = "1", source: str = "", category: str = "",
                to: str = "", province: str = "", doc: str = "", sort: str = "relevance") -> HTMLResponse:
    """The search form and, when a query is given, one page of results."""
    from_ = request.query_params.get("from", "")  # "from" is a Python keyword
    ctx: dict = {"request": request, "q": q, "source": source, "category": category, "from_": from_, "to": to,
                 "province": province, "doc": doc, "province_label": facet_label,
                 "sort": sort if sort in SORTS else "relevance", "result": None, "error": None, "ready": True,
                 "page": 1, "pages": 0}
    status = 200
    if not service.is_ready():
        ctx["ready"] = False
    elif q.strip():
        try:
            if len(q) > settings.max_query_chars:
                raise QueryError(f"Từ khóa dài quá {settings.max_query_chars} ký tự.")
            page_no = int(page) if page.isdigit() and 0 < int(page) <= 1000 else 1
            filters = Filters(source or None, category or None, _parse_date(from_), _parse_date(to),
                              province or None, doc or None)
            result = service.search(q.replace("\x00", " "), limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE,
                                    filters=filters, sort=ctx["sort"], facets=True, suggest=True,
                                    collapse=True)
            ctx.update(result=result, page=page_no, pages=min(1000, -(-result.total // PAGE_SIZE)))
        except QueryError as err:
            ctx["error"], status = str(err), 422
        except SearchTimeout:
            ctx["error"], status = "Tìm kiếm mất quá nhiều thời gian nên đã dừng; hãy thử lại sau giây lát.", 503
        except (IndexMissing, IndexProblem):
            ctx["ready"] = False

    state = {"q": q, "source": source, "category": category, "from": from_, "to": to, "province": province, "doc": doc,
             "sort": ctx["sort"] if ctx["sort"] != "relevance" else ""}

    def url_with(**changes: str | int) -> str:
        """This page's URL with some parameters changed ('' removes one); paging restarts unless given."""
        params = {k: v for k, v in {**state, **changes}.items() if v not in ("", None)}
        return "/?" + urlencode(params)

    ctx["url_with"] = url_with
    ctx["page_url"] = lambda n: url_with(page=n)
    ctx["filtered"] = any((source, category, from_, to, province, doc))
    # Months are offered once the dates are narrowed to one year.
    one_year = from_[:4] if from_[:4] and from_[:4] == to[:4] else ""
    facets = ctx["result"].facets if ctx["result"] else {}
    ctx["months"] = sorted(m for m in facets.get("month", []) if one_year and m[0].startswith(one_year + "-"))
    ctx["month_end"] = _month_end
    ctx["Markup"] = Markup
    return templates.TemplateResponse(request, "search.html", ctx, status_code=status,
                                      headers={"Retry-After": "2"} if status == 503 else None)


@router.get("/articles/{doc_id}", response_class=HTMLResponse, include_in_schema=False)
def article_page(request: Request, doc_id: str, service: Annotated[SearchService, Depends(get_service)],
                 q: str = "") -> HTMLResponse:
    """The stored article in full, the query's words marked, with related articles."""
    view = service.article_view(doc_id, q[:500].replace("\x00", " ")) if service.is_ready() else None
    if view is None:
        return templates.TemplateResponse(request, "notfound.html", {"request": request, "doc_id": doc_id},
                                          status_code=404)
    return templates.TemplateResponse(request, "article.html",
                                      {"request": request, "q": q, "Markup": Markup, **view})
