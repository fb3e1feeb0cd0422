"""Queries typed with the Telex or VNI keys left in, decoded back into Vietnamese.

When a person's input method is off, ``cải cách hành chính`` arrives as ``cari cachs hanhf chinhs``
(Telex) or ``ca3i ca1ch ha2nh chi1nh`` (VNI). ``decode_query`` turns such tokens back into syllables
with their marks, placed where ``indexer.analysis.canonical_syllable`` places them, so the decoded
query matches how documents were analysed.

A token is decoded only when

* its decoded form is a valid Vietnamese syllable (``syllables()``: every onset, rhyme and tone the
  spelling rules allow, about 16,000 forms);
* the token as typed is not a word itself: not a valid syllable ("boong", "chinh"), not a word the
  caller's ``known`` knows (the index's vocabulary), and without ``known`` not a token of pyvi's
  dictionary ("visa", "sos", "web");
* it is not an acronym or a code: tokens with two capitals or more (UBND, COVID) and a capital with
  digits (A1, U23, E5) stay as they are, and so do tokens with marks already, and numbers.

Some English words decode into valid syllables ("post" -> "pót", "max" -> "mã"). Two rules keep most
of them: a token whose only keys are tone keys at its end or before a vowel ("tax", "visa", "now") is a
*weak* decode, applied only when the query also has a strong one (a vowel key such as ``aa``, ``ow``,
``dd``, VNI 6-9, or a tone key before a consonant: ``casch``, ``ca1ch``) or when the whole query, with
no marks typed, reads as Vietnamese once decoded. What remains is for ``known``: the search engine
passes its vocabulary, which holds the English words its articles use.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from indexer.analysis import canonical_syllable, fold, has_marks

__all__ = ["decode_query", "decode_token", "encode_telex", "encode_vni", "is_syllable", "syllables"]

# --- the syllables of Vietnamese -----------------------------------------------------------

# No p, f, j, w, z: they begin only loanwords (pin) and English words ("post" would read "pót").
_ONSETS = ("", "b", "c", "ch", "d", "đ", "g", "gh", "gi", "h", "k", "kh", "l", "m", "n", "ng", "ngh", "nh",
           "ph", "qu", "r", "s", "t", "th", "tr", "v", "x")
# Rhymes as written, without tone: nucleus (with its on-glide o/u) and coda; ăk for the Central
# Highlands' names (Đắk Lắk). Not oong (boong, xoong): Telex types ông so, and the few words with oong
# are in pyvi's dictionary or the index's vocabulary, which keep them.
_RHYMES = (
    "a ai ao au ay am an ang anh ap at ac ach "
    "ăm ăn ăng ăp ăt ăc ăk "
    "âu ây âm ân âng âp ât âc "
    "e eo em en eng ep et ec "
    "ê êu êm ên ênh êp êt êch "
    "i ia iu im in inh ip it ich "
    "iêu iêm iên iêng iêp iêt iêc yêu yêm yên yêt "
    "o oi om on ong op ot oc "
    "ô ôi ôm ôn ông ôp ôt ôc "
    "ơ ơi ơm ơn ơp ơt "
    "u ua ui um un ung up ut uc uôi uôm uôn uông uôt uôc "
    "ư ưa ưi ưu ưm ưng ưt ưc ươi ươu ươm ươn ương ươp ươt ươc "
    "y "
    "oa oai oay oam oan oang oanh oap oat oac oach oăm oăn oăng oăt oăc oe oeo oen oet "
    "uê uêch uênh uân uâng uât uây uy uya uyu uych uynh uyt uyên uyêt uơ"
).split()
_FRONT = ("e", "ê", "i", "y")  # vowels before which c, g, ng are written k, gh, ngh
_STOPS = ("p", "t", "c", "ch", "k")  # codas that take only the rising and the heavy tone
_TONES = ("", "\u0301", "\u0300", "\u0309", "\u0303", "\u0323")  # none, sắc, huyền, hỏi, ngã, nặng
_ON_GLIDE = ("oa", "oă", "oe", "uy", "uê", "uâ", "uơ")


def _spelled(onset: str, rhyme: str) -> str | None:
    """Onset and rhyme written as one syllable by the spelling rules, or None when they do not combine."""
    first = rhyme[0]
    glide = rhyme.startswith(_ON_GLIDE)
    if rhyme.startswith("y") and len(rhyme) > 1 and onset not in ("", "qu"):
        return None  # yêu, yên stand alone (and quyên); after other onsets they are spelled iê
    if rhyme.startswith("iê") and onset in ("", "qu"):
        return None
    if onset in ("c", "g", "ng") and first in _FRONT and not (onset == "g" and first == "i"):
        return None  # k, gh, ngh are written there; "gì", "gìn" are gi + i
    if onset in ("k", "gh", "ngh") and first not in _FRONT:
        return None
    if onset == "qu":
        if glide and first == "u":
            return onset + rhyme[1:]  # qu + uy, uê, uâ, uơ: quy, quê, quân, quơ
        if glide or first in ("u", "ư", "o"):
            return None
        return onset + rhyme
    if onset == "c" and glide:
        return None  # the on-glide after k-sound is written qu
    if onset == "gi":
        if glide:
            return None
        return "gi" + (rhyme[1:] if first == "i" and len(rhyme) > 1 else rhyme if first != "i" else "")
    return onset + rhyme


def _with_tone(syllable: str, tone: str) -> str:
    """The syllable with a tone mark, placed where the index places it."""
    if not tone:
        return syllable
    decomposed = unicodedata.normalize("NFD", syllable)
    for i, ch in enumerate(decomposed):
        if ch in "aeiouy":
            end = i + 1
            while end < len(decomposed) and unicodedata.combining(decomposed[end]):
                end += 1  # after the vowel's own mark: ê + acute is ế, not é + circumflex
            marked = unicodedata.normalize("NFC", decomposed[:end] + tone + decomposed[end:])
            return canonical_syllable(marked)
    return syllable


@lru_cache(maxsize=1)
def syllables() -> frozenset[str]:
    """Every valid Vietnamese syllable in lower case, tone marks placed canonically (hoà, thuỷ, quý)."""
    out: set[str] = set()
    for onset in _ONSETS:
        for rhyme in _RHYMES:
            spelled = _spelled(onset, rhyme)
            if not spelled:
                continue
            tones = ("\u0301", "\u0323") if rhyme.endswith(_STOPS) else _TONES
            out.update(_with_tone(spelled, t) for t in tones)
    out.add("kạn")  # Bắc Kạn keeps the k before a
    out.discard("")
    return frozenset(out)


@lru_cache(maxsize=1)
def _folded_syllables() -> frozenset[str]:
    """The syllables without marks, as people type who leave them out ("cach", "nguoi")."""
    return frozenset(fold(s) for s in syllables())


def is_syllable(token: str) -> bool:
    """True when a token (any case, any tone placement, NFC or NFD) is a valid Vietnamese syllable."""
    lowered = unicodedata.normalize("NFC", token).lower()
    return canonical_syllable(lowered) in syllables()


@lru_cache(maxsize=1)
def _pyvi_words() -> frozenset[str]:
    """The tokens of pyvi's dictionary, loanwords included ("visa", "web", "sos"): the default known words."""
    import pyvi

    path = Path(pyvi.__file__).parent / "models" / "words.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return frozenset()
    return frozenset(unicodedata.normalize("NFC", t) for t in text.lower().split())


# --- decoding one token --------------------------------------------------------------------

_CIRCUMFLEX, _BREVE, _HORN = "\u0302", "\u0306", "\u031b"
_VOWELS = "aeiouy"
_TELEX_TONES = {"s": "\u0301", "f": "\u0300", "r": "\u0309", "x": "\u0303", "j": "\u0323"}
_VNI_TONES = {"1": "\u0301", "2": "\u0300", "3": "\u0309", "4": "\u0303", "5": "\u0323"}
# Which mark each vowel key gives to which vowel: Telex w / VNI 7 the horn (and a's breve), VNI 6 the hat.
_HAT_TARGETS = {"a": _CIRCUMFLEX, "e": _CIRCUMFLEX, "o": _CIRCUMFLEX}
_W_TARGETS = {"a": _BREVE, "o": _HORN, "u": _HORN}
_HORN_TARGETS = {"o": _HORN, "u": _HORN}


class _State(NamedTuple):
    """A token being decoded: its letters (base, mark), tone, and what the keys were like."""

    letters: tuple[tuple[str, str], ...]
    tone: str
    keys: int
    strong: bool


def _has_vowel(letters: tuple[tuple[str, str], ...]) -> bool:
    """True once a vowel has been typed (a tone key needs one)."""
    return any(base in _VOWELS for base, _ in letters)


def _marked(state: _State, targets: dict[str, str], strong: bool) -> list[_State]:
    """Every way a vowel key can mark the vowels typed so far (uo takes the horn together: ươ)."""
    letters = state.letters
    out = []
    for i, (base, mark) in enumerate(letters):
        if mark or base not in targets:
            continue
        new = list(letters)
        new[i] = (base, targets[base])
        if targets.get("o") == _HORN and base == "u" and i + 1 < len(letters) and letters[i + 1] == ("o", ""):
            horned = list(new)
            horned[i + 1] = ("o", _HORN)
            out.append(_State(tuple(horned), state.tone, state.keys + 1, state.strong or strong))
        out.append(_State(tuple(new), state.tone, state.keys + 1, state.strong or strong))
    return out


def _next_is_consonant(token: str, i: int) -> bool:
    """True when the key at i is followed by a consonant letter (casch): English rarely types that."""
    return i + 1 < len(token) and token[i + 1].isalpha() and token[i + 1] not in _VOWELS


def _telex_step(states: list[_State], token: str, i: int) -> list[_State]:
    """The decodings after one more Telex key."""
    c = token[i]
    out: list[_State] = []
    for st in states:
        letters = st.letters
        vowel = _has_vowel(letters)
        if c in _TELEX_TONES and vowel:
            tone = _TELEX_TONES[c]
            if st.tone == tone:  # the key twice types the letter
                out.append(_State(letters + ((c, ""),), "", st.keys, st.strong))
            else:
                out.append(_State(letters, tone, st.keys + 1, st.strong or _next_is_consonant(token, i)))
        elif c == "z" and st.tone:
            out.append(_State(letters, "", st.keys + 1, st.strong))
        elif c == "w":
            marked = _marked(st, _W_TARGETS, strong=i + 1 < len(token))
            if marked:
                out += marked
            elif not vowel:
                out.append(_State(letters + (("u", _HORN),), st.tone, st.keys + 1, True))
            else:
                out.append(_State(letters + (("w", ""),), st.tone, st.keys, st.strong))
        elif c in _HAT_TARGETS and letters and letters[-1] == (c, ""):
            # the vowel typed twice, tone keys between allowed (bese: bế)
            out.append(_State(letters[:-1] + ((c, _CIRCUMFLEX),), st.tone, st.keys + 1, True))
        elif c == "d" and letters == (("d", ""),):
            out.append(_State((("đ", ""),), st.tone, st.keys + 1, True))
        else:
            out.append(_State(letters + ((c, ""),), st.tone, st.keys, st.strong))
    return out


def _vni_step(states: list[_State], token: str, i: int) -> list[_State]:
    """The decodings after one more VNI key; a digit that marks nothing ends them (a number, not VNI)."""
    c = token[i]
    followed = i + 1 < len(token) and token[i + 1].isalpha()
    out: list[_State] = []
    for st in states:
        letters = st.letters
        if c in _VNI_TONES:
            if _has_vowel(letters) and not st.tone:
                out.append(_State(letters, _VNI_TONES[c], st.keys + 1, st.strong or followed))
        elif c == "6":
            out += _marked(st, _HAT_TARGETS, strong=True)
        elif c == "7":
            out += _marked(st, _HORN_TARGETS, strong=True)
        elif c == "8":
            out += _marked(st, {"a": _BREVE}, strong=True)
        elif c == "9":
            if letters and letters[0] == ("d", ""):
                out.append(_State((("đ", ""),) + letters[1:], st.tone, st.keys + 1, True))
        elif c.isalpha():
            out.append(_State(letters + ((c, ""),), st.tone, st.keys, st.strong))
    return out


def _spell(state: _State) -> str:
    """The syllable a decoding spells, NFC, tone placed canonically."""
    text = unicodedata.normalize("NFC", "".join(base + mark for base, mark in state.letters))
    return _with_tone(text, state.tone)


class Decoded(NamedTuple):
    """A token decoded: the syllable, and whether its keys were ones English words rarely leave."""

    text: str
    strong: bool


def decode_token(token: str) -> Decoded | None:
    """The syllable a lower-case Telex or VNI token spells, when it spells a valid one with one key or more."""
    if not token or len(token) > 12:
        return None
    vni = any(c.isdigit() for c in token)
    if vni and not (token[0].isalpha() and token.isascii() and token.isalnum()):
        return None
    if not vni and not token.isascii():
        return None
    step = _vni_step if vni else _telex_step
    states = [_State((), "", 0, False)]
    for i in range(len(token)):
        states = step(states, token, i)
        if not states or len(states) > 64:
            return None
    valid = syllables()
    best: Decoded | None = None
    for st in states:
        if st.keys == 0:
            continue
        text = _spell(st)
        if text in valid and (best is None or (st.strong and not best.strong)):
            best = Decoded(text, st.strong)
    return best


# --- queries -------------------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W_]+")


def _capitalised(decoded: str, raw: str) -> str:
    """The decoded syllable with the case of the raw token's first letter."""
    return decoded[0].upper() + decoded[1:] if raw[:1].isupper() else decoded


def _code_like(token: str) -> bool:
    """Acronyms and codes: two capitals or more (UBND, COVID, CARI typed in capitals), or capitals and
    digits only (A1, U23, E5)."""
    capitals = sum(c.isupper() for c in token)
    return capitals >= 2 or (capitals >= 1 and not any(c.islower() for c in token) and
                             any(c.isdigit() for c in token))


def decode_query(text: str, known: Callable[[str], bool] | None = None) -> str | None:
    """The query with its Telex/VNI-typed syllables decoded ("cari cachs" -> "cải cách"), None if none was.

    ``known(token)`` says whether a token as typed, in lower case, is a word of the index; such tokens
    stay. The answer is NFC.
    """
    text = unicodedata.normalize("NFC", text)
    is_known = known if known is not None else _pyvi_words().__contains__
    valid = syllables()
    decoded: list[tuple[re.Match, Decoded]] = []
    reads_vietnamese = not has_marks(text)
    for m in _TOKEN.finditer(text):
        raw = m.group()
        lower = raw.lower()
        if _code_like(raw) or lower.isdigit():
            continue
        plain = canonical_syllable(lower) in valid or lower in _folded_syllables()
        if has_marks(raw) or plain or is_known(lower):
            reads_vietnamese &= plain
            continue
        got = decode_token(lower)
        if got is None:
            reads_vietnamese &= any(c.isdigit() for c in raw)  # a number with letters (4G, 2km) says nothing
            continue
        decoded.append((m, got))
    if not decoded or not (reads_vietnamese or any(d.strong for _, d in decoded)):
        return None  # only weak decodes, beside words that are not Vietnamese: English, most likely
    out, pos = [], 0
    for m, d in decoded:
        out.append(text[pos:m.start()])
        out.append(_capitalised(d.text, m.group()))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


# --- encoding (what a person with the input method off would type) -------------------------

_TELEX_TONE_KEYS = {v: k for k, v in _TELEX_TONES.items()}
_VNI_TONE_KEYS = {v: k for k, v in _VNI_TONES.items()}


def _letters_and_tone(syllable: str) -> tuple[list[tuple[str, str]], str]:
    """A syllable's letters (base, vowel mark) and its tone mark."""
    letters: list[tuple[str, str]] = []
    tone = ""
    for ch in unicodedata.normalize("NFD", syllable):
        if ch in _VNI_TONE_KEYS:
            tone = ch
        elif unicodedata.combining(ch) and letters:
            letters[-1] = (letters[-1][0], letters[-1][1] + ch)
        else:
            letters.append((ch, ""))
    return letters, tone


def _encode_word(word: str, telex: bool) -> str:
    """One word as typed with the input method off: its letters, then the keys of its marks and tone."""
    letters, tone = _letters_and_tone(word)
    typed: list[str] = []
    keys: list[str] = []
    for i, (base, mark) in enumerate(letters):
        low = base.lower()
        if low == "đ":
            typed.append(base.translate(str.maketrans("đĐ", "dD")) + ("d" if telex else ""))
            keys += [] if telex else ["9"]
        elif mark == _CIRCUMFLEX:
            typed.append(base + (low if telex else ""))
            keys += [] if telex else ["6"]
        elif mark == _BREVE:
            typed.append(base + ("w" if telex else ""))
            keys += [] if telex else ["8"]
        elif mark == _HORN:
            pair = low == "u" and i + 1 < len(letters) and letters[i + 1][1] == _HORN
            typed.append(base if pair else base + ("w" if telex else ""))  # ươ: Telex uow, VNI uo7
            keys += [] if telex or pair else ["7"]
        else:
            typed.append(base)
    if tone:
        keys.append(_TELEX_TONE_KEYS[tone] if telex else _VNI_TONE_KEYS[tone])
    return "".join(typed) + "".join(keys)


def _encode(text: str, telex: bool) -> str:
    """Every word of a text as typed with Telex or VNI keys and the input method off (mark keys last)."""
    return re.sub(r"[^\W\d_]+", lambda m: _encode_word(m.group(), telex), unicodedata.normalize("NFC", text))


def encode_telex(text: str) -> str:
    """The text as typed with Telex keys and the input method off: "cải cách" -> "cair cachs"."""
    return _encode(text, telex=True)


def encode_vni(text: str) -> str:
    """The text as typed with VNI keys and the input method off: "cải cách" -> "cai3 cach1"."""
    return _encode(text, telex=False)
