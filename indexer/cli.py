"""Command line of the indexer: build, update, delete, drop (the write side)."""

from __future__ import annotations

import argparse
import json
import sys
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
    return parser


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
