"""Write operations over HTTP, for a bearer-token holder: put or delete one article.

The service never writes the index itself: it hands the article to the indexer (`python -m
indexer update|delete --wait`), the one writer, and answers once that has committed, so an
acknowledged write is on disk.
"""

from __future__ import annotations

import hmac
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException
from pydantic import BaseModel, Field

from app.deps import get_app_settings
from app.settings import Settings

router = APIRouter()
WRITE_TIMEOUT_S = 120


class ArticleIn(BaseModel):
    """An article as PUT: the same fields as a JSON Lines record (the id comes from the URL)."""

    title: str = Field(default="", max_length=2_000)
    body: str = Field(max_length=500_000)
    abstract: str = Field(default="", max_length=20_000)
    published: str | None = None
    source: str = Field(default="", max_length=200)
    url: str = Field(default="", max_length=2_000)
    author: str = Field(default="", max_length=200)
    category: str = Field(default="", max_length=200)


async def require_token(settings: Annotated[Settings, Depends(get_app_settings)],
                  authorization: Annotated[str | None, Header()] = None) -> Settings:
    """Allow the request only with the configured bearer token; without one, writes are off (a coroutine:
    it never blocks)."""
    if not settings.write_token:
        raise HTTPException(403, "writes are disabled: set TRACUU_WRITE_TOKEN to enable them"
                                 " / chức năng ghi đang tắt: đặt TRACUU_WRITE_TOKEN để bật")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), settings.write_token.encode()):
        raise HTTPException(401, "a valid bearer token is required / cần mã xác thực (bearer token) hợp lệ",
                            headers={"WWW-Authenticate": "Bearer"})
    return settings


def _indexer_env(settings: Settings) -> dict[str, str]:
    """The environment of the indexer: the service's backend, whatever the service's own environment says."""
    return {**os.environ, "TRACUU_BACKEND": settings.backend, "TRACUU_TYPESENSE_NODES": settings.typesense_nodes,
            "TRACUU_TYPESENSE_API_KEY": settings.typesense_api_key}


def _run_indexer(settings: Settings, *args: str) -> dict:
    """Run one indexer command against the service's index and return its JSON outcome; 503 when it
    cannot finish or gave none."""
    cmd = [sys.executable, "-m", "indexer", args[0], "--index", str(settings.index_dir), "--wait", "--quiet",
           "--json", *args[1:]]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=WRITE_TIMEOUT_S,
                              env=_indexer_env(settings))
    except subprocess.TimeoutExpired:
        raise HTTPException(503, "the index is busy; the write was not applied, try again"
                                 " / chỉ mục đang bận, chưa ghi được; hãy thử lại") from None
    try:
        outcome = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        outcome = None
    if not isinstance(outcome, dict):  # the indexer died before it could say anything
        raise HTTPException(503, "the write could not be applied; try again / chưa ghi được, hãy thử lại")
    return outcome


@router.put("/api/documents/{doc_id}", summary="Add or replace one article (bearer token)")
def put_document(doc_id: str, article: ArticleIn,
                 settings: Annotated[Settings, Depends(require_token)]) -> dict:
    """Index the article under doc_id; answers after the index has committed it."""
    if not doc_id.strip() or len(doc_id) > 500:
        raise HTTPException(422, "the id must be 1 to 500 characters / mã bài viết phải dài từ 1 đến 500 ký tự")
    if not article.body.strip() and not article.title.strip():
        raise HTTPException(422, "an article needs a body or a title / bài viết cần có nội dung hoặc tiêu đề")
    record = {"id": doc_id, **article.model_dump()}
    with tempfile.TemporaryDirectory(prefix="tracuu-put-") as tmp:
        path = Path(tmp) / "article.jsonl"
        path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
        outcome = _run_indexer(settings, "update", str(path))
    if outcome.get("bad"):  # the record's own complaint: "'published' must be an ISO date ..."
        reason = outcome["bad"][0].get("reason", "invalid article")
        raise HTTPException(422, f"the article was not indexed: {reason} / bài viết chưa được ghi vào chỉ mục "
                                 "vì dữ liệu không hợp lệ")
    if "error" in outcome:
        reason = str(outcome["error"]).replace(str(settings.index_dir), "index")
        raise HTTPException(503, f"the article was not indexed: {reason} / bài viết chưa được ghi vào chỉ mục")
    return {"id": doc_id, "status": "indexed"}


@router.delete("/api/documents/{doc_id}", summary="Delete one article (bearer token)")
def delete_document(doc_id: str, settings: Annotated[Settings, Depends(require_token)]) -> dict:
    """Remove the article; 404 when there is none with that id."""
    outcome = _run_indexer(settings, "delete", "--", doc_id)  # "--": an id may start with "-"
    if doc_id in outcome.get("missing", ()):
        raise HTTPException(404, f"no article with id {doc_id!r} / không có bài viết mã {doc_id!r}")
    if "error" in outcome:
        raise HTTPException(503, "the delete could not be applied; try again / chưa xoá được, hãy thử lại")
    return {"id": doc_id, "status": "deleted"}
