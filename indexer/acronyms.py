"""Acronyms of offices and programmes: a curated glossary plus definitions mined from the corpus.

Mining looks for the way Vietnamese administrative writing defines an acronym once and then uses
it: "cải cách hành chính (CCHC)", "Ủy ban nhân dân (UBND)". A pair is kept only when the
initials of the words before the parenthesis spell the acronym, so the miner adds little noise.
The index keeps what it mined in its generation folder (acronyms.json); the search side reads it.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

from indexer.analysis import fold

FILE = "acronyms.json"

# Curated: the acronyms public-administration news uses most, with their full names.
GLOSSARY: dict[str, list[str]] = {
    "ubnd": ["ủy ban nhân dân"],
    "hđnd": ["hội đồng nhân dân"],
    "cchc": ["cải cách hành chính"],
    "tthc": ["thủ tục hành chính"],
    "mttq": ["mặt trận tổ quốc"],
    "ubmttq": ["ủy ban mặt trận tổ quốc"],
    "pci": ["chỉ số năng lực cạnh tranh cấp tỉnh"],
    "papi": ["chỉ số hiệu quả quản trị và hành chính công cấp tỉnh"],
    "grdp": ["tổng sản phẩm trên địa bàn"],
    "gdp": ["tổng sản phẩm quốc nội"],
    "fdi": ["đầu tư trực tiếp nước ngoài"],
    "ttxvn": ["thông tấn xã việt nam"],
    "cand": ["công an nhân dân"],
    "qđnd": ["quân đội nhân dân"],
    "tand": ["tòa án nhân dân"],
    "vksnd": ["viện kiểm sát nhân dân"],
    "bhxh": ["bảo hiểm xã hội"],
    "bhyt": ["bảo hiểm y tế"],
    "thpt": ["trung học phổ thông"],
    "thcs": ["trung học cơ sở"],
    "đbqh": ["đại biểu quốc hội"],
    "csgt": ["cảnh sát giao thông"],
    "csđt": ["cảnh sát điều tra"],
    "cntt": ["công nghệ thông tin"],
    "atgt": ["an toàn giao thông"],
    "bch": ["ban chấp hành"],
    "ubkt": ["ủy ban kiểm tra"],
    "ntm": ["nông thôn mới"],
    "kcn": ["khu công nghiệp"],
    "tp.hcm": ["thành phố hồ chí minh"],
    "tphcm": ["thành phố hồ chí minh"],
    "kt-xh": ["kinh tế - xã hội"],
    "dvc": ["dịch vụ công"],
    "dvctt": ["dịch vụ công trực tuyến"],
    "bnv": ["bộ nội vụ"],
    "lđtb&xh": ["lao động - thương binh và xã hội"],
    "sxkd": ["sản xuất kinh doanh"],
}

# A definition is up to ten words separated by white space, then the acronym in parentheses. Searching that
# pattern forwards tries every word of an article as a start (0.7 ms per news article, in the build's one
# parent process); instead each "(ACRONYM)" is found first and the words before it are read backwards, from
# the reversed text: the same pairs (tests/test_analysis.py checks it against the forward pattern).
_PARENTHESISED = re.compile(r"\(\s*([A-ZĐ][A-ZĐ0-9&-]{1,9})\s*\)")
_WORDS_BEFORE_REVERSED = re.compile(r"(?:\s+[\w-]+){1,10}")


def _letters(acronym: str) -> str:
    """The letters an acronym's words must start with (folded, no punctuation or digits)."""
    return "".join(ch for ch in fold(acronym) if ch.isalpha())


def mine(text: str) -> list[tuple[str, str]]:
    """(acronym, definition) pairs defined in the text, like 'cải cách hành chính (CCHC)'."""
    found = []
    reversed_text = None
    for m in _PARENTHESISED.finditer(text):
        if reversed_text is None:
            reversed_text = text[::-1]
        before = _WORDS_BEFORE_REVERSED.match(reversed_text, len(text) - m.start())
        if before is None:
            continue
        words, acronym = before.group()[::-1].split(), m.group(1)
        letters = _letters(acronym)
        n = len(letters)
        if n < 2 or len(words) < n:
            continue
        candidate = words[-n:]
        if "".join(fold(w)[0] for w in candidate) == letters:
            found.append((acronym.lower(), " ".join(candidate).lower()))
    return found


class AcronymMiner:
    """Counts definitions over a build; writes them beside the index."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = defaultdict(Counter)

    def add(self, *texts: str) -> None:
        """Mine definitions from an article's texts."""
        for text in texts:
            if text and "(" in text:
                for acronym, definition in mine(text):
                    self.counts[acronym][definition] += 1

    def merge_file(self, path: Path) -> None:
        """Add the counts of an earlier acronyms.json (for updates)."""
        for acronym, defs in load(path).items():
            self.counts[acronym].update(defs)

    def save(self, path: Path) -> None:
        """Write the counts atomically."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: dict(v) for k, v in self.counts.items()}, ensure_ascii=False),
                       encoding="utf-8")
        tmp.replace(path)


def load(path: Path) -> dict[str, dict[str, int]]:
    """Mined counts from an index generation; empty when the file is absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def table(mined: dict[str, dict[str, int]]) -> dict[str, list[str]]:
    """Acronym -> full names: the glossary first, then the most frequent mined definitions."""
    out = {k: list(v) for k, v in GLOSSARY.items()}
    for acronym, defs in mined.items():
        best = sorted(defs.items(), key=lambda kv: -kv[1])[:2]
        names = out.setdefault(acronym, [])
        for definition, _count in best:
            if fold(definition) not in {fold(n) for n in names}:
                names.append(definition)
    return out
