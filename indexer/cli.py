"""Command line of the indexer: build, update, delete, drop, crawl (the write side)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from pydantic import ValidationError

from indexer.backend import IndexBusy, IndexMissing, IndexProblem, Report, backend_settings, index_writer
from indexer.readers import SourceError

EPILOG_BUILD = """example:
  python -m indexer build --index data/index corpus/
  python -m indexer build --index data/index news.jsonl.xz more/ --skip-bad
  python -m indexer build --index data/index corpus/ --json     # the outcome as one JSON object on stdout

exit status: 0 done; 1 done, but malformed records were skipped (without --skip-bad) or ids were not found;
2 nothing changed (bad arguments or setting, unreadable source, busy or broken index, full disk)."""
JSON_HELP = ("print the outcome as one JSON object on stdout: the report (added, replaced, unchanged, deleted, "
             "missing, bad, total, ...) or {\"error\": MESSAGE, \"kind\": busy|missing|index|source|disk}")
EPILOG_UPDATE = """example:
  python -m indexer update --index data/index new-articles.jsonl"""
EPILOG_DELETE = """example:
  python -m indexer delete --index data/index 000_c148fd66da705f65 vietnews-val-000001"""
EPILOG_DROP = """examples:
  python -m indexer drop --index data/index
  TRACUU_BACKEND=typesense python -m indexer drop --orphans   # collections of index folders since deleted"""
EPILOG_CRAWL = """examples:
  python -m indexer crawl --index data/index https://example.org/rss/tin-tuc.rss
  python -m indexer crawl --index data/index --since 2024-03-01 --max-pages 500 https://example.org/sitemap.xml
  python -m indexer crawl --index data/index --save data/crawled https://example.org/tin-tuc/bai-viet-123.html
  python -m indexer build --index data/index data/crawled/     # the same articles, rebuilt offline

Each URL is a feed (RSS 0.9x-2.0, Atom), a sitemap or sitemap index, or an article page. Pages are fetched
one at a time per host, as robots.txt allows, with conditional requests; the ETag, Last-Modified and
content hash of each page are kept in DIR/crawl-state.json, so that a crawl of an unchanged site leaves
the index as it was. Articles are indexed by an id made from their URL (added, or replaced when changed).

exit status: 0 done; 1 done, but some pages failed (an HTTP error, a timeout, too large); 2 nothing changed
(bad arguments or setting, busy or broken index, full disk); 130 interrupted (the live index is unchanged)."""
CRAWL_JSON_HELP = ("print the outcome as one JSON object on stdout: fetched, new, changed, unchanged, skipped, "
                   "skipped_by_reason, skipped_pages, index (the writer's report, or null when the index was not "
                   "touched), ... or {\"error\": MESSAGE, \"kind\": usage|busy|missing|index|disk}")


def _parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per write operation."""
    parser = argparse.ArgumentParser(prog="python -m indexer",
                                     description="Build and maintain the tracuu search index.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, helptext, epilog in (
        ("build", "build a fresh index from files or folders", EPILOG_BUILD),
        ("update", "add or replace articles by id", EPILOG_UPDATE),
    ):
        cmd = sub.add_parser(name, help=helptext, description=helptext, epilog=epilog,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        cmd.add_argument("--index", required=True, type=Path, metavar="DIR", help="index folder")
        cmd.add_argument("sources", nargs="+", metavar="SOURCE",
                         help="JSON Lines files (.jsonl, .jsonl.gz, .jsonl.xz), portal pages (.txt) or folders")
        cmd.add_argument("--skip-bad", action="store_true",
                         help="exit 0 even when malformed records were skipped")
        cmd.add_argument("--workers", type=int, default=None, metavar="N",
                         help="segmentation processes (default: one per core)")
        cmd.add_argument("--wait", action="store_true", help="wait for another writer instead of failing")
        cmd.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
        cmd.add_argument("--json", action="store_true", help=JSON_HELP)
    cmd = sub.add_parser("delete", help="delete articles by id", description="delete articles by id",
                         epilog=EPILOG_DELETE, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("--index", required=True, type=Path, metavar="DIR", help="index folder")
    cmd.add_argument("ids", nargs="+", metavar="ID", help="article ids")
    cmd.add_argument("--wait", action="store_true", help="wait for another writer instead of failing")
    cmd.add_argument("--quiet", action="store_true", help="no summary")
    cmd.add_argument("--json", action="store_true", help=JSON_HELP)
    drop_help = "remove an index: its generations (Whoosh) or its collections (Typesense)"
    cmd = sub.add_parser("drop", help=drop_help, description=drop_help + ". A folder that holds no index is "
                         "refused; files of your own in it are never touched.", epilog=EPILOG_DROP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    target = cmd.add_mutually_exclusive_group(required=True)
    target.add_argument("--index", type=Path, metavar="DIR", help="index folder")
    target.add_argument("--orphans", action="store_true",
                        help="Typesense only: drop the collections built on this host whose index folder is gone")
    cmd.add_argument("--wait", action="store_true", help="wait for another writer instead of failing")
    cmd.add_argument("--quiet", action="store_true", help="no summary")
    cmd.add_argument("--json", action="store_true", help=JSON_HELP)
    _add_crawl(sub)
    return parser


def _iso_date(value: str) -> date:
    """An argument that must be an ISO date."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {value!r}") from None


def _add_crawl(sub) -> None:
    """The crawl sub-command: feeds, sitemaps and pages of web sites into the index."""
    crawl_help = "fetch feeds, sitemaps and article pages of web sites into the index"
    cmd = sub.add_parser("crawl", help=crawl_help, description=crawl_help, epilog=EPILOG_CRAWL,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("--index", required=True, type=Path, metavar="DIR", help="index folder")
    cmd.add_argument("urls", nargs="+", metavar="URL", help="feeds, sitemaps or article pages (http or https)")
    cmd.add_argument("--max-pages", type=int, default=None, metavar="N", help="fetch at most N article pages")
    cmd.add_argument("--delay", type=float, default=1.0, metavar="S",
                     help="seconds between two requests to one host (default 1; a site's Crawl-delay may ask "
                          "for more)")
    cmd.add_argument("--since", type=_iso_date, default=None, metavar="DATE",
                     help="leave out articles published before DATE (YYYY-MM-DD); undated ones are kept")
    cmd.add_argument("--follow-hosts", action="store_true",
                     help="follow links of feeds and sitemaps to other hosts too (default: the same host only)")
    cmd.add_argument("--save", type=Path, default=None, metavar="DIR",
                     help="also write the articles fetched to DIR/crawl-TIME.jsonl (what `build` reads)")
    cmd.add_argument("--timeout", type=float, default=20.0, metavar="S",
                     help="seconds to wait for a server's answer (default 20)")
    cmd.add_argument("--workers", type=int, default=None, metavar="N",
                     help="segmentation processes for the update (default: one per core)")
    cmd.add_argument("--wait", action="store_true",
                     help="wait for another crawl or writer instead of failing")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    cmd.add_argument("--json", action="store_true", help=CRAWL_JSON_HELP)


def _crawl(args, settings) -> int:
    """Run a crawl and report it: failed pages and the summary on stderr, JSON on stdout when asked."""
    if args.max_pages is not None and args.max_pages < 1:
        return _fail(args, "usage", "--max-pages must be at least 1")
    if args.delay < 0 or args.timeout <= 0:
        return _fail(args, "usage", "--delay must be 0 or more and --timeout more than 0")
    from indexer.crawl import CrawlOptions, crawl

    options = CrawlOptions(index=args.index, urls=args.urls, max_pages=args.max_pages, delay=args.delay,
                           since=args.since, follow_hosts=args.follow_hosts, save=args.save, timeout=args.timeout,
                           workers=args.workers, wait=args.wait, progress=_progress(args))
    try:
        result = crawl(options, settings)
    except ValueError as err:
        return _fail(args, "usage", str(err))
    except IndexBusy as err:
        return _fail(args, "busy", str(err))
    except IndexMissing as err:
        return _fail(args, "missing", str(err))
    except IndexProblem as err:
        return _fail(args, "index", str(err))
    except OSError as err:
        return _fail(args, "disk", f"cannot write the index or the crawl state ({err.strerror or err}); "
                                   "the live index is unchanged")
    except KeyboardInterrupt:
        print("interrupted: the live index is unchanged", file=sys.stderr)
        return 130
    failed = [skip for skip in result.skipped_pages if skip.failure]
    for skip in failed[:50]:
        print(f"failed {skip.url}: {skip.reason}", file=sys.stderr)
    if result.failures > len(failed[:50]):
        print(f"... and {result.failures - len(failed[:50])} more failed pages", file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not args.quiet:
        print(result.summary(), file=sys.stderr)
    if args.json:
        print(result.to_json())
    return 1 if result.failures else 0


def _summary(command: str, report: Report) -> str:
    """One line for people: what changed, what was skipped, how long it took."""
    if command == "delete":
        text = f"deleted {report.deleted}, not found {len(report.missing)}"
    elif command == "drop":
        return f"drop: removed {len(report.dropped)} ({', '.join(report.dropped) or 'nothing'}); {report.seconds:.2f} s"
    else:
        text = f"documents {report.added + report.replaced} (new {report.added}, replaced {report.replaced}"
        text += f", unchanged {report.unchanged}), skipped {report.skipped}"
    return f"{command}: {text}; index holds {report.total}; {report.seconds:.2f} s"


def _fail(args, kind: str, message: str) -> int:
    """Report an operation that changed nothing: a line on stderr, and JSON on stdout when asked."""
    print(f"error: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"error": message, "kind": kind}, ensure_ascii=False))
    return 2


def _run(args, settings) -> Report:
    """Carry out the command with the configured backend's writer."""
    writer = index_writer(settings)
    if args.command == "build":
        return writer.build(args.index, args.sources, workers=args.workers, progress=_progress(args), wait=args.wait)
    if args.command == "update":
        return writer.update(args.index, args.sources, workers=args.workers, progress=_progress(args),
                             wait=args.wait)
    if args.command == "delete":
        return writer.delete(args.index, args.ids, wait=args.wait)
    if args.orphans:
        return writer.drop_orphans()
    return writer.drop(args.index, wait=args.wait)


def _progress(args) -> bool:
    """A progress bar only for a person at a terminal."""
    return not args.quiet and not args.json and sys.stderr.isatty()


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors are one clear line on stderr and a non-zero exit."""
    args = _parser().parse_args(argv)
    if getattr(args, "workers", None) is not None and args.workers < 1:
        return _fail(args, "usage", "--workers must be at least 1")
    try:
        settings = backend_settings()
    except ValidationError as err:
        return _fail(args, "usage", f"bad TRACUU_* setting: {err.errors()[0]['loc'][0]}: {err.errors()[0]['msg']}")
    if args.command == "crawl":
        return _crawl(args, settings)
    try:
        report = _run(args, settings)
    except IndexBusy as err:
        return _fail(args, "busy", str(err))
    except IndexMissing as err:
        return _fail(args, "missing", str(err))
    except SourceError as err:
        return _fail(args, "source", str(err))
    except IndexProblem as err:
        return _fail(args, "index", str(err))
    except OSError as err:  # a full disk, a file size limit, a read-only folder
        if args.command == "drop":
            return _fail(args, "disk", f"cannot remove the index ({err.strerror or err})")
        return _fail(args, "disk", f"cannot write the index ({err.strerror or err}); the live index is unchanged")
    except KeyboardInterrupt:
        print("interrupted: the live index is unchanged", file=sys.stderr)
        return 130
    for bad in report.bad[:50]:
        print(f"skipped {bad}", file=sys.stderr)
    if len(report.bad) > 50:
        print(f"... and {len(report.bad) - 50} more skipped records", file=sys.stderr)
    for doc_id in report.missing:
        print(f"not found: {doc_id}", file=sys.stderr)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not args.quiet:
        print(_summary(args.command, report), file=sys.stderr)
    if args.json:
        print(report.to_json())
    if report.bad and not getattr(args, "skip_bad", False):
        return 1
    if report.missing:
        return 1
    return 0
