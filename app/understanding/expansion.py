"""Acronym expansion both ways: UBND -> ủy ban nhân dân, and ủy ban nhân dân -> UBND."""

from __future__ import annotations

from dataclasses import dataclass

from indexer.acronyms import GLOSSARY
from indexer.analysis import analyse


@dataclass(frozen=True)
class Expansion:
    """One expansion applied to a query, as the API reports it."""

    matched: str  # what the query said
    added: str  # what was searched as well

    def to_dict(self) -> dict:
        return {"from": self.matched, "to": self.added}


def _find(seq: list[str], part: tuple[str, ...]) -> int:
    """Index of part inside seq, or -1."""
    n, first = len(part), part[0]
    # Slice only where the first syllable matches: every query is scanned for every entry of the table.
    for i in range(len(seq) - n + 1):
        if seq[i] == first and tuple(seq[i:i + n]) == part:
            return i
    return -1


class Expander:
    """Finds acronyms and full names in an analysed query."""

    def __init__(self, table: dict[str, list[str]]):
        self.entries = []  # (acronym, acronym syllables, curated?, [(name, name syllables)])
        for acronym, names in table.items():
            key = tuple(analyse(acronym).folded)
            named = [(name, tuple(analyse(name).folded)) for name in names]
            named = [(n, s) for n, s in named if len(s) >= 2]
            if key and named:
                self.entries.append((acronym, key, acronym in GLOSSARY, named))
        # Entry numbers by the first syllable of the acronym or of one of its names: an entry can apply only
        # to a query holding one of them, and a query holds a handful of the table's first syllables.
        self._by_first: dict[str, list[int]] = {}
        for number, (_, key, _, named) in enumerate(self.entries):
            for first in {key[0], *(syllables[0] for _, syllables in named)}:
                self._by_first.setdefault(first, []).append(number)

    def expand(self, text: str, folded: list[str]) -> list[Expansion]:
        """Expansions for a query: acronyms it uses, and full names it spells out."""
        upper_tokens = {tok.strip(".,;:()").lower() for tok in text.split() if tok.isupper()}
        found: list[Expansion] = []
        candidates = sorted({number for syllable in set(folded) for number in self._by_first.get(syllable, ())})
        for acronym, key, curated, named in (self.entries[number] for number in candidates):
            at = _find(folded, key)
            # A mined acronym expands only when typed in capitals: "AN" is an acronym, "an" a word.
            if at >= 0 and (curated or acronym in upper_tokens):
                found.extend(Expansion(acronym.upper(), name) for name, _ in named[:2])
                continue
            for name, syllables in named:
                if len(syllables) >= 2 and _find(folded, syllables) >= 0:
                    found.append(Expansion(name, acronym.upper()))
                    break
        return found
