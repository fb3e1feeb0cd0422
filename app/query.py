"""Turn what a user typed into a Whoosh query, analysed exactly like the documents.

The query language is small and forgiving: plain words, "quoted phrases" and -exclusions.
Anything else (unbalanced quotes, stray operators, punctuation) is searched as plain text,
never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from whoosh import query as wq

from indexer.analysis import analyse, clean_text, has_marks
from indexer.schema import SYLLABLE_SUFFIX

# BM25F field weights: a word in the title says more about the article than one in the body.
FIELD_BOOSTS = {"title": 3.0, "abstract": 1.5, "body": 1.0}
MARKED_SYLLABLE_WEIGHT = 0.5  # a syllable with the right marks, where segmentation differed
FOLDED_WEIGHT = 0.2  # the same syllable without marks: found, but ranked below exact accents
PHRASE_WEIGHT = 1.5  # consecutive query syllables found together

_PART_RE = re.compile(r'"([^"]*)"|(\S+)')


@dataclass
class ParsedQuery:
    """The parts of a user query: free text, quoted phrases and excluded terms."""

    text: str = ""
    phrases: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.text.strip() or self.phrases)


def parse(raw: str) -> ParsedQuery:
    """Split a raw query into text, "phrases" and -exclusions; never raises."""
    raw = clean_text(raw)
    if raw.count('"') % 2:
        raw = raw.replace('"', " ")  # an unbalanced quote is just a character
    parsed, plain = ParsedQuery(), []
    for m in _PART_RE.finditer(raw):
        if m.group(1) is not None:
            if m.group(1).strip():
                parsed.phrases.append(m.group(1).strip())
            continue
        part = m.group(2)
        # "-x" excludes only after something positive; "-x" alone is searched as text
        if part.startswith("-") and any(ch.isalnum() for ch in part) and (plain or parsed.phrases):
            parsed.excluded.append(part.lstrip("-"))
        else:
            plain.append(part)
    parsed.text = " ".join(plain)
    return parsed


@dataclass
class QueryPlan:
    """A Whoosh query plus what the user should see about how it was read."""

    query: wq.Query
    highlight_terms: set[tuple[str, str]]
    expansions: list[dict] = field(default_factory=list)
    empty: bool = False


def _word_terms(words: list[str], boost: float = 1.0) -> list[wq.Query]:
    """One disjunction per word over the word fields, title weighted above body."""
    return [wq.Or([wq.Term(f, w, boost=b * boost) for f, b in FIELD_BOOSTS.items()]) for w in words]


def _syllable_terms(sylls: list[str], boost: float) -> list[wq.Query]:
    """One disjunction per syllable (folded or marked) over the syllable fields."""
    return [wq.Or([wq.Term(f + SYLLABLE_SUFFIX, s, boost=b * boost) for f, b in FIELD_BOOSTS.items()])
            for s in sylls]


def _phrase(sylls: list[str], boost: float) -> wq.Query:
    """The syllables in order, in any text field."""
    if len(sylls) == 1:
        return _syllable_terms(sylls, boost)[0]
    return wq.Or([wq.Phrase(f + SYLLABLE_SUFFIX, sylls, boost=b * boost) for f, b in FIELD_BOOSTS.items()])


def _syllable_highlights(sylls: list[str]) -> set[tuple[str, str]]:
    """(field, term) pairs to mark in snippets for these syllables."""
    return {(f + SYLLABLE_SUFFIX, s) for s in sylls for f in FIELD_BOOSTS}


def _free_text(text: str) -> tuple[list[wq.Query], set[tuple[str, str]]]:
    """Scored clauses for free text: words and marked syllables when typed with marks, folded otherwise."""
    analysed = analyse(text)
    if not analysed.syllables:
        return [], set()
    folded = analysed.folded
    if has_marks(text):
        marked = analysed.marked
        should = _word_terms([w for w, _, _ in analysed.words])
        should += _syllable_terms(marked, MARKED_SYLLABLE_WEIGHT)
        should += _syllable_terms(folded, FOLDED_WEIGHT)
        should += [_phrase(pair, PHRASE_WEIGHT) for pair in zip(marked, marked[1:])]
        highlight = _syllable_highlights(marked)
    else:
        should = _syllable_terms(folded, 1.0)
        should += [_phrase(pair, PHRASE_WEIGHT) for pair in zip(folded, folded[1:])]
        highlight = _syllable_highlights(folded)
    return should, highlight


def _exact(text: str) -> tuple[wq.Query | None, set[tuple[str, str]]]:
    """A quoted phrase: its syllables in order, with their marks when it was typed with marks."""
    analysed = analyse(text)
    sylls = analysed.marked if has_marks(text) else analysed.folded
    if not sylls:
        return None, set()
    return _phrase(list(sylls), 1.0), _syllable_highlights(sylls)


def build(parsed: ParsedQuery) -> QueryPlan:
    """Build the ranked query: free text scored, phrases required, exclusions removed."""
    should, highlight = _free_text(parsed.text) if parsed.text.strip() else ([], set())
    must = []
    for phrase in parsed.phrases:
        clause, marks = _exact(phrase)
        if clause is not None:
            must.append(clause)
            highlight |= marks
    if not should and not must:
        return QueryPlan(wq.NullQuery, set(), empty=True)
    if must:
        positive: wq.Query = wq.And(must) if not should else wq.AndMaybe(wq.And(must), wq.Or(should))
    else:
        positive = wq.Or(should)
    # "-Thận" removes articles with that syllable (names are one pyvi word, so words would miss them)
    excluded = [clause for clause, _ in map(_exact, parsed.excluded) if clause is not None]
    if excluded:
        positive = wq.AndNot(positive, wq.Or(excluded))
    return QueryPlan(positive, highlight)
