"""Atom feed of any search, newest first, so people can follow a topic in a feed reader."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from app.deps import get_app_settings, get_service
from app.routes.api import check_query
from app.search import Filters, QueryError, SearchService
from app.settings import Settings

router = APIRouter()
FEED_SIZE = 20
_TAGS = re.compile(r"</?mark>")


@router.get("/feed", summary="Atom feed of a search (newest first)")
def feed(request: Request, service: Annotated[SearchService, Depends(get_service)],
         settings: Annotated[Settings, Depends(get_app_settings)], q: str,
         source: str | None = None, category: str | None = None,
         province: Annotated[str | None, Query(max_length=100)] = None,
         doc: Annotated[str | None, Query(max_length=120)] = None) -> Response:
    """An Atom 1.0 document with the newest articles matching q."""
    check_query(q, settings)
    if not service.is_ready():
        raise HTTPException(503, "the index is empty: build it with `python -m indexer build`"
                                 " / chỉ mục đang trống: hãy tạo bằng `python -m indexer build`")
    try:
        result = service.search(q, limit=FEED_SIZE, sort="newest", collapse=True,
                                filters=Filters(source, category, province=province, document=doc))
    except QueryError as err:
        raise HTTPException(422, str(err)) from None
    base = str(request.base_url).rstrip("/")
    now = datetime.now(UTC).isoformat(timespec="seconds")
    newest = next((h.published for h in result.hits if h.published), None)
    entries = []
    for hit in result.hits:
        link = hit.url if hit.url and hit.url.startswith(("http://", "https://")) else \
            f"{base}/articles/{quote(hit.id, safe='')}"
        updated = (hit.published + "+07:00") if hit.published and len(hit.published) > 10 else now
        summary = html.unescape(_TAGS.sub("", hit.snippet))
        entries.append(
            "<entry>"
            f"<id>{escape('urn:tracuu:' + hit.id)}</id>"
            f"<title>{escape(hit.title or hit.id)}</title>"
            f"<link href={quoteattr(link)}/>"
            f"<updated>{escape(updated)}</updated>"
            f"<summary>{escape(summary)}</summary>"
            "</entry>")
    self_link = f"{base}/feed?q={quote(q)}"
    body = ('<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<id>{escape(self_link)}</id><title>{escape('tracuu: ' + q)}</title>"
            f"<link rel=\"self\" href={quoteattr(self_link)}/>"
            f"<link href={quoteattr(base + '/?q=' + quote(q))}/>"
            f"<updated>{escape((newest + '+07:00') if newest and len(newest) > 10 else now)}</updated>"
            + "".join(entries) + "</feed>")
    return Response(body, media_type="application/atom+xml; charset=utf-8")
