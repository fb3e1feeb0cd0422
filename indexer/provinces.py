"""Provinces after 1 July 2025: which provinces an article is about, by the current unit and the old name.

Vietnam merged its 63 provinces into 34 units on 1 July 2025 (Thái Bình into Hưng Yên, Hà Giang into
Tuyên Quang, ...). Every old province went whole into one new unit, so a province-level mapping is
exact. The mapping is not typed here: it is derived from the ward-level table that the
``vietnam-address-converter`` package ships inside its code (the official old-to-new mapping, version
10/2025), so it works offline. Loading it takes about 0.3 s and 50 MB, once per process, on first use.

What is typed here is language, not geography: other spellings of the same names (Đăk Lăk, Bắc Cạn,
Kontum, Thừa Thiên Huế, TP.HCM, Sài Gòn), and the context words that tell a province from a person
("chị Hà Giang"), a commune or street of the same name ("xã Thái Bình", "sông Thái Bình") or a longer
name ("Thái Bình Dương").

Recognition rules, measured on VietNews (bench/provinces.py, bench/results/provinces-sample.md):

* every syllable of a name is capitalised (Title Case or ALL CAPS), so "hòa bình" (peace) and "bình
  định" (to pacify) are words, not provinces; marks must agree with the name's (tone placement aside),
  except in a text written without any marks, where "Thai Binh" is Thái Bình;
* the name is not glued to another capitalised word: "Nguyễn Thị Hà Giang", "Trường Nam Định",
  "Thái Bình Dương", "Đồng Tháp Mười" are other things; "Tỉnh Thái Bình", "Thành phố Hà Nội",
  "UBND Thái Bình" and "TP.HCM" are fine (designators and acronyms do not count);
* the word before it is not a person word (anh, chị, ông, bà, ...) nor a lower-level place or a
  landmark (xã, phường, huyện, quận, thị xã, đường, sông, cầu, ...): "xã Thái Bình" is a commune of
  some other province; "thị xã Quảng Trị" is lost, a price paid for "phường Hòa Bình";
* Hồ Chí Minh counts only as the city (TP.HCM, TPHCM, TP HCM, HCMC, "TP Hồ Chí Minh", "thành phố
  Hồ Chí Minh", Sài Gòn): bare "Hồ Chí Minh" is the president far more often ("tư tưởng Hồ Chí
  Minh", "Đoàn TNCS Hồ Chí Minh"). Sài Gòn is taken as the city, since news uses it so ("người Sài
  Gòn"), but not after a capitalised word or acronym ("Bia Sài Gòn", "SJC Sài Gòn" are companies) nor
  before one ("Sài Gòn Giải Phóng" is a newspaper).
* "Vũng Tàu" and "Bà Rịa" alone name Bà Rịa - Vũng Tàu, and "Huế" names Thừa Thiên Huế (whose
  city gave the new unit its name).

The source (a site name such as "baothaibinh.com.vn", "sotttt.thaibinh.gov.vn" or "Báo Thái Bình")
names a province too: a domain label that is a province's name without spaces, optionally after
"bao"/"tinh"/"so" or before "tv"/"online"/"moi" (hungyentv, hanoimoi), or a site name read with the
same rules as the text.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate, compress
from operator import itemgetter

from indexer.analysis import canonical_syllable, clean_text, fold, has_marks


@dataclass(frozen=True, slots=True)
class Province:
    """A province-level unit since 1 July 2025, with the pre-merger provinces it is made of."""

    name: str
    former: tuple[str, ...]  # the same-named former province first, then the others alphabetically


@dataclass(frozen=True, slots=True)
class Mention:
    """One place in a text that names a province."""

    name: str  # the province named: a pre-2025 name ("Thái Bình") or a current one, as the mapping spells it
    unit: Province  # the current unit it belongs to
    start: int  # offsets into the text
    end: int


@dataclass(frozen=True, slots=True)
class Found:
    """A province an article is about: the name it used, its current unit, how often it was named."""

    name: str
    unit: Province
    count: int  # mentions in the text (0 when only the source names it)
    in_source: bool  # the article's source (site or outlet) names it


# --- the mapping, from vietnam-address-converter --------------------------------------------


@dataclass(frozen=True, slots=True)
class _Table:
    units: dict[str, Province]  # current name -> unit
    old_to_unit: dict[str, Province]  # every name, pre-2025 and current -> its current unit
    by_key: dict[str, str]  # folded name without spaces or dashes, aliases too -> name (a key of old_to_unit)


# Other spellings and names of the same provinces, seen in news; each maps to the mapping's own spelling.
_ALIASES: dict[str, str] = {
    "Thừa Thiên Huế": "Huế",
    "Thừa Thiên - Huế": "Huế",
    "TT-Huế": "Huế",
    "Bà Rịa - Vũng Tàu": "Bà Rịa-Vũng Tàu",
    "Bà Rịa Vũng Tàu": "Bà Rịa-Vũng Tàu",
    "BR-VT": "Bà Rịa-Vũng Tàu",
    "BRVT": "Bà Rịa-Vũng Tàu",
    "Vũng Tàu": "Bà Rịa-Vũng Tàu",
    "Bà Rịa": "Bà Rịa-Vũng Tàu",
    "Đăk Lăk": "Đắk Lắk",
    "Đắk Lăk": "Đắk Lắk",
    "Đắc Lắc": "Đắk Lắk",
    "Daklak": "Đắk Lắk",
    "Đăk Nông": "Đắk Nông",
    "Đắc Nông": "Đắk Nông",
    "Bắc Cạn": "Bắc Kạn",
    "Kontum": "Kon Tum",
    "TP.HCM": "Hồ Chí Minh",
    "TPHCM": "Hồ Chí Minh",
    "TP HCM": "Hồ Chí Minh",
    "HCMC": "Hồ Chí Minh",
    "HCM": "Hồ Chí Minh",
    "Sài Gòn": "Hồ Chí Minh",
    "Saigon": "Hồ Chí Minh",
}


def _key(name: str) -> str:
    """A name's lookup key: folded, no spaces, dots or dashes ('Bà Rịa - Vũng Tàu' -> 'bariavungtau')."""
    return re.sub(r"[\W_]+", "", fold(clean_text(name)))


def _load_mapping() -> tuple[dict[str, str], dict[str, str]]:
    """(pre-2025 province -> current unit, current unit -> itself) as named by vietnam-address-converter."""
    from vietnam_address_converter.data import DEFAULT_DATA

    old = {code: p["name"] for code, p in DEFAULT_DATA["oldProvinces"].items()}
    new = {code: p["name"] for code, p in DEFAULT_DATA["newProvinces"].items()}
    votes: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for row in DEFAULT_DATA["mapping"]["rows"]:
        votes[row["old"]["province_code"]][row["new"]["province_code"]] += 1
    mapping = {}
    for code, counts in votes.items():
        # Whole provinces were merged; a split would mean the package changed what it describes.
        if len(counts) != 1:
            raise RuntimeError(f"vietnam-address-converter maps {old[code]} to several units: {dict(counts)}")
        mapping[old[code]] = new[next(iter(counts))]
    return mapping, {name: name for name in new.values()}


@lru_cache(maxsize=1)
def _table() -> _Table:
    """The 34 units, every old and current name, and the lookup keys; built once per process."""
    old_to_new, current = _load_mapping()
    members: defaultdict[str, list[str]] = defaultdict(list)
    for old, new in old_to_new.items():
        members[new].append(old)
    units = {}
    for name in current:
        others = sorted((m for m in members[name] if m != name), key=fold)
        same = [name] if name in members[name] else []
        units[name] = Province(name, tuple(same + others))
    old_to_unit = {old: units[new] for old, new in old_to_new.items()} | {name: units[name] for name in current}
    by_key: dict[str, str] = {}
    for name in old_to_unit:
        if by_key.setdefault(_key(name), name) != name:
            raise RuntimeError(f"two provinces fold to the same key: {name}, {by_key[_key(name)]}")
    for alias, name in _ALIASES.items():
        if name not in old_to_unit:
            raise RuntimeError(f"alias {alias!r} names {name!r}, which the mapping does not know")
        by_key.setdefault(_key(alias), name)
    return _Table(units, old_to_unit, by_key)


def units() -> tuple[Province, ...]:
    """The 34 province-level units since 1 July 2025, in the mapping's order."""
    return tuple(_table().units.values())


def former_provinces() -> tuple[str, ...]:
    """The 63 provinces before 1 July 2025, as the mapping names them."""
    return tuple(name for unit in units() for name in unit.former)


_PREFIX_RE = re.compile(r"^\s*(?:tỉnh|tinh|thành\s+phố|thanh\s+pho|thủ\s+đô|thu\s+do|tp\.?)\s*", re.IGNORECASE)


def canonical_name(name: str) -> str | None:
    """The mapping's spelling of a province name, old or current, with or without marks or prefix; else None."""
    if not isinstance(name, str):
        return None
    text = clean_text(name).strip()
    table = _table()
    # "TP.HCM" is a name in its own right: try it whole before taking "TP." off as a prefix.
    for candidate in (text, _PREFIX_RE.sub("", text), _PREFIX_RE.sub("", fold(text))):
        found = table.by_key.get(_key(candidate)) if candidate else None
        if found:
            return found
    return None


def current_unit(name: str) -> Province | None:
    """The current unit of a province named the old or the new way ('Thái Bình' -> Hưng Yên); None if unknown."""
    found = canonical_name(name)
    return _table().old_to_unit[found] if found else None


def facet_label(unit: Province | str) -> str:
    """A unit's label that says which former provinces it includes: 'Hưng Yên (gồm Hưng Yên, Thái Bình)'."""
    if isinstance(unit, str):
        found = current_unit(unit)
        if found is None:
            raise ValueError(f"not a Vietnamese province: {unit!r}")
        unit = found
    if unit.former in ((), (unit.name,)):
        return unit.name
    return f"{unit.name} (gồm {', '.join(unit.former)})"


# --- recognition in text ---------------------------------------------------------------------

_SYLLABLE_RE = re.compile(r"\w+")
_SYLLABLE_SPLIT_RE = re.compile(r"(\w+)")
_NAME_GAP_RE = re.compile(r"\s+|\s*-\s*|\s*[–—]\s*|\.\s*")  # inside a name: "Bà Rịa - Vũng Tàu", "TP.HCM"
_SPACE_RE = re.compile(r"[ \t]+")  # what glues a name to a neighbouring word; a line break does not
_SENTENCE_END_RE = re.compile(r"[.!?:;\n\"'(]")

# Words before a name that make it something else than the province.
_PERSON_WORDS = {
    "anh", "chị", "ông", "bà", "em", "cô", "chú", "bác", "cụ", "cháu", "bé", "cậu", "thầy", "mợ", "dì",
    "bố", "mẹ", "vợ", "chồng", "tên", "nàng", "chàng", "lão", "mc", "nsưt", "nsnd",
}
_PLACE_WORDS = {
    "xã", "tx", "phường", "trấn", "huyện", "quận", "đường", "phố", "cầu", "sông", "hồ", "núi", "đèo",
    "ấp", "thôn", "làng", "bản", "xóm", "vịnh", "đảo", "hẻm", "ngõ", "kênh", "đầm", "suối", "khu", "tổ",
    "ngách", "kcn", "ccn",
}
# Words that end in a place word but are no place: "yêu cầu Cần Thơ ...", "miền núi Quảng Ngãi".
_NOT_PLACES = {
    ("yêu", "cầu"), ("nhu", "cầu"), ("toàn", "cầu"), ("địa", "cầu"), ("văn", "bản"), ("cơ", "bản"),
    ("kịch", "bản"), ("phiên", "bản"), ("xuất", "bản"), ("nhật", "bản"), ("đồng", "hồ"), ("nông", "thôn"),
    ("miền", "núi"), ("vùng", "núi"), ("đồi", "núi"), ("đường", "phố"),
}
# Words before a name that say it is the province. The two-word ones are checked as pairs, before
# "phố" alone counts as a street ("thành phố Huế" against "phố Huế").
_DESIGNATORS = {("thành", "phố"), ("thủ", "đô")}
_DESIGNATOR_WORDS = {"tỉnh", "tp", "ubnd", "hđnd", "báo", "đài", "cổng"}  # "Báo Thái Bình" names the province
# The commonest family names: a run of capitalised words that starts with one is a person's name.
_SURNAMES = {
    "nguyễn", "trần", "lê", "phạm", "hoàng", "huỳnh", "phan", "vũ", "võ", "đặng", "bùi", "đỗ", "hồ", "ngô",
    "dương", "lý", "đinh", "đoàn", "trương", "lương", "mai", "cao", "lâm", "tô", "tạ", "hà", "vương", "đào",
    "trịnh", "lưu",
}
# Names that only count after a city designator: bare "Hồ Chí Minh" is the president.
_NEEDS_CITY = {"hồ chí minh", "hcm"}
# Names that many companies carry ("Bia Sài Gòn", "SJC Sài Gòn"): no capitalised word or acronym before them.
_NO_CAPITAL_BEFORE = {"sài gòn", "saigon"}


@dataclass(frozen=True, slots=True)
class _Name:
    """A recognisable name: its syllables (marked, canonical, lower case) and the province it names."""

    syllables: tuple[str, ...]
    province: str
    acronym: bool = False  # written in capitals anyway (TP.HCM, BR-VT): no sign of a text in capitals


def _canonical_lower(syllable: str) -> str:
    """A syllable lower-cased with its tone mark where the project's dictionary puts it."""
    return canonical_syllable(syllable.lower())


@lru_cache(maxsize=1)
def _names() -> dict[tuple[str, ...], list[_Name]]:
    """Every name and alias, keyed by its folded syllables (what the scanner looks up)."""
    table = _table()
    out: defaultdict[tuple[str, ...], list[_Name]] = defaultdict(list)
    spellings = {name: name for name in table.old_to_unit} | _ALIASES
    for spelling, province in spellings.items():
        sylls = tuple(_canonical_lower(s) for s in _SYLLABLE_RE.findall(clean_text(spelling)))
        out[tuple(fold(s) for s in sylls)].append(_Name(sylls, province, spelling.isupper()))
    return dict(out)


def _capitalised(token: str) -> bool:
    """Title Case or ALL CAPS: how a proper name is written."""
    return token[:1].isupper() and (token[1:].islower() or token.isupper() or len(token) == 1)


def _is_acronym(token: str) -> bool:
    """An all-caps token of two letters or more (UBND, TP, HĐND): a neighbour that does not glue names."""
    return len(token) > 1 and token.isupper()


def _marks_agree(token: str, name_syllable: str) -> bool:
    """The text's syllable is the name's, tone placement aside (other spellings are aliases: Đăk Lăk)."""
    return _canonical_lower(token) == name_syllable


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """The syllables of a text with their offsets."""
    # split() with the syllable captured gives gaps and syllables; their running lengths are the offsets
    # (no Match object for each of an article's ~600 syllables).
    parts = _SYLLABLE_SPLIT_RE.split(text)
    offsets = list(accumulate(map(len, parts)))
    return list(zip(parts[1::2], offsets[0:-1:2], offsets[1::2], strict=True))


def _glued(text: str, left: tuple[str, int, int], right: tuple[str, int, int]) -> bool:
    """Two tokens are written as one phrase: only spaces between them."""
    return _SPACE_RE.fullmatch(text[left[2]:right[1]]) is not None


def _accepted(text: str, toks: list[tuple[str, int, int]], i: int, j: int, name: _Name, marked: bool) -> int:
    """Whether tokens i..j-1, which fold to a name, are the province (the rules in the module docstring).

    Returns 0 for no, -1 for yes, or, when the name is the head of a longer name ("Thái Bình Dương"), the
    index past that longer name: no other province is looked for inside it ("Bình Dương").
    """
    words = toks[i:j]
    if not all(_capitalised(t) for t, _, _ in words):
        return 0
    if marked and not all(_marks_agree(t, s) for (t, _, _), s in zip(words, name.syllables)):
        return 0
    all_caps = not name.acronym and all(t.isupper() for t, _, _ in words) and any(len(t) > 1 for t, _, _ in words)
    prev = [toks[k] for k in (i - 2, i - 1) if k >= 0]
    glued_prev = prev[-1] if prev and _glued(text, prev[-1], words[0]) else None
    glued_prev2 = prev[0] if len(prev) == 2 and glued_prev and _glued(text, prev[0], prev[1]) else None
    before = glued_prev[0].lower() if glued_prev else ""
    before2 = (glued_prev2[0].lower(), before) if glued_prev2 else None
    designated = before in _DESIGNATOR_WORDS or before2 in _DESIGNATORS
    if glued_prev and " ".join(name.syllables) in _NO_CAPITAL_BEFORE and _capitalised(glued_prev[0]):
        k = i - 1  # "Người Sài Gòn ..." opens a sentence: that capital is no company's
        if _is_acronym(glued_prev[0]) or not (k == 0 or _SENTENCE_END_RE.search(text[toks[k - 1][2]:toks[k][1]])):
            return 0
    if " ".join(name.syllables) in _NEEDS_CITY:
        city = before in ("tp", "thành phố") or before2 == ("thành", "phố")
        tp_dot = i > 0 and toks[i - 1][0].lower() == "tp" and re.fullmatch(r"\.\s*", text[toks[i - 1][2]:words[0][1]])
        if not (city or tp_dot):
            return 0
    def word(k: int) -> bool:
        """A capitalised word that could be part of a longer name (acronyms do not count in mixed case)."""
        return _capitalised(toks[k][0]) and (all_caps or not _is_acronym(toks[k][0]))

    right = []  # the capitalised words glued after the name
    k = j
    while k < len(toks) and len(right) < 4 and word(k) and _glued(text, toks[k - 1], toks[k]):
        right.append(toks[k][0].lower())
        k += 1
    # "UBND TP Hà Nội Nguyễn Đức Chung" is followed by a person's full name; "Thái Bình Dương" is longer.
    if right and not (right[0] in _SURNAMES and len(right) >= 2):
        return j + len(right)
    if glued_prev and not designated:
        token = glued_prev[0]
        if token.lower() in _PERSON_WORDS or (token.lower() in _PLACE_WORDS and before2 not in _NOT_PLACES):
            return 0
        if before2 and " ".join(before2) in _PLACE_WORDS:
            return 0
        left = []  # the capitalised words glued before the name, nearest first
        k = i - 1
        while k >= 0 and len(left) < 4 and word(k) and _glued(text, toks[k], toks[k + 1]):
            left.append(toks[k][0].lower())
            k -= 1
        # "Nguyễn Thị Hà Giang", "Bà Trần Hà Giang" are people; "Urenco Hà Nội", "Ở Hà Nội" are not.
        head = left[-2] if len(left) > 1 and left[-1] in _PERSON_WORDS else left[-1] if left else ""
        if head in _SURNAMES:
            return 0
    return -1


def mentions(text: str) -> list[Mention]:
    """Every place in a text (NFC, as the indexer stores it) that names a province, in order; offsets into text."""
    if not text:
        return []
    names = _names()
    table = _table()
    marked = has_marks(text)
    toks = _tokens(text)
    # A name is written capitalised (_accepted refuses it otherwise): only such runs are looked up, and only
    # their syllables folded; an article is mostly lower-case words (3x faster over VietNews, same mentions).
    syllables = [t for t, _, _ in toks]
    starts = [k for k in compress(range(len(toks)), map(str.isupper, map(itemgetter(0), syllables)))
              if _capitalised(syllables[k])]
    run: dict[int, int] = {}  # capitalised syllables in a row from each start
    for k in reversed(starts):
        run[k] = run.get(k + 1, 0) + 1
    folded: dict[int, str] = {}
    longest = max(len(k) for k in names)
    out: list[Mention] = []
    past = 0  # a name found, or a longer name refused, ends here: nothing is looked for inside it
    for i in starts:
        if i < past:
            continue
        resume = 0
        for n in range(min(longest, run[i]), 0, -1):
            key = tuple(folded[k] if k in folded else folded.setdefault(k, fold(toks[k][0])) for k in range(i, i + n))
            if key not in names:
                continue
            if any(not _NAME_GAP_RE.fullmatch(text[toks[k][2]:toks[k + 1][1]]) for k in range(i, i + n - 1)):
                continue
            verdicts = [(nm, _accepted(text, toks, i, i + n, nm, marked)) for nm in names[key]]
            hit = next((nm for nm, verdict in verdicts if verdict == -1), None)
            if hit:
                out.append(Mention(hit.province, table.old_to_unit[hit.province], toks[i][1], toks[i + n - 1][2]))
                resume = i + n
                break
            resume = max((verdict for _, verdict in verdicts), default=0)
            if resume > i:
                break
        past = max(past, resume)
    return out


_DOMAIN_RE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?:www\.)?([a-z0-9.-]+\.[a-z]{2,})(?:[:/].*)?$", re.IGNORECASE)
# A newspaper's or office's prefix or suffix around a province in a domain label (baothaibinh, hungyentv).
_LABEL_RE = re.compile(r"^(?:bao|tinh|so|cong|tp)?(?P<name>.+?)(?:tv|online|moi|news)?$")


def _source_names(source: str) -> list[str]:
    """The provinces a source names: by a domain label (baothaibinh.com.vn) or as text (Báo Thái Bình)."""
    source = clean_text(source).strip()
    if not source:
        return []
    domain = _DOMAIN_RE.match(source)
    if not domain:
        return [m.name for m in mentions(source)]
    by_key = _table().by_key
    found = []
    for label in domain.group(1).lower().split(".")[:-1]:
        for part in label.split("-"):
            # Only whole names, bare or with a newspaper's prefix or suffix: no province hides in "vnexpress".
            bare = _LABEL_RE.match(part)
            for candidate in (part, bare.group("name") if bare else part):
                if len(candidate) >= 3 and candidate in by_key and by_key[candidate] not in found:
                    found.append(by_key[candidate])
                    break
    return found


def find_provinces(text: str, source: str = "") -> list[Found]:
    """The provinces an article names, most mentioned first; the source's own province counts too."""
    table = _table()
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    for m in mentions(clean_text(text or "")):
        counts[m.name] += 1
        first.setdefault(m.name, m.start)
    from_source = _source_names(source or "")
    names = list(counts) + [n for n in from_source if n not in counts]
    names.sort(key=lambda n: (-counts[n], n not in from_source, first.get(n, 1 << 60)))
    return [Found(n, table.old_to_unit[n], counts[n], n in from_source) for n in names]
