"""Vietnamese text analysis shared by the indexer and the search app.

One pipeline for documents and queries: clean the text (NFC, look-alike letters, invisible
characters), put tone marks where pyvi's dictionary has them, segment with pyvi's own
syllable regex and CRF model while keeping character offsets, then lower-case.  Two token
streams come out of one segmentation: pyvi words with their tone marks (``cải_cách``) and
folded syllables (``cai``, ``cach``) for people who type without marks.
"""

from __future__ import annotations

import os
import re
import string
import threading
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from whoosh.analysis import Token, Tokenizer

# --- cleaning ------------------------------------------------------------------------------

_REPLACE = {
    "\u00d0": "Đ",  # Latin capital eth looks like Đ and is typed for it
    "\u0189": "Đ",
    "\u00f0": "đ",
    "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u2009": " ", "\u3000": " ",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'",
    "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
    "\u2026": "...",
    "\r\n": "\n", "\r": "\n", "\t": " ",
}
_REPLACE_RE = re.compile("|".join(re.escape(k) for k in sorted(_REPLACE, key=len, reverse=True)))
# Zero-width and other invisible or control characters carry no text for a reader; nor do lone surrogates
# (JSON's "\ud800", argv bytes that are not UTF-8), which pyvi's CRF and every UTF-8 encoder reject.
_INVISIBLE_RE = re.compile("[\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff\u00ad\x00-\x08\x0b-\x1f\x7f-\x9f"
                           "\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Return the text as stored and searched: NFC, no invisible characters, plain quotes and dashes."""
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE_RE.sub("", text)
    text = _REPLACE_RE.sub(lambda m: _REPLACE[m.group()], text)
    return unicodedata.normalize("NFC", text)


# --- tone marks ----------------------------------------------------------------------------

_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
_VOWELS = set("aeiouy")
# Open syllables whose mark pyvi's dictionary puts on the second vowel (hoà, khoẻ, thuỷ).
_SECOND_VOWEL_PAIRS = {"oa", "oe", "uy"}


@lru_cache(maxsize=200_000)
def canonical_syllable(syllable: str) -> str:
    """Move the tone mark of one syllable to the place pyvi's dictionary uses (hòa -> hoà, qúy -> quý)."""
    letters: list[list[str]] = []  # [base, modifiers]
    tone, tone_count = "", 0
    for ch in unicodedata.normalize("NFD", syllable):
        if unicodedata.combining(ch):
            if not letters:
                return syllable
            if ch in _TONES:
                tone, tone_count = ch, tone_count + 1
            else:
                letters[-1][1] += ch
        else:
            letters.append([ch, ""])
    if tone_count != 1:
        return syllable
    plain = "".join(base.lower() for base, _ in letters)
    vowels = [i for i, c in enumerate(plain) if c in _VOWELS]
    if len(vowels) > 1 and plain[:2] in ("qu", "gi") and vowels[0] == 1:
        vowels = vowels[1:]  # the u of qu and the i of gi belong to the consonant
    if not vowels or vowels[-1] - vowels[0] != len(vowels) - 1:
        return syllable
    modified = [i for i in vowels if letters[i][1]]
    if modified:
        target = modified[-1]
    elif len(vowels) == 1:
        target = vowels[0]
    elif vowels[-1] < len(plain) - 1:
        target = vowels[-1]
    elif len(vowels) == 3:
        target = vowels[1]
    elif len(vowels) == 2:
        pair = plain[vowels[0]] + plain[vowels[1]]
        target = vowels[1] if pair in _SECOND_VOWEL_PAIRS else vowels[0]
    else:
        return syllable
    rebuilt = "".join(base + mods + (tone if i == target else "") for i, (base, mods) in enumerate(letters))
    rebuilt = unicodedata.normalize("NFC", rebuilt)
    return rebuilt if len(rebuilt) == len(syllable) else syllable


_WORD_RE = re.compile(r"\w+")


def canonical_tones(text: str) -> str:
    """Canonicalise tone placement in every syllable; the length of the text never changes."""
    return _WORD_RE.sub(lambda m: canonical_syllable(m.group()), text)


@lru_cache(maxsize=200_000)
def fold(text: str) -> str:
    """Strip tone and vowel marks and lower-case: 'Đường' -> 'duong'."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", bare.replace("đ", "d"))


def has_marks(text: str) -> bool:
    """True when the text holds any Vietnamese tone or vowel mark (or đ)."""
    if text.isascii():
        return False
    lower = text.lower()
    # Folding a whole article character by character took most of the province finder's time (and filled
    # fold's cache with articles): a search for any letter the fold table changes stops at the first.
    if _FOLDED_LETTER_RE.search(lower) is not None:
        return True
    if _OTHER_CHARS_RE.search(lower) is None:
        return False
    return fold(text) != lower  # combining marks, or letters of other scripts: the exact, slower way


# --- segmentation --------------------------------------------------------------------------

# pyvi's own syllable pattern (ViTokenizer.sylabelize), kept identical so its CRF sees the same input.
_SYLLABLE_RE = re.compile(
    "(" + "|".join([
        r"[A-ZĐ]+\.", r"Tp\.", r"Mr\.", r"Mrs\.", r"Ms\.", r"Dr\.", r"ThS\.",
        r"==>", r"->", r"\.\.\.", r">>",
        r"\w+://[^\s]+", r"([a-zA-Z0-9_.+-]+@([a-zA-Z0-9-]+\.)+[a-zA-Z0-9-]+)",
        r"\d+([\.,_]\d+)+", r"[^\w\s]", r"\w+",
    ]) + ")",
    re.UNICODE,
)
_PUNCT = set(string.punctuation)


# A server analyses its first query while its warm-up thread analyses too: without the lock both opened the
# tagger, and the second found the model file already deleted by the first (a 500 on the first search).
_SEGMENTER_LOCK = threading.Lock()


def _new_segmenter_lock() -> None:
    """In a forked child: a lock of its own (a thread of the parent may have held this one at the fork)."""
    global _SEGMENTER_LOCK
    _SEGMENTER_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_new_segmenter_lock)


@lru_cache(maxsize=1)
def load_segmenter():
    """Load pyvi's tokenizer once per process (its import reads the CRF model); safe from several threads."""
    with _SEGMENTER_LOCK:
        from pyvi.ViTokenizer import ViTokenizer

        # Unpickling pyvi's CRF writes a 640 KB temp file that is only removed at interpreter
        # exit; worker processes and killed builds left hundreds in /tmp. The tagger reads the
        # whole model into memory when opened, so open it now and drop the file at once.
        model = ViTokenizer.model
        if model._tagger is None:  # the first thread through opens it; a second one finds it open
            model.tagger_  # noqa: B018 - property that opens the tagger
            model.modelfile.cleanup()
        return ViTokenizer


def _is_word_token(tok: str) -> bool:
    """Punctuation and pyvi's special arrows are segmentation context, not searchable words."""
    return tok.isalnum() or any(map(str.isalnum, tok))


def crf_features(toks: list[str]) -> list[dict]:
    """pyvi's CRF features of a sentence's syllables (ViTokenizer.sent2features), without the false ones.

    pyvi builds 15 features per syllable, most of them booleans that are false, and looks every
    syllable pair up twice. A false feature has the value 0, so it adds exactly 0 to the CRF's
    scores; the others keep pyvi's order, so the scores are the same sums and the labels the same
    (tests/test_analysis.py checks both). Three times faster, and the tagger reads half the features.
    """
    tokenizer = load_segmenter()
    bi_grams, tri_grams = tokenizer.bi_grams, tokenizer.tri_grams
    n = len(toks)
    lower = [t.lower() for t in toks]
    title = [t.istitle() for t in toks]
    upper = [t.isupper() for t in toks]
    # ' '.join(...).lower() in pyvi: the space keeps each syllable's lower-casing the same
    bi = [f"{lower[i]} {lower[i + 1]}" in bi_grams for i in range(n - 1)]
    tri = [f"{lower[i]} {lower[i + 1]} {lower[i + 2]}" in tri_grams for i in range(n - 2)]
    out = []
    for i in range(n):
        f = {"bias": 1.0, "word.lower()": lower[i]}
        if upper[i]:
            f["word.isupper()"] = True
        if title[i]:
            f["word.istitle()"] = True
        if toks[i].isdigit():
            f["word.isdigit()"] = True
        if i > 0:
            f["-1:word.lower()"] = lower[i - 1]
            if title[i - 1]:
                f["-1:word.istitle()"] = True
            if upper[i - 1]:
                f["-1:word.isupper()"] = True
            if bi[i - 1]:
                f["-1:word.bi_gram()"] = True
            if i > 1 and tri[i - 2]:
                f["-2:word.tri_gram()"] = True
        if i < n - 1:
            f["+1:word.lower()"] = lower[i + 1]
            if title[i + 1]:
                f["+1:word.istitle()"] = True
            if upper[i + 1]:
                f["+1:word.isupper()"] = True
            if bi[i]:
                f["+1:word.bi_gram()"] = True
            if i < n - 2 and tri[i]:
                f["+2:word.tri_gram()"] = True
        out.append(f)
    return out


def segment_lines(lines: list[str]) -> list[list[tuple[int, int, bool]]]:
    """Segment lines with pyvi; per line, syllables as (start, end, joins_previous)."""
    tag = load_segmenter().model.tagger_.tag  # what sklearn_crfsuite's CRF.predict calls per sentence
    out = []
    for line in lines:
        sylls = [(m.start(), m.end()) for m in _SYLLABLE_RE.finditer(line)]
        if not sylls:
            out.append([])
            continue
        toks = [line[s:e] for s, e in sylls]
        labels = tag(crf_features(toks))
        row = [(sylls[0][0], sylls[0][1], False)]
        for i in range(1, len(toks)):
            # pyvi's join rule from ViTokenizer.tokenize, unchanged.
            joins = (labels[i] == "I_W" and toks[i] not in _PUNCT and toks[i - 1] not in _PUNCT
                     and not toks[i][0].isdigit() and not toks[i - 1][0].isdigit()
                     and not (toks[i][0].istitle() and not toks[i - 1][0].istitle()))
            row.append((sylls[i][0], sylls[i][1], joins))
        out.append(row)
    return out


def _word_spans(canon: str) -> list[list[tuple[int, int]]]:
    """pyvi words of a text with canonical tones: the (start, end) of each word's syllables."""
    lines, starts, pos = [], [], 0
    for line in canon.split("\n"):
        lines.append(line)
        starts.append(pos)
        pos += len(line) + 1
    words: list[list[tuple[int, int]]] = []
    for base, row in zip(starts, segment_lines(lines)):
        current: list[tuple[int, int]] = []
        for s, e, joins in row:
            s, e = s + base, e + base
            tok = canon[s:e]
            if len(tok) > 1 and tok.endswith(".") and not tok.endswith("..."):
                e -= 1  # pyvi keeps the dot of "UBND." and "Tp."; the word is the letters
                tok = tok[:-1]
            if not _is_word_token(tok):
                if current:
                    words.append(current)
                current = []
                continue
            if joins and current:
                current.append((s, e))
            else:
                if current:
                    words.append(current)
                current = [(s, e)]
        if current:
            words.append(current)
    return words


def _fold_table() -> dict[int, str]:
    """str.translate table folding every precomposed Latin letter one-to-one (Ấ -> a, đ -> d)."""
    table = {}
    for cp in list(range(0xC0, 0x250)) + list(range(0x1E00, 0x1F00)):
        ch = chr(cp)
        folded = fold(ch)
        if len(folded) == 1 and folded != ch:
            table[cp] = folded
    return table


_FAST_FOLD = _fold_table()
_FOLDED_LETTER_RE = re.compile("[" + "".join(map(chr, _FAST_FOLD)) + "]")
# Characters the table does not cover: fold() may still change them (combining marks, Greek, ...).
_OTHER_CHARS_RE = re.compile("[^\x00-\x7f\u00c0-\u024f\u1e00-\u1eff]")
# The same table as an array over code points: str.translate looks each character up in a dict (~50 ns a
# character, a millisecond for the ten bodies of a page of snippets); indexing an array is five times faster.
_FOLD_END = 0x1F00
_FOLD_ARRAY = np.arange(_FOLD_END, dtype=np.uint32)
_FOLD_ARRAY[list(_FAST_FOLD)] = [ord(ch) for ch in _FAST_FOLD.values()]


def fold_same_length(text: str) -> str | None:
    """fold() at C speed for text whose folding keeps its length (offsets stay valid), else None."""
    lower = text.lower()
    if len(lower) != len(text):
        return None
    if lower.isascii():
        return lower
    points = np.frombuffer(lower.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if int(points.max()) < _FOLD_END:
        folded = _FOLD_ARRAY[points]
    else:
        folded = np.where(points < _FOLD_END, _FOLD_ARRAY[np.minimum(points, _FOLD_END - 1)], points)
    return folded.tobytes().decode("utf-32-le", "surrogatepass")


def syllable_spans(text: str) -> list[tuple[str, str, int, int]]:
    """(folded, marked, start, end) of every syllable, by pyvi's syllable regex alone (no CRF)."""
    canon = canonical_tones(text)
    out = []
    for m in _SYLLABLE_RE.finditer(canon):
        s, e = m.start(), m.end()
        tok = canon[s:e]
        if len(tok) > 1 and tok.endswith(".") and not tok.endswith("..."):
            e -= 1
            tok = tok[:-1]
        if _is_word_token(tok):
            marked = tok.lower()
            out.append((fold(marked), marked, s, e))
    return out


@dataclass(frozen=True, slots=True)
class Analysed:
    """A text analysed once: words with tone marks, and syllables both folded and with marks."""

    words: tuple[tuple[str, int, int], ...]  # (word, start, end)
    syllables: tuple[tuple[str, str, int, int], ...]  # (folded, with marks, start, end)
    bigrams: tuple[str, ...] = ()  # folded syllable pairs not split by punctuation: "cai cach", "2024 tt"

    @property
    def folded(self) -> list[str]:
        """The folded syllables, in order."""
        return [f for f, _, _, _ in self.syllables]

    @property
    def marked(self) -> list[str]:
        """The syllables with their (canonical) marks, lower-cased, in order."""
        return [m for _, m, _, _ in self.syllables]

    def word_tokens(self) -> tuple[tuple[str, int, int, int], ...]:
        """Tokens of the word fields: (word, start, end, position)."""
        return tuple((w, s, e, i) for i, (w, s, e) in enumerate(self.words))

    def bigram_tokens(self) -> tuple[tuple[str, int, int, int], ...]:
        """Tokens of the bigram fields (no offsets are kept for them)."""
        return tuple((b, 0, 0, i) for i, b in enumerate(self.bigrams))

    def syllable_tokens(self) -> tuple[tuple[str, int, int, int], ...]:
        """Tokens of the syllable fields: the folded syllable, plus its marked form at the same position."""
        out = []
        for i, (folded, marked, s, e) in enumerate(self.syllables):
            out.append((folded, s, e, i))
            if marked != folded:
                out.append((marked, s, e, i))
        return tuple(out)


# Syllables form a bigram across white space, and across the joiners of dates and document numbers
# (18/3/2024, 01/2024/TT-BNV), but not across other punctuation.
_BIGRAM_GAP = re.compile(r"\s+|\s*[/\-:]\s*|\.")


def analyse(text: str) -> Analysed:
    """Analyse a text into word tokens and syllable tokens with (start, end) offsets."""
    canon = canonical_tones(text)
    words, sylls = [], []
    for spans in _word_spans(canon):
        marked = [canon[s:e].lower() for s, e in spans]
        words.append(("_".join(marked), spans[0][0], spans[-1][1]))
        sylls += [(fold(m), m, s, e) for m, (s, e) in zip(marked, spans)]
    bigrams = tuple(f"{a[0]} {b[0]}" for a, b in zip(sylls, sylls[1:]) if _BIGRAM_GAP.fullmatch(text[a[3]:b[2]]))
    return Analysed(tuple(words), tuple(sylls), bigrams)


@lru_cache(maxsize=8)
def analyse_cached(text: str) -> Analysed:
    """analyse() for the Whoosh tokenizer: one text feeds three fields, so it is segmented once."""
    return analyse(text)


# --- Whoosh glue (the class names are pickled into the index schema: keep them) ----------


class VietnameseTokenizer(Tokenizer):
    """Whoosh tokenizer emitting either pyvi words or syllables (folded and marked), with offsets."""

    def __init__(self, kind: str = "words"):
        self.kind = kind

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VietnameseTokenizer) and other.kind == self.kind

    def tokens(self, value: str) -> tuple[tuple[str, int, int, int], ...]:
        """This field kind's tokens of a string: (text, start, end, position)."""
        analysed = analyse_cached(value)
        return {"words": analysed.word_tokens, "syllables": analysed.syllable_tokens,
                "bigrams": analysed.bigram_tokens}[self.kind]()

    def term_counts(self, value: str) -> Counter[str]:
        """How often each term occurs in value: what a Frequency posting holds, without Token objects."""
        analysed = analyse_cached(value)
        if self.kind == "bigrams":
            return Counter(analysed.bigrams)
        if self.kind == "words":
            return Counter([w for w, _, _ in analysed.words])
        return Counter([text for text, _, _, _ in analysed.syllable_tokens()])

    def term_positions(self, value: str) -> dict[str, list[int]]:
        """The positions of each term in value: what a Positions posting holds, without Token objects."""
        out: defaultdict[str, list[int]] = defaultdict(list)
        if self.kind == "syllables":  # syllable_tokens(), without building them
            for pos, (folded, marked, _, _) in enumerate(analyse_cached(value).syllables):
                out[folded].append(pos)
                if marked != folded:
                    out[marked].append(pos)
        else:
            for text, _, _, pos in self.tokens(value):
                out[text].append(pos)
        return out

    def __call__(self, value, positions=False, chars=False, keeporiginal=False, removestops=True,
                 start_pos=0, start_char=0, tokenize=True, mode="", **kwargs):
        """Yield this field kind's tokens of a string, with positions and character offsets."""
        tokens = self.tokens(value)
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for text, start, end, pos in tokens:
            t.text = text
            t.boost = 1.0
            t.stopped = False
            if keeporiginal:
                t.original = text
            if positions:
                t.pos = start_pos + pos
            if chars:
                t.startchar = start_char + start
                t.endchar = start_char + end
            yield t


def word_analyzer() -> VietnameseTokenizer:
    """Analyzer for the fields of pyvi words with tone marks."""
    return VietnameseTokenizer("words")


def bigram_analyzer() -> VietnameseTokenizer:
    """Analyzer for the fields of folded syllable pairs (proximity without positions)."""
    return VietnameseTokenizer("bigrams")


def syllable_analyzer() -> VietnameseTokenizer:
    """Analyzer for the syllable fields (each syllable folded, and with its marks when it has any)."""
    return VietnameseTokenizer("syllables")
