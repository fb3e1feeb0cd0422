"""Readers turning corpus files (JSON Lines, portal page dumps) into Article records."""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from indexer.analysis import clean_text

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.xz", ".ndjson")
PAGE_SUFFIXES = (".txt",)


@dataclass
class Article:
    """One article as indexed and stored; text fields are cleaned (NFC)."""

    id: str
    title: str = ""
    body: str = ""
    abstract: str = ""
    published: datetime | None = None
    source: str = ""
    url: str = ""
    author: str = ""
    category: str = ""
    views: int | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict (published as ISO text)."""
        data = asdict(self)
        data["published"] = self.published.isoformat() if self.published else None
        return data

    def content_hash(self) -> str:
        """A hash of everything indexed, to skip unchanged articles."""
        blob = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.blake2b(blob.encode("utf-8"), digest_size=16).hexdigest()


@dataclass
class BadRecord:
    """A record that could not be read, with where it is."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class ReadResult:
    """What reading sources produced besides the articles themselves: the records skipped."""

    bad: list[BadRecord] = field(default_factory=list)


class SourceError(Exception):
    """A source path that does not exist or cannot be read at all."""


# --- field parsing --------------------------------------------------------------------------

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def parse_published(value: object) -> datetime | None:
    """Parse an ISO date or datetime; raise ValueError for anything else."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _ISO_DATE.match(value.strip()):
        raise ValueError(f"'published' must be an ISO date or datetime, got {value!r}")
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'published' must be an ISO date or datetime, got {value!r}") from None
    # Whoosh DATETIME holds naive values; keep local wall time as published.
    return parsed.replace(tzinfo=None)


def _text(record: dict, key: str) -> str:
    """A string field, cleaned; numbers are accepted as text, other types are an error."""
    value = record.get(key)
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"field '{key}' must be a string")
    return clean_text(value).strip()


def article_from_record(record: object) -> Article:
    """Validate one JSON object and build an Article; raise ValueError with the reason."""
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    doc_id = _text(record, "id")
    if not doc_id:
        raise ValueError("missing 'id'")
    if "body" not in record:
        raise ValueError("missing 'body'")
    body, title = _text(record, "body"), _text(record, "title")
    if not body and not title:
        # An empty body is accepted when the title carries the text (statute articles, short notices).
        raise ValueError("empty 'body' and no 'title': nothing to index")
    return Article(
        id=doc_id,
        title=title,
        body=body,
        abstract=_text(record, "abstract") or _text(record, "lead"),
        published=parse_published(record.get("published")),
        source=_text(record, "source"),
        url=_text(record, "url"),
        author=_text(record, "author"),
        category=_text(record, "category"),
    )


# --- JSON Lines -----------------------------------------------------------------------------


def _open_binary(path: Path):
    """Open a possibly compressed file for reading bytes."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith(".xz"):
        return lzma.open(path, "rb")
    return open(path, "rb")


def read_jsonl(path: Path, result: ReadResult) -> Iterator[Article]:
    """Yield articles from a JSON Lines file; bad lines are recorded in result.bad."""
    try:
        with _open_binary(path) as handle:
            for lineno, raw in enumerate(handle, 1):
                if not raw.strip():
                    continue
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    result.bad.append(BadRecord(str(path), lineno, f"not UTF-8 ({err.reason})"))
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    result.bad.append(BadRecord(str(path), lineno, f"bad JSON ({err.msg})"))
                    continue
                try:
                    yield article_from_record(record)
                except ValueError as err:
                    result.bad.append(BadRecord(str(path), lineno, str(err)))
    except (OSError, EOFError, lzma.LZMAError) as err:
        result.bad.append(BadRecord(str(path), 0, f"cannot read file ({err})"))


# --- portal page dumps ----------------------------------------------------------------------

_PAGE_DATE = re.compile(
    r"^(?:Thứ\s*\w+|Chủ\s*nhật),?\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*\|\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$",
    re.IGNORECASE)
_HEADER_DATE = re.compile(r"^(?:Thứ\s*\w+|Chủ\s*nhật),\s*\d{1,2}/\d{1,2}/\d{4},\s*\d{1,2}:\d{2}\s*\[GMT[+-]\d+\]$",
                          re.IGNORECASE)
_VIEWS = re.compile(r"^([\d.,]+)\s*lượt\s*xem$", re.IGNORECASE)
_BOILERPLATE = {"tin cùng chuyên mục", "xem tin theo ngày", "xem thêm", "cổng ttđt tỉnh", "thực thi chính sách",
                "tin liên quan", "tin khác", "bản in", "chia sẻ"}
_MEDIA = re.compile(r"^(?:Video:\s*\S+\.(?:mp4|avi|mov|webm)\S*|\S+\.(?:jpe?g|png|gif|webp|bmp|mp4))$", re.IGNORECASE)
_INLINE_MEDIA = re.compile(r"\b[\w-]+\.(?:JPE?G|PNG|GIF|jpe?g|png|gif|webp|mp4)\b")
_AUTHOR = re.compile(r"^[A-ZĐÂĂÊÔƠƯ][\w]*(?:\s+[A-ZĐÂĂÊÔƠƯ][\w]*){0,4}$")
# A section name the portal prints twice in a row, such as 'Tin A Tin A'.
_SECTION_REPEAT = re.compile(r"^(.{3,80}?)\s+\1$")


def _is_boilerplate(line: str) -> bool:
    """Navigation, media file names and the site's repeated headers."""
    low = line.lower().strip(" .:")
    return low in _BOILERPLATE or bool(_MEDIA.match(line)) or bool(_HEADER_DATE.match(line))


def parse_page(text: str, doc_id: str, source: str = "") -> Article:
    """Extract title, date, views, author and clean body from a portal page dump."""
    text = clean_text(text)
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    published, views, title = None, None, ""
    content: list[str] = []
    for line in lines:
        if (m := _PAGE_DATE.match(line)) and published is None:
            day, month, year, hour, minute, sec = m.groups()
            try:
                published = datetime(int(year), int(month), int(day), int(hour), int(minute), int(sec or 0))
            except ValueError:
                published = None  # an impossible date on the page is not invented into a real one
            continue
        if (m := _VIEWS.match(line)) and views is None:
            views = int(re.sub(r"[.,]", "", m.group(1)))
            continue
        if _is_boilerplate(line) or (_SECTION_REPEAT.match(line) and len(line) < 120):
            continue
        content.append(_INLINE_MEDIA.sub("", line).strip())
    content = [line for line in content if line]
    # The title is the first line that reads like a headline (not a place tag like "Thái Bình").
    for i, line in enumerate(content):
        if len(line.split()) >= 4:
            title = line
            content = content[:i] + content[i + 1:]
            break
    author = ""
    # The author's name closes the article; a photo credit ("Ảnh: …") may follow it.
    while content and (content[-1].startswith("Ảnh:") or _AUTHOR.match(content[-1])) and len(content[-1]) < 40:
        last = content.pop()
        if not last.startswith("Ảnh:") and not author:
            author = last
    body = "\n\n".join(content)
    return Article(id=doc_id, title=title, body=body, published=published, source=source, author=author,
                   views=views)


def read_page(path: Path, result: ReadResult) -> Iterator[Article]:
    """Yield the one article of a portal page dump (id = file name without extension)."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        result.bad.append(BadRecord(str(path), 0, f"cannot read file ({err.strerror})"))
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        result.bad.append(BadRecord(str(path), line, f"not UTF-8 ({err.reason})"))
        return
    article = parse_page(text, path.stem, source="")
    if not article.body:
        result.bad.append(BadRecord(str(path), 1, "no article text found"))
        return
    yield article


# --- sources --------------------------------------------------------------------------------


def _kind(path: Path) -> str | None:
    """'jsonl', 'page' or None for files we do not read."""
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PAGE_SUFFIXES):
        return "page"
    return None


def expand_sources(sources: Iterable[str | Path]) -> list[Path]:
    """Files named or found under folders, sorted; raise SourceError for a missing path."""
    files: list[Path] = []
    for src in sources:
        path = Path(src)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and _kind(p)
                                and not any(part.startswith(".") for part in p.relative_to(path).parts)))
        elif path.is_file():
            if not _kind(path):
                raise SourceError(f"{path}: unknown file type (expected .jsonl, .jsonl.gz, .jsonl.xz or .txt)")
            files.append(path)
        else:
            raise SourceError(f"{path}: no such file or folder")
    return files


def iter_articles(files: Iterable[Path], result: ReadResult) -> Iterator[Article]:
    """Yield articles from every file in order; bad records land in result.bad."""
    for path in files:
        reader = read_jsonl if _kind(path) == "jsonl" else read_page
        yield from reader(path, result)
