"""What the index's vocabulary suggests for a query: restored tone marks, mended typing slips, completions."""

from __future__ import annotations

from app.understanding.plan import analyse
from app.understanding.typing_keys import decode_query
from app.understanding.vocabulary import Vocabulary
from indexer.analysis import fold, has_marks


def restored_query(q: str, vocabulary: Vocabulary) -> str | None:
    """The query with tone marks restored from the index's vocabulary ("cai cach" -> "cải cách")."""
    if has_marks(q) or '"' in q or "-" in q:
        return None
    folded = analyse(q).folded
    if not folded:
        return None
    restored = vocabulary.restore(folded)
    covered = sum(r.end - r.start for r in restored)
    if covered < len(folded) or not any("_" in r.text for r in restored):
        return None  # only a query whose every syllable has one clear reading
    return " ".join(r.text.replace("_", " ") for r in restored)


def corrected_query(q: str, vocabulary: Vocabulary) -> str | None:
    """The query with its typing slips mended: each syllable the index never saw, replaced by the
    most frequent known syllable one slip away (marks restored when the query had none)."""
    if '"' in q:
        return None
    words, changed, marked = q.split(), False, has_marks(q)
    folded = [fold(w) for w in words]
    for i, word in enumerate(folded):
        before, after = folded[i - 1] if i else "", folded[i + 1] if i + 1 < len(folded) else ""
        if word.isalpha() and (fixed := vocabulary.correct(word, before, after)):
            words[i] = vocabulary.marked_syllable(fixed, before, after) if marked else fixed
            folded[i], changed = fixed, True
    if not changed:
        return None
    candidate = " ".join(words)
    return restored_query(candidate, vocabulary) or candidate


def typed_keys(q: str, vocabulary: Vocabulary) -> str | None:
    """The query decoded when it was typed with Telex or VNI keys left in ("cari cachs" -> "cải cách"), or None.

    A token the index knows as it is typed (an English word, a name, an acronym) is left alone.
    """
    if q.isascii() and not any(ch.isalpha() for ch in q):
        return None
    return decode_query(q, known=lambda token: token.lower() in vocabulary.syllable_df)


def did_you_mean(q: str, vocabulary: Vocabulary) -> str | None:
    """The one suggestion a result page shows: mended slips first, else restored marks."""
    return corrected_query(q, vocabulary) or restored_query(q, vocabulary)


def completions(prefix: str, vocabulary: Vocabulary, limit: int = 8) -> list[str]:
    """Autocomplete: frequent words of the index that complete what was typed, marks restored."""
    words = prefix.split()
    # Complete the longest tail of the input that is the start of a known word.
    for n in range(min(4, len(words)), 0, -1):
        head, tail = " ".join(words[:-n]), " ".join(words[-n:])
        found = vocabulary.complete(tail, limit)
        if found:
            return [f"{head} {w}".strip() for w in found]
    return []
