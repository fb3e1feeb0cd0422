"""What tracuu stores in Typesense, shared by the indexer (writes) and the app (reads).

Typesense does not know Vietnamese words, so it never sees raw text to tokenize: every searchable
field is a space-separated list of tokens produced by indexer.analysis, encoded to plain ASCII
letters and digits (VNI-style: "cải_cách" -> "ca3ica1ch") so that Typesense's own normalisation,
which drops diacritics and punctuation, cannot merge "đường" with "dương" or split a compound word.
Queries are analysed and encoded by the same functions.

Generations: a build writes a new collection "<alias>-<ns>", then points the alias at it (Typesense
aliases switch atomically) and drops the old one. Per-collection metadata (vocabulary for tone
restoration, mined acronyms, input hash) lives in one document of the META collection, named after
the collection, so any app process on any machine finds everything in the cluster.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
import socket
import time
import unicodedata
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from indexer.analysis import analyse, fold
from indexer.backend import BackendSettings, IndexProblem
from indexer.enrich import tags
from indexer.fields import (
    BIGRAMS,
    FACET_FIELDS,
    KINDS,
    STORED_FIELDS,
    SYLLABLES,
    TAG_FIELDS,
    TEXT_NAMES,
    VOCABULARY_SYLLABLE_FIELD,
    WORDS,
    typesense_field,
)
from indexer.readers import Article

META = "tracuu_meta"
NO_DATE_OLDEST = 2**62  # undated articles sort last when the oldest come first

_MARKS = {"\u0301": "1", "\u0300": "2", "\u0309": "3", "\u0303": "4", "\u0323": "5",
          "\u0302": "6", "\u031b": "7", "\u0306": "8"}
_NAME_RE = re.compile(r"[^a-z0-9]+")


class TypesenseProblem(IndexProblem):
    """The cluster cannot be reached or refused a request; the message says which and why."""


def encode(token: str) -> str:
    """One analysed token as ASCII letters and digits, marks as VNI digits ("đường" -> "d9u7o72ng")."""
    out = []
    for ch in unicodedata.normalize("NFD", token.lower()):
        if ch in _MARKS:
            out.append(_MARKS[ch])
        elif ch == "đ":
            out.append("d9")
        elif ch.isalnum():
            out.append(ch)
        # "_" between a word's syllables, " " in a bigram and punctuation are dropped
    return "".join(out)


def document_id(doc_id: str) -> str:
    """Typesense's id for an article id (theirs allows fewer characters than ours)."""
    return hashlib.sha1(doc_id.encode("utf-8")).hexdigest()


def to_document(article: Article, content_hash: str) -> tuple[dict, set[str], set[str]]:
    """A Typesense document for an article, with the words and body syllables the vocabulary counts."""
    doc: dict[str, Any] = {"id": document_id(article.id), "doc_id": article.id, "content_hash": content_hash}
    words: set[str] = set()
    syllables: set[str] = set()
    for name in TEXT_NAMES:
        text = getattr(article, name) or ""
        doc[name] = text
        analysed = analyse(text)
        tokens = {WORDS: [w for w, _, _ in analysed.words], SYLLABLES: analysed.folded, BIGRAMS: analysed.bigrams}
        words.update(w for w in tokens[WORDS] if "_" in w)
        if name == VOCABULARY_SYLLABLE_FIELD:
            syllables.update(analysed.folded)
            syllables.update(analysed.marked)
        for kind in KINDS:
            doc[typesense_field(name, kind)] = " ".join(t for t in map(encode, tokens[kind]) if t)
    for name in (*FACET_FIELDS, *STORED_FIELDS):
        if value := getattr(article, name):
            doc[name] = value
    if article.views is not None:
        doc["views"] = article.views
    doc.update(tags(article))
    published: datetime | None = article.published
    if published:
        doc["published"] = published.isoformat()
        # Naive dates are taken as written (UTC), so the machine's time zone cannot move them.
        stamp = calendar.timegm(published.utctimetuple() if published.tzinfo else published.timetuple())
        doc["published_ts"] = doc["oldest_key"] = stamp
        doc["year"], doc["month"] = f"{published.year:04d}", f"{published.year:04d}-{published.month:02d}"
    else:
        doc["published_ts"], doc["oldest_key"] = 0, NO_DATE_OLDEST
    return doc, words, syllables


def collection_schema(name: str) -> dict:
    """Only what is searched, filtered, faceted or sorted is declared; other fields are just stored."""
    fields: list[dict] = []
    for text in TEXT_NAMES:
        fields += [{"name": typesense_field(text, kind), "type": "string"} for kind in KINDS]
    fields += [{"name": f, "type": "string", "facet": True, "optional": True}
               for f in (*FACET_FIELDS, "year", "month")]
    fields += [{"name": f, "type": "string[]", "facet": True, "optional": True} for f in TAG_FIELDS]
    fields += [{"name": "published_ts", "type": "int64"}, {"name": "oldest_key", "type": "int64"}]
    return {"name": name, "fields": fields, "token_separators": [], "symbols_to_index": []}


META_SCHEMA = {"name": META, "fields": [{"name": "alias", "type": "string"}]}


def alias_name(index_dir: Path) -> str:
    """The alias an index folder stands for: its name plus a hash of its full path (unique, stable)."""
    path = Path(index_dir).resolve()
    stem = _NAME_RE.sub("-", fold(path.name.lower())).strip("-")[:40] or "index"
    return f"tracuu-{stem}-{hashlib.sha1(str(path).encode('utf-8')).hexdigest()[:10]}"


def connect(settings: BackendSettings, retries: int | None = None):
    """A Typesense client over every node of the cluster (it fails over between them)."""
    import typesense

    # The 2.x client warns on each call that its sync classes change in server v30; we speak to 0.24.
    warnings.filterwarnings("ignore", message=r"Sync\w+ is deprecated on v30", category=DeprecationWarning)
    if not settings.typesense_api_key:
        raise TypesenseProblem("TRACUU_TYPESENSE_API_KEY is not set (the key the cluster was started with)")
    return typesense.Client({
        "nodes": settings.nodes,
        "api_key": settings.typesense_api_key,
        "connection_timeout_seconds": settings.typesense_timeout,
        "num_retries": max(3, 2 * len(settings.nodes)) if retries is None else retries,
        "retry_interval_seconds": 0.5,
        "healthcheck_interval_seconds": 5,
    })


def live_collection(client, alias: str) -> str | None:
    """The collection an alias points at, or None when there is none."""
    import typesense.exceptions as tse

    try:
        return client.aliases[alias].retrieve()["collection_name"]
    except tse.ObjectNotFound:
        return None


def read_meta(client, collection: str) -> dict:
    """The metadata of a collection: counts for the vocabulary, mined acronyms, input hash."""
    import typesense.exceptions as tse

    try:
        doc = client.collections[META].documents[collection].retrieve()
    except tse.ObjectNotFound:
        return {}
    try:
        return json.loads(doc.get("data", "{}"))
    except ValueError:
        return {}


def host_id() -> str:
    """This machine, for `drop --orphans`: host name plus machine id (two hosts may share a name)."""
    try:
        machine = Path("/etc/machine-id").read_text(encoding="ascii").strip()
    except OSError:
        machine = ""
    return f"{socket.gethostname()}:{machine}"


def write_meta(client, alias: str, collection: str, data: dict, folder: Path | None = None) -> None:
    """Store a collection's metadata (creating the META collection on first use)."""
    import typesense.exceptions as tse

    try:
        client.collections.create(META_SCHEMA)
    except tse.ObjectAlreadyExists:
        pass
    # Folder and host let `indexer drop --orphans` find collections whose index folder is gone.
    # The stamp tells readers that the metadata changed (an update that replaced articles leaves the count as
    # it was): they look at it alone, not at the whole vocabulary.
    client.collections[META].documents.upsert({"id": collection, "alias": alias, "folder": str(folder or ""),
                                               "host": host_id(), "stamp": str(time.time_ns()),
                                               "data": json.dumps(data, ensure_ascii=False)})


def meta_stamp(client, collection: str) -> str:
    """The stamp of a collection's metadata ("" for none, or metadata written before stamps)."""
    found = client.multi_search.perform({"searches": [{"collection": META, "q": "*", "filter_by": f"id:={collection}",
                                                       "include_fields": "stamp", "per_page": 1}]}, {})
    hits = found["results"][0].get("hits", [])
    return str(hits[0]["document"].get("stamp", "")) if hits else ""
