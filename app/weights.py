"""Ranking weights in one place; the defaults were tuned on the dev sets by bench/tune.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Weights:
    """Field boosts, clause weights and BM25F parameters."""

    # A word in the title says more about the article than one in the body.
    title: float = 4.0
    abstract: float = 1.5
    body: float = 1.0
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
    # BM25F.
    k1: float = 1.2
    b_title: float = 0.6
    b_abstract: float = 0.6
    b_body: float = 0.75

    @property
    def fields(self) -> dict[str, float]:
        """Boost of each text field."""
        return {"title": self.title, "abstract": self.abstract, "body": self.body}

    @property
    def b(self) -> dict[str, float]:
        """Length normalisation of each text field."""
        return {"title": self.b_title, "abstract": self.b_abstract, "body": self.b_body}


DEFAULT = Weights()
