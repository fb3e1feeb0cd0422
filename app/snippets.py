"""Highlighted snippets: the query's syllables marked in the stored text.

Syllables are found with pyvi's syllable regex alone (no segmentation), which gives exactly the
offsets the index holds, for a fraction of a millisecond per article.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from itertools import accumulate

from indexer.analysis import canonical_syllable, fold, fold_same_length, syllable_spans

FRAGMENT_CHARS = 220  # a fragment is about two lines of text on the page
CONTEXT_BEFORE = 60
MAX_FRAGMENTS = 3
_SPACES_RE = re.compile(" {2,}")


def text_spans(text: str, wanted: set[str]) -> list[tuple[int, int, str]]:
    """(start, end, term) of the syllables of text that are wanted (a marked or a folded form).

    Searches the folded text with one regex, then checks the marks of candidates for marked
    terms: no segmentation, a fraction of a millisecond for a long article.
    """
    if not text or not wanted:
        return []
    folded_text = fold_same_length(text)
    if folded_text is None:
        return [(s, e, m if m in wanted else f) for f, m, s, e in syllable_spans(text) if m in wanted or f in wanted]
    by_fold: dict[str, set[str]] = {}
    for term in wanted:
        by_fold.setdefault(fold(term), set()).add(term)
    # split() with the match captured hands back the gaps and the matches; their running lengths are the
    # offsets. A page of snippets meets ~400 matches: no Match object and no method call for each one.
    parts = _pattern(tuple(sorted(by_fold, key=len, reverse=True))).split(folded_text)
    if len(parts) == 1:
        return []
    offsets = list(accumulate(map(len, parts)))
    found = parts[1::2]
    starts, ends = offsets[0:-1:2], offsets[1::2]
    direct = wanted.intersection(by_fold)  # folded terms searched as such: any marks match
    if direct.issuperset(found):
        return list(zip(starts, ends, found))
    marked = map(_marked, [text[s:e] for s, e in zip(starts, ends)])
    return [(s, e, f if f in direct else m) for s, e, f, m in zip(starts, ends, found, marked)
            if f in direct or m in by_fold[f]]


@lru_cache(maxsize=100_000)
def _marked(syllable: str) -> str:
    """The syllable lower-cased with its tone mark where the index puts it (hòa -> hoà)."""
    return canonical_syllable(syllable).lower()


@lru_cache(maxsize=512)
def _pattern(terms: tuple[str, ...]) -> re.Pattern:
    """A regex matching any of the folded terms as whole syllables."""
    return re.compile(r"(?<!\w)(" + "|".join(re.escape(t) for t in terms) + r")(?!\w)")


def _merge(spans: list[tuple[int, int, str]], text: str = "") -> list[tuple[int, int, tuple[str, ...]]]:
    """Sort spans and merge overlapping ones (and ones one space apart), keeping which terms each covers."""
    merged: list[tuple[int, int, tuple[str, ...]]] = []
    for start, end, term in sorted(spans):
        if merged and (start < merged[-1][1] or (text and text[merged[-1][1]:start] == " ")):
            s0, e0, terms = merged[-1]
            merged[-1] = (s0, max(e0, end), terms if term in terms else (*terms, term))
        else:
            merged.append((start, end, (term,)))
    return merged


def _esc(text: str) -> str:
    """HTML-escape and fold line breaks into spaces (a snippet is one run of text)."""
    return html.escape(text).replace("\n", " ")


def mark(text: str, spans: list[tuple[int, int, str]], start: int = 0, end: int | None = None) -> str:
    """HTML-escape text[start:end] with <mark> around the spans inside it."""
    return _mark(text, _merge(spans, text), start, end)


# Stand-ins for <mark> and </mark> while a fragment is escaped in one call: control characters that the
# indexer's clean_text removes from every stored text (a text that has them anyway is escaped piece by piece).
_OPEN, _CLOSE = "\x01", "\x02"


def _mark(text: str, merged: list[tuple[int, int, tuple[str, ...]]], start: int = 0, end: int | None = None) -> str:
    """mark() with the spans already merged (_merge(spans, text)): a snippet marks several fragments."""
    end = len(text) if end is None else end
    whole = _OPEN not in text and _CLOSE not in text
    out, pos = [], start
    for s, e, _ in merged:
        if s < start or e > end:
            continue
        if whole:
            out += (text[pos:s], _OPEN, text[s:e], _CLOSE)
        else:
            out += (_esc(text[pos:s]), "<mark>", _esc(text[s:e]), "</mark>")
        pos = e
    if whole:
        out.append(text[pos:end])
        marked = _esc("".join(out)).replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>")
    else:
        out.append(_esc(text[pos:end]))
        marked = "".join(out)
    return _SPACES_RE.sub(" ", marked)


def _snap_start(text: str, pos: int) -> int:
    """Move a fragment start back to a word boundary."""
    if pos <= 0:
        return 0
    space = text.rfind(" ", max(0, pos - 20), pos)
    return space + 1 if space >= 0 else pos


def _snap_end(text: str, pos: int) -> int:
    """Move a fragment end forward to a word boundary."""
    if pos >= len(text):
        return len(text)
    space = text.find(" ", pos, pos + 20)
    return space if space >= 0 else pos


def snippet(text: str, spans: list[tuple[int, int, str]]) -> str:
    """Up to three fragments around the best clusters of matches, joined by ' … '."""
    if not text:
        return ""
    merged = _merge(spans)
    if not merged:
        end = _snap_end(text, FRAGMENT_CHARS)
        return mark(text, [], 0, end) + (" …" if end < len(text) else "")
    candidates = []
    # A window over the merged matches, slid along them: the matches of the fragment starting before
    # match i are merged[i:j] (their ends only grow), counts says how many hold each term and distinct
    # how many terms are held at all (kept as counts cross zero: a page of snippets slides ~4,000 times).
    counts: dict[str, int] = {}
    distinct = j = 0
    size = len(merged)
    for i, (s, _e, _t) in enumerate(merged):
        if 0 < i <= j:  # the match left behind was in the window
            for term in merged[i - 1][2]:
                counts[term] -= 1
                distinct -= not counts[term]
        j = max(j, i)
        frag_start = max(0, s - CONTEXT_BEFORE)
        frag_end = frag_start + FRAGMENT_CHARS
        while j < size and merged[j][1] <= frag_end:
            for term in merged[j][2]:
                held = counts.get(term, 0)
                distinct += not held
                counts[term] = held + 1
            j += 1
        candidates.append((distinct, j - i, -s, frag_start, frag_end))
    candidates.sort(reverse=True)
    chosen: list[tuple[int, int]] = []
    for *_score, frag_start, frag_end in candidates:
        if any(frag_start < e and s < frag_end for s, e in chosen):
            continue
        chosen.append((frag_start, frag_end))
        if len(chosen) == MAX_FRAGMENTS:
            break
    parts = []
    merged_here = _merge(spans, text)
    for frag_start, frag_end in sorted(chosen):
        s, e = _snap_start(text, frag_start), _snap_end(text, min(frag_end, len(text)))
        piece = _mark(text, merged_here, s, e)
        parts.append(("… " if s > 0 else "") + piece.strip() + (" …" if e < len(text) else ""))
    return " ".join(parts).replace("… …", "…")
