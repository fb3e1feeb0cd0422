"""The Whoosh schema, derived from the field declaration (indexer/fields.py)."""

from __future__ import annotations

from whoosh.fields import DATETIME, ID, NUMERIC, STORED, TEXT, Schema

from indexer.analysis import bigram_analyzer, syllable_analyzer, word_analyzer
from indexer.fields import (
    BIGRAMS,
    DATE_FIELD,
    FACET_FIELDS,
    KINDS,
    STORED_FIELDS,
    SYLLABLES,
    TAG_FIELDS,
    TEXT_NAMES,
    WORDS,
    index_field,
)


def make_schema() -> Schema:
    """Build the schema: per text field, words (stored text), syllables with positions and bigrams."""
    # One analyzer per kind, shared by the fields of that kind (Whoosh pickles it once into the index).
    analyzers = {WORDS: word_analyzer(), SYLLABLES: syllable_analyzer(), BIGRAMS: bigram_analyzer()}
    fields = {
        "id": ID(stored=True, unique=True, sortable=True),
        DATE_FIELD: DATETIME(stored=True, sortable=True),
        # Columns: facet counts read them for every hit.
        **{name: ID(stored=True, sortable=True) for name in FACET_FIELDS},
        **{name: STORED() for name in STORED_FIELDS},
        "views": NUMERIC(stored=True),
        # A column, so an update reads every article's hash without unpickling stored bodies.
        "content_hash": ID(stored=True, sortable=True),
        # Columns of the values joined by TAG_SEPARATOR; the read side splits them once per index version.
        **{name: ID(stored=False, sortable=True) for name in TAG_FIELDS},
    }
    for name in TEXT_NAMES:
        for kind in KINDS:
            # The text is stored once, with the words; phrases are checked on the syllables' positions.
            fields[index_field(name, kind)] = TEXT(analyzer=analyzers[kind], stored=kind is WORDS,
                                                   phrase=kind.positions)
    return Schema(**fields)
