"""The FastAPI application: routes, error handling and response headers."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.bulk_workers import BulkPool
from app.limits import Admission, RateLimiter, retry_after
from app.routes import api, feed, pages, writes
from app.search import SearchService
from app.settings import Settings, get_settings
from indexer.backend import IndexMissing, IndexProblem, SearchTimeout

STATIC_DIR = Path(__file__).parent / "static"
TIMEOUT_RETRY_AFTER_S = 2

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
_NOSNIFF = (("X-Content-Type-Options", "nosniff"),)


# Vietnamese for the pydantic error types this API can meet; any other type gets a general phrase.
_VALIDATION_VI = {
    "missing": "thiếu giá trị",
    "int_parsing": "phải là số nguyên", "int_type": "phải là số nguyên", "int_from_float": "phải là số nguyên",
    "greater_than_equal": "phải lớn hơn hoặc bằng {ge}", "less_than_equal": "phải nhỏ hơn hoặc bằng {le}",
    "greater_than": "phải lớn hơn {gt}", "less_than": "phải nhỏ hơn {lt}",
    "literal_error": "phải là một trong các giá trị {expected}",
    "date_parsing": "phải là ngày dạng 2024-03-18", "date_from_datetime_parsing": "phải là ngày dạng 2024-03-18",
    "date_from_datetime_inexact": "phải là ngày dạng 2024-03-18", "date_type": "phải là ngày dạng 2024-03-18",
    "string_too_long": "dài quá {max_length} ký tự", "string_type": "phải là chuỗi ký tự",
    "string_unicode": "không phải văn bản Unicode hợp lệ", "json_invalid": "JSON không hợp lệ",
    "json_type": "JSON không hợp lệ", "model_attributes_type": "phải là một đối tượng JSON",
    "dict_type": "phải là một đối tượng JSON", "model_type": "phải là một đối tượng JSON",
    "list_type": "phải là một danh sách", "nul_character": "chứa ký tự NUL",
}
# The English details that routing and body parsing raise themselves, with their Vietnamese.
_HTTP_VI = {
    "Not Found": "not found / không tìm thấy",
    "Method Not Allowed": "method not allowed / phương thức này không được hỗ trợ",
    "There was an error parsing the body": "the request body could not be read / không đọc được nội dung yêu cầu",
}


def _validation_message(exc: RequestValidationError) -> str:
    """One readable sentence from pydantic's error list, in English then Vietnamese."""
    english, vietnamese = [], []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
        ctx = {k: str(v).replace(" or ", " hoặc ") for k, v in (err.get("ctx") or {}).items()}
        try:
            vi = _VALIDATION_VI.get(err.get("type", ""), "giá trị không hợp lệ").format(**ctx)
        except (KeyError, IndexError):
            vi = "giá trị không hợp lệ"
        english.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", "invalid"))
        vietnamese.append(f"{where}: {vi}" if where else vi)
    return f"invalid request: {'; '.join(english)} / yêu cầu không hợp lệ: {'; '.join(vietnamese)}"


# For any other English-only detail: what the status means, in Vietnamese.
_STATUS_VI = {400: "yêu cầu không hợp lệ", 401: "cần xác thực", 403: "không được phép", 404: "không tìm thấy",
              405: "phương thức này không được hỗ trợ", 413: "yêu cầu quá lớn", 422: "yêu cầu không hợp lệ",
              429: "quá nhiều yêu cầu", 503: "máy chủ tạm thời chưa phục vụ được"}


def _bilingual(status: int, detail: object) -> object:
    """A detail in both languages: those of routing and body parsing are English only."""
    if not isinstance(detail, str) or " / " in detail:
        return detail
    if detail in _HTTP_VI:
        return _HTTP_VI[detail]
    return f"{detail} / {_STATUS_VI.get(status, 'lỗi máy chủ' if status >= 500 else 'yêu cầu không hợp lệ')}"


def body_too_large(limit: int) -> str:
    """The 413 detail for a body over limit bytes."""
    return f"request body larger than {limit} bytes / nội dung yêu cầu lớn hơn {limit} byte"


class BodyLimit:
    """Count a request body's bytes as they arrive: a chunked upload has no Content-Length to refuse early."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with a receive that raises 413 once the body outgrows the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # FastAPI re-raises an HTTPException met while reading the body; the handler answers it.
                    raise HTTPException(413, body_too_large(self.limit))
            return message

        await self.app(scope, counted, send)


class LimitsAndHeaders:
    """Shed floods and oversized bodies before any work; add security headers to every answer.

    Plain ASGI: Starlette's @app.middleware("http") runs each request through a task group and memory
    streams, a millisecond of a 5 ms search.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        self.admission = Admission(settings.max_in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413/429/503 at once, or pass the request on; either way with the security headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        own_scripts = not scope["path"].startswith(("/docs", "/redoc"))  # Swagger's own page needs its scripts

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in (SECURITY_HEADERS.items() if own_scripts else _NOSNIFF):
                    headers.setdefault(name, value)
            await send(message)

        refusal = self._refuse(scope)
        if refusal is None and not self.admission.try_enter():
            refusal = JSONResponse({"detail": "server busy, try again shortly / máy chủ đang bận"},
                                   status_code=503, headers={"Retry-After": "1"})
        if refusal is not None:
            await refusal(scope, receive, with_headers)
            return
        try:
            await self.app(scope, receive, with_headers)
        finally:
            self.admission.leave()

    def _refuse(self, scope: Scope) -> JSONResponse | None:
        """A 413 or 429 answer when the request must not run, else None."""
        limit = self.settings.max_bulk_bytes
        length = Headers(scope=scope).get("content-length")
        if length and length.isdigit() and int(length) > limit:
            return JSONResponse({"detail": body_too_large(limit)}, status_code=413)
        path = scope["path"]
        if path == "/" or path.startswith(("/api/search", "/feed")):
            cost = 1.0 + (int(length) / 20_000 if path.endswith("/bulk") and length and length.isdigit() else 0)
            client = scope.get("client")
            wait = self.limiter.take(client[0] if client else "?", cost)
            if wait:
                return JSONResponse({"detail": "too many requests / quá nhiều yêu cầu"}, status_code=429,
                                    headers={"Retry-After": retry_after(wait)})
        return None


# Bulk worker processes of the server stop after this long without a large bulk request (their caches with them).
BULK_WORKERS_IDLE_S = 60.0


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app around one search service over settings.index_dir."""
    settings = settings or get_settings()
    service = SearchService(settings.index_dir, settings=settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Warm the engine in the background: the server answers at once, the first query is fast.
        threading.Thread(target=service.warm_up, name="warm-up", daemon=True).start()
        yield
        app.state.bulk_pool.close()

    app = FastAPI(title="tracuu", description="Tìm kiếm tin tức hành chính công tiếng Việt", version="0.1.0",
                  lifespan=lifespan)
    app.state.settings = settings
    app.state.service = service
    # Large bulk requests are spread over worker processes, kept while bulk requests keep coming.
    app.state.bulk_pool = BulkPool(service, settings.bulk_workers or None, idle_s=BULK_WORKERS_IDLE_S)
    # Every search of this app (API, bulk per query, feed, page) stops with SearchTimeout past this.
    service.timeout_s = settings.search_timeout_ms / 1000 or None
    app.add_middleware(BodyLimit, limit=settings.max_bulk_bytes)

    app.add_middleware(LimitsAndHeaders, settings=settings)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(IndexMissing)
    async def on_missing(request: Request, exc: IndexMissing) -> JSONResponse:
        return JSONResponse({"detail": "the index is empty: build it with `python -m indexer build`"
                                       " / chỉ mục đang trống: hãy tạo bằng `python -m indexer build`"},
                            status_code=503)

    @app.exception_handler(IndexProblem)
    async def on_index_problem(request: Request, exc: IndexProblem) -> JSONResponse:
        return JSONResponse({"detail": "the index cannot be read right now; it needs a rebuild"
                                       " / hiện không đọc được chỉ mục; cần tạo lại chỉ mục"}, status_code=503)

    @app.exception_handler(SearchTimeout)
    async def on_timeout(request: Request, exc: SearchTimeout) -> JSONResponse:
        # The search stopped itself (the backends check its deadline): no thread keeps working on it.
        seconds = f"{settings.search_timeout_ms / 1000:g}"
        which = f" {exc.query_id!r}" if exc.query_id is not None else ""
        return JSONResponse({"detail": f"the search{which} took longer than {seconds} s and was stopped;"
                                       f" try again shortly / tìm kiếm{which} quá {seconds} giây nên đã dừng,"
                                       " hãy thử lại sau"},
                            status_code=503, headers={"Retry-After": retry_after(TIMEOUT_RETRY_AFTER_S)})

    @app.exception_handler(Exception)
    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        # Never a stack trace or a file path in an answer.
        return JSONResponse({"detail": "internal error / lỗi máy chủ"}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": _bilingual(exc.status_code, exc.detail)}, status_code=exc.status_code,
                            headers=exc.headers)

    app.include_router(api.router)
    app.include_router(feed.router)
    app.include_router(writes.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
