"""Text analysis: cleaning, tone placement, folding, segmentation with offsets; acronym definitions.

Unit tier but for the two tests that start fresh Python processes (pyvi's loading), marked system.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.acronyms import mine
from indexer.analysis import (
    _FAST_FOLD,
    _SYLLABLE_RE,
    analyse,
    canonical_syllable,
    canonical_tones,
    clean_text,
    crf_features,
    fold,
    fold_same_length,
    has_marks,
    load_segmenter,
)

_ROOT = Path(__file__).resolve().parent.parent


def test_clean_text_fixes_lookalikes_invisible_and_typography():
    raw = "\u00d0\u1ea3ng\u200b u\u0309y ban\u00a0\u201cnh\u00e2n d\u00e2n\u201d \u2013 t\u1ec9nh"
    assert clean_text(raw) == 'Đảng ủy ban "nhân dân" - tỉnh'


def test_clean_text_is_nfc():
    decomposed = unicodedata.normalize("NFD", "Thái Bình")
    assert clean_text(decomposed) == "Thái Bình"


def test_tone_placement_is_canonical():
    assert canonical_syllable("hòa") == canonical_syllable("hoà") == "hoà"
    assert canonical_syllable("thủy") == canonical_syllable("thuỷ") == "thuỷ"
    assert canonical_syllable("qúy") == "quý"
    assert canonical_syllable("Ủy") == "Uỷ"
    # syllables whose mark has one place only are left alone
    for word in ["người", "giữa", "của", "hoàng", "tuổi", "quốc", "nghĩa"]:
        assert canonical_syllable(word) == word


def test_canonical_tones_keeps_length():
    text = "Hòa bình, thủy lợi và qúy khách"
    assert len(canonical_tones(text)) == len(text)


def test_fold_strips_marks_and_d():
    assert fold("Đường Cải Cách") == "duong cai cach"
    assert has_marks("đường") and not has_marks("duong")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300)
       | st.text(st.sampled_from("ĐđÀÁẢÃẠàáảãạăằắẳẵặâầấẩẫậƠơƯưỨứ ,.İẞΩ\u0300\ud800abc"), max_size=60))
def test_fast_fold_is_the_translate_table(text):
    """The array-indexed fold equals lower() plus str.translate over the fold table, surrogates and all."""
    expected = text.lower().translate(_FAST_FOLD)
    assert fold_same_length(text) == (expected if len(expected) == len(text) else None)
    assert has_marks(text) == (fold(text) != text.lower())  # the early exits agree with folding it all


def test_fast_fold_of_corpus_text_is_fold():
    text = (_ROOT / "corpus").joinpath(sorted(p.name for p in (_ROOT / "corpus").iterdir())[0]).read_text(
        encoding="utf-8")
    folded = fold_same_length(text)
    assert folded is not None and len(folded) == len(text) and not has_marks(folded)
    assert folded.split() == [fold(word) for word in text.split()]


def test_segmentation_joins_compound_words_with_offsets():
    text = "Chủ tịch UBND tỉnh Thái Bình chủ trì hội nghị cải cách hành chính."
    words = analyse(text).words
    assert [w for w, _, _ in words] == ["chủ_tịch", "ubnd", "tỉnh", "thái_bình", "chủ_trì", "hội_nghị",
                                        "cải_cách", "hành_chính"]
    for word, start, end in words:
        assert text[start:end].lower().replace(" ", "_") == word


def test_different_tone_placement_gives_the_same_tokens():
    assert analyse("hòa bình thủy lợi").words[0][0] == analyse("hoà bình thuỷ lợi").words[0][0]


def test_folded_syllables_for_unaccented_queries():
    assert analyse("Cải cách hành chính").folded == ["cai", "cach", "hanh", "chinh"]
    assert analyse("Cải cách hành chính").marked == ["cải", "cách", "hành", "chính"]
    assert analyse("cai cach hanh chinh").folded == ["cai", "cach", "hanh", "chinh"]


def test_abbreviation_dot_is_not_part_of_the_word():
    text = "Lãnh đạo UBND."
    word, start, end = analyse(text).words[-1]
    assert word == "ubnd" and text[start:end] == "UBND"


def test_numbers_and_percentages_are_tokens():
    words = [w for w, _, _ in analyse("GRDP tăng 7,37% ngày 18/3/2024").words]
    assert "7,37" in words and "2024" in words


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_analyses_with_offsets_inside_it(text):
    result = analyse(text)
    for token, start, end in result.words:
        assert 0 <= start < end <= len(text)
        assert token == "_".join(canonical_tones(text[start:end]).lower().split())
    for folded, marked, start, end in result.syllables:
        assert canonical_tones(text[start:end]).lower() == marked and fold(marked) == folded


@pytest.mark.system
def test_loading_the_segmenter_leaves_no_model_file_behind(tmp_path):
    """pyvi's CRF is unpickled through a temp file; a process killed later must not leak it."""
    import subprocess
    import sys

    env = {"TMPDIR": str(tmp_path), "PATH": ""}
    code = "from indexer.analysis import analyse; analyse('hành chính công'); import os; os._exit(0)"
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=str(_ROOT))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.system
def test_threads_analysing_at_start_up_share_one_tagger():
    """A server's first query and its warm-up thread load pyvi at the same time: neither may fail."""
    import subprocess
    import sys

    code = """
import threading
from indexer.analysis import analyse
errors = []
def run():
    try:
        analyse("khởi động hệ thống")
    except Exception as err:
        errors.append(repr(err))
threads = [threading.Thread(target=run) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(errors)
"""
    for _ in range(3):  # a race: try a few fresh processes
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(_ROOT), check=True)
        assert done.stdout.strip() == "[]", done.stdout


def _syllable_lists(text: str) -> list[list[str]]:
    """Each line of text as the syllables pyvi's regex splits it into (what the CRF is given)."""
    lines = canonical_tones(clean_text(text)).split("\n")
    return [toks for line in lines if (toks := [m.group() for m in _SYLLABLE_RE.finditer(line)])]


def _pyvi_features_and_labels(toks: list[str]) -> tuple[list[list[tuple]], list[str]]:
    """pyvi's own features of a sentence (false ones left out, order kept) and the labels they give."""
    tokenizer = load_segmenter()
    feats = tokenizer.sent2features(toks, False)
    return [[(k, v) for k, v in f.items() if v is not False] for f in feats], tokenizer.model.predict([feats])[0]


def _check_features(toks: list[str]) -> None:
    ours = crf_features(toks)
    want_features, want_labels = _pyvi_features_and_labels(toks)
    assert [list(f.items()) for f in ours] == want_features
    assert load_segmenter().model.tagger_.tag(ours) == list(want_labels)


def test_crf_features_and_labels_are_pyvi_s_on_the_seed_pages():
    texts = [p.read_text(encoding="utf-8") for p in sorted((_ROOT / "corpus").glob("*.txt"))]
    sentences = [toks for text in texts for toks in _syllable_lists(text)]
    assert sum(map(len, sentences)) > 3000
    for toks in sentences:
        _check_features(toks)


_SYLLABLES = ["cải", "cách", "hành", "chính", "Ủy", "ban", "nhân", "dân", "UBND", "TP.", "Hà", "Nội", "2024", "18",
              "/", "-", ",", ".", "...", "(", ")", "x", "A", "ΣΑΣ", "İ", "ǅ", "Ⅻ", "ß", "đ", "Đ", "quý", "thuỷ", "hoà"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_SYLLABLES), min_size=1, max_size=12))
def test_crf_features_and_labels_are_pyvi_s_on_any_syllables(toks):
    _check_features(toks)


_FORWARD_DEFINITION = re.compile(r"((?:[\w-]+\s+){1,10})\(\s*([A-ZĐ][A-ZĐ0-9&-]{1,9})\s*\)")


def _mine_forward(text: str) -> list[tuple[str, str]]:
    """The acronym miner as first written: one forward pattern (slow, but plainly what is meant)."""
    found = []
    for m in _FORWARD_DEFINITION.finditer(text):
        words, acronym = m.group(1).split(), m.group(2)
        letters = "".join(ch for ch in fold(acronym) if ch.isalpha())
        if len(letters) < 2 or len(words) < len(letters):
            continue
        candidate = words[-len(letters):]
        if "".join(fold(w)[0] for w in candidate) == letters:
            found.append((acronym.lower(), " ".join(candidate).lower()))
    return found


_ACRONYM_TEXT = st.lists(st.sampled_from(["cải", "cách", "hành", "chính", "Ủy", "ban", "nhân", "dân", "a", "b-c", "x1",
                                          " ", "  ", "\n", ",", ".", "(", ")", "( ", " )", "CCHC", "UBND", "AB", "A",
                                          "ĐBQH", "KT-XH", "Q1", "(CCHC)", "(UBND)", "(AB)"]), max_size=60).map("".join)


@settings(max_examples=500, deadline=None)
@given(_ACRONYM_TEXT)
def test_acronym_miner_finds_what_the_forward_pattern_finds(text):
    assert mine(text) == _mine_forward(text)


def test_acronym_miner_examples():
    assert mine("Công tác cải cách hành chính (CCHC) và Ủy ban nhân dân ( UBND ) tỉnh") == \
        [("cchc", "cải cách hành chính"), ("ubnd", "ủy ban nhân dân")]
    assert mine("x a b c d e f g h i j (ABCDEFGHIJ)") == [("abcdefghij", "a b c d e f g h i j")]  # ten words at most
    assert mine("a b c d e f g h i j k (ABCDEFGHIJK)") == []  # eleven letters: no acronym pattern
    assert mine("Ban chấp hành (BCH) (BCH) ban chấp hành (BCH)") == [("bch", "ban chấp hành")] * 2
    assert mine("kinh tế - xã hội(KT-XH)") == []  # no space before the parenthesis
