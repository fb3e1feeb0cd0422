"""Build, update and delete on a Typesense cluster: the same operations and report as indexer.build.

Analysis (pyvi) runs here in worker processes, exactly as for Whoosh; Typesense receives tokens.
A build fills a new collection and switches the alias to it only once every article is in.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from indexer import stories
from indexer.acronyms import AcronymMiner
from indexer.analysis import load_segmenter
from indexer.backend import BackendSettings, Report, backend_settings
from indexer.build import input_digest, input_hash, progress_bar
from indexer.near_duplicates import Deduper
from indexer.readers import Article, ReadResult, expand_sources, iter_articles
from indexer.store import writer_lock
from indexer.typesense_docs import (
    META,
    TypesenseProblem,
    alias_name,
    collection_schema,
    connect,
    document_id,
    host_id,
    live_collection,
    read_meta,
    to_document,
    write_meta,
)

BATCH = 200  # documents per import request
WINDOW = 2_000  # articles read but not yet imported, at most
SETTLE_SECONDS = 60.0
VOCABULARY_MIN_DF = 2  # the vocabulary ignores words seen once (typos, names); keeps the metadata small


def _convert(item: tuple[Article, str]) -> tuple[dict, set[str], set[str]]:
    """Worker: analyse one article into its Typesense document."""
    article, content_hash = item
    return to_document(article, content_hash)


def _converted(items: Iterable[tuple[Article, str]], workers: int
               ) -> Iterator[tuple[tuple[Article, str], tuple[dict, set[str], set[str]]]]:
    """Each (article, hash) with its document, in input order, analysed by worker processes when workers > 1.

    At most WINDOW articles are between the reader and the import: Pool.imap alone would read the whole
    input ahead and queue every result while the import lags (3.5 GB at 150k articles).
    """
    if workers <= 1:
        for item in items:
            yield item, _convert(item)
        return
    load_segmenter()  # loaded once, inherited by the forked workers
    fed: deque = deque()  # items handed to the pool, oldest first: imap answers in the same order
    room = threading.Semaphore(WINDOW)
    stop = threading.Event()

    def feed() -> Iterator[tuple[Article, str]]:
        """The input, paused while WINDOW items are unanswered (runs in the pool's feeding thread)."""
        for item in items:
            while not room.acquire(timeout=0.5):
                if stop.is_set():  # the consumer gave up: let the pool's thread end
                    return
            fed.append(item)
            yield item

    with multiprocessing.get_context("fork").Pool(workers) as pool:
        try:
            # A chunk is sent once full: chunks far smaller than the window, or the feeding would stall.
            for result in pool.imap(_convert, feed(), chunksize=max(1, min(8, WINDOW // 4))):
                yield fed.popleft(), result
                room.release()
        finally:
            stop.set()


class _Counts:
    """Document frequencies of words and body syllables, and mined acronyms: the query side's tables."""

    def __init__(self, meta: dict | None = None):
        meta = meta or {}
        self.words = Counter(meta.get("words", {}))
        self.syllables = Counter(meta.get("syllables", {}))
        self.documents = Counter(meta.get("documents", {}))  # cited document numbers, for partial queries
        self.miner = AcronymMiner()
        for acronym, defs in meta.get("acronyms", {}).items():
            self.miner.counts[acronym].update(defs)

    def add(self, article: Article, words: set[str], syllables: set[str], documents: Iterable[str] = ()) -> None:
        """Count one article."""
        self.words.update(words)
        self.documents.update(documents)
        self.syllables.update(syllables)
        self.miner.add(article.title, article.abstract, article.body)

    def to_meta(self, **extra) -> dict:
        """The metadata document's content."""
        return {"words": {w: n for w, n in self.words.items() if n >= VOCABULARY_MIN_DF},
                "syllables": dict(self.syllables), "documents": dict(self.documents),
                "acronyms": {k: dict(v) for k, v in self.miner.counts.items()}, **extra}


def _import(client, collection: str, docs: list[dict]) -> None:
    """Upsert a batch; any document Typesense refused fails the whole operation with its reason."""
    results = client.collections[collection].documents.import_(docs, {"action": "upsert"})
    for doc, res in zip(docs, results):
        if not res.get("success"):
            raise TypesenseProblem(f"Typesense refused article {doc['doc_id']!r}: {res.get('error')}")


def _client(settings: BackendSettings | None):
    """A client for the configured cluster."""
    return connect(settings or backend_settings())


def _guard(fn):
    """Turn the client's connection and HTTP errors into TypesenseProblem with a readable message."""
    def wrapper(*args, **kwargs):
        import httpx
        import typesense.exceptions as tse

        try:
            return fn(*args, **kwargs)
        except (tse.TypesenseClientError, httpx.HTTPError) as err:
            raise TypesenseProblem(f"the Typesense cluster failed: {type(err).__name__}: {err}") from None
    wrapper.__doc__, wrapper.__name__ = fn.__doc__, fn.__name__
    return wrapper


@_guard
def build_index(root: Path, sources: Iterable[str | Path], *, workers: int | None = None, progress: bool = False,
                wait: bool = False, settings: BackendSettings | None = None) -> Report:
    """Build a fresh collection from sources and point the index's alias at it when complete."""
    start = time.perf_counter()
    root = Path(root)
    files = expand_sources(sources)
    client = _client(settings)
    alias = alias_name(root)
    report, read = Report(), ReadResult()
    root.mkdir(parents=True, exist_ok=True)
    with writer_lock(root, wait=wait):
        live = live_collection(client, alias)
        if live is not None:
            # Rebuilding unchanged input only re-reads it: hashing is cheap, analysis is not.
            hashed, count = input_hash(files, read)
            if read_meta(client, live).get("input_hash") == hashed:
                report.unchanged = report.total = count
                report.bad, report.generation = read.bad, live
                report.seconds = time.perf_counter() - start
                return report
            read = ReadResult()
        name = f"{alias}-{time.time_ns()}"
        client.collections.create(collection_schema(name))
        try:
            counts, seen, batch = _Counts(), set(), []
            grouping = Deduper()
            digest = input_digest()  # the same input hash input_hash computes, in one pass
            items = ((article, article.content_hash()) for article in iter_articles(files, read))
            converted = _converted(items, max(1, workers or os.cpu_count() or 1))
            for (article, content_hash), (doc, words, syllables) in progress_bar(converted, progress, "indexing"):
                digest.update(content_hash.encode())
                if article.id in seen:
                    report.replaced += 1  # the later record of a repeated id wins, as with Whoosh
                else:
                    seen.add(article.id)
                    report.added += 1
                counts.add(article, words, syllables, doc.get("document", ()))
                stories.add(grouping, article)
                batch.append(doc)
                if len(batch) >= BATCH:
                    _import(client, name, batch)
                    batch = []
            if batch:
                _import(client, name, batch)
            report.total = _settled_count(client, name, len(seen))
            if report.total != len(seen):
                raise TypesenseProblem(f"the cluster holds {report.total} of {len(seen)} articles; "
                                       "the live index is unchanged")
            stories.save(grouping, root)  # the grouping's state stays with the index folder, for updates
            write_meta(client, alias, name, counts.to_meta(input_hash=digest.hexdigest(),
                                                           stories=stories.groups(grouping)),
                       folder=root.resolve())
            client.aliases.upsert(alias, {"collection_name": name})
        except BaseException:
            _drop(client, name)
            raise
        # Past the switch the new collection is the live one: an interrupt from here on must not drop it.
        report.warnings += _lagging(_await_everywhere(settings, _points_at(alias, name)))
        _drop_old(client, alias, keep=name)
    report.bad, report.generation = read.bad, name
    report.seconds = time.perf_counter() - start
    return report


def _settled_count(client, collection: str, expected: int, timeout: float = SETTLE_SECONDS) -> int:
    """The collection's document count once replication caught up (a node acknowledges a write
    before every node applied it), or the last count seen after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        count = client.collections[collection].retrieve()["num_documents"]
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


def _await_everywhere(settings: BackendSettings | None, applied: Callable[[Any], bool],
                      timeout: float = SETTLE_SECONDS) -> list[str]:
    """Return once applied(node) holds on every reachable node, or after timeout seconds.

    Raft acknowledges a write once a majority logged it, and a follower answers reads from what it has
    applied, so the next read could still miss an acknowledged write. Nodes apply the log in order, so
    the last write of a batch seen on a node means the whole batch is there. A node that cannot be
    reached is skipped: it catches up from the log when it is back.
    """
    import httpx
    import typesense.exceptions as tse

    settings = settings or backend_settings()
    # One client per node, without fail-over: the question is what that very node serves.
    nodes = {url: connect(settings.model_copy(update={"typesense_nodes": url, "typesense_timeout": 2.0}), retries=0)
             for url in settings.nodes}
    pending = set(nodes)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for url in sorted(pending):
            try:
                if applied(nodes[url]):
                    pending.discard(url)
            except (httpx.HTTPError, tse.TypesenseClientError, OSError) as err:
                if _unreachable(err):
                    pending.discard(url)
        if pending:
            time.sleep(0.05)
    return sorted(pending)


def _lagging(nodes: list[str]) -> list[str]:
    """A warning for the person at the terminal when nodes had not applied the write in time."""
    if not nodes:
        return []
    return [f"{', '.join(nodes)} had not applied this write after {SETTLE_SECONDS:.0f} s; it is committed "
            "and the node(s) will serve it once caught up"]


def _holds(collection: str, doc_id: str, content_hash: str | None) -> Callable[[Any], bool]:
    """Whether a node serves doc_id with content_hash, or (content_hash None) does not serve it."""
    import typesense.exceptions as tse

    def check(node) -> bool:
        try:
            doc = node.collections[collection].documents[document_id(doc_id)].retrieve()
        except tse.ObjectNotFound:
            return content_hash is None
        return content_hash is not None and doc.get("content_hash") == content_hash
    return check


def _points_at(alias: str, collection: str) -> Callable[[Any], bool]:
    """Whether a node's alias points at collection."""
    return lambda node: live_collection(node, alias) == collection


def _unreachable(err: Exception) -> bool:
    """Whether an error means the node is down (rather than busy applying the log)."""
    import httpx

    return isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout, ConnectionError))


def _drop(client, collection: str) -> None:
    """Delete a collection and its metadata, ignoring what is already gone."""
    import typesense.exceptions as tse

    for target in (client.collections[collection], client.collections[META].documents[collection]):
        try:
            target.delete()
        except (tse.TypesenseClientError, OSError):
            pass


def _collections_of(client, alias: str) -> list[str]:
    """Every collection built for an alias: the live one, earlier ones, those of builds that were killed."""
    return [info["name"] for info in client.collections.retrieve() if info["name"].startswith(alias + "-")]


def _drop_old(client, alias: str, keep: str) -> None:
    """Delete this alias's collections other than keep."""
    for name in _collections_of(client, alias):
        if name != keep:
            _drop(client, name)


def _changed(articles: Iterable[Article], known: dict[str, str], new_ids: set[str],
             report: Report) -> Iterator[tuple[Article, str]]:
    """(article, hash) of articles whose content differs from the live one; the rest counted unchanged."""
    for article in articles:
        content_hash = article.content_hash()
        if known.get(article.id) == content_hash:
            report.unchanged += 1
            continue
        if article.id not in known:
            new_ids.add(article.id)
        known[article.id] = content_hash
        yield article, content_hash


def _stored_articles(client, collection: str) -> Iterator[Article]:
    """Every article of a collection, as stored (its text fields and date: what the grouping reads)."""
    import json
    from datetime import datetime

    text = client.collections[collection].documents.export({"include_fields": "doc_id,title,abstract,body,published"})
    for line in filter(str.strip, text.splitlines()):
        rec = json.loads(line)
        published = datetime.fromisoformat(rec["published"]) if rec.get("published") else None
        yield Article(id=rec["doc_id"], title=rec.get("title", ""), abstract=rec.get("abstract", ""),
                      body=rec.get("body", ""), published=published)


def _known_hashes(client, collection: str) -> dict[str, str]:
    """id -> content hash of every live article (one export, two small fields)."""
    import json

    text = client.collections[collection].documents.export({"include_fields": "doc_id,content_hash"})
    known = {}
    for line in text.splitlines():
        if line.strip():
            rec = json.loads(line)
            known[rec["doc_id"]] = rec.get("content_hash", "")
    return known


@_guard
def update_index(root: Path, sources: Iterable[str | Path], *, workers: int | None = None, progress: bool = False,
                 wait: bool = False, settings: BackendSettings | None = None) -> Report:
    """Add or replace articles by id in the live collection; unchanged ones are skipped."""
    start = time.perf_counter()
    root = Path(root)
    files = expand_sources(sources)
    client = _client(settings)
    alias = alias_name(root)
    if live_collection(client, alias) is None:
        return build_index(root, files, workers=workers, progress=progress, wait=wait, settings=settings)
    report, read = Report(), ReadResult()
    root.mkdir(parents=True, exist_ok=True)
    with writer_lock(root, wait=wait):
        live = live_collection(client, alias)
        meta = read_meta(client, live)
        known = _known_hashes(client, live)
        new_ids: set[str] = set()
        counts, batch, last = _Counts(meta), [], None
        grouping = stories.load_state(root, lambda: _stored_articles(client, live))
        changed = _changed(iter_articles(files, read), known, new_ids, report)
        for (article, content_hash), (doc, words, syllables) in progress_bar(
                _converted(changed, max(1, workers or 1)), progress, "updating"):
            last = (article.id, content_hash)
            report.replaced += 1
            counts.add(article, words, syllables, doc.get("document", ()))
            stories.add(grouping, article)
            batch.append(doc)
            if len(batch) >= BATCH:
                _import(client, live, batch)
                batch = []
        if batch:
            _import(client, live, batch)
        if last is not None:
            report.warnings += _lagging(_await_everywhere(settings, _holds(live, *last)))
        report.added = len(new_ids)
        report.replaced -= report.added
        if last is not None:
            stories.save(grouping, root)
            write_meta(client, alias, live, counts.to_meta(input_hash="", stories=stories.groups(grouping)),
                       folder=root.resolve())
        report.total = client.collections[live].retrieve()["num_documents"]
        report.generation = live
    report.bad = read.bad
    report.seconds = time.perf_counter() - start
    return report


@_guard
def delete_documents(root: Path, ids: Iterable[str], *, wait: bool = False,
                     settings: BackendSettings | None = None) -> Report:
    """Delete articles by id from the live collection; ids not found are listed in the report."""
    import typesense.exceptions as tse

    start = time.perf_counter()
    root = Path(root)
    client = _client(settings)
    alias = alias_name(root)
    report = Report()
    live = live_collection(client, alias)
    if live is None:
        raise TypesenseProblem(f"no index {alias} in the Typesense cluster: build it first")
    root.mkdir(parents=True, exist_ok=True)
    with writer_lock(root, wait=wait):
        grouping = stories.load_state(root, lambda: _stored_articles(client, live))
        for doc_id in ids:
            try:
                client.collections[live].documents[document_id(doc_id)].delete()
                report.deleted += 1
                last = doc_id
                if doc_id in grouping:
                    grouping.remove(doc_id)
            except tse.ObjectNotFound:
                report.missing.append(doc_id)
        if report.deleted:
            stories.save(grouping, root)
            meta = read_meta(client, live)
            meta["stories"] = stories.groups(grouping)
            write_meta(client, alias, live, meta, folder=root.resolve())
            report.warnings += _lagging(_await_everywhere(settings, _holds(live, last, None)))
        report.total = client.collections[live].retrieve()["num_documents"]
        report.generation = live
    report.seconds = time.perf_counter() - start
    return report


@_guard
def drop_index(root: Path, *, wait: bool = False, settings: BackendSettings | None = None) -> Report:
    """Delete an index folder's alias and collections from the cluster."""
    import typesense.exceptions as tse

    start = time.perf_counter()
    root = Path(root)
    client = _client(settings)
    alias = alias_name(root)
    report = Report()
    lock = writer_lock(root, wait=wait) if root.is_dir() else contextlib.nullcontext()
    with lock:  # listed under the lock: a build that was running has switched or dropped its collection
        names = _collections_of(client, alias)
        if not names and live_collection(client, alias) is None:
            raise TypesenseProblem(f"no index {alias} in the Typesense cluster; nothing removed")
        with contextlib.suppress(tse.ObjectNotFound):
            client.aliases[alias].delete()  # readers see an empty index from here on
        for name in names:
            _drop(client, name)
            report.dropped.append(name)
    report.seconds = time.perf_counter() - start
    return report


@_guard
def drop_orphans(settings: BackendSettings | None = None) -> Report:
    """Delete the collections built on this host for index folders that no longer exist."""
    import json

    import typesense.exceptions as tse

    start = time.perf_counter()
    client = _client(settings)
    report = Report()
    if META not in {c["name"] for c in client.collections.retrieve()}:
        return report
    host = host_id()
    text = client.collections[META].documents.export({"include_fields": "id,alias,folder,host"})
    for line in filter(str.strip, text.splitlines()):
        rec = json.loads(line)
        folder = rec.get("folder")
        if rec.get("host") == host and folder and not Path(folder).exists():
            with contextlib.suppress(tse.ObjectNotFound):
                client.aliases[rec["alias"]].delete()
            _drop(client, rec["id"])
            report.dropped.append(f"{rec['id']} ({folder})")
    report.seconds = time.perf_counter() - start
    return report


class TypesenseWriter:
    """The IndexWriter of a Typesense cluster (indexer.backend's contract)."""

    def __init__(self, settings: BackendSettings | None = None):
        self.settings = settings

    def build(self, root: Path, sources: Iterable[str | Path], *, workers: int | None = None,
              progress: bool = False, wait: bool = False) -> Report:
        """A fresh collection from sources; the alias moves once it is complete."""
        return build_index(root, sources, workers=workers, progress=progress, wait=wait, settings=self.settings)

    def update(self, root: Path, sources: Iterable[str | Path], *, workers: int | None = None,
               progress: bool = False, wait: bool = False) -> Report:
        """Add or replace articles by id in the live collection."""
        return update_index(root, sources, workers=workers, progress=progress, wait=wait, settings=self.settings)

    def delete(self, root: Path, ids: Iterable[str], *, wait: bool = False) -> Report:
        """Delete articles by id from the live collection."""
        return delete_documents(root, ids, wait=wait, settings=self.settings)

    def drop(self, root: Path, *, wait: bool = False) -> Report:
        """Remove the alias and its collections."""
        return drop_index(root, wait=wait, settings=self.settings)

    def drop_orphans(self) -> Report:
        """Remove the collections built on this host whose index folder is gone."""
        return drop_orphans(self.settings)
