"""Document frequencies of the index's words and body syllables, saved beside each generation.

The read side builds its tone-restoration and spelling tables from them. Reading them from Whoosh's
lexicons walks every term of four fields: 2.5 s of every start-up at 150,000 articles. The writer
saves them after each commit, keyed by the segments they were read from; a reader whose segments
differ (a commit in between) reads the lexicons itself, as before.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from indexer.fields import SYLLABLES, TEXT_NAMES, VOCABULARY_SYLLABLE_FIELD, index_field

FILE = "lexicon.pickle"
WORD_FIELDS = TEXT_NAMES
SYLLABLE_FIELD = index_field(VOCABULARY_SYLLABLE_FIELD, SYLLABLES)


def segment_key(reader) -> list[str]:
    """The ids of the segments a reader reads, which name one committed state of the index."""
    # An index with no segment yet (a build of no article) reads through an EmptyReader, whose segment is None.
    return sorted(seg.segment_id() for leaf, _ in reader.leaf_readers() if (seg := leaf.segment()) is not None)


def doc_frequencies(reader, fieldname: str) -> dict[str, int]:
    """Document frequency of every term of a field, summed over the segments, in term order ({} if no field).

    Each segment's lexicon is read in one sequential pass: Whoosh's multi-segment iteration looked every
    term up again in every segment's on-disk hash table, seconds of start-up for 10,000 articles.
    """
    if fieldname not in reader.schema:
        return {}
    totals: dict[bytes, int] = {}
    for leaf, _ in reader.leaf_readers():
        for btext, info in leaf.iter_field(fieldname):
            totals[btext] = totals.get(btext, 0) + info.doc_frequency()
    # Term order as Whoosh merges it (UTF-8 bytes): ties between forms are settled by first seen.
    return {btext.decode("utf-8"): totals[btext] for btext in sorted(totals)}


def read_counts(reader) -> tuple[dict[str, int], dict[str, int]]:
    """(marked word -> documents, body syllable -> documents), read from the lexicons."""
    word_df: dict[str, int] = {}
    for name in WORD_FIELDS:
        for text, df in doc_frequencies(reader, name).items():
            if "_" in text:
                word_df[text] = max(word_df.get(text, 0), df)
    return word_df, doc_frequencies(reader, SYLLABLE_FIELD)


def save(gen: Path, ix) -> None:
    """Write the counts of the index's committed state into gen (skipped when they are already there)."""
    with ix.reader() as reader:
        key = segment_key(reader)
        if _stored_key(gen) == key:  # a delete without a merge leaves every segment's lexicon as it was
            return
        word_df, syllable_df = read_counts(reader)
    tmp = gen / f".{FILE}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as handle:
            pickle.dump(key, handle, protocol=5)  # first, so that the key is read without the counts
            pickle.dump((word_df, syllable_df), handle, protocol=5)
        os.replace(tmp, gen / FILE)
    except OSError:
        # A full disk after the commit: the index is complete and readers count the lexicons themselves;
        # failing here would report a committed update as lost.
        tmp.unlink(missing_ok=True)


def load(gen: Path, reader) -> tuple[dict[str, int], dict[str, int]] | None:
    """The saved counts when they were read from the reader's very segments, else None."""
    return _read(gen, segment_key(reader))


def _stored_key(gen: Path) -> list[str] | None:
    """The segment ids the saved counts belong to, if any."""
    return _read(gen, None)


def _read(gen: Path, key: list[str] | None):
    """The saved key (key None), or the saved counts if saved for key; None when missing, unreadable
    or saved for other segments (the reader then reads the lexicons)."""
    try:
        with open(gen / FILE, "rb") as handle:
            stored = pickle.load(handle)
            if key is None or stored != key:
                return stored if key is None else None
            counts = pickle.load(handle)
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, AttributeError, ImportError, TypeError):
        return None
    return counts if isinstance(counts, tuple) and len(counts) == 2 else None
