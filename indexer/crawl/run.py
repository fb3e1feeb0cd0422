"""The crawl: from seed URLs to articles in the live index, through the backend's writer.

Pages are fetched one at a time (see fetch.py), their articles extracted (extract.py) and compared with
what the previous crawl of this index saw, kept in DIR/crawl-state.json: the ETag and Last-Modified of
each page, for conditional requests, and the content hash of its article. Only new and changed articles
are written to a JSON Lines file and handed to the writer's update, so a crawl of an unchanged site does
not touch the index at all (its version stays the same). The state is saved only once the index holds
what it describes: a crawl stopped part-way, or an update that failed, is simply done again next time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from indexer.backend import BackendSettings, IndexBusy, IndexProblem, Report, index_writer
from indexer.crawl.discover import Link, feed_links, kind_of, sitemap_links
from indexer.crawl.extract import Extracted, decode_html, extract_article
from indexer.crawl.fetch import (
    MAX_SITEMAP_BYTES,
    Fetcher,
    FetchError,
    Response,
    Validators,
    host_of,
    is_web_url,
    normalise_url,
)
from indexer.readers import article_from_record

STATE_FILE = "crawl-state.json"
LOCK_FILE = "crawl.lock"
STATE_VERSION = 1
MAX_SITEMAP_DEPTH = 3  # a sitemap index of sitemap indexes of sitemaps, no deeper
MAX_LISTED_SKIPS = 1000  # skipped URLs named one by one in the result; all are counted by reason
HTML_TYPES = ("", "text/html", "application/xhtml+xml", "text/plain")  # text/plain: portals that send no type


@dataclass
class CrawlOptions:
    """What `indexer crawl` was asked to do."""

    index: Path
    urls: list[str]
    max_pages: int | None = None
    delay: float = 1.0
    since: date | None = None
    follow_hosts: bool = False
    save: Path | None = None
    timeout: float = 20.0
    workers: int | None = None
    wait: bool = False
    progress: bool = False


@dataclass
class Skip:
    """A URL not indexed and why; a failure is the site's fault (an error, a timeout), not a rule of ours."""

    url: str
    reason: str
    failure: bool = False


@dataclass
class CrawlResult:
    """What a crawl did: counts for the summary line, the skipped URLs, the index's report."""

    fetched: int = 0  # article pages answered (200, or 304 for one unchanged since the last crawl)
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    feeds: int = 0
    sitemaps: int = 0
    requests: int = 0
    skipped: int = 0
    failures: int = 0
    skipped_by_reason: Counter = field(default_factory=Counter)
    skipped_pages: list[Skip] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    saved: str = ""
    report: Report | None = None
    seconds: float = 0.0

    def skip(self, url: str, reason: str, failure: bool = False) -> None:
        """Count a URL left out, and name it while the list is short."""
        self.skipped += 1
        self.failures += failure
        self.skipped_by_reason[reason] += 1
        if len(self.skipped_pages) < MAX_LISTED_SKIPS:
            self.skipped_pages.append(Skip(url, reason, failure))

    def summary(self) -> str:
        """One line for people: pages, what changed, what was skipped and why, what the index holds."""
        reasons = ", ".join(f"{count} {reason}" for reason, count in self.skipped_by_reason.most_common())
        text = (f"crawl: fetched {self.fetched} pages (new {self.new}, changed {self.changed}, unchanged "
                f"{self.unchanged}), skipped {self.skipped}{f' ({reasons})' if reasons else ''}; "
                f"{self.feeds} feeds, {self.sitemaps} sitemaps, {self.requests} requests")
        if self.report is not None:
            text += f"; index holds {self.report.total}"
        else:
            text += "; index not touched"
        return f"{text}; {self.seconds:.1f} s"

    def to_json(self) -> str:
        """The result as one JSON object; 'index' is the writer's report, or null when nothing was written."""
        data: dict[str, Any] = {key: value for key, value in asdict(self).items() if key != "report"}
        data["skipped_by_reason"] = dict(self.skipped_by_reason)
        data["index"] = json.loads(self.report.to_json()) if self.report is not None else None
        return json.dumps(data, ensure_ascii=False)


# --- the state kept between crawls -------------------------------------------------------------


@dataclass
class PageState:
    """What the last crawl that indexed a page learnt of it."""

    final: str  # the URL the page was served from, after redirects: conditional headers go there
    id: str
    hash: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class CrawlState:
    """DIR/crawl-state.json: the index generation it describes and each page by the URL asked for."""

    generation: str | None = None
    pages: dict[str, PageState] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, warnings: list[str]) -> CrawlState:
        """The saved state; a missing one is empty, an unreadable one is empty with a warning."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            pages = {url: PageState(**page) for url, page in data["pages"].items()}
            return cls(generation=data.get("generation"), pages=pages)
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            warnings.append(f"{path.name} could not be read ({type(err).__name__}); every page is fetched again")
            return cls()

    def save(self, path: Path) -> None:
        """Write the state atomically: a crash leaves the old file or the new one, never half of one."""
        data = {"version": STATE_VERSION, "generation": self.generation,
                "pages": {url: asdict(page) for url, page in sorted(self.pages.items())}}
        fd, tmp = tempfile.mkstemp(prefix=".crawl-state-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, ensure_ascii=False, indent=0)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def live_generation(index: Path, settings: BackendSettings) -> str | None:
    """The name of the index's live build (a Whoosh generation, a Typesense collection), None if none.

    A new build in the same folder gets a new name; the crawl state of the old build then no longer says
    what the index holds, and is dropped.
    """
    if settings.backend == "typesense":
        from indexer.typesense_docs import alias_name, connect, live_collection

        try:
            return live_collection(connect(settings), alias_name(index))
        except IndexProblem:
            raise
        except Exception as err:  # the client's many connection and HTTP errors
            raise IndexProblem(f"the Typesense cluster failed: {type(err).__name__}: {err}") from None
    from indexer.store import current_generation

    gen = current_generation(index)
    return gen.name if gen is not None else None


@contextlib.contextmanager
def crawl_lock(index: Path, wait: bool) -> Iterator[None]:
    """One crawl of an index at a time: two would each save a state that misses the other's pages."""
    index.mkdir(parents=True, exist_ok=True)
    with open(index / LOCK_FILE, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    raise IndexBusy(f"another crawl of {index} is running; try again when it ends "
                                    "(or pass --wait)") from None
                time.sleep(0.5)
        yield


# --- articles ----------------------------------------------------------------------------------


def site_of(url: str) -> str:
    """The site a URL belongs to, as the article's source: its host name without 'www.' (nor port)."""
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


def article_id(url: str) -> str:
    """The article id of a page: its site and a hash of its normalised URL (stable across crawls)."""
    digest = hashlib.blake2b(normalise_url(url).encode("utf-8"), digest_size=8).hexdigest()
    return f"{site_of(url)}-{digest}"


def article_record(url: str, found: Extracted, fallback_date: datetime | None = None) -> dict:
    """The JSON Lines record of an extracted article, as `indexer build` reads it."""
    published = found.published or fallback_date
    return {"id": article_id(url), "title": found.title, "body": found.body, "abstract": found.abstract,
            "published": published.isoformat() if published else None, "source": site_of(url), "url": url,
            "author": found.author, "category": found.category}


# --- the walk ----------------------------------------------------------------------------------


@dataclass
class Item:
    """A URL waiting to be fetched: a seed (kind unknown), a feed, a sitemap or a page."""

    url: str
    kind: str
    listed: datetime | None = None  # the date the feed gave it: the article's date when the page has none
    depth: int = 0


class Frontier:
    """URLs to fetch, a queue per host; the next URL is from the host whose delay ends first."""

    def __init__(self, fetcher: Fetcher):
        self.fetcher = fetcher
        self.queues: dict[str, deque[Item]] = {}
        self.seen: set[str] = set()
        self.pages = 0

    def add(self, item: Item) -> bool:
        """Queue a URL not queued before in this crawl; False if it was."""
        key = normalise_url(item.url)
        if key in self.seen:
            return False
        self.seen.add(key)
        self.queues.setdefault(host_of(item.url), deque()).append(item)
        self.pages += item.kind in ("page", "seed")
        return True

    def pop(self) -> Item | None:
        """The next URL, or None when all were fetched."""
        ready = [(self.fetcher.ready_at(queue[0].url), order) for order, queue in enumerate(self.queues.values())
                 if queue]
        if not ready:
            return None
        _, order = min(ready)
        return list(self.queues.values())[order].popleft()


class Crawl:
    """One crawl's walk over its URLs, writing the articles found; crawl() drives it."""

    def __init__(self, options: CrawlOptions, state: CrawlState, result: CrawlResult,
                 changed_out: IO[str], saved_out: IO[str] | None):
        self.options, self.state, self.result = options, state, result
        self.changed_out, self.saved_out = changed_out, saved_out
        self.fetcher = Fetcher(delay=options.delay, timeout=options.timeout)
        self.frontier = Frontier(self.fetcher)
        self.pages: dict[str, PageState] = {}  # what this crawl learnt, saved once the index has it
        self.ids: set[str] = set()
        self.attempted = 0
        self.bar = None

    def run(self) -> None:
        """Fetch every seed and what its feeds and sitemaps list, within --max-pages."""
        for url in self.options.urls:
            self.frontier.add(Item(url, "seed"))
        with self._progress() as bar:
            self.bar = bar
            while (item := self.frontier.pop()) is not None:
                self._visit(item)
        self.result.requests = self.fetcher.requests

    @contextlib.contextmanager
    def _progress(self) -> Iterator[Any]:
        """A progress bar of pages on stderr when asked for, else nothing."""
        if not self.options.progress:
            yield None
            return
        from tqdm import tqdm

        with tqdm(total=0, desc="crawling", unit=" pages", file=sys.stderr, mininterval=0.5) as bar:
            yield bar

    def _tick(self) -> None:
        """One page done: move the bar (its total grows as feeds and sitemaps list pages)."""
        if self.bar is not None:
            self.bar.total = self.frontier.pages
            self.bar.update(1)

    def _visit(self, item: Item) -> None:
        """Fetch one URL and deal with it as what it turns out to be."""
        is_page = item.kind in ("page", "seed")
        if item.kind == "page":  # the URLs named on the command line are always fetched
            if self.options.max_pages is not None and self.attempted >= self.options.max_pages:
                self.result.skip(item.url, "over --max-pages")
                self._tick()
                return
            self.attempted += 1
        previous = self.state.pages.get(normalise_url(item.url)) if is_page else None
        validators = Validators(previous.final, previous.etag, previous.last_modified) if previous else None
        limit = MAX_SITEMAP_BYTES if item.kind in ("seed", "sitemap") else None
        try:
            response = self.fetcher.get(item.url, validators, max_bytes=limit)
            kind = item.kind
            if kind == "seed":
                kind = "page" if response.not_modified else kind_of(response.body)
                self.attempted += kind == "page"
                if kind == "page" and len(response.body) > self.fetcher.max_bytes:
                    # Fetched with a sitemap's allowance while its kind was unknown; a page gets a page's.
                    raise FetchError(f"larger than {self.fetcher.max_bytes:,} bytes")
            if kind == "feed":
                self._listing(item, response, feed_links(response.body, response.url, response.content_type))
                self.result.feeds += 1
            elif kind == "sitemap":
                self._listing(item, response, sitemap_links(response.body, response.url))
                self.result.sitemaps += 1
            else:
                self._page(item, response, previous)
        except FetchError as err:
            self.result.skip(item.url, err.reason, err.failure)
        except OSError:
            raise  # writing the crawl's own files failed (a full disk): that ends the crawl
        except Exception as err:  # a page no library could read must not end the crawl of the others
            self.result.skip(item.url, f"could not be read ({type(err).__name__}: {str(err)[:120]})", failure=True)
        if is_page:
            self._tick()

    def _listing(self, item: Item, response: Response, links: list[Link]) -> None:
        """Queue what a feed or sitemap lists, leaving out other hosts and what is older than --since."""
        since = self.options.since
        for link in links:
            if not self.options.follow_hosts and not _same_site(link.url, response.url):
                self.result.skip(link.url, "on another host (see --follow-hosts)")
            elif since is not None and link.listed is not None and link.listed.date() < since:
                self.result.skip(link.url, "older than --since")
            elif link.sitemap:
                if item.depth >= MAX_SITEMAP_DEPTH:
                    self.result.skip(link.url, "sitemap nested too deep", failure=True)
                else:
                    self.frontier.add(Item(link.url, "sitemap", depth=item.depth + 1))
            else:
                self.frontier.add(Item(link.url, "page", link.listed if link.published else None))

    def _page(self, item: Item, response: Response, previous: PageState | None) -> None:
        """Extract a page's article and write it out when it is new or changed."""
        self.result.fetched += 1
        key = normalise_url(item.url)
        if response.not_modified:
            if previous is None:
                self.result.skip(item.url, "HTTP 304 to an unconditional request", failure=True)
            else:
                self.result.unchanged += 1
                self.ids.add(previous.id)
            return
        if response.content_type not in HTML_TYPES:
            self.result.skip(item.url, "not an HTML page")
            return
        found = extract_article(decode_html(response.body, response.headers.get("content-type", "")), response.url)
        if found is None:
            self.result.skip(item.url, "no article text found")
            return
        record = article_record(response.url, found, item.listed)
        try:
            article = article_from_record(record)
        except ValueError:  # nothing left once cleaned
            self.result.skip(item.url, "no article text found")
            return
        if article.id in self.ids:
            self.result.skip(item.url, "the same page as another URL of this crawl")
            return
        self.ids.add(article.id)
        since = self.options.since
        if since is not None and article.published is not None and article.published.date() < since:
            self.result.skip(item.url, "older than --since")
            return
        line = json.dumps(record, ensure_ascii=False) + "\n"
        if self.saved_out is not None:
            self.saved_out.write(line)
            self.saved_out.flush()
        content_hash = article.content_hash()
        self.pages[key] = PageState(final=response.url, id=article.id, hash=content_hash,
                                    etag=response.headers.get("etag"),
                                    last_modified=response.headers.get("last-modified"))
        if previous is not None and previous.hash == content_hash and previous.id == article.id:
            self.result.unchanged += 1
            return
        if previous is None:
            self.result.new += 1
        else:
            self.result.changed += 1
        self.changed_out.write(line)


def _same_site(url: str, listed_on: str) -> bool:
    """Whether a link is on the host of the feed or sitemap that lists it ('www.' or not)."""
    return host_of(url).removeprefix("www.") == host_of(listed_on).removeprefix("www.")


@contextlib.contextmanager
def _save_file(folder: Path | None) -> Iterator[tuple[IO[str] | None, str]]:
    """The JSON Lines file of this crawl under --save DIR, named by its start time so files sort in order."""
    if folder is None:
        yield None, ""
        return
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    path = folder / f"crawl-{stamp}.jsonl"
    suffix = 1
    while path.exists():
        suffix += 1
        path = folder / f"crawl-{stamp}-{suffix}.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        yield handle, str(path)
    if path.stat().st_size == 0:
        path.unlink()  # nothing was fetched: no empty file to rebuild from


def crawl(options: CrawlOptions, settings: BackendSettings) -> CrawlResult:
    """Crawl the URLs and bring the index up to date with what changed; see the module docstring."""
    start = time.perf_counter()
    for url in options.urls:
        if not is_web_url(url):
            raise ValueError(f"not an http(s) URL: {url}")
    result = CrawlResult()
    index = Path(options.index)
    with crawl_lock(index, options.wait):
        state_path = index / STATE_FILE
        state = CrawlState.load(state_path, result.warnings)
        live = live_generation(index, settings)
        if state.pages and state.generation != live:
            result.warnings.append("the index was rebuilt or removed since the last crawl: every page is "
                                   "fetched again")
            state = CrawlState()
        with tempfile.TemporaryDirectory(prefix="tracuu-crawl-") as tmp, _save_file(options.save) as saved:
            changed_path = Path(tmp) / "changed.jsonl"
            saved_out, result.saved = saved
            with open(changed_path, "w", encoding="utf-8") as changed_out:
                walk = Crawl(options, state, result, changed_out, saved_out)
                walk.run()
            if result.new or result.changed:
                result.report = index_writer(settings).update(index, [changed_path], workers=options.workers,
                                                              progress=options.progress, wait=options.wait)
                state.generation = result.report.generation
            else:
                state.generation = live
            state.pages.update(walk.pages)
            state.save(state_path)
    if result.report is not None:
        result.warnings += result.report.warnings
        result.warnings += [f"the index refused {bad}" for bad in result.report.bad]
    result.seconds = time.perf_counter() - start
    return result
