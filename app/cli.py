"""Command line of the app: serve, search, bulk (the read side; it never writes the index)."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
from datetime import date
from pathlib import Path

from pydantic import ValidationError

from app.bulk_workers import BulkError, BulkPool, default_workers, timeout_message
from app.search import BulkAnswers, Filters, QueryError, SearchService, SearchTimeout, missing_index_message
from app.settings import get_settings
from indexer.backend import IndexMissing, IndexProblem

EPILOG_SERVE = """example:
  python -m app serve --index data/index --port 8000"""
EPILOG_SEARCH = """example:
  python -m app search --index data/index cải cách hành chính
  python -m app search --index data/index --json --limit 3 '"cai cach" -Thái'"""
EPILOG_BULK = """input: one JSON object a line, {"id": ..., "q": ..., "source"?, "category"?, "from"?, "to"?,
"province"?, "doc"?},
or plain lines (one query each, id = line number).
examples:
  printf 'UBND tỉnh\\ncai cach hanh chinh\\n' | python -m app bulk --index data/index --limit 5
  python -m app bulk --index data/index --workers 2 < names.txt > answers.jsonl"""


def _parser() -> argparse.ArgumentParser:
    """The argument parser with serve, search and bulk."""
    defaults = get_settings()
    parser = argparse.ArgumentParser(prog="python -m app", description="Search the tracuu index.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = argparse.RawDescriptionHelpFormatter
    serve = sub.add_parser("serve", help="serve the search page and the JSON API", epilog=EPILOG_SERVE,
                           formatter_class=fmt)
    serve.add_argument("--host", default=defaults.host)
    serve.add_argument("--port", type=int, default=defaults.port)
    search = sub.add_parser("search", help="search from the terminal", epilog=EPILOG_SEARCH, formatter_class=fmt)
    search.add_argument("--limit", type=int, default=10, metavar="N")
    search.add_argument("--json", action="store_true", help="print the result as JSON")
    search.add_argument("--exact-total", action="store_true",
                        help="count every match (otherwise a total past 10,000 is printed as 'hơn 10000')")
    search.add_argument("query", nargs="+", metavar="QUERY")
    bulk = sub.add_parser("bulk", help="answer JSON Lines queries from stdin", epilog=EPILOG_BULK,
                          formatter_class=fmt)
    bulk.add_argument("--limit", type=int, default=10, metavar="N")
    bulk.add_argument("--workers", type=int, default=default_workers(), metavar="N",
                      help="processes a large input is answered by (default: one per core here, "
                           f"{default_workers()}); 1 answers everything in this process")
    for cmd in (search, bulk):
        cmd.add_argument("--timeout-ms", type=int, default=defaults.search_timeout_ms, metavar="MS",
                         help="stop a search (each query of a bulk run) after MS milliseconds; 0 = no bound "
                              f"(default {defaults.search_timeout_ms}, TRACUU_SEARCH_TIMEOUT_MS)")
    for cmd in (serve, search, bulk):
        cmd.add_argument("--index", type=Path, default=defaults.index_dir, metavar="DIR",
                         help=f"index folder (default {defaults.index_dir})")
    return parser


def _date(value: object, lineno: int, key: str) -> date | None:
    """An ISO date from a bulk line; a bad one is a QueryError naming the line."""
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise QueryError(f"line {lineno}: '{key}' is not an ISO date: {value!r}") from None


def read_bulk_line(line: str, lineno: int) -> dict:
    """One bulk query from a JSON object line or a plain text line; raise QueryError if unusable."""
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            record = json.loads(stripped)
        except json.JSONDecodeError as err:
            raise QueryError(f"line {lineno}: bad JSON ({err.msg})") from None
        q = record.get("q")
        if not isinstance(q, str):
            raise QueryError(f"line {lineno}: needs a string field 'q'")
        filters = Filters(record.get("source"), record.get("category"),
                          _date(record.get("from"), lineno, "from"), _date(record.get("to"), lineno, "to"),
                          record.get("province"), record.get("doc"))
        return {"id": record.get("id", lineno), "q": q, "filters": filters, "sort": record.get("sort", "relevance")}
    return {"id": lineno, "q": stripped}


def run_bulk(service: SearchService, lines, out, limit: int, max_query_chars: int | None = None,
             workers: int = 1) -> int:
    """Answer each input line in order; a bad or overlong line gets an error object, the rest go on.

    Lines are taken as they come, as many as are waiting at a time: a large file is answered in batches
    spread over workers processes (app.bulk_workers), a script that writes one line and waits is answered
    line by line. Returns the number of lines answered with an error.
    """
    errors = 0
    answered = BulkAnswers()  # a question asked again (same filters, same index version) is not searched again
    with BulkPool(service, workers) as pool:
        for batch in _waiting_lines(lines):
            parsed: list[tuple[int, dict | BulkError]] = []
            for lineno, line in batch:
                if not line.strip():
                    continue
                try:
                    item = read_bulk_line(line, lineno)
                    if max_query_chars is not None and len(item["q"]) > max_query_chars:
                        raise QueryError(f"line {lineno}: the query is longer than {max_query_chars} characters"
                                         " (TRACUU_MAX_QUERY_CHARS)")
                    parsed.append((lineno, item))
                except QueryError as err:
                    parsed.append((lineno, BulkError(str(err))))
            answers = iter(pool.answer([item for _, item in parsed if isinstance(item, dict)], limit, answered))
            for lineno, item in parsed:
                result = item if isinstance(item, BulkError) else next(answers)
                if isinstance(result, BulkError):
                    errors += 1
                    message = f"line {lineno}: {result.message}" if result.timeout else result.message
                    print(f"bulk: {message}", file=sys.stderr)
                    result = {"id": lineno, "total": 0, "total_relation": "eq", "hits": [], "error": message}
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
            out.flush()
    return errors


def _waiting_lines(lines, most: int = 2000):
    """(line number, line) lists: each the next line and whatever others have already arrived (up to most).

    A thread reads ahead, so a file comes in large batches and a pipe that sends one line and waits for its
    answer gets it at once.
    """
    waiting: queue.Queue = queue.Queue(maxsize=4 * most)
    end = object()

    def read() -> None:
        try:
            for numbered in enumerate(lines, 1):
                waiting.put(numbered)
        except BaseException as err:  # noqa: BLE001 - handed to the reading side, which raises it
            waiting.put(err)
        waiting.put(end)

    threading.Thread(target=read, name="bulk-stdin", daemon=True).start()
    while True:
        first = waiting.get()
        batch = []
        while True:
            if first is end or isinstance(first, BaseException):
                if batch:
                    yield batch
                if isinstance(first, BaseException):
                    raise first
                return
            batch.append(first)
            if len(batch) >= most:
                break
            try:
                first = waiting.get_nowait()
            except queue.Empty:
                break
        yield batch


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors are one clear line on stderr and a non-zero exit."""
    try:
        get_settings()
    except ValidationError as err:
        first = err.errors()[0]
        print(f"error: bad TRACUU_* setting: {first['loc'][0]}: {first['msg']}", file=sys.stderr)
        return 2
    args = _parser().parse_args(argv)
    if getattr(args, "limit", 1) < 0:
        print("error: --limit must be 0 or more", file=sys.stderr)
        return 2
    if getattr(args, "workers", 1) < 1:
        print("error: --workers must be 1 or more", file=sys.stderr)
        return 2
    if args.command == "serve":
        import uvicorn

        from app.main import create_app

        settings = get_settings().model_copy(update={"index_dir": args.index})
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
        return 0
    try:
        service = SearchService(args.index, settings=get_settings())
        try:
            service.snapshot()
        except IndexMissing:
            raise IndexMissing(missing_index_message(args.index)) from None
        if args.timeout_ms > 0:
            # The clock is for the searches: one-time loads (pyvi, the vocabulary) happen before it starts.
            service.warm_up()
            service.timeout_s = args.timeout_ms / 1000
        max_chars = get_settings().max_query_chars
        if args.command == "search":
            # Bytes that are not UTF-8 reach argv as surrogates; read them as U+FFFD, as HTTP does.
            q = " ".join(args.query).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            return _search(service, q, args.limit, args.json, max_chars, args.exact_total)
        stdin = open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False)
        with service.batch():  # one look for a new index version a second, not one a line
            return 1 if run_bulk(service, stdin, sys.stdout, args.limit, max_chars, args.workers) else 0
    except (IndexProblem, QueryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: the answers written so far stay, no traceback
        print("interrupted", file=sys.stderr)
        return 130


def _search(service: SearchService, q: str, limit: int, as_json: bool, max_chars: int,
            exact_total: bool = False) -> int:
    """Print one search's results, as text or JSON."""
    if not q.strip():
        print("error: empty query", file=sys.stderr)
        return 2
    if len(q) > max_chars:
        print(f"error: the query is longer than {max_chars} characters (TRACUU_MAX_QUERY_CHARS)", file=sys.stderr)
        return 2
    try:
        result = service.search(q, limit=limit, collapse=True, exact_total=exact_total)
    except SearchTimeout:
        print(f"error: {timeout_message(service)}", file=sys.stderr)
        return 2
    if as_json:
        from dataclasses import asdict

        print(json.dumps(asdict(result), ensure_ascii=False, indent=1))
        return 0
    more = "hơn " if result.total_relation == "gte" else ""
    print(f"{more}{result.total} kết quả ({result.took_ms:.1f} ms)")
    for n, hit in enumerate(result.hits, 1):
        plain = hit.snippet.replace("<mark>", "\x1b[1m").replace("</mark>", "\x1b[0m") if sys.stdout.isatty() \
            else hit.snippet.replace("<mark>", "").replace("</mark>", "")
        import html

        print(f"{n}. {hit.title}  [{hit.id}] {hit.published or ''}\n   {html.unescape(plain)}\n")
    return 0
