"""Build, update and delete: the library behind `python -m indexer`.

Segmentation (pyvi) is pure Python, so a build runs Whoosh's multi-process writer: each process
segments its batches and writes segments of its own, with the columnar posting writer of
indexer.whoosh_format (Whoosh's own spends about 1 ms per article on each 100 postings).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from whoosh import index as whoosh_index

from indexer import lexicon, stories
from indexer.acronyms import FILE as ACRONYMS_FILE
from indexer.acronyms import AcronymMiner
from indexer.analysis import load_segmenter
from indexer.backend import BackendSettings, IndexProblem, Report
from indexer.enrich import tags
from indexer.fields import FACET_FIELDS, KINDS, STORED_FIELDS, TAG_FIELDS, TAG_SEPARATOR, TEXT_NAMES, index_field
from indexer.near_duplicates import FORMAT as GROUPING_FORMAT
from indexer.near_duplicates import Deduper
from indexer.readers import Article, ReadResult, expand_sources, iter_articles
from indexer.schema import make_schema
from indexer.store import (
    POINTER,
    PREFIX,
    current_generation,
    generation_folders,
    latest_commit,
    new_generation,
    open_index,
    switch_to,
    writer_lock,
)
from indexer.whoosh_format.segment_writer import FastMpWriter, FastSegmentWriter, FastSubWriter

MANIFEST = "manifest.json"
# Buffered postings of a build (shared by its writer processes) before a process sorts them into a run on
# disk: bounds the RSS of big builds; each process still writes one segment.
WRITER_MB = 256


def document_fields(article: Article, content_hash: str | None = None, schema=None) -> dict:
    """Whoosh add_document keywords for one article; each text feeds its word, syllable and bigram fields.

    With a schema, only its fields: an index built before a field was declared has no place for it.
    """
    doc: dict = {"id": article.id, "content_hash": content_hash or article.content_hash()}
    for name in TEXT_NAMES:
        if text := getattr(article, name):
            doc.update((index_field(name, kind), text) for kind in KINDS)
    for name in (*FACET_FIELDS, *STORED_FIELDS):
        if value := getattr(article, name):
            doc[name] = value
    if article.published:
        doc["published"] = article.published
    if article.views is not None:
        doc["views"] = article.views
    for name, values in tags(article).items():
        if values:
            doc[name] = TAG_SEPARATOR.join(values)
    return doc if schema is None else {k: v for k, v in doc.items() if k in schema}


# A writer process that meets an OSError exits with this plus its errno, so the build can name the cause.
_OSERROR_EXIT_BASE = 100


class _QuietSubWriter(FastSubWriter):
    """A writer process, ending on an OSError (a full disk) with an exit code instead of a traceback."""

    def run(self) -> None:
        """Segment and write as FastSubWriter does; the build reports a failure once, in one line."""
        try:
            super().run()
        except OSError as err:
            sys.exit(_OSERROR_EXIT_BASE + err.errno if err.errno and err.errno < 256 - _OSERROR_EXIT_BASE else 1)


class _BuildWriter(FastMpWriter):
    """The build's multiprocessing writer: its processes exit quietly on a full disk."""

    task_class = _QuietSubWriter

    def process_died(self, task) -> None:
        """Name the OSError a writer process exited with (a full disk), else the exit code."""
        _writer_failure(self)
        raise IndexProblem(f"a writer process ended with exit code {task.exitcode}; the live index is unchanged")


def _writer_failure(writer) -> None:
    """Raise the OSError a writer process of writer exited with, if one did (its documents are missing)."""
    for task in getattr(writer, "tasks", ()):
        code = task.exitcode or 0
        if code > _OSERROR_EXIT_BASE:
            raise OSError(code - _OSERROR_EXIT_BASE, os.strerror(code - _OSERROR_EXIT_BASE))


def _worker_count(workers: int | None) -> int:
    """Writer processes: one per core unless told otherwise."""
    return max(1, workers if workers else (os.cpu_count() or 1))


def _writer(ix, workers: int):
    """A writer; with several workers each process segments its articles and writes segments of its own."""
    if workers <= 1:
        return FastSegmentWriter(ix, limitmb=WRITER_MB)
    load_segmenter()  # loaded once here, shared with the forked writer processes
    return _BuildWriter(ix, procs=workers, batchsize=64, limitmb=WRITER_MB // workers)


def progress_bar(iterable: Iterable, enabled: bool, desc: str) -> Iterable:
    """Wrap with a tqdm bar on a terminal; otherwise return the iterable as is."""
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit=" docs", file=sys.stderr, mininterval=0.5)


def build_index(root: Path, sources: Iterable[str | Path], *, workers: int | None = None,
                progress: bool = False, wait: bool = False) -> Report:
    """Build a fresh index generation from sources and switch to it when it is complete."""
    start = time.perf_counter()
    root = Path(root)
    files = expand_sources(sources)
    report, read = Report(), ReadResult()
    with writer_lock(root, wait=wait):
        live = current_generation(root)
        if live is not None:
            # Rebuilding unchanged input only re-reads it: hashing is cheap, segmentation is not.
            hashed, count = input_hash(files, read)
            if _manifest(live).get("input_hash") == hashed and _opens(root):
                report.unchanged, report.total, report.generation = count, count, live.name
                report.bad = read.bad
                report.seconds = time.perf_counter() - start
                return report
            read = ReadResult()
        gen = new_generation(root)
        try:
            ix = whoosh_index.create_in(str(gen), make_schema())
            writer = _writer(ix, _worker_count(workers))
            seen: set[str] = set()
            repeated: dict[str, Article] = {}
            miner = AcronymMiner()
            grouping = Deduper()
            digest = input_digest()  # the same input hash input_hash computes, in one pass
            try:
                for article in progress_bar(iter_articles(files, read), progress, "indexing"):
                    content_hash = article.content_hash()
                    digest.update(content_hash.encode())
                    miner.add(article.title, article.abstract, article.body)
                    stories.add(grouping, article)
                    if article.id in seen:
                        repeated[article.id] = article  # the later record of a repeated id wins
                        continue
                    seen.add(article.id)
                    writer.add_document(**document_fields(article, content_hash, ix.schema))
                writer.commit()
            except BaseException:
                writer.cancel()
                raise
            _writer_failure(writer)
            if repeated:
                fixer = FastSegmentWriter(ix, limitmb=WRITER_MB)
                for article in repeated.values():
                    fixer.update_document(**document_fields(article, schema=ix.schema))
                fixer.commit()
            miner.save(gen / ACRONYMS_FILE)
            stories.save(grouping, gen, latest_commit(gen))
            lexicon.save(gen, ix)
            (gen / MANIFEST).write_text(json.dumps({"input_hash": digest.hexdigest(), "documents": len(seen)}),
                                        encoding="utf-8")
            report.added, report.replaced = len(seen), len(repeated)
            report.total = ix.doc_count()
            if report.total != len(seen):
                # A writer process that died would lose its documents silently: refuse to switch.
                raise IndexProblem(f"the build wrote {report.total} of {len(seen)} articles; "
                                   "the live index is unchanged")
        except BaseException:
            shutil.rmtree(gen, ignore_errors=True)  # the live generation stays as it was
            raise
        switch_to(root, gen)
    report.bad, report.generation = read.bad, gen.name
    report.seconds = time.perf_counter() - start
    return report


def input_digest():
    """A hash to feed the input's articles into, seeded with what an index holds besides them (fields, tag
    fields, the grouping's format): a rebuild of unchanged input into an index of another make rebuilds."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((TEXT_NAMES, [k.name for k in KINDS], TAG_FIELDS, GROUPING_FORMAT)).encode())
    return digest


def input_hash(files: list[Path], read: ReadResult) -> tuple[str, int]:
    """A hash of every article read from files, in order, and how many there were."""
    digest, count = input_digest(), 0
    for article in iter_articles(files, read):
        digest.update(article.content_hash().encode())
        count += 1
    return digest.hexdigest(), count


def _opens(root: Path) -> bool:
    """True when the live generation can be opened (a damaged one is rebuilt, not kept)."""
    try:
        open_index(root).close()
        return True
    except IndexProblem:
        return False


def _manifest(gen: Path) -> dict:
    """What a build recorded about its input; empty when unknown."""
    try:
        data = json.loads((gen / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def update_index(root: Path, sources: Iterable[str | Path], *, workers: int | None = None,
                 progress: bool = False, wait: bool = False) -> Report:
    """Add or replace articles by id in the live index; unchanged articles are skipped."""
    start = time.perf_counter()
    root = Path(root)
    files = expand_sources(sources)
    if current_generation(root) is None:
        return build_index(root, files, workers=workers, progress=progress, wait=wait)
    report, read = Report(), ReadResult()
    with writer_lock(root, wait=wait):
        ix = open_index(root)
        known = _known_hashes(ix)
        changed = _changed_articles(iter_articles(files, read), known, report)
        writer = FastSegmentWriter(ix, limitmb=WRITER_MB)
        miner = AcronymMiner()
        gen = current_generation(root)
        miner.merge_file(gen / ACRONYMS_FILE)
        grouping = stories.load_state(gen, lambda: stored_articles(ix))
        try:
            for article in progress_bar(changed, progress, "updating"):
                miner.add(article.title, article.abstract, article.body)
                stories.add(grouping, article)
                if article.id in known:
                    report.replaced += 1
                else:
                    report.added += 1
                doc = document_fields(article, schema=ix.schema)
                known[article.id] = doc["content_hash"]
                writer.update_document(**doc)
            writer.commit()
        except BaseException:
            writer.cancel()
            raise
        miner.save(gen / ACRONYMS_FILE)
        if report.added or report.replaced:
            stories.save(grouping, gen, latest_commit(gen))
        lexicon.save(gen, ix)
        report.total = ix.doc_count()
        report.generation = current_generation(root).name
    report.bad = read.bad
    report.seconds = time.perf_counter() - start
    return report


def stored_articles(ix) -> Iterator[Article]:
    """Every live article of an index, as stored (its text fields and date: what the grouping reads)."""
    with ix.searcher() as searcher:
        for stored in searcher.all_stored_fields():
            yield Article(id=stored["id"], title=stored.get("title", ""), abstract=stored.get("abstract", ""),
                          body=stored.get("body", ""), published=stored.get("published"))


def _known_hashes(ix) -> dict[str, str | None]:
    """id -> content hash of every live article, read from the index's columns."""
    known: dict[str, str | None] = {}
    with ix.reader() as reader:
        for leaf, _offset in reader.leaf_readers():
            ids, hashes = leaf.column_reader("id"), leaf.column_reader("content_hash")
            deleted = leaf.deleted_docs_set if leaf.has_deletions() else frozenset()
            for docnum in range(leaf.doc_count_all()):
                if docnum not in deleted:
                    known[ids[docnum]] = hashes[docnum]
    return known


def _changed_articles(articles: Iterable[Article], known: dict[str, str | None],
                      report: Report) -> Iterator[Article]:
    """Articles whose content hash differs from the indexed one; the rest are counted unchanged."""
    for article in articles:
        if known.get(article.id) == article.content_hash():
            report.unchanged += 1
        else:
            yield article


def delete_documents(root: Path, ids: Iterable[str], *, wait: bool = False) -> Report:
    """Delete articles by id from the live index; ids not found are listed in the report."""
    start = time.perf_counter()
    root = Path(root)
    ids = list(ids)
    report = Report()
    with writer_lock(root, wait=wait):
        ix = open_index(root)
        # Our writer, not Whoosh's: small segments merged by the commit keep their flat postings copy.
        writer = FastSegmentWriter(ix, limitmb=WRITER_MB)
        try:
            for doc_id in ids:
                if writer.delete_by_term("id", doc_id):
                    report.deleted += 1
                else:
                    report.missing.append(doc_id)
            writer.commit()
        except BaseException:
            writer.cancel()
            raise
        gen = current_generation(root)
        if report.deleted:
            grouping = stories.load_state(gen, lambda: stored_articles(ix))
            for doc_id in ids:
                if doc_id in grouping:
                    grouping.remove(doc_id)
            stories.save(grouping, gen, latest_commit(gen))
        lexicon.save(gen, ix)
        report.total = ix.doc_count()
        report.generation = gen.name
    report.seconds = time.perf_counter() - start
    return report


def drop_index(root: Path, *, wait: bool = False) -> Report:
    """Remove an index folder's generations and pointer; refuse a folder that holds no tracuu index."""
    start = time.perf_counter()
    root = Path(root)
    if not (root / POINTER).exists() and not generation_folders(root):
        raise IndexProblem(f"{root} holds no tracuu index (no {POINTER} file, no {PREFIX}NNNNNN folder); "
                           "nothing removed")
    report = Report()
    with writer_lock(root, wait=wait):  # listed under the lock: a build that was running has finished
        (root / POINTER).unlink(missing_ok=True)  # readers see an empty index from here on, never half of one
        for gen in generation_folders(root):
            shutil.rmtree(gen, ignore_errors=True)
            if not gen.exists():
                report.dropped.append(gen.name)
        left = [gen.name for gen in generation_folders(root)]
        if left:
            raise IndexProblem(f"could not remove {', '.join(left)} in {root}; the index is no longer served")
    report.seconds = time.perf_counter() - start
    return report


class WhooshWriter:
    """The IndexWriter of the embedded Whoosh index (indexer.backend's contract)."""

    def __init__(self, settings: BackendSettings | None = None):
        self.settings = settings

    def build(self, root: Path, sources: Iterable[str | Path], *, workers: int | None = None,
              progress: bool = False, wait: bool = False) -> Report:
        """A fresh generation from sources, made live once complete."""
        return build_index(root, sources, workers=workers, progress=progress, wait=wait)

    def update(self, root: Path, sources: Iterable[str | Path], *, workers: int | None = None,
               progress: bool = False, wait: bool = False) -> Report:
        """Add or replace articles by id in the live generation."""
        return update_index(root, sources, workers=workers, progress=progress, wait=wait)

    def delete(self, root: Path, ids: Iterable[str], *, wait: bool = False) -> Report:
        """Delete articles by id from the live generation."""
        return delete_documents(root, ids, wait=wait)

    def drop(self, root: Path, *, wait: bool = False) -> Report:
        """Remove the generations and the pointer."""
        return drop_index(root, wait=wait)

    def drop_orphans(self) -> Report:
        """Nothing to find: a Whoosh index lives in its folder."""
        raise IndexProblem("--orphans is for the Typesense backend (TRACUU_BACKEND=typesense); "
                           "a Whoosh index is dropped with --index DIR")
