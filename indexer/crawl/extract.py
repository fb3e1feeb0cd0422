"""The article of a news page: title, publication date, author, lead and text, without the page around it.

trafilatura finds the main text and the metadata; this module adds what Vietnamese portals need on top:

- the date line as they print it (`Thứ 2, 18/03/2024 | 16:45:53`, `Chủ nhật, 17/3/2024 - 08:00`,
  `Ngày 18 tháng 3 năm 2024`), read by dateparser and looked for next to the headline only: the site's
  header clock (today's date) and the dates in "Tin liên quan" lists are never taken for the article's.
  Failing that, only the page's metadata (meta tags, JSON-LD, <time>, a date in the URL) is asked, through
  htmldate without its free-text search. A page with no date found has none.
- the lead (sapo), which portals set apart from the text container trafilatura keeps;
- the view counter, share and print links, and whatever follows a "Tin liên quan" heading, dropped;
- the byline most portals put in the last paragraph, taken as the author when there is no author metadata.
"""

from __future__ import annotations

import codecs
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message

import dateparser
import htmldate
import lxml.html
import trafilatura
from lxml import etree
from trafilatura.utils import decode_file

# --- decoding ---------------------------------------------------------------------------------

PRESCAN_BYTES = 8192  # where a page's <meta charset> is looked for (portals put scripts before it)
# Labels the HTML standard reads as another encoding than their name says.
_LABEL_ALIASES = {"iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
                  "l1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252", "utf-16": "utf-8", "utf-16le": "utf-8",
                  "utf-16be": "utf-8", "x-user-defined": "cp1252"}
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def _codec(label: str | None) -> str | None:
    """The Python codec for an encoding label, or None for an unknown label."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _LABEL_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def header_charset(content_type: str) -> str | None:
    """The charset parameter of a Content-Type header, if any."""
    if not content_type:
        return None
    message = Message()
    message["content-type"] = content_type
    charset = message.get_param("charset")
    return charset if isinstance(charset, str) else None


def declared_charset(head: bytes) -> str | None:
    """The encoding a page declares in <meta charset> or <meta http-equiv="Content-Type">, if any."""
    try:
        # Latin-1 maps every byte to one character, so the ASCII of the markup reads right whatever follows.
        doc = lxml.html.fromstring(head[:PRESCAN_BYTES].decode("latin-1"))
    except (etree.ParserError, ValueError):
        return None
    for meta in doc.iter("meta"):
        if meta.get("charset"):
            return meta.get("charset").strip()
        if (meta.get("http-equiv") or "").strip().lower() == "content-type":
            found = header_charset(meta.get("content") or "")
            if found:
                return found
    return None


def decode_html(body: bytes, content_type: str = "") -> str:
    """A page's text: a BOM, else the HTTP charset, else the <meta> one, else UTF-8, else a guess."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(codec, "replace")
    sent, declared = _codec(header_charset(content_type)), _codec(declared_charset(body))
    for codec in dict.fromkeys(c for c in (sent, declared) if c):
        try:
            return body.decode(codec)
        except UnicodeDecodeError:
            continue  # servers often send a default charset the page was not written in
    if sent or declared:
        return body.decode(sent or declared, "replace")
    return decode_file(body)


# --- dates ------------------------------------------------------------------------------------

MAX_DATE_CHARS = 80  # a date line; longer text is a sentence that happens to mention a date
EARLIEST = datetime(1990, 1, 1)
_DATE_SETTINGS = {
    "DATE_ORDER": "DMY",
    "REQUIRE_PARTS": ["day", "month", "year"],  # never complete a partial date from today's
    "PARSERS": ["absolute-time"],  # no "2 giờ trước" or Unix timestamps: both depend on when the page was read
    "RETURN_AS_TIMEZONE_AWARE": False,
}


def parse_date(text: str, now: datetime | None = None) -> datetime | None:
    """A date line as portals print it ('Thứ 2, 18/03/2024 | 16:45:53', 'Cập nhật: 18/03/2024'), or None."""
    text = " ".join(text.split())
    if not text or len(text) > MAX_DATE_CHARS or not any(ch.isdigit() for ch in text):
        return None
    first_digit = next(i for i, ch in enumerate(text) if ch.isdigit())
    # A label before the date ('Cập nhật:', 'Ngày đăng:') is not Vietnamese dateparser knows: retry without it.
    for candidate in dict.fromkeys((text, text[first_digit:])):
        try:
            value = dateparser.parse(candidate, languages=["vi", "en"], settings=_DATE_SETTINGS)
        except (ValueError, OverflowError):
            value = None
        if value is not None:
            value = value.replace(tzinfo=None, microsecond=0)
            if EARLIEST <= value <= (now or datetime.now()) + timedelta(days=1):
                return value
    return None


# --- page furniture ---------------------------------------------------------------------------

# Headings after which a portal lists other articles: the text ends there.
RELATED_HEADINGS = frozenset({
    "tin liên quan", "bài liên quan", "bài viết liên quan", "tin tức liên quan", "các tin liên quan",
    "tin cùng chuyên mục", "tin cùng chủ đề", "tin khác", "các tin khác", "các bài khác", "tin đã đưa",
    "các tin đã đưa", "xem thêm", "đọc thêm", "tin mới", "tin mới nhất", "tin mới hơn", "tin cũ hơn",
    "tin nổi bật", "tin xem nhiều", "xem nhiều", "related", "related news", "read more"})
# Lines that are controls, not text.
FURNITURE = frozenset({
    "chia sẻ", "chia sẻ bài viết", "in bài", "in bài viết", "bản in", "in trang", "gửi email", "gửi bài viết",
    "gửi cho bạn bè", "quay lại", "trở về", "trở lại", "về đầu trang", "lên đầu trang", "đầu trang", "facebook",
    "twitter", "zalo", "email", "bình luận", "ý kiến bạn đọc", "góp ý", "lưu bài viết", "tweet", "share",
    "print", "like", "cỡ chữ", "nghe đọc bài", "nghe bài viết", "tải về", "ý kiến của bạn"})
VIEW_WORDS = frozenset({"lượt xem", "số lượt xem", "lượt đọc", "lượt truy cập", "views", "xem"})
CREDIT_WORDS = frozenset({"bài", "ảnh", "tin", "và", "tác", "giả", "video", "clip", "thực", "hiện", "nhóm", "pv"})
SKIP_TAGS = frozenset({"script", "style", "noscript", "nav", "button", "form", "select", "iframe", "svg"})
MIN_TEXT_CHARS = 200  # below this a "page" is a listing, a login or an error page, not an article
MAX_BYLINE_CHARS = 40
LEAD_MIN_WORDS = 8
NEAR_BLOCKS = 12  # blocks after the headline searched for its date and lead, at most
CLIMB = 4  # levels above the headline searched


def _norm(text: str) -> str:
    """Whitespace collapsed."""
    return " ".join(text.split())


def _key(text: str) -> str:
    """A line as compared with the word lists: lower case, without edge punctuation."""
    return _norm(text).lower().strip(" :.-–—»>|•*")


def is_view_counter(line: str) -> bool:
    """'22,556 lượt xem', 'Lượt xem: 1.234', 'Số lượt xem 15'."""
    words = line.lower().replace(":", " ").split()
    numbers = [w for w in words if w.replace(".", "").replace(",", "").isdigit()]
    rest = " ".join(w for w in words if w not in numbers)
    return len(numbers) == 1 and rest in VIEW_WORDS


def byline(line: str) -> str | None:
    """The author's name when a line is a byline ('Minh Anh', 'Bài, ảnh: Thu Hà'), else None."""
    text = _norm(line)
    if ":" in text:
        label, _, name = text.partition(":")
        if not set(label.lower().replace(",", " ").split()) <= CREDIT_WORDS:
            return None
        text = name.strip()
    words = [w for w in text.replace("-", " ").replace("–", " ").split() if w.lower() != "và"]
    if not words or len(words) > 6 or len(text) > MAX_BYLINE_CHARS:
        return None
    if any(ch.isdigit() for ch in text) or text[-1] in ".!?;,\"”":
        return None
    if not all(w[0].isupper() for w in words):
        return None
    return text


# --- the page tree ----------------------------------------------------------------------------


def _texts(el) -> Iterator[str]:
    """The text of an element and its descendants, script, navigation and form controls left out."""
    if not isinstance(el.tag, str) or el.tag in SKIP_TAGS:
        return
    if el.text:
        yield el.text
    for child in el:
        yield from _texts(child)
        if child.tail:
            yield child.tail


def _block_text(el) -> str:
    """An element's visible text on one line."""
    return _norm(" ".join(_texts(el)))


def _headline(tree, title: str):
    """The element holding the article's title: an h1 (else h2, h3) that reads as the title does."""
    wanted = _norm(title).lower()
    for tag in ("h1", "h2", "h3"):
        for el in tree.iter(tag):
            text = _block_text(el).lower()
            if len(text.split()) >= 3 and wanted and (text == wanted or text in wanted or wanted in text):
                return el
    for el in tree.iter("h1"):
        if not wanted and len(_block_text(el).split()) >= 3:
            return el
    return None


def _after(headline) -> Iterator:
    """The blocks after the headline in reading order: its siblings, then its parent's, up CLIMB levels."""
    node = headline
    for _level in range(CLIMB):
        parent = node.getparent()
        if parent is None:
            return
        yield from (sib for sib in node.itersiblings() if isinstance(sib.tag, str))
        node = parent


def _before(headline) -> Iterator:
    """The blocks just before the headline, nearest first, within its parent and grandparent."""
    node = headline
    for _level in range(2):
        if node.getparent() is None:
            return
        yield from (sib for sib in node.itersiblings(preceding=True) if isinstance(sib.tag, str))
        node = node.getparent()


def _date_in(block) -> datetime | None:
    """The first date line within a block: the block itself when short, else its short parts."""
    for el in block.iter():
        if not isinstance(el.tag, str):
            continue
        if el.find(".//a") is not None or any(
                up.tag in SKIP_TAGS or up.tag == "a" or (up.tag == "li" and up.find(".//a") is not None)
                for up in (el, *el.iterancestors())):
            continue  # a date by a link is another article's ("Tin liên quan: Tin A (12/02/2024)")
        text = _block_text(el)
        if text and len(text) <= MAX_DATE_CHARS:
            found = parse_date(text)
            if found is not None:
                return found
    return None


def _lead_in(block) -> str:
    """A block's text as a lead (sapo) once date lines, counters and controls are left out; '' if too short.

    A block mostly of links (a "Tin liên quan" list under the headline, tags) is no lead.
    """
    linked = sum(len(_block_text(a)) for a in block.iter("a"))
    if linked * 2 > len(_block_text(block)):
        return ""
    parts = [_norm(part) for part in _texts(block)]
    kept = [part for part in parts if part and parse_date(part) is None and not is_view_counter(part)
            and _key(part) not in FURNITURE]
    text = _norm(" ".join(kept))
    return text if len(text.split()) >= LEAD_MIN_WORDS else ""


@dataclass
class _Near:
    """What sits between the headline and the text: the date line and the lead."""

    published: datetime | None = None
    lead: str = ""


def _squeezed(text: str) -> str:
    """Text without any whitespace, lower case: trafilatura and the tree space inline tags differently."""
    return "".join(text.split()).lower()


def _near_headline(headline, first_line: str) -> _Near:
    """The date line and lead next to the headline, stopping where the article's text begins.

    A date is taken from after the headline only when the text's start was then reached: without it the
    walk may have strayed into a box of other articles, whose dates are not this one's.
    """
    near = _Near()
    start = _squeezed(first_line)[:40]
    budget = [NEAR_BLOCKS]

    def scan(block) -> bool:
        """Look at one block for the date and lead; True once the text's start is reached."""
        text = _squeezed(_block_text(block))
        if start and start in text:
            # The text starts inside this block: what comes before it in the block (a date line in the
            # text container, a lead) is still looked at, child by child.
            if not text.startswith(start):
                for child in block:
                    if isinstance(child.tag, str) and scan(child):
                        break
            return True
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if near.published is None:
            near.published = _date_in(block)
        if not near.lead:
            near.lead = _lead_in(block)
        return False

    reached = False
    for block in _after(headline):
        if scan(block):
            reached = True
            break
        if budget[0] < 0:
            break
    if not reached:
        near = _Near()
    if near.published is None:
        for count, block in enumerate(_before(headline)):
            if count >= 3:
                break
            near.published = _date_in(block)
            if near.published is not None:
                break
    return near


def _metadata_date(tree, headline, url: str) -> datetime | None:
    """The date in the page's metadata only: meta tags, JSON-LD, <time> next to the headline, the URL."""
    mini = lxml.html.fromstring("<html><head></head><body></body></html>")
    head = tree.find(".//head")
    if head is not None:
        mini.replace(mini.find("head"), copy.deepcopy(head))
    body = mini.find("body")
    for script in tree.iter("script"):
        if (script.get("type") or "").lower() == "application/ld+json":
            body.append(copy.deepcopy(script))
    if headline is not None and headline.getparent() is not None:
        for el in headline.getparent().iter("time", "abbr"):
            body.append(copy.deepcopy(el))
    try:
        found = htmldate.find_date(mini, extensive_search=False, original_date=True, url=url,
                                   outputformat="%Y-%m-%dT%H:%M:%S")
    except (ValueError, TypeError):
        return None
    return datetime.fromisoformat(found) if found else None


# --- the article ------------------------------------------------------------------------------


@dataclass
class Extracted:
    """An article as found on its page."""

    title: str
    body: str
    abstract: str = ""
    published: datetime | None = None
    author: str = ""
    category: str = ""


def _clean_lines(lines: list[str], title: str) -> list[str]:
    """The text's paragraphs without date lines, counters, controls and what follows a related heading."""
    out: list[str] = []
    for index, line in enumerate(lines):
        text = _norm(line)
        key = _key(text)
        if not text or not key:
            continue
        if key in RELATED_HEADINGS:
            break
        if key in FURNITURE or is_view_counter(text) or text == title:
            continue
        if (index < 3 or index >= len(lines) - 3) and parse_date(text) is not None:
            continue
        out.append(text)
    return out


def _take_byline(lines: list[str]) -> str:
    """Remove the byline from the end of the text (before a photo credit) and return the name."""
    for back in (1, 2):
        if len(lines) <= back:
            return ""
        name = byline(lines[-back])
        if name:
            del lines[-back]
            return name
        if not lines[-back].lower().startswith(("ảnh:", "ảnh :", "nguồn:")):
            return ""
    return ""


def extract_article(html: str, url: str) -> Extracted | None:
    """The article of a page, or None when the page holds no article text."""
    try:
        tree = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return None
    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                      include_tables=True, deduplicate=False,
                                      date_extraction_params={"extensive_search": False, "original_date": True})
    if doc is None or not (doc.text or "").strip():
        return None
    headline = _headline(tree, doc.title or "")
    title = _block_text(headline) if headline is not None else _norm(doc.title or "")
    lines = _clean_lines([line for line in doc.text.split("\n") if line.strip()], title)
    if not lines:
        return None
    near = _near_headline(headline, lines[0]) if headline is not None else _Near()
    author = _norm(doc.author or "") or _take_byline(lines)
    lead = near.lead or _norm(doc.description or "")
    if lead in (title, ""):
        lead = ""
    elif lines and _norm(lines[0]) == lead:
        lines = lines[1:]
    elif lead in lines:
        lead = ""  # the lead is already part of the text as a paragraph of its own
    body = "\n\n".join(lines)
    if len(body) + len(lead) < MIN_TEXT_CHARS:
        return None
    published = near.published or _metadata_date(tree, headline, url)
    category = _norm(doc.categories[0]) if doc.categories else ""
    return Extracted(title=title, body=body, abstract=lead, published=published, author=author, category=category)
