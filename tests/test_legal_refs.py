"""Legal document numbers: recognised in text with their kind and offsets, in queries whole or in part,
and as filter values (malformed ones refused with a bilingual message)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.legal_refs import (
    KINDS,
    LegalRef,
    RefQuery,
    find_refs,
    is_valid_ref,
    kind_of_number,
    parse_number,
    query_refs,
)


def found(text: str) -> list[tuple[str, str | None]]:
    """(number, kind) of every reference in a text, checking that each span covers what was matched."""
    refs = find_refs(text)
    for r in refs:
        assert 0 <= r.start < r.end <= len(text)
        assert text[r.start].isalnum() and text[r.end - 1].isalnum(), text[r.start:r.end]
    return [(r.number, r.kind) for r in refs]


@pytest.mark.parametrize("text, number, kind", [
    ("Thông tư số 01/2024/TT-BNV quy định", "01/2024/TT-BNV", "thông tư"),
    ("theo Nghị định 30/2020/NĐ-CP.", "30/2020/NĐ-CP", "nghị định"),
    ("Quyết định 1234/QĐ-UBND ngày 5/3", "1234/QĐ-UBND", "quyết định"),
    ("áp dụng QCVN 02:2019/BLĐTBXH về an toàn", "QCVN 02:2019/BLĐTBXH", "quy chuẩn"),
    ("Nghị quyết 202/2025/QH15 của Quốc hội", "202/2025/QH15", "nghị quyết"),
    ("Luật số 59/2020/QH14", "59/2020/QH14", "luật"),
    ("Chỉ thị 05/CT-TTg", "05/CT-TTg", "chỉ thị"),
    ("Công văn 123/UBND-KT", "123/UBND-KT", "công văn"),
    ("Thông tư liên tịch số 26/2015/TTLT-BYT-BNV ngày 7/10/2015", "26/2015/TTLT-BYT-BNV", "thông tư liên tịch"),
    ("Kế hoạch số 41/KH-UBND", "41/KH-UBND", "kế hoạch"),
    ("Thông báo số 351/TB-VPCP", "351/TB-VPCP", "thông báo"),
    ("Nghị quyết số 57-NQ/TW của Bộ Chính trị", "57-NQ/TW", "nghị quyết"),
    ("Quy định số 102-QĐ/TW", "102-QĐ/TW", "quy định"),  # the party's older rules are numbered QĐ
    ("Kết luận 21-KL/TW", "21-KL/TW", "kết luận"),
    ("TCVN 5502:2003 về nước cấp", "TCVN 5502:2003", "tiêu chuẩn"),
    ("Bản án hình sự sơ thẩm số 48/2019/HS-ST ngày", "48/2019/HS-ST", "bản án"),
    ("Công văn số 1234/CT-TTHT của Cục Thuế", "1234/CT-TTHT", "công văn"),  # CT is also Cục Thuế
    ("Văn bản số 3764/VPCP-KTTH", "3764/VPCP-KTTH", "công văn"),
    ("văn bản số 1058-TB/HU", "1058-TB/HU", "thông báo"),  # "văn bản" is any document: the code says more
    ("hợp đồng số 271/HĐKT/2017 để", "271/HĐKT/2017", "hợp đồng"),
])
def test_every_form_with_its_kind(text, number, kind):
    assert found(text) == [(number, kind)]


@pytest.mark.parametrize("text, number", [
    ("Nghị định 30/2020/NĐ-CP", "30/2020/NĐ-CP"),
    ("nghị định 30 / 2020 / ND - CP", "30/2020/NĐ-CP"),  # spaces, D for Đ
    ("NGHỊ ĐỊNH SỐ 30/2020/NĐ-CP", "30/2020/NĐ-CP"),
    ("nghi dinh 30/2020/nd-cp", "30/2020/NĐ-CP"),  # no marks, lower case
    ("Nghị định 30/2020/NÐ–CP", "30/2020/NĐ-CP"),  # the look-alike eth and an en dash
    ("Thông tư 1/2024/tt-bnv", "01/2024/TT-BNV"),  # the law pads numbers below ten
    ("Quyết định 0059/2016/qd-ttg", "59/2016/QĐ-TTg"),  # the law's mixed case
    ("Thông tư 07/2019/TT-BLDTBXH", "07/2019/TT-BLĐTBXH"),  # a ministry's Đ
    ("Công văn 5/HD-UBND", "05/HD-UBND"),  # HD (hướng dẫn) is a code of its own: no Đ forced
    ("QCVN 02 : 2019 / BLDTBXH", "QCVN 02:2019/BLĐTBXH"),
    ("Nghị quyết 29 - NQ / TƯ", "29-NQ/TW"),
    ("Công văn số 1574 / C 41 - C 50 ngày", "1574/C41-C50"),  # the tokenised VietNews text
    ("Nghị định 167/2013/NĐ-CPngày 12/11", "167/2013/NĐ-CP"),  # a lost space
    ("Nghị định số 04/2018/NĐCP", "04/2018/NĐ-CP"),  # a lost hyphen
    ("Nghị quyết 439 / NQ - UBTVQH 14 ngày", "439/NQ-UBTVQH14"),  # the Assembly's term split off
    ("Chỉ thị số 20 / CT / TTG của Thủ tướng", "20/CT-TTg"),  # type and issuer join with a hyphen
])
def test_variants_normalise_to_one_number(text, number):
    assert [n for n, _ in found(text)] == [number]


def test_kind_from_code_when_no_word_says_it():
    assert found("theo 30/2020/NĐ-CP và 01/2024/TT-BNV, 1234/QĐ-UBND") == [
        ("30/2020/NĐ-CP", "nghị định"), ("01/2024/TT-BNV", "thông tư"), ("1234/QĐ-UBND", "quyết định")]
    assert kind_of_number("202/2025/QH15") is None  # laws and resolutions share the form
    assert kind_of_number("123/UBND-KT") == "công văn"
    assert kind_of_number("QCVN 02:2019/BLĐTBXH") == "quy chuẩn"


@pytest.mark.parametrize("text", [
    "ngày 18/3/2024 và 18/03/2024",
    "tỷ số 2-1, hiệp hai 3 - 0",
    "COVID-19 và COVID-19/SARS",
    "1/2 dân số, 3/4 diện tích, 24/7",
    "gọi 0912/345/678 hoặc 024.3825.1234",
    "giá 20.000/kg, 50/kg, 3/ha",
    "xem https://chinhphu.vn/2024/01/tt-bnv và www.moj.gov.vn/01/QĐ-UBND",
    "Quận 3/TP.HCM, nhà số 22/A6",
    "chuyến bay VJ 310 / SGN - UIH và BL 302 / BL 303",
    "Gói thầu 04 / BRT - TB",
    "Nghị định 30/2 017 / NĐ - CP",  # a number split by tokenising: its tail is no number
    "U23 Việt Nam thắng 2-1, tỷ lệ 1/3",
    "HIV/AIDS, 4G/5G, km/h",
    "",
])
def test_no_false_positives(text):
    assert find_refs(text) == []


def test_offsets_point_at_the_text():
    text = "Căn cứ Nghị định số 30/2020/NĐ-CP và Thông tư 01/2024/TT-BNV; QCVN 02:2019/BLĐTBXH."
    refs = find_refs(text)
    assert [text[r.start:r.end] for r in refs] == ["30/2020/NĐ-CP", "01/2024/TT-BNV", "QCVN 02:2019/BLĐTBXH"]
    spaced = "Quyết định số 32 / QĐ - THA ngày 16/5/2019"
    (r,) = find_refs(spaced)
    assert spaced[r.start:r.end] == "32 / QĐ - THA"


def test_nfd_input_gives_offsets_into_the_nfd_text():
    text = "Theo Nghị định số 30/2020/NĐ-CP và Thông tư 01/2024/TT-BNV của Bộ Nội vụ, Quyết định 12/QĐ-UBND."
    nfd = unicodedata.normalize("NFD", text)
    assert len(nfd) > len(text)
    refs, nfd_refs = find_refs(text), find_refs(nfd)
    assert [(r.number, r.kind) for r in nfd_refs] == [(r.number, r.kind) for r in refs]
    for r, n in zip(refs, nfd_refs):
        assert unicodedata.normalize("NFC", nfd[n.start:n.end]) == text[r.start:r.end]
        assert unicodedata.normalize("NFC", nfd[:n.start]) == text[:r.start]


def test_nfd_code_letters():
    nfd = unicodedata.normalize("NFD", "Thông tư 07/2019/TT-BLĐTBXH và quyết định 5/qđ-ubnd")
    assert [r.number for r in find_refs(nfd)] == ["07/2019/TT-BLĐTBXH", "05/QĐ-UBND"]


def test_refs_are_frozen_values():
    ref = find_refs("Nghị định 30/2020/NĐ-CP")[0]
    assert ref == LegalRef("30/2020/NĐ-CP", "nghị định", 10, 23)
    with pytest.raises(AttributeError):
        ref.number = "x"  # type: ignore[misc]


# --- queries -------------------------------------------------------------------------------


def test_query_with_a_complete_number():
    (q,) = query_refs("01/2024/TT-BNV")
    assert q == RefQuery("01/2024/TT-BNV", (), "thông tư", 0, 14)
    assert not q.partial
    assert q.matches("01/2024/TT-BNV") and not q.matches("01/2024/TT-BTC")
    (q,) = query_refs("30/2020/ND-CP")
    assert q.number == "30/2020/NĐ-CP"
    (q,) = query_refs("cải cách 123/ubnd-kt hành chính")  # a query may write it in lower case
    assert (q.number, q.start, q.end) == ("123/UBND-KT", 9, 20)


@pytest.mark.parametrize("query, prefixes, kind", [
    ("tt 01/2024", ("01/2024/TT-",), "thông tư"),
    ("nghị định 30/2020", ("30/2020/NĐ-",), "nghị định"),
    ("nghi dinh 30/2020 xu phat", ("30/2020/NĐ-",), "nghị định"),
    ("30/2020/nđ", ("30/2020/NĐ-",), "nghị định"),
    ("nghị định 100", ("100/", "100-"), "nghị định"),
    ("qđ 1234", ("1234/", "1234-"), "quyết định"),
    ("luật 59/2020", ("59/2020/QH",), "luật"),
    ("nghị quyết 202/2025", ("202/2025/",), "nghị quyết"),
    ("nghị quyết 57", ("57/", "57-"), "nghị quyết"),
    ("QCVN 02:2019", ("QCVN 02:2019/",), "quy chuẩn"),
    ("tcvn 5502", ("TCVN 5502:",), "tiêu chuẩn"),
])
def test_query_with_part_of_a_number(query, prefixes, kind):
    (q,) = query_refs(query)
    assert q.partial and q.number is None
    assert (q.prefixes, q.kind) == (prefixes, kind)


def test_partial_queries_match_by_prefix_and_kind():
    (tt,) = query_refs("tt 01/2024")
    assert tt.matches("01/2024/TT-BNV", "thông tư")
    assert not tt.matches("01/2024/TTLT-BNV-BTC")
    (nd,) = query_refs("nghị định 100")
    assert nd.matches("100/2019/NĐ-CP", "nghị định")
    assert nd.matches("100/2019/NĐ-CP")  # no kind recorded: the code tells
    assert not nd.matches("100/QĐ-UBND", "quyết định")
    assert not nd.matches("1000/2019/NĐ-CP")
    (nq,) = query_refs("nghị quyết 202/2025")
    assert nq.matches("202/2025/QH15")  # QH numbers may be resolutions
    assert not nq.matches("202/2025/NĐ-CP")
    (party,) = query_refs("nghị quyết 57")
    assert party.matches("57-NQ/TW") and party.matches("57/NQ-CP")


def test_query_offsets_and_order():
    query = "thông tư 1/2024/tt-bnv và nghị định 30/2020 về tuyển dụng"
    refs = query_refs(query)
    assert [(query[q.start:q.end], q.number, q.prefixes) for q in refs] == [
        ("1/2024/tt-bnv", "01/2024/TT-BNV", ()), ("nghị định 30/2020", None, ("30/2020/NĐ-",))]


@pytest.mark.parametrize("query", ["cải cách hành chính", "luật 2024", "01/2024", "18/3/2024", "tỷ số 2-1",
                                   "covid-19", "50/kg", ""])
def test_queries_without_numbers(query):
    assert query_refs(query) == []


def test_nfd_query_offsets():
    query = unicodedata.normalize("NFD", "nghị định 30/2020 và thông tư 01/2024/TT-BNV")
    a, b = query_refs(query)
    assert unicodedata.normalize("NFC", query[a.start:a.end]) == "nghị định 30/2020"
    assert query[b.start:b.end] == "01/2024/TT-BNV"


# --- filter values -------------------------------------------------------------------------


@pytest.mark.parametrize("value, number", [
    ("30/2020/NĐ-CP", "30/2020/NĐ-CP"),
    ("30/2020/ND-CP", "30/2020/NĐ-CP"),
    (" Thông tư 01/2024/tt-bnv ", "01/2024/TT-BNV"),
    ("57-nq/tw", "57-NQ/TW"),
    ("QCVN 02:2019/BLDTBXH", "QCVN 02:2019/BLĐTBXH"),
    (unicodedata.normalize("NFD", "1234/QĐ-UBND"), "1234/QĐ-UBND"),
])
def test_parse_number(value, number):
    assert parse_number(value) == number
    assert is_valid_ref(value)


@pytest.mark.parametrize("value", ["", "   ", "abc", "01/2024", "18/3/2024", "30/2020/NĐ", "30/2020/NĐ-CP x",
                                   "30/2020/NĐ-CP và 01/2024/TT-BNV", "x" * 500, "2-1", "QCVN 02"])
def test_malformed_filter_values_are_refused_in_both_languages(value):
    assert not is_valid_ref(value)
    with pytest.raises(ValueError) as err:
        parse_number(value)
    message = str(err.value)
    assert "not a document number" in message and "không phải số hiệu văn bản" in message
    assert len(message) < 400


def test_kinds_are_named():
    assert {"thông tư", "nghị định", "quyết định", "nghị quyết", "luật", "chỉ thị", "công văn", "quy chuẩn",
            "tiêu chuẩn", "kế hoạch", "thông báo"} <= KINDS


# --- properties ----------------------------------------------------------------------------

_code = st.sampled_from(["NĐ-CP", "TT-BNV", "QĐ-UBND", "QĐ-TTg", "TTLT-BYT-BNV", "NQ-HĐND", "TT-BLĐTBXH"])


@settings(max_examples=200, deadline=None)
@given(num=st.integers(1, 99999), year=st.integers(1990, 2030), code=_code,
       before=st.sampled_from(["", "Theo ", "căn cứ Thông tư số ", "(", "Nghị định: "]),
       after=st.sampled_from(["", ".", " ngày 5/3/2024", ", và", ")"]),
       lower=st.booleans(), spaced=st.booleans(), nfd=st.booleans())
def test_any_number_written_any_way_is_found_once(num, year, code, before, after, lower, spaced, nfd):
    canonical = f"{num:02d}/{year}/{code}"
    written = f"{num}/{year}/{code}"
    if spaced:
        written = written.replace("/", " / ").replace("-", " - ")
    if lower:
        written = written.lower()
    text = before + written + after
    if nfd:
        text = unicodedata.normalize("NFD", text)
    refs = find_refs(text)
    if lower and spaced and "số" not in before and ":" not in before:
        return  # lower-case words between spaces are words unless a type word or "số" introduces them
    assert [r.number for r in refs] == [canonical]
    r = refs[0]
    assert unicodedata.normalize("NFC", text[r.start:r.end]).replace(" ", "").lower() == \
        unicodedata.normalize("NFC", written).replace(" ", "").lower()
    assert parse_number(text[r.start:r.end]) == canonical


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789/- .:,QĐDNTCPVHKqđdntcpvhkaấố\u0301\u0323")), max_size=40))
def test_find_refs_never_fails_and_spans_are_inside(text):
    for r in find_refs(text):
        assert 0 <= r.start < r.end <= len(text)
        assert r.number
    for q in query_refs(text):
        assert 0 <= q.start < q.end <= len(text)
