"""Turn a parsed query into a backend-neutral Ranking, analysed exactly like the documents.

Typed with marks, a query scores pyvi words, marked syllables, bigrams and (lightly) folded
syllables; typed without, folded syllables and bigrams plus the words whose marks the index's
vocabulary restores. Acronyms expand both ways. Quoted phrases are required and ranked; exclusions
remove articles. What to score is decided here; how fields and postings are read is the backend's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from app.understanding.expansion import Expansion
from app.understanding.parse import ParsedQuery
from app.weights import DEFAULT, Weights
from indexer.analysis import analyse as _analyse
from indexer.analysis import has_marks
from indexer.backend import Clause, Phrase, Ranking, TagBoost, check_deadline
from indexer.fields import BIGRAMS, SYLLABLES, WORDS, Kind
from indexer.legal_refs import query_refs

# One text is analysed several times per query (a phrase is required and ranked; a relaxed phrase is built
# again; acronym names recur across queries) and pyvi's CRF is the costliest step: keep recent analyses.
# Analysed is immutable and lru_cache is thread-safe; bounded, as a 500-character query's analysis is ~50 kB.
analyse = lru_cache(maxsize=256)(_analyse)


@dataclass
class QueryPlan:
    """What to rank, what must and must not match, and what to mark in snippets."""

    ranking: Ranking
    highlight_terms: set[str]  # syllables to mark: with marks, or folded when typed without
    expansions: list[dict] = field(default_factory=list)
    empty: bool = False


def _text_clauses(text: str, w: Weights, context=None,
                  strength: float = 1.0) -> tuple[list[Clause], set[str], list[Expansion]]:
    """Scored clauses for text: words and marked syllables when typed with marks, folded otherwise.

    context (a backend snapshot) lends the index's vocabulary to restore marks and its acronym table.
    """
    analysed = analyse(text)
    if not analysed.syllables:
        return [], set(), []

    def clause(weight: float, kind: Kind, term: str) -> Clause:
        return Clause(weight * strength, kind, term)

    clauses = [clause(w.bigram, BIGRAMS, bg) for bg in analysed.bigrams]
    if has_marks(text):
        clauses += [clause(w.word, WORDS, word) for word, _, _ in analysed.words]
        clauses += [clause(w.marked_syllable, SYLLABLES, s) for s in analysed.marked]
        clauses += [clause(w.folded_syllable, SYLLABLES, s) for s in analysed.folded]
        highlight = set(analysed.marked)
    else:
        clauses += [clause(w.unmarked_syllable, SYLLABLES, s) for s in analysed.folded]
        highlight = set(analysed.folded)
        if context is not None and (w.restored_word or w.restored_syllable):
            for r in context.vocabulary().restore(analysed.folded):
                if "_" in r.text:
                    clauses.append(clause(w.restored_word, WORDS, r.text))
                else:
                    clauses.append(clause(w.restored_syllable, SYLLABLES, r.text))
    expansions = context.expander().expand(text, analysed.folded) if context is not None and w.acronym else []
    for exp in expansions:
        added = analyse(exp.added)
        if exp.added.isupper():
            # The acronym stands for every syllable of the full name the query spelled out.
            weight = w.acronym * strength * len(analyse(exp.matched).folded)
            clauses.append(Clause(weight, SYLLABLES, "".join(added.folded)))
            highlight |= set(added.folded)
            continue
        # Words and bigrams of the full name, not its syllables: "ủy" alone is not "ủy ban nhân dân".
        clauses += [clause(w.acronym, BIGRAMS, bg) for bg in added.bigrams]
        clauses += [clause(w.acronym, WORDS, word) for word, _, _ in added.words]
    return clauses, highlight, expansions


def phrase(text: str) -> Phrase | None:
    """The syllables of text in order, to be matched with their marks when typed with marks."""
    analysed = analyse(text)
    if not analysed.syllables:
        return None
    return Phrase(tuple(analysed.marked), tuple(analysed.folded), has_marks(text))


def build(parsed: ParsedQuery, w: Weights = DEFAULT, context=None, *, deadline: float | None = None) -> QueryPlan:
    """Build the plan: free text and phrases ranked, phrases required, exclusions removed.

    Each phrase and exclusion is segmented on its own: past deadline, SearchTimeout stops the loop.
    """
    clauses, highlight, expansions = _text_clauses(parsed.text, w, context) if parsed.text.strip() \
        else ([], set(), [])
    required = []
    for text in parsed.phrases:
        check_deadline(deadline)
        if (found := phrase(text)) is not None:
            required.append(found)
            highlight |= set(found.syllables)
            clauses += _text_clauses(text, w, None, w.phrase_strength)[0]
    if not clauses:
        return QueryPlan(Ranking([]), set(), empty=True)
    # "-Thận" removes articles with that syllable (names are one pyvi word, so words would miss them)
    excluded = []
    for text in parsed.excluded:
        check_deadline(deadline)
        if (found := phrase(text)) is not None:
            excluded.append(found)
    return QueryPlan(Ranking(clauses, required, excluded, boosts=w.fields, k1=w.k1, b=w.b,
                             tag_boosts=cited_documents(parsed, w)), highlight, [e.to_dict() for e in expansions])


def cited_documents(parsed: ParsedQuery, w: Weights) -> list[TagBoost]:
    """Boosts for the articles citing a document number the query is or contains (whole or in part)."""
    if not w.cited_document:
        return []
    text = " ".join([parsed.text, *parsed.phrases])
    if not any(ch.isdigit() for ch in text):  # every document number has digits: most queries stop here
        return []
    return [TagBoost("document", w.cited_document, (ref.number,) if ref.number else (), ref.prefixes, ref.kind)
            for ref in query_refs(text)]
