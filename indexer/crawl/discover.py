"""What a fetched URL is (feed, sitemap or page) and the article links a feed or a sitemap lists.

Feeds are read by feedparser (RSS 0.90-2.0, RDF, Atom), sitemaps (urlset, sitemapindex, gzipped or not)
by lxml with entities and network access off. Links come back absolute, http(s) only, with the date the
feed or sitemap gives for them, so that --since can skip them without a request.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import feedparser
from lxml import etree

from indexer.crawl.fetch import MAX_SITEMAP_BYTES, FetchError, is_web_url

SITEMAP_ROOTS = {"urlset", "sitemapindex"}
FEED_ROOTS = {"rss", "RDF", "feed", "channel"}  # RSS 0.91-2.0, RSS 0.90/1.0 (RDF), Atom, a bare RSS channel


@dataclass(frozen=True)
class Link:
    """A URL a feed or sitemap points at, whether it is itself a sitemap, and the date listed with it."""

    url: str
    sitemap: bool = False  # an entry of a sitemap index: another sitemap, not a page
    listed: datetime | None = None  # the feed entry's publication date or the sitemap's lastmod
    published: bool = False  # listed is a publication date (feeds), not a modification date


def _xml_parser() -> etree.XMLParser:
    """An XML parser that never resolves entities or reaches the network (no XXE, no billion laughs)."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_comments=True)


def gunzip(body: bytes, limit: int = MAX_SITEMAP_BYTES) -> bytes:
    """A gzip file's content (a sitemap.xml.gz), refused past limit bytes; other bytes as they are."""
    if not body.startswith(b"\x1f\x8b"):
        return body
    inflater = zlib.decompressobj(31)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as err:
        raise FetchError(f"broken gzip file ({err})") from None
    if len(out) > limit:
        raise FetchError(f"larger than {limit:,} bytes once uncompressed")
    return out


def _root_name(body: bytes) -> str | None:
    """The local name of the document's root element when the bytes are well-formed XML, else None."""
    try:
        root = etree.fromstring(body, _xml_parser())
    except (etree.XMLSyntaxError, ValueError):
        return None
    return etree.QName(root).localname if root is not None and isinstance(root.tag, str) else None


def kind_of(body: bytes) -> str:
    """'feed', 'sitemap' or 'page', from the document itself (portals send feeds as text/html too)."""
    name = _root_name(gunzip(body))
    if name in SITEMAP_ROOTS:
        return "sitemap"
    if name in FEED_ROOTS:
        return "feed"
    return "page"


def _wall_time(value: datetime) -> datetime:
    """A datetime as the local wall time it was written in (the index holds naive times)."""
    return value.replace(tzinfo=None)


def _feed_date(entry) -> datetime | None:
    """The entry's publication (or update) time as written in the feed, without its zone."""
    for key in ("published", "updated", "created"):
        raw = entry.get(key)
        if not raw:
            continue
        for parse in (parsedate_to_datetime, lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))):
            try:
                return _wall_time(parse(raw.strip()))
            except (TypeError, ValueError, IndexError):
                continue
        parsed = entry.get(f"{key}_parsed")  # feedparser's own reading, in UTC, for the other formats
        if parsed:
            return datetime(*parsed[:6])
    return None


def feed_links(body: bytes, url: str, content_type: str = "") -> list[Link]:
    """The article links of a feed, in its order, each with its publication date when given."""
    parsed = feedparser.parse(io.BytesIO(body),  # a file object: feedparser opens a str or bytes as a path
                              response_headers={"content-location": url,
                                                "content-type": content_type or "application/xml"},
                              resolve_relative_uris=False, sanitize_html=False)
    links: list[Link] = []
    for entry in parsed.entries:
        href = (entry.get("link") or "").strip()
        if not href:
            continue
        href = urljoin(url, href)
        if is_web_url(href):
            links.append(Link(href, listed=_feed_date(entry), published=True))
    return links


def _lastmod(text: str | None) -> datetime | None:
    """A sitemap lastmod (W3C datetime: a date, or a date and time with a zone) as a naive datetime."""
    if not text:
        return None
    text = text.strip().replace("Z", "+00:00")
    try:
        return _wall_time(datetime.fromisoformat(text))
    except ValueError:
        try:
            return datetime.combine(date.fromisoformat(text[:10]), datetime.min.time())
        except ValueError:
            return None


def sitemap_links(body: bytes, url: str) -> list[Link]:
    """The page URLs of a sitemap, or the sitemap URLs of a sitemap index, with their lastmod."""
    try:
        root = etree.fromstring(gunzip(body), _xml_parser())
    except (etree.XMLSyntaxError, ValueError) as err:
        raise FetchError(f"not a readable sitemap ({str(err)[:120]})") from None
    is_index = etree.QName(root).localname == "sitemapindex"
    links: list[Link] = []
    for item in root:
        if not isinstance(item.tag, str) or etree.QName(item).localname not in ("url", "sitemap"):
            continue
        loc, lastmod = None, None
        for child in item:
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child).localname
            if name == "loc":
                loc = (child.text or "").strip()
            elif name == "lastmod":
                lastmod = _lastmod(child.text)
        if loc:
            loc = urljoin(url, loc)
            if is_web_url(loc):
                links.append(Link(loc, sitemap=is_index, listed=lastmod))
    return links
