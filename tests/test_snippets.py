"""Snippet fragments: the sliding window that picks them agrees with the plain definition (every fragment's
matches counted from scratch) on the seed pages and on random sets of matches."""

from __future__ import annotations

import random

from conftest import CORPUS

from app import snippets
from app.snippets import (
    CONTEXT_BEFORE,
    FRAGMENT_CHARS,
    MAX_FRAGMENTS,
    _mark,
    _merge,
    _snap_end,
    _snap_start,
    snippet,
    text_spans,
)
from indexer.readers import ReadResult, expand_sources, iter_articles


def _reference(text: str, spans: list[tuple[int, int, str]]) -> str:
    """snippet() as defined: for each match, the fragment from just before it, scored by the distinct terms
    and the matches inside it (counted again for every fragment)."""
    merged = _merge(spans)
    if not merged:
        return snippet(text, [])
    candidates = []
    for i, (s, _e, _t) in enumerate(merged):
        frag_start = max(0, s - CONTEXT_BEFORE)
        frag_end = frag_start + FRAGMENT_CHARS
        inside = [m for m in merged[i:] if m[1] <= frag_end]
        distinct = set().union(*(m[2] for m in inside))
        candidates.append((len(distinct), len(inside), -s, frag_start, frag_end))
    candidates.sort(reverse=True)
    chosen: list[tuple[int, int]] = []
    for *_score, frag_start, frag_end in candidates:
        if not any(frag_start < e and s < frag_end for s, e in chosen):
            chosen.append((frag_start, frag_end))
        if len(chosen) == MAX_FRAGMENTS:
            break
    parts = []
    for frag_start, frag_end in sorted(chosen):
        s, e = _snap_start(text, frag_start), _snap_end(text, min(frag_end, len(text)))
        piece = _mark(text, _merge(spans, text), s, e)
        parts.append(("… " if s > 0 else "") + piece.strip() + (" …" if e < len(text) else ""))
    return " ".join(parts).replace("… …", "…")


def test_fragments_are_those_of_the_definition():
    rng = random.Random(5)
    bodies = [a.body for a in iter_articles(expand_sources([CORPUS]), ReadResult())]
    words = sorted({w.lower() for body in bodies for w in body.split() if w.isalpha()})
    compared = 0
    for body in bodies:
        for _ in range(40):
            wanted = set(rng.sample(words, rng.randint(1, 12)))
            spans = text_spans(body, wanted)
            for sub in (spans, rng.sample(spans, len(spans) // 2), spans[: rng.randint(0, len(spans))]):
                assert snippet(body, sub) == _reference(body, sub)
                compared += bool(sub)
    assert compared > 200
    assert snippets.mark("a <b> c", [(0, 1, "a")]) == "<mark>a</mark> &lt;b&gt; c"
