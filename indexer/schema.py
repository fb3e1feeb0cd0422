"""The Whoosh schema: stored article fields, pyvi word fields and syllable fields."""

from __future__ import annotations

from whoosh.fields import DATETIME, ID, NUMERIC, STORED, TEXT, Schema

from indexer.analysis import bigram_analyzer, syllable_analyzer, word_analyzer

# Searchable text fields; each has a word field (same name), a syllable field (name + "_s": folded
# and marked syllables at the same positions) and a bigram field (name + "_b": folded syllable pairs).
TEXT_FIELDS = ("title", "abstract", "body")
SYLLABLE_SUFFIX = "_s"
BIGRAM_SUFFIX = "_b"


def make_schema() -> Schema:
    """Build the schema: words, syllables with positions (for phrases) and bigrams per text field."""
    words = word_analyzer()
    sylls = syllable_analyzer()
    pairs = bigram_analyzer()
    fields = {
        "id": ID(stored=True, unique=True, sortable=True),
        "published": DATETIME(stored=True, sortable=True),
        "source": ID(stored=True, sortable=True),  # columns: facet counts read them for every hit
        "category": ID(stored=True, sortable=True),
        "url": STORED(),
        "author": STORED(),
        "views": NUMERIC(stored=True),
        # A column, so an update reads every article's hash without unpickling stored bodies.
        "content_hash": ID(stored=True, sortable=True),
    }
    for name in TEXT_FIELDS:
        fields[name] = TEXT(analyzer=words, stored=True, phrase=False)  # phrases come from _s
        fields[name + SYLLABLE_SUFFIX] = TEXT(analyzer=sylls, stored=False, phrase=True)
        fields[name + BIGRAM_SUFFIX] = TEXT(analyzer=pairs, stored=False, phrase=False)
    return Schema(**fields)
