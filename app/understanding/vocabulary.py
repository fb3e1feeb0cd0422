"""Tone-mark restoration from the index's own vocabulary.

pyvi does not join syllables typed without marks ("cai cach hanh chinh" stays four syllables),
so an unmarked query would lose the precision of words. The index knows which marked words its
folded forms stand for: the folded bigram "cai cach" is almost always "cải_cách". A folded form
is restored only when one marked form clearly dominates it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from indexer.analysis import fold

MAX_WORD_SYLLABLES = 4
WORD_SHARE = 0.6  # the marked word must hold this share of its folded form's documents
SYLLABLE_SHARE = 0.85  # single syllables are more ambiguous (ma: mà, má, mã, ma …)
MIN_DF = 2
# A token longer than this is no mistyped syllable, and each of its ~54n one-slip variants is a string of n
# letters: a 5,000-letter token made 250,000 of them (over a gigabyte) for the did-you-mean.
MAX_CORRECTED_LETTERS = 20


@dataclass(frozen=True)
class Restored:
    """A stretch of query syllables [start, end) read as a marked word or syllable."""

    start: int
    end: int
    text: str  # a word ("cải_cách") or a marked syllable ("người")


class Vocabulary:
    """Folded word -> dominant marked word, and folded syllable -> dominant marked syllable."""

    def __init__(self, words: dict[str, str], syllables: dict[str, str],
                 frequent: list[tuple[str, str, int]] | None = None, syllable_df: dict[str, int] | None = None):
        self.words = words
        self.syllables = syllables
        self.syllable_df = syllable_df or {}  # folded syllable -> documents, for spelling corrections
        # (folded form, marked form, document frequency), sorted by folded form, for autocomplete
        self.frequent = sorted(frequent or [])
        self._keys = [key for key, _, _ in self.frequent]

    def complete(self, prefix: str, limit: int = 8) -> list[str]:
        """The most frequent words (with marks) whose folded form starts with the folded prefix."""
        key = " ".join(fold(prefix).split())
        if not key:
            return []
        start = bisect.bisect_left(self._keys, key)
        matches = []
        for folded, marked, df in self.frequent[start:start + 5000]:
            if not folded.startswith(key):
                break
            matches.append((df, marked))
        matches.sort(key=lambda m: -m[0])
        return list(dict.fromkeys(marked for _, marked in matches))[:limit]

    @classmethod
    def from_counts(cls, word_df: dict[str, int], syllable_df: dict[str, int]) -> Vocabulary:
        """Build the tables from document frequencies of marked words ("cải_cách") and of body
        syllables, folded and marked alike ("cai", "cải")."""
        by_fold: dict[str, dict[str, int]] = {}
        for text, df in word_df.items():
            by_fold.setdefault(fold(text), {})[text] = df
        words, frequent = {}, []
        for key, forms in by_fold.items():
            best, df = max(forms.items(), key=lambda kv: kv[1])
            if df >= MIN_DF:
                frequent.append((key.replace("_", " "), best.replace("_", " "), df))
            if df >= MIN_DF and df >= WORD_SHARE * sum(forms.values()) and fold(best) != best:
                words[key.replace("_", " ")] = best
        folded_df: dict[str, int] = {}
        marked_df: dict[str, tuple[str, int]] = {}
        for text, df in syllable_df.items():
            key = fold(text)
            if key == text:
                folded_df[text] = df
            elif df > marked_df.get(key, ("", 0))[1]:
                marked_df[key] = (text, df)
        syllables = {key: text for key, (text, df) in marked_df.items()
                     if df >= MIN_DF and df >= SYLLABLE_SHARE * folded_df.get(key, df)}
        return cls(words, syllables, frequent, folded_df)

    def correct(self, syllable: str, before: str = "", after: str = "") -> str | None:
        """The known syllable one typing slip away from an unknown one (folded forms): one that makes
        a known word with its neighbours first, then the most frequent."""
        if syllable in self.syllable_df or not syllable.isalpha() or not 2 <= len(syllable) <= MAX_CORRECTED_LETTERS:
            return None
        letters = "abcdefghijklmnopqrstuvwxyz"
        splits = [(syllable[:i], syllable[i:]) for i in range(len(syllable) + 1)]
        candidates = {a + b[1:] for a, b in splits if b}
        candidates |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
        candidates |= {a + c + b[1:] for a, b in splits if b for c in letters}
        candidates |= {a + c + b for a, b in splits for c in letters}
        known = [(f"{before} {c}" in self.words or f"{c} {after}" in self.words, self.syllable_df[c], c)
                 for c in candidates if c in self.syllable_df]
        return max(known)[2] if known else None

    def marked_syllable(self, syllable: str, before: str = "", after: str = "") -> str:
        """The marks of a folded syllable as its neighbours' word says, else its dominant form."""
        if word := self.words.get(f"{before} {syllable}"):
            return word.split("_")[-1]
        if word := self.words.get(f"{syllable} {after}"):
            return word.split("_")[0]
        return self.syllables.get(syllable, syllable)

    def restore(self, folded: list[str]) -> list[Restored]:
        """Marked readings of an unmarked query: longest known words first, then lone syllables."""
        out, i = [], 0
        while i < len(folded):
            for n in range(min(MAX_WORD_SYLLABLES, len(folded) - i), 1, -1):
                word = self.words.get(" ".join(folded[i:i + n]))
                if word:
                    out.append(Restored(i, i + n, word))
                    i += n
                    break
            else:
                syllable = self.syllables.get(folded[i])
                if syllable:
                    out.append(Restored(i, i + 1, syllable))
                i += 1
        return out
