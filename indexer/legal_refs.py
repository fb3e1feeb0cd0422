"""Vietnamese legal document numbers ("số hiệu văn bản") found in text and in queries.

Three shapes are recognised, the ones Vietnamese administrative writing uses:

* State documents (Nghị định 30/2020/NĐ-CP, Phụ lục I): ``number[/year]/CODE[-CODE…]`` -
  ``01/2024/TT-BNV``, ``30/2020/NĐ-CP``, ``1234/QĐ-UBND``, ``202/2025/QH15``, ``123/UBND-KT``.
* Party documents: ``number-TYPE/ISSUER`` - ``57-NQ/TW``, ``08-QĐi/TW``, ``21-KL/TW``.
* Technical regulations and standards: ``QCVN 02:2019/BLĐTBXH``, ``TCVN 5502:2003``.

The canonical form (what ``LegalRef.number`` holds, what an index stores and a ``doc=`` filter compares):

* the serial number without leading zeros, padded to two digits as the law writes numbers below ten
  (``1/2024`` and ``001/2024`` -> ``01/2024``); the year as four digits;
* codes in upper case, no spaces, parts joined by ``-`` and ``/`` as written;
* ``Đ`` where the code is a known Vietnamese abbreviation spelled with it (``_D_SPELLED``: NĐ, QĐ, HĐND,
  BLĐTBXH, BGDĐT, …), whether it was typed with Đ, D or the look-alike Ð; a code not in that list keeps
  its letters as typed (``HD`` hướng dẫn and ``HĐ`` hợp đồng are both real codes, so neither is changed);
* the few abbreviations the law writes in mixed case keep it: ``TTg``, ``TTr``, ``CTr``, ``QĐi``, ``QyĐ``.

The kind (``thông tư``, ``nghị định``, …) comes from the document's type code when the code names one
unambiguously (TT, NĐ, QĐ, …), else from the words just before the number, else from a type word a few
words before "số" (``Bản án hình sự sơ thẩm số 48/2019/HS-ST``), else a number of the form
``n/ISSUER-UNIT`` without a year is a ``công văn``; QH numbers alone (laws and National Assembly
resolutions share the form) get no kind.

Offsets are character offsets into the text given, even when it is NFD.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from indexer.legal_codes import (
    ALIASES,
    D_CODES,
    KIND_CODE,
    KIND_WORDS,
    KINDS,
    MIXED_CASE,
    QH_KINDS,
    TYPE_CODES,
    WEAK_TYPE_CODES,
)

__all__ = ["KINDS", "LegalRef", "RefQuery", "find_refs", "is_valid_ref", "kind_of_number", "parse_number",
           "query_refs"]

# --- text helpers --------------------------------------------------------------------------

_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2212"
_D_LOOKALIKES = str.maketrans({"\u00d0": "Đ", "\u0189": "Đ", "\u00f0": "đ"})


# A letter and the combining marks after it (NFD Vietnamese writes every mark this way).
_MARKED = re.compile(r"(?s).[\u0300-\u036f\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")


def _nfc_map(text: str) -> tuple[str, list[int], list[int]]:
    """The text with its marks composed, and each character's (start, end) in the text."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for m in _MARKED.finditer(text):
        s, e = m.span()
        if s > pos:
            out.append(text[pos:s])
            starts.extend(range(pos, s))
            ends.extend(range(pos + 1, s + 1))
        composed = unicodedata.normalize("NFC", m.group())
        out.append(composed)
        starts.extend([s] * len(composed))
        ends.extend([e] * len(composed))
        pos = e
    out.append(text[pos:])
    starts.extend(range(pos, len(text)))
    ends.extend(range(pos + 1, len(text) + 1))
    return "".join(out), starts, ends


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    """One character without its marks, lower case; characters that do not fold to one stay."""
    bare = "".join(c for c in unicodedata.normalize("NFD", ch.lower()) if not unicodedata.combining(c))
    bare = bare.replace("đ", "d")
    return bare if len(bare) == 1 else ch


def _fold(text: str) -> str:
    """Lower case without marks, the length unchanged so offsets still hold."""
    return "".join(_fold_char(c) for c in text)


# --- the grammar ---------------------------------------------------------------------------

_L = r"[^\W\d_]"
# The last digit of a number followed by a separator and a code or a year; found first because a pattern
# that starts with the digit is three times faster than one that starts with the look-behind.
_NUMBER_END = re.compile(rf"[0-9](?=\s*[/{_DASHES}]\s*(?:{_L}|(?:19|20)\d\d\s*/))")
# A number starts where no word, slash, dot, comma or dash touches it (dates, decimals, COVID-19/…).
_NOT_BEFORE = re.compile(rf"[\w/.,{_DASHES}]")
_YEAR = re.compile(r"\s*/\s*((?:19|20)\d\d)\s*/\s*(?=[^\W\d_])")
_SLASH = re.compile(r"\s*/\s*")
_DASH = re.compile(rf"\s*[{_DASHES}]\s*")
_JOIN = re.compile(rf"\s*([/{_DASHES}])\s*")
# Letters ("&" inside: NN&PTNT), then digits (QH15), then a Roman numeral after a dot ("VPCP-V.I", Vụ I).
# Codes are written in unmarked Latin letters (and Đ, Ư): a word with tone marks is never one.
_CODE_LETTER = "[A-Za-zĐđƯưÐð]"
_PART = re.compile(rf"{_CODE_LETTER}(?:{_CODE_LETTER}|&(?={_CODE_LETTER})| ?& ?(?=[A-ZĐ]))*\d*(?:\.[IVX]+)?")
# Capitals run into the next word when a space was lost ("NĐ-CPngày"): the code is the capitals.
_RUN_ON = re.compile(r"[A-ZĐ]{2,}(?=[^\W\d_A-ZĐ]{2,})")
# "C 41", "PC 45": a short code and its number split by a space, as in the tokenised VietNews text.
_SPLIT_PART = re.compile(rf"({_L}{{1,2}}) (\d{{1,3}})(?![\w&/])")
_WHOLE_ISSUERS = {"CP", "TW", "TU", "HU", "QU", "ĐU"}  # "NĐ-CP 12 điều": the 12 is not the code's
_QH_TERM = re.compile(r" (1\d)(?![\w/])")  # "NQ-UBTVQH 14": the National Assembly's term, split off
# A year after the code, as contracts write it: "271/HĐKT/2017".
_TAIL_YEAR = re.compile(rf"\s*/\s*((?:19|20)\d\d)(?![\d/{_DASHES}])")
_STANDARD = re.compile(
    rf"(?<!\w)(QCVN|TCVN)\s*((?:ISO\s*/\s*IEC|ISO|IEC)\s+)?(\d{{1,5}}(?:\s*[{_DASHES}]\s*\d{{1,3}})*)"
    r"(?:\s*:\s*((?:19|20)\d\d))?(?!\d)",
    re.IGNORECASE,
)
_FLIGHT = re.compile(r"(?<![^\W\d_])[A-Z]{1,3} $")
_URL = re.compile(r"(?:https?://|www\.)\S+|[\w.-]+\.(?:vn|com|net|org|gov|edu|info|io)\b(?:/\S*)?", re.IGNORECASE)
_SPACE = re.compile(r"\s+")

_KIND_ALT = "|".join(re.escape(_fold(w)) for w in sorted(KIND_WORDS, key=len, reverse=True))
_KIND_FOLDED = {_fold(w): k for w, k in KIND_WORDS.items()}
# The type word right before the number: "Thông tư số 01/…", "Nghị định: 30/…", "theo QĐ 12/…".
_IMMEDIATE = re.compile(rf"(?<![^\W_])({_KIND_ALT})\s*(?:so\s*)?(?:[:(]\s*)?$")
_SO = re.compile(r"(?<![^\W_])so\s*:?\s*$")
# A type word a few words before "số": "Bản án hình sự sơ thẩm số", "Luật Thi đua, Khen thưởng số";
# the nearest one.
_DISTANT = re.compile(rf"(?s)^.*(?<![^\W_])({_KIND_ALT})(?:,?\s+[^\W\d_]\w*){{1,8}}\s+so\s*:?\s*$")
# Numbers that are not documents': bid packages, flights, vehicles, addresses ("nhà số 22/A6").
_NOT_DOCUMENT = re.compile(
    r"(?<![^\W_])(?:goi thau|chuyen bay|chuyen|tau|xe|bien so|bien kiem soat|bks|ma so|ma|lo|can ho|so nha|nha|"
    r"phong|ngo|hem|kiet|ngach|duong|quoc lo|tinh lo|km|to|khu pho|ap|thon)\s*(?:so\s*)?:?\s*$"
)
# A digit and a space before: the tail of a number split by tokenising ("Nghị định 30/2 017 / NĐ - CP").
_SPLIT_NUMBER = re.compile(r"[0-9/] $")


def _caps(part: str) -> bool:
    """A part that looks like a code: upper case, or two capitals at least (TTg, QĐi)."""
    letters = [c for c in part if c.isalpha()]
    return bool(letters) and letters[0].isupper() and (
        all(c.isupper() for c in letters) or sum(c.isupper() for c in letters) >= 2)


def _norm_part(part: str) -> str:
    """A code part in canonical spelling: upper case, known Đ, the law's mixed case."""
    p = _SPACE.sub("", part).translate(_D_LOOKALIKES).upper()
    p = D_CODES.get(p.replace("Đ", "D"), p)
    p = MIXED_CASE.get(p, p)
    return ALIASES.get(p.upper(), p)


def _norm_num(num: str) -> str:
    """A serial number without leading zeros, two digits at least."""
    return f"{int(num):02d}"


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A number as parsed, before it is accepted: its parts and how they were written."""

    start: int
    end: int
    num: str
    year: str | None
    parts: tuple[str, ...]  # canonical code parts
    joins: tuple[str, ...]  # "/" or "-" before each part after the first
    raw_parts: tuple[str, ...]
    spaced: bool  # a separator with spaces around it
    party: bool
    flight: bool = False  # after a short code and a space, as "VJ 310 / SGN - UIH" (tokenised "VJ310")
    tail_year: str | None = None  # "271/HĐKT/2017"

    @property
    def number(self) -> str:
        """The canonical number."""
        joins = list(self.joins)
        if not self.party and joins and joins[0] == "/" and self.parts[0] in TYPE_CODES:
            joins[0] = "-"  # "20/CT/TTg" is 20/CT-TTg: the law joins type and issuer with a hyphen
        code = self.parts[0] + "".join(j + p for j, p in zip(joins, self.parts[1:]))
        if self.party:
            return f"{_norm_num(self.num)}-{code}"
        year = f"{self.year}/" if self.year else ""
        tail = f"/{self.tail_year}" if self.tail_year else ""
        return f"{_norm_num(self.num)}/{year}{code}{tail}"


def _read_part(text: str, pos: int, spaced: bool, relaxed: bool = False) -> tuple[str, int] | None:
    """The code part at pos and where it ends. After a spaced joiner a part must look like a code (upper
    case) unless relaxed (a type word introduced the number, or it is a query)."""
    m = _SPLIT_PART.match(text, pos)
    if m and m.group(1).isupper() and m.group(1) not in _WHOLE_ISSUERS:
        return m.group(1) + m.group(2), m.end()
    m = _PART.match(text, pos)
    if not m:
        return None
    part, end = m.group(), m.end()
    if end < len(text) and (text[end].isalnum() or text[end] in "_&"):
        run_on = _RUN_ON.match(text, pos)  # "NĐ-CPngày": capitals, then a word whose space was lost
        if not run_on:
            return None
        part, end = run_on.group(), run_on.end()
    if spaced and not _caps(part) and not (relaxed and len(part) <= 8):
        return None
    if part.upper().endswith("QH") and (term := _QH_TERM.match(text, end)):
        part, end = part + term.group(1), term.end()
    return part, end


def _parse_at(text: str, start: int, pos: int, relaxed: bool = False) -> _Parsed | None:
    """Parse the state or party number whose serial number is text[start:pos] (relaxed: see _read_part)."""
    num = text[start:pos]
    year = None
    party = False
    first_sep = _SLASH.match(text, pos)
    if first_sep:
        ym = _YEAR.match(text, pos)
        if ym:
            year, pos = ym.group(1), ym.end()
            spaced = ym.group() != f"/{year}/"
        else:
            pos, spaced = first_sep.end(), first_sep.group() != "/"
    else:
        dash = _DASH.match(text, pos)
        if not dash:
            return None
        party, pos, spaced = True, dash.end(), len(dash.group()) > 1
    got = _read_part(text, pos, spaced, relaxed)
    if not got:
        return None
    raw = [got[0]]
    joins: list[str] = []
    pos = got[1]
    any_spaced = spaced
    while True:
        j = _JOIN.match(text, pos)
        if not j:
            break
        sep = "/" if j.group(1) == "/" else "-"
        nxt = _read_part(text, j.end(), len(j.group()) > 1, relaxed)
        if not nxt:
            break
        any_spaced |= len(j.group()) > 1
        joins.append(sep)
        raw.append(nxt[0])
        pos = nxt[1]
    if party and (not joins or joins[0] != "/"):
        return None  # "2-1", "U23-VN": a party number is n-TYPE/ISSUER
    tail_year = None
    if not party and year is None and (tail := _TAIL_YEAR.match(text, pos)):
        tail_year, pos = tail.group(1), tail.end()
    flight = _FLIGHT.search(text, max(0, start - 5), start) is not None
    return _Parsed(start, pos, num, year, tuple(_norm_part(p) for p in raw), tuple(joins), tuple(raw),
                   any_spaced, party, flight, tail_year)


def kind_of_number(number: str) -> str | None:
    """The kind a canonical number's code names ("30/2020/NĐ-CP" -> "nghị định"), None when it names none."""
    if number.startswith("QCVN"):
        return "quy chuẩn"
    if number.startswith("TCVN"):
        return "tiêu chuẩn"
    m = re.match(r"\d+(?:/(?:19|20)\d\d)?[/-]([^/-]+)(.*)", number)
    if not m:
        return None
    first, rest = m.group(1), m.group(2)
    if first in TYPE_CODES:
        return TYPE_CODES[first]
    has_year = re.match(r"\d+/(?:19|20)\d\d/", number) is not None
    return "công văn" if not has_year and rest.startswith("-") else None


def _possible_kinds(number: str) -> frozenset[str]:
    """Kinds a number may be when its code names none: laws and resolutions of the National Assembly."""
    m = re.match(r"\d+/(?:19|20)\d\d/(UBTVQH|QH)\d*$", number)
    return QH_KINDS[m.group(1)] if m else frozenset()


def _context(norm: str, start: int) -> tuple[str | None, int, str | None]:
    """(kind word right before; what introduced the number: 2 a type word, 1 "số", 0 nothing,
    -1 a word that says it is no document's; kind word a few words before "số")."""
    window = _fold(norm[max(0, start - 80):start])
    m = _IMMEDIATE.search(window)
    if m:
        return _KIND_FOLDED[m.group(1)], 2, None
    if _SPLIT_NUMBER.search(window) or _NOT_DOCUMENT.search(window):
        return None, -1, None
    if _SO.search(window):
        d = _DISTANT.search(window)
        return None, 1, _KIND_FOLDED[d.group(1)] if d else None
    return None, 0, None


def _accept(p: _Parsed, introduced: int, query: bool) -> bool:
    """Whether a parsed number is a document number, given what introduced it (see _context)."""
    first_raw = p.raw_parts[0]
    typed = p.parts[0] in TYPE_CODES
    if introduced < 0:
        return False
    if p.party:
        return introduced > 0 or typed
    if introduced == 2:
        return True
    if introduced:
        # "số 22/A6" is an address: a lone part needs two letters at least
        return (_caps(first_raw) or typed) and (bool(p.joins) or p.year is not None
                                                or sum(c.isalpha() for c in first_raw) >= 2)
    if p.flight and not query:
        return False  # "BL 302 / BL 303", "VJ 310 / SGN - UIH": flights and trains (tokenised "VJ310")
    if p.year:
        return _caps(first_raw) or typed or query
    if not p.joins:
        return False  # "50/kg", "3/TP", "VJ123/VJ124": one bare part is too little
    if query:
        return True
    if p.joins[0] != "-":
        return False  # n/ISSUER-UNIT at least
    return (typed or _caps(first_raw)) and all(_caps(r) for r in p.raw_parts[1:])


# --- recognised numbers ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegalRef:
    """A document number found in a text: canonical number, kind, and its character span there."""

    number: str
    kind: str | None
    start: int
    end: int


def _standard(m: re.Match) -> tuple[str, bool]:
    """The canonical QCVN/TCVN number of a match, and whether it is complete (has its year)."""
    org, iso, num, year = m.group(1).upper(), m.group(2), m.group(3), m.group(4)
    nums = [n.strip() for n in re.split(rf"[{_DASHES}]", num)]
    head = f"{org} " + (_SPACE.sub("", iso).upper() + " " if iso else "")
    body = "-".join([_norm_num(nums[0]), *nums[1:]])
    return head + body + (f":{year}" if year else ""), year is not None


def _standard_issuer(norm: str, pos: int) -> tuple[str, int]:
    """The issuer after a QCVN's year ("/BLĐTBXH") and where it ends, or ("", pos)."""
    s = _SLASH.match(norm, pos)
    if not s:
        return "", pos
    got = _read_part(norm, s.end(), s.group() != "/")
    if not got:
        return "", pos
    parts, end = [_norm_part(got[0])], got[1]
    while (j := _DASH.match(norm, end)) and (nxt := _read_part(norm, j.end(), len(j.group()) > 1)):
        parts.append(_norm_part(nxt[0]))
        end = nxt[1]
    return "/" + "-".join(parts), end


def _scan(norm: str, query: bool) -> list[tuple[int, int, str, str | None, bool]]:
    """(start, end, number, kind, complete) of every number in NFC text, in order, not overlapping."""
    found: list[tuple[int, int, str, str | None, bool]] = []
    for m in _STANDARD.finditer(norm) if "CVN" in norm or "cvn" in norm else ():
        number, complete = _standard(m)
        end = m.end()
        if complete and number.startswith("QCVN"):
            issuer, end = _standard_issuer(norm, end)
            number += issuer
            complete = bool(issuer)
        kind = "quy chuẩn" if number.startswith("QCVN") else "tiêu chuẩn"
        found.append((m.start(), end, number, kind, complete))
    for m in _NUMBER_END.finditer(norm):
        start, end = m.start(), m.end()
        while start > 0 and norm[start - 1] in "0123456789":
            start -= 1
        if end - start > 5 or (start > 0 and _NOT_BEFORE.match(norm, start - 1)):
            continue
        word_kind, introduced, distant_kind = _context(norm, start)
        generic = word_kind == "công văn"  # "văn bản", "công văn": the code's type says more
        p = _parse_at(norm, start, end, relaxed=query or introduced == 2)
        if p is None:
            continue
        if not _accept(p, introduced, query):
            continue
        code_kind = TYPE_CODES.get(p.parts[0])
        if code_kind and p.parts[0] not in WEAK_TYPE_CODES and not (p.party and word_kind and not generic):
            kind = code_kind
        else:
            kind = word_kind or distant_kind or code_kind or kind_of_number(p.number)
        found.append((p.start, p.end, p.number, kind, True))
    if found and "." in norm:
        urls = [(u.start(), u.end()) for u in _URL.finditer(norm)]
        found = [f for f in found if not any(s < f[1] and f[0] < e for s, e in urls)]
    found.sort(key=lambda f: (f[0], -f[1]))
    out: list[tuple[int, int, str, str | None, bool]] = []
    for f in found:
        if not out or f[0] >= out[-1][1]:
            out.append(f)
    return out


class _Spans:
    """A text with its marks composed, and the way back from spans of that to spans of the text."""

    def __init__(self, text: str):
        self._map: tuple[list[int], list[int]] | None = None
        if unicodedata.is_normalized("NFC", text):
            self.norm = text
        else:
            self.norm, *maps = _nfc_map(text)
            self._map = (maps[0], maps[1])

    def original(self, start: int, end: int) -> tuple[int, int]:
        """A span of the composed text as a span of the text that was given."""
        if self._map is None:
            return start, end
        return self._map[0][start], self._map[1][end - 1]


def find_refs(text: str) -> list[LegalRef]:
    """Every document number in a text, with its kind and character offsets into that text."""
    spans = _Spans(text)
    refs = []
    for s, e, number, kind, complete in _scan(spans.norm, query=False):
        if complete:
            s, e = spans.original(s, e)
            refs.append(LegalRef(number, kind, s, e))
    return refs


# --- queries -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefQuery:
    """What a query asks for: a complete number, or number prefixes (with a kind) for a partial one."""

    number: str | None  # complete canonical number, when the query gave one
    prefixes: tuple[str, ...]  # else: canonical numbers starting with one of these match
    kind: str | None
    start: int
    end: int

    @property
    def partial(self) -> bool:
        """True when the query gave only part of a number (match by prefix and kind)."""
        return self.number is None

    def matches(self, number: str, kind: str | None = None) -> bool:
        """Whether an article's number (with the kind found beside it) is what this query asks for."""
        if self.number is not None:
            return number == self.number
        if not number.startswith(self.prefixes):
            return False
        if self.kind is None:
            return True
        actual = kind or kind_of_number(number)
        return actual == self.kind or (actual is None and self.kind in _possible_kinds(number))


# "tt 01/2024", "nghị định 30/2020", "nghị định số 100", "qđ 1234": a type word and a bare number.
_PARTIAL = re.compile(
    rf"(?<![^\W_])({_KIND_ALT})\s*(?:so\s*)?:?\s*(\d{{1,5}})(?:\s*/\s*((?:19|20)\d\d))?(?![\w/{_DASHES}.,])"
)
# "30/2020/NĐ", "01/2024/tt": number, year and the type code alone.
_TYPE_ONLY = re.compile(r"(?<![\w/.,-])(\d{1,5})\s*/\s*((?:19|20)\d\d)\s*/\s*([^\W\d_]+)(?![\w/-])")


def _partial_prefixes(num: str, year: str | None, kind: str | None) -> tuple[str, ...]:
    """Prefixes of the canonical numbers a type word and a number (and year) may stand for."""
    n = _norm_num(num)
    if year is None:
        return (f"{n}/", f"{n}-")
    code = KIND_CODE.get(kind or "")
    if code:
        return (f"{n}/{year}/{code}-",)
    if kind in ("luật", "bộ luật"):
        return (f"{n}/{year}/QH",)
    return (f"{n}/{year}/",)


def query_refs(query: str) -> list[RefQuery]:
    """The document numbers a query is or contains, complete or partial, in order."""
    spans = _Spans(query)
    norm = spans.norm
    folded = _fold(norm)
    out: list[tuple[int, int, RefQuery]] = []
    taken: list[tuple[int, int]] = []

    def free(s: int, e: int) -> bool:
        return not any(a < e and s < b for a, b in taken)

    def add(s: int, e: int, number: str | None, prefixes: tuple[str, ...], kind: str | None) -> None:
        taken.append((s, e))
        os_, oe = spans.original(s, e)
        out.append((s, e, RefQuery(number, prefixes, kind, os_, oe)))

    for s, e, number, kind, complete in _scan(norm, query=True):
        m = _TYPE_ONLY.fullmatch(norm, s, e) if complete else None
        code = _norm_part(m.group(3)) if m else ""
        if m and code in TYPE_CODES:
            n = _norm_num(m.group(1))
            add(s, e, None, (f"{n}/{m.group(2)}/{code}-",), TYPE_CODES[code])
        elif complete:
            add(s, e, number, (), kind)
        else:
            prefix = number + ("/" if re.search(r":\d{4}$", number) else ":")
            add(s, e, None, (prefix,), kind)
    for m in _PARTIAL.finditer(folded):
        num, year = m.group(2), m.group(3)
        if year is None and re.fullmatch(r"(?:19|20)\d\d", num):
            continue  # "luật 2024" is a year, not a number
        if not free(m.start(), m.end()):
            continue
        kind = _KIND_FOLDED[m.group(1)]
        add(m.start(), m.end(), None, _partial_prefixes(num, year, kind), kind)
    out.sort(key=lambda t: t[0])
    return [q for _, _, q in out]


# --- filter values -------------------------------------------------------------------------

_MAX_VALUE = 120


def parse_number(value: str) -> str:
    """The canonical form of one complete document number; ValueError (English / Vietnamese) if it is none."""
    text = value.strip() if isinstance(value, str) else ""
    if text and len(text) <= _MAX_VALUE:
        norm = unicodedata.normalize("NFC", text)
        found = _scan(norm, query=True)
        if len(found) == 1 and found[0][4] and found[0][1] == len(norm):
            head = _fold(norm[:found[0][0]]).strip()
            type_only = _TYPE_ONLY.fullmatch(norm, found[0][0], found[0][1])
            if type_only and _norm_part(type_only.group(3)) in TYPE_CODES:
                pass  # "30/2020/NĐ" lacks its issuer
            elif not head or _IMMEDIATE.fullmatch(head + " "):
                return found[0][2]
    shown = value if isinstance(value, str) and len(value) <= _MAX_VALUE else f"{str(value)[:_MAX_VALUE]}…"
    raise ValueError(f"not a document number: {shown!r} / không phải số hiệu văn bản: {shown!r}")


def is_valid_ref(value: str) -> bool:
    """True when the value is one complete document number (what a doc= filter accepts)."""
    try:
        parse_number(value)
    except ValueError:
        return False
    return True
