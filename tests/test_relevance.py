"""Vietnamese relevance through the HTTP API: marks or not, tone placement, acronyms, phrases, numbers.

Unit tier: the index is built and served in this process.
"""

from __future__ import annotations

import pytest
from conftest import index_of
from fastapi.testclient import TestClient

ARTICLES = [
    {"id": "duong-pho", "title": "Sửa chữa đường phố trung tâm", "body": "Thành phố sửa chữa đường phố trước Tết."},
    {"id": "duong-lich", "title": "Lịch dương và lịch âm",
     "body": "Ngày dương lịch được dùng trong văn bản hành chính."},
    {"id": "hoa-binh", "title": "Giữ gìn hoà bình", "body": "Nhân dân giữ gìn hoà bình và thuỷ lợi."},
    {"id": "ubnd-full", "title": "Ủy ban nhân dân tỉnh họp phiên thường kỳ",
     "body": "Ủy ban nhân dân tỉnh Thái Bình họp phiên thường kỳ tháng 3."},
    {"id": "ubnd-short", "title": "Chủ tịch UBND huyện tiếp dân", "body": "Chủ tịch UBND huyện tiếp công dân định kỳ."},
    {"id": "cchc-adjacent", "title": "Tin tổng hợp",
     "body": "Tỉnh đẩy mạnh cải cách hành chính (CCHC) trong năm nay. Kết quả CCHC được đánh giá cao."},
    {"id": "cchc-scattered", "title": "Tin tổng hợp khác",
     "body": "Chính quyền cải tạo trụ sở; cách làm mới giúp hành trình của người dân nhanh hơn."},
    {"id": "thong-tu", "title": "Hướng dẫn mới",
     "body": "Theo Thông tư 01/2024/TT-BNV ngày 18/3/2024, GRDP tăng 7,37%."},
    {"id": "ttpv-def", "title": "Ra mắt trung tâm",
     "body": "Tỉnh ra mắt Trung tâm phục vụ hành chính công (TTPVHCC). TTPVHCC mở cửa cả thứ bảy."},
    {"id": "ttpv-full", "title": "Tiếp nhận hồ sơ",
     "body": "Trung tâm phục vụ hành chính công tiếp nhận hồ sơ đất đai."},
    {"id": "thong-tu-khac", "title": "Hướng dẫn cũ",
     "body": "Theo Thông tư 02/2023/TT-BTC ngày 1/1/2023, thu ngân sách tăng."},
]


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> TestClient:
    """A client over an index of the articles above."""
    from app.main import create_app
    from app.settings import Settings

    return TestClient(create_app(Settings(index_dir=index_of(tmp_path_factory.mktemp("rel"), ARTICLES))))


def ids(api, q: str, **params) -> list[str]:
    return [h["id"] for h in api.get("/api/search", params={"q": q, **params}).json()["hits"]]


def test_marked_query_prefers_exact_marks_but_finds_the_rest(api):
    found = ids(api, "đường")
    assert found[0] == "duong-pho" and "duong-lich" in found


def test_unmarked_query_matches_marked_text(api):
    assert set(ids(api, "duong")[:2]) == {"duong-pho", "duong-lich"}
    assert ids(api, "sua chua duong pho")[0] == "duong-pho"


def test_tone_placement_does_not_matter(api):
    assert ids(api, "hòa bình")[0] == "hoa-binh"
    assert ids(api, "thủy lợi")[0] == "hoa-binh"


def test_acronym_expands_to_full_name_and_back(api):
    res = api.get("/api/search", params={"q": "UBND tỉnh"}).json()
    assert {"from": "UBND", "to": "ủy ban nhân dân"} in res["expansions"]
    assert {"ubnd-full", "ubnd-short"} <= {h["id"] for h in res["hits"]}
    back = api.get("/api/search", params={"q": "ủy ban nhân dân huyện"}).json()
    assert {"from": "ủy ban nhân dân", "to": "UBND"} in back["expansions"]
    assert "ubnd-short" in [h["id"] for h in back["hits"]]


def test_adjacent_syllables_rank_above_scattered_ones(api):
    for q in ("cải cách hành chính", "cai cach hanh chinh"):
        found = ids(api, q)
        assert found.index("cchc-adjacent") < found.index("cchc-scattered"), q


def test_document_numbers_dates_and_percentages_as_written(api):
    assert ids(api, "01/2024/TT-BNV")[0] == "thong-tu"
    assert ids(api, "18/3/2024")[0] == "thong-tu"
    assert ids(api, "7,37%")[0] == "thong-tu"
    assert ids(api, "02/2023/TT-BTC")[0] == "thong-tu-khac"


def test_quoted_phrase_needs_the_words_in_order(api):
    assert ids(api, '"cải cách hành chính"') == ["cchc-adjacent"]
    assert ids(api, '"cai cach hanh chinh"') == ["cchc-adjacent"]


def test_acronym_mined_from_the_corpus(api):
    res = api.get("/api/search", params={"q": "TTPVHCC"}).json()
    assert {"from": "TTPVHCC", "to": "trung tâm phục vụ hành chính công"} in res["expansions"]
    assert [h["id"] for h in res["hits"]][:2] == ["ttpv-def", "ttpv-full"]


def test_quoted_phrase_found_nowhere_falls_back_to_its_words(api):
    res = api.get("/api/search", params={"q": '"cải cách hành chánh"'}).json()
    assert res["relaxed"] is True and res["hits"][0]["id"] == "cchc-adjacent"
    assert api.get("/api/search", params={"q": '"cải cách hành chính"'}).json()["relaxed"] is False
