"""Command line of the indexer: build, update, delete, drop (the write side)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from indexer import build
from indexer.backend import backend_settings
from indexer.build import Report
from indexer.readers import SourceError
from indexer.store import IndexProblem
from indexer.typesense_docs import TypesenseProblem

EPILOG_BUILD = """example:
  python -m indexer build --index data/index corpus/
  python -m indexer build --index data/index news.jsonl.xz more/ --skip-bad"""
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
    cmd = sub.add_parser("delete", help="delete articles by id", description="delete articles by id",
                         epilog=EPILOG_DELETE, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("--index", required=True, type=Path, metavar="DIR", help="index folder")
    cmd.add_argument("ids", nargs="+", metavar="ID", help="article ids")
    cmd.add_argument("--wait", action="store_true", help="wait for another writer instead of failing")
    cmd.add_argument("--quiet", action="store_true", help="no summary")
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


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors are one clear line on stderr and a non-zero exit."""
    args = _parser().parse_args(argv)
    if getattr(args, "workers", None) is not None and args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    progress = not args.quiet and sys.stderr.isatty()
    try:
        settings = backend_settings()
    except ValidationError as err:
        print(f"error: bad TRACUU_* setting: {err.errors()[0]['loc'][0]}: {err.errors()[0]['msg']}", file=sys.stderr)
        return 2
    ops = build
    if settings.backend == "typesense":
        from indexer import typesense_build as ops
    try:
        if args.command == "build":
            report = ops.build_index(args.index, args.sources, workers=args.workers, progress=progress,
                                     wait=args.wait)
        elif args.command == "update":
            report = ops.update_index(args.index, args.sources, workers=args.workers, progress=progress,
                                      wait=args.wait)
        elif args.command == "delete":
            report = ops.delete_documents(args.index, args.ids, wait=args.wait)
        elif args.orphans:
            if settings.backend != "typesense":
                print("error: --orphans is for the Typesense backend (TRACUU_BACKEND=typesense); "
                      "a Whoosh index is dropped with --index DIR", file=sys.stderr)
                return 2
            report = ops.drop_orphans()
        else:
            report = ops.drop_index(args.index, wait=args.wait)
    except (SourceError, IndexProblem, TypesenseProblem) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a file size limit, a read-only folder
        if args.command == "drop":
            print(f"error: cannot remove the index ({err.strerror or err})", file=sys.stderr)
        else:
            print(f"error: cannot write the index ({err.strerror or err}); the live index is unchanged",
                  file=sys.stderr)
        return 2
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
    if report.bad and not getattr(args, "skip_bad", False):
        return 1
    if report.missing:
        return 1
    return 0
