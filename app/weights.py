"""Ranking weights in one place; the defaults were tuned on the dev sets by bench/tune.py.

Field boosts and length normalisation default to the declaration of the text fields
(indexer/fields.py); the attributes named after a field override them for tuning.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexer.fields import TEXT_FIELDS, text_field


@dataclass(frozen=True)
class Weights:
    """Field boosts, clause weights and BM25F parameters."""

    title: float = text_field("title").boost
    abstract: float = text_field("abstract").boost
    body: float = text_field("body").boost
    # Clause weights, per query concept.
    word: float = 1.0  # a pyvi word with its marks
    marked_syllable: float = 0.8  # a syllable with the right marks, where segmentation differed
    folded_syllable: float = 0.05  # the same syllable without marks: found, ranked below exact accents
    unmarked_syllable: float = 1.4  # the syllables of a query typed without marks
    bigram: float = 0.5  # consecutive query syllables found together
    restored_word: float = 0.3  # a word whose marks were restored from the index's vocabulary
    restored_syllable: float = 0.0  # a lone syllable whose marks were restored
    acronym: float = 0.3  # the other side of an acronym (UBND <-> ủy ban nhân dân)
    phrase_strength: float = 1.5  # a quoted phrase counts more than free text
    # An article citing a document number the query names ranks above any that only shares words with it.
    cited_document: float = 100.0
    # BM25F.
    k1: float = 1.2
    b_title: float = text_field("title").b
    b_abstract: float = text_field("abstract").b
    b_body: float = text_field("body").b

    @property
    def fields(self) -> dict[str, float]:
        """Boost of each text field."""
        return {f.name: getattr(self, f.name, f.boost) for f in TEXT_FIELDS}

    @property
    def b(self) -> dict[str, float]:
        """Length normalisation of each text field."""
        return {f.name: getattr(self, f"b_{f.name}", f.b) for f in TEXT_FIELDS}


DEFAULT = Weights()
