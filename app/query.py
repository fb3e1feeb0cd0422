"""Turn what a user typed into a Whoosh query, analysed exactly like the documents.

The query language is small and forgiving: plain words, "quoted phrases" and -exclusions.
Anything else (unbalanced quotes, stray operators, punctuation) is searched as plain text,
never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from whoosh import query as wq

from app.engine import Clause, Ranking, check_deadline
from app.expansion import Expansion
from app.weights import DEFAULT, Weights
from indexer.analysis import analyse as _analyse
from indexer.analysis import clean_text, has_marks
from indexer.schema import BIGRAM_SUFFIX, SYLLABLE_SUFFIX

TEXT_FIELDS = ("title", "abstract", "body")

_PART_RE = re.compile(r'"([^"]*)"|(\S+)')

# One text is analysed several times per query (a phrase is required and ranked; a relaxed phrase is built
# again; acronym names recur across queries) and pyvi's CRF is the costliest step: keep recent analyses.
# Analysed is immutable and lru_cache is thread-safe; bounded, as a 500-character query's analysis is ~50 kB.
analyse = lru_cache(maxsize=256)(_analyse)


@dataclass
class ParsedQuery:
    """The parts of a user query: free text, quoted phrases and excluded terms."""

    text: str = ""
    phrases: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)


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
    """What to rank, what must and must not match, and what to mark in snippets."""

    ranking: Ranking
    highlight_terms: set[str]  # syllables to mark: with marks, or folded when typed without
    expansions: list[dict] = field(default_factory=list)
    empty: bool = False


def _clause(weight: float, suffix: str, term: str, w: Weights) -> Clause:
    """One term looked up in the title, abstract and body variants of a field kind."""
    return Clause(weight, [(f, term, b) for f, b in _fields(w, suffix)])


@lru_cache(maxsize=64)
def _fields(w: Weights, suffix: str) -> tuple[tuple[str, float], ...]:
    """(field + suffix, boost) of each text field: Weights.fields builds a new dict per call, 40 clauses a query."""
    return tuple((f + suffix, b) for f, b in w.fields.items())


def _syllable_highlights(sylls: list[str]) -> set[str]:
    """Syllables to mark in snippets."""
    return set(sylls)


def _text_clauses(text: str, w: Weights, context=None,
                  strength: float = 1.0) -> tuple[list[Clause], set[str], list[Expansion]]:
    """Scored clauses for text: words and marked syllables when typed with marks, folded otherwise.

    context (the engine) lends the index's vocabulary to restore marks and its acronym table.
    """
    analysed = analyse(text)
    if not analysed.syllables:
        return [], set(), []
    clauses = [_clause(w.bigram * strength, BIGRAM_SUFFIX, bg, w) for bg in analysed.bigrams]
    if has_marks(text):
        clauses += [_clause(w.word * strength, "", word, w) for word, _, _ in analysed.words]
        clauses += [_clause(w.marked_syllable * strength, SYLLABLE_SUFFIX, s, w) for s in analysed.marked]
        clauses += [_clause(w.folded_syllable * strength, SYLLABLE_SUFFIX, s, w) for s in analysed.folded]
        highlight = _syllable_highlights(analysed.marked)
    else:
        clauses += [_clause(w.unmarked_syllable * strength, SYLLABLE_SUFFIX, s, w) for s in analysed.folded]
        highlight = _syllable_highlights(analysed.folded)
        if context is not None and (w.restored_word or w.restored_syllable):
            for r in context.vocabulary().restore(analysed.folded):
                if "_" in r.text:
                    clauses.append(_clause(w.restored_word * strength, "", r.text, w))
                else:
                    clauses.append(_clause(w.restored_syllable * strength, SYLLABLE_SUFFIX, r.text, w))
    expansions = context.expander().expand(text, analysed.folded) if context is not None and w.acronym else []
    for exp in expansions:
        added = analyse(exp.added)
        if exp.added.isupper():
            # The acronym stands for every syllable of the full name the query spelled out.
            weight = w.acronym * strength * len(analyse(exp.matched).folded)
            clauses.append(_clause(weight, SYLLABLE_SUFFIX, "".join(added.folded), w))
            highlight |= _syllable_highlights(added.folded)
            continue
        # Words and bigrams of the full name, not its syllables: "ủy" alone is not "ủy ban nhân dân".
        clauses += [_clause(w.acronym * strength, BIGRAM_SUFFIX, bg, w) for bg in added.bigrams]
        clauses += [_clause(w.acronym * strength, "", word, w) for word, _, _ in added.words]
    return clauses, highlight, expansions


def _phrase_query(text: str) -> tuple[wq.Query | None, set[str]]:
    """A Whoosh query for the syllables in order, with their marks when typed with marks."""
    analysed = analyse(text)
    sylls = analysed.marked if has_marks(text) else analysed.folded
    if not sylls:
        return None, set()
    if len(sylls) == 1:
        q = wq.Or([wq.Term(f + SYLLABLE_SUFFIX, sylls[0]) for f in TEXT_FIELDS])
    else:
        q = wq.Or([wq.Phrase(f + SYLLABLE_SUFFIX, list(sylls)) for f in TEXT_FIELDS])
    return q, _syllable_highlights(sylls)


def build(parsed: ParsedQuery, w: Weights = DEFAULT, context=None, *, deadline: float | None = None) -> QueryPlan:
    """Build the plan: free text and phrases ranked, phrases required, exclusions removed.

    Each phrase and exclusion is segmented on its own: past deadline, SearchTimeout stops the loop.
    """
    clauses, highlight, expansions = _text_clauses(parsed.text, w, context) if parsed.text.strip() \
        else ([], set(), [])
    required = []
    for phrase in parsed.phrases:
        check_deadline(deadline)
        q, marks = _phrase_query(phrase)
        if q is not None:
            required.append(q)
            highlight |= marks
            clauses += _text_clauses(phrase, w, None, w.phrase_strength)[0]
    if not clauses:
        return QueryPlan(Ranking([]), set(), empty=True)
    # "-Thận" removes articles with that syllable (names are one pyvi word, so words would miss them)
    excluded = []
    for term in parsed.excluded:
        check_deadline(deadline)
        if (q := _phrase_query(term)[0]) is not None:
            excluded.append(q)
    return QueryPlan(Ranking(clauses, required, excluded, k1=w.k1, b=w.b), highlight,
                     [e.to_dict() for e in expansions])
