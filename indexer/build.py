"""Build, update and delete: the library behind `python -m indexer`.

Segmentation (pyvi) is the slow part, so articles are analysed in worker processes and the
single Whoosh writer only replays their tokens.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from whoosh import index as whoosh_index

from indexer.analysis import Preanalysed, analyse
from indexer.readers import Article, BadRecord, ReadResult, expand_sources, iter_articles
from indexer.schema import BIGRAM_SUFFIX, SYLLABLE_SUFFIX, TEXT_FIELDS, make_schema
from indexer.store import (
    current_generation,
    new_generation,
    open_index,
    switch_to,
    writer_lock,
)

WRITER_MB = 256  # Whoosh's in-memory pool before it spills a segment; bounded RSS on big builds


@dataclass
class Report:
    """What a write operation did, for the summary line and for scripts."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    deleted: int = 0
    missing: list[str] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)
    seconds: float = 0.0
    total: int = 0
    generation: str = ""

    @property
    def skipped(self) -> int:
        return len(self.bad)


def document_fields(article: Article) -> dict:
    """Whoosh add_document keywords for one article, with its text analysed here."""
    doc: dict = {"id": article.id, "content_hash": article.content_hash()}
    for name in TEXT_FIELDS:
        text = getattr(article, name)
        if not text:
            continue
        analysed = analyse(text)
        doc[name] = Preanalysed(analysed.word_tokens())
        doc["_stored_" + name] = text
        doc[name + SYLLABLE_SUFFIX] = Preanalysed(analysed.syllable_tokens())
        doc[name + BIGRAM_SUFFIX] = Preanalysed(analysed.bigram_tokens())
    for name in ("source", "category", "url", "author"):
        if value := getattr(article, name):
            doc[name] = value
    if article.published:
        doc["published"] = article.published
    if article.views is not None:
        doc["views"] = article.views
    return doc


def _worker_count(workers: int | None) -> int:
    """Worker processes for segmentation: one per core unless told otherwise."""
    return max(1, workers if workers else (os.cpu_count() or 1))


def analysed_documents(articles: Iterable[Article], workers: int) -> Iterator[dict]:
    """Analyse articles in order, in worker processes when more than one is asked for."""
    if workers <= 1:
        for article in articles:
            yield document_fields(article)
        return
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        yield from pool.imap(document_fields, articles, chunksize=16)


def _progress(iterable: Iterable, enabled: bool, desc: str) -> Iterable:
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
        gen = new_generation(root)
        try:
            ix = whoosh_index.create_in(str(gen), make_schema())
            writer = ix.writer(limitmb=WRITER_MB)
            seen: set[str] = set()
            try:
                docs = analysed_documents(iter_articles(files, read), _worker_count(workers))
                for doc in _progress(docs, progress, "indexing"):
                    if doc["id"] in seen:
                        writer.update_document(**doc)  # the later record of a repeated id wins
                        report.replaced += 1
                    else:
                        writer.add_document(**doc)
                        seen.add(doc["id"])
                        report.added += 1
                writer.commit()
            except BaseException:
                writer.cancel()
                raise
            report.total = ix.doc_count()
        except BaseException:
            shutil.rmtree(gen, ignore_errors=True)  # the live generation stays as it was
            raise
        switch_to(root, gen)
    report.bad, report.generation = read.bad, gen.name
    report.seconds = time.perf_counter() - start
    return report


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
        with ix.searcher() as searcher:
            known = {fields["id"]: fields.get("content_hash") for fields in searcher.all_stored_fields()}
        changed = _changed_articles(iter_articles(files, read), known, report)
        writer = ix.writer(limitmb=WRITER_MB)
        try:
            for doc in _progress(analysed_documents(changed, _worker_count(workers)), progress, "updating"):
                if doc["id"] in known:
                    report.replaced += 1
                else:
                    report.added += 1
                known[doc["id"]] = doc["content_hash"]
                writer.update_document(**doc)
            writer.commit()
        except BaseException:
            writer.cancel()
            raise
        report.total = ix.doc_count()
        report.generation = current_generation(root).name
    report.bad = read.bad
    report.seconds = time.perf_counter() - start
    return report


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
    report = Report()
    with writer_lock(root, wait=wait):
        ix = open_index(root)
        writer = ix.writer()
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
        report.total = ix.doc_count()
        report.generation = current_generation(root).name
    report.seconds = time.perf_counter() - start
    return report


__all__ = ["Report", "build_index", "update_index", "delete_documents", "document_fields"]
