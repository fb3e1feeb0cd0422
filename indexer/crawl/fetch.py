"""A polite HTTP client: robots.txt and its crawl-delay, a delay per host, conditional requests, size limits.

The crawl runs in one thread, so there is never more than one request in flight, to any host. Before each
request the client waits until the host's delay (the larger of --delay and the site's Crawl-delay) has
passed since the previous request to that host. Redirects are followed here, hop by hop, so that every hop
is checked: http(s) only, allowed by its host's robots.txt, and delayed like any other request.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import urllib3

PRODUCT = "tracuu-crawler"
USER_AGENT = f"{PRODUCT}/0.1 (tracuu: search of Vietnamese public-administration news; polite, obeys robots.txt)"
MAX_BYTES = 5_000_000  # an article page is rarely over 1 MB; a sitemap may hold 50,000 URLs in ~10 MB
MAX_SITEMAP_BYTES = 50_000_000  # the sitemap protocol's own limit for one uncompressed file
MAX_ROBOTS_BYTES = 500_000  # RFC 9309 asks crawlers to parse at least 500 KiB
MAX_REDIRECTS = 5
MAX_CRAWL_DELAY = 120.0  # a Crawl-delay beyond this is read as this: a typo must not stall a cron job for hours
CHUNK = 64 * 1024
REDIRECTS = (301, 302, 303, 307, 308)


class FetchError(Exception):
    """A URL that could not be fetched, with the reason; policy refusals are not failures of the site."""

    def __init__(self, reason: str, *, failure: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.failure = failure


@dataclass
class Response:
    """What one GET brought back, after redirects: the final URL, its status, headers and body."""

    url: str
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    @property
    def not_modified(self) -> bool:
        """The server said the copy we hold is current (304)."""
        return self.status == 304

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower case ('' when not sent)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Validators:
    """What makes a request conditional: the ETag and Last-Modified the server sent for a URL."""

    url: str
    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        """The If-None-Match / If-Modified-Since headers to send."""
        out = {}
        if self.etag:
            out["If-None-Match"] = self.etag
        if self.last_modified:
            out["If-Modified-Since"] = self.last_modified
        return out


def is_web_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host; everything else is never fetched."""
    try:
        parts = urlsplit(url)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a malformed port or IPv6 literal
        return False


def normalise_url(url: str) -> str:
    """The URL as one key: lower-case scheme and host, no default port, no fragment, '/' for an empty path."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    if parts.username or parts.password:
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" + netloc
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def host_of(url: str) -> str:
    """The host (and port when not the default) a URL belongs to, for per-host politeness."""
    return urlsplit(normalise_url(url)).netloc


@dataclass
class HostState:
    """What the client knows of one host: its robots rules, its delay, when it was last asked."""

    robots: RobotFileParser | None = None
    robots_problem: str = ""  # robots.txt could not be read: the whole host is off limits this run
    delay: float = 0.0
    last_request: float | None = None


@dataclass
class Fetcher:
    """One crawl's HTTP client; see the module docstring for the rules it keeps."""

    delay: float = 1.0
    timeout: float = 20.0
    max_bytes: int = MAX_BYTES
    user_agent: str = USER_AGENT
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    requests: int = 0
    hosts: dict[str, HostState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Open the connection pool; retries are off so that every request passes the politeness gate."""
        self._headers = {"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"}
        self._pool = urllib3.PoolManager(num_pools=16, retries=False,
                                         timeout=urllib3.Timeout(connect=min(self.timeout, 10.0), read=self.timeout))

    # --- politeness --------------------------------------------------------------------------

    def host(self, url: str) -> HostState:
        """The state of the URL's host, reading its robots.txt on first contact."""
        key = host_of(url)
        state = self.hosts.get(key)
        if state is None:
            state = self.hosts[key] = HostState(delay=self.delay)
            self._read_robots(url, state)
        return state

    def ready_at(self, url: str) -> float:
        """The clock time from which a request to the URL's host keeps the host's delay (0 for a new host)."""
        state = self.hosts.get(host_of(url))
        if state is None or state.last_request is None:
            return 0.0
        return state.last_request + state.delay

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets this client fetch the URL."""
        state = self.host(url)
        if state.robots_problem:
            return False
        return state.robots is None or state.robots.can_fetch(self.user_agent, url)

    def _wait_turn(self, url: str, state: HostState) -> None:
        """Sleep until the host's delay since its previous request has passed."""
        if state.last_request is not None:
            pause = state.last_request + state.delay - self.clock()
            if pause > 0:
                self.sleep(pause)
        state.last_request = self.clock()

    def _read_robots(self, url: str, state: HostState) -> None:
        """Fetch and parse the host's robots.txt as RFC 9309 says: 4xx allows all, 5xx or no answer allows none."""
        parts = urlsplit(url)
        robots_url = urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                response = self._get(robots_url, state, {}, MAX_ROBOTS_BYTES, truncate=True)
                location = response.headers.get("location", "").strip()
                if response.status not in REDIRECTS or not location:
                    break
                robots_url = urljoin(robots_url, location)
                if not is_web_url(robots_url):
                    raise FetchError("redirected to a URL that is not http(s)")
        except FetchError as err:
            state.robots_problem = f"robots.txt could not be read ({err.reason})"
            return
        if response.status in REDIRECTS:
            return  # RFC 9309: past five redirects robots.txt counts as unavailable, which allows all
        if 400 <= response.status < 500:
            return
        if response.status != 200:
            state.robots_problem = f"robots.txt answered HTTP {response.status}"
            return
        parser = RobotFileParser(robots_url)
        parser.parse(response.body.decode("utf-8", "replace").splitlines())
        state.robots = parser
        crawl_delay = parser.crawl_delay(self.user_agent)
        if crawl_delay is not None:
            state.delay = max(self.delay, min(float(crawl_delay), MAX_CRAWL_DELAY))

    # --- requests ----------------------------------------------------------------------------

    def get(self, url: str, validators: Validators | None = None, *, max_bytes: int | None = None) -> Response:
        """GET a URL politely, following redirects; conditional when validators for the final URL are given.

        Raises FetchError for a URL that is not http(s), is disallowed by robots.txt, answers an error
        status, times out, redirects too often or sends more than max_bytes.
        """
        limit = max_bytes or self.max_bytes
        for _hop in range(MAX_REDIRECTS + 1):
            if not is_web_url(url):
                raise FetchError(f"not an http(s) URL: {url[:200]}", failure=False)
            state = self.host(url)
            if state.robots_problem:
                raise FetchError(state.robots_problem)
            if not self.allowed(url):
                raise FetchError("disallowed by robots.txt", failure=False)
            conditional = validators.headers() if validators and normalise_url(validators.url) == \
                normalise_url(url) else {}
            response = self._get(url, state, conditional, limit)
            if response.status in REDIRECTS:
                location = response.headers.get("location", "")
                if not location:
                    raise FetchError(f"HTTP {response.status} without a Location")
                url = urljoin(url, location.strip())
                continue
            if response.status not in (200, 304):
                raise FetchError(f"HTTP {response.status}")
            return response
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    def _get(self, url: str, state: HostState, headers: dict[str, str], limit: int, *,
             truncate: bool = False) -> Response:
        """One request, after the host's delay; the body is read up to limit bytes once decompressed."""
        self._wait_turn(url, state)
        self.requests += 1
        try:
            # Headers given to a request replace the pool's own in urllib3: send them all each time.
            raw = self._pool.request("GET", url, headers={**self._headers, **headers}, redirect=False,
                                     preload_content=False, decode_content=False)
        except urllib3.exceptions.TimeoutError:
            raise FetchError(f"no answer within {self.timeout:g} s") from None
        except urllib3.exceptions.HTTPError as err:
            raise FetchError(f"connection failed ({_short(err)})") from None
        complete = False
        try:
            names = {name.lower(): value for name, value in raw.headers.items()}
            body = b""
            if raw.status == 200:
                body = self._read_body(raw, names, limit, truncate)
                complete = True
            return Response(url=url, status=raw.status, headers=names, body=body)
        finally:
            if not complete:
                raw.close()  # a body left unread would spoil the connection for the next request
            raw.release_conn()

    def _read_body(self, raw, headers: dict[str, str], limit: int, truncate: bool) -> bytes:
        """The decompressed body, refused (or cut, for robots.txt) past limit bytes, wherever it grows."""
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit and not truncate:
            raise FetchError(f"larger than {limit:,} bytes ({int(declared):,})")
        decoder = _decoder(headers.get("content-encoding", ""))
        deadline = self.clock() + 4 * self.timeout  # a server dripping bytes must not hold the crawl
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in raw.stream(CHUNK, decode_content=False):
                # Decompress no more than what is still allowed (+1 to notice the overflow): a small gzip
                # bomb must not be inflated in memory before the limit is checked.
                data = decoder(chunk, limit - size + 1) if decoder else chunk
                size += len(data)
                parts.append(data)
                if size > limit:
                    if truncate:
                        return b"".join(parts)[:limit]
                    raise FetchError(f"larger than {limit:,} bytes")
                if self.clock() > deadline:
                    raise FetchError(f"the body took longer than {4 * self.timeout:g} s")
        except urllib3.exceptions.TimeoutError:
            raise FetchError(f"no answer within {self.timeout:g} s") from None
        except (urllib3.exceptions.HTTPError, zlib.error) as err:
            raise FetchError(f"broken response ({_short(err)})") from None
        return b"".join(parts)


def _decoder(encoding: str) -> Callable[[bytes, int], bytes] | None:
    """A bounded decompressor for a Content-Encoding, None for identity; FetchError for one not asked for."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise FetchError(f"unsupported Content-Encoding {encoding!r}")
    # 47 = 32 + 15: zlib detects gzip or zlib headers itself; raw deflate (some servers) is tried below.
    state = {"inflater": zlib.decompressobj(47), "raw_tried": False}

    def decode(chunk: bytes, room: int) -> bytes:
        """Inflate one chunk, producing at most room bytes beyond what the caller already holds."""
        inflater = state["inflater"]
        try:
            out = inflater.decompress(chunk, max(room, 1))
        except zlib.error:
            if encoding != "deflate" or state["raw_tried"]:
                raise
            state["raw_tried"], state["inflater"] = True, zlib.decompressobj(-15)
            return decode(chunk, room)
        return out  # what did not fit stays unconsumed: the caller refuses the body anyway

    return decode


def _short(err: Exception) -> str:
    """An exception as a short line (urllib3's messages repeat the pool and URL)."""
    text = str(getattr(err, "reason", None) or err)
    return text.split(": ", 1)[-1][:160] if len(text) > 160 else text
