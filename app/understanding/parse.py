"""The query language: plain words, "quoted phrases" and -exclusions.

Small and forgiving: anything else (unbalanced quotes, stray operators, punctuation) is searched
as plain text, never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from indexer.analysis import clean_text

_PART_RE = re.compile(r'"([^"]*)"|(\S+)')


@dataclass
class ParsedQuery:
    """The parts of a user query: free text, quoted phrases and excluded terms."""

    text: str = ""
    phrases: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)

    def relaxed(self) -> ParsedQuery:
        """The same query with its phrases searched as plain words (for a phrase found nowhere)."""
        return ParsedQuery(" ".join([self.text, *self.phrases]), [], list(self.excluded))


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
