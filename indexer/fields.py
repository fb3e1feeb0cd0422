"""The one declaration of what an article is indexed as: text fields, token kinds, stored and facet fields.

Every other place (the Whoosh schema, the Typesense collection, the query planner, the ranking
weights, the lexicon counts, both search backends) reads these names; none writes them again.
Adding a text field is one entry in TEXT_FIELDS (and the Article attribute that carries it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextField:
    """A searchable text of an article, with its default ranking boost and BM25 length normalisation."""

    name: str
    boost: float
    b: float


@dataclass(frozen=True)
class Kind:
    """A way a text is turned into tokens; each text field is indexed once per kind."""

    name: str
    suffix: str  # Whoosh field name = text field name + suffix
    code: str  # Typesense field name = text field name + "_" + code
    positions: bool  # kept with positions (phrases and exclusions are checked on this kind)


# A word in the title says more about the article than one in the body (boosts tuned by bench/tune.py).
TEXT_FIELDS: tuple[TextField, ...] = (
    TextField("title", boost=4.0, b=0.6),
    TextField("abstract", boost=1.5, b=0.6),
    TextField("body", boost=1.0, b=0.75),
)
TEXT_NAMES: tuple[str, ...] = tuple(f.name for f in TEXT_FIELDS)

WORDS = Kind("words", suffix="", code="w", positions=False)  # pyvi words with marks: cải_cách
SYLLABLES = Kind("syllables", suffix="_s", code="s", positions=True)  # folded and marked syllables: cai, cải
BIGRAMS = Kind("bigrams", suffix="_b", code="b", positions=False)  # folded syllable pairs: "cai cach"
KINDS: tuple[Kind, ...] = (WORDS, SYLLABLES, BIGRAMS)

# Stored with the article and shown, never searched as text.
STORED_FIELDS = ("url", "author")
# One value per article, filtered on and counted as facets.
FACET_FIELDS = ("source", "category")
DATE_FIELD = "published"
# Values the indexer derives from an article (indexer/enrich.py), several per article, filtered on and
# counted as facets: the current provinces it is about, the legal documents it cites (normalised numbers).
TAG_FIELDS = ("province", "document")
TAG_SEPARATOR = "\n"  # between the values of a tag field where a store keeps them as one string
# What a hit without snippet shows: the listing of a result page, a bulk answer, a feed entry.
LISTING_FIELDS = ("id", "title", "url", "source", "category", "published")
# Every field of an article as stored and returned by GET /api/documents/{id}.
ARTICLE_FIELDS = ("id", *TEXT_NAMES, *STORED_FIELDS, *FACET_FIELDS, DATE_FIELD, "views", *TAG_FIELDS)

# The counts the tone-restoration vocabulary is built from: marked words of every text field, and the
# syllables (folded and marked) of the body.
VOCABULARY_SYLLABLE_FIELD = "body"


def index_field(text: str, kind: Kind) -> str:
    """The Whoosh field holding one text field's tokens of one kind ("body", SYLLABLES -> "body_s")."""
    return text + kind.suffix


def typesense_field(text: str, kind: Kind) -> str:
    """The Typesense field holding one text field's tokens of one kind ("body", SYLLABLES -> "body_s")."""
    return f"{text}_{kind.code}"


def text_field(name: str) -> TextField:
    """The declaration of a text field by name; KeyError for an unknown one."""
    for field in TEXT_FIELDS:
        if field.name == name:
            return field
    raise KeyError(name)
