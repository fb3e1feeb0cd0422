"""The HTTP API and the search page over the seed index (unit tier: the app in this process)."""

from __future__ import annotations

import pytest
from conftest import CCHC_SEEDS, SEED_IDS


def test_search_finds_thai_binh_articles_with_marks(client):
    body = client.get("/api/search", params={"q": "cải cách hành chính"}).json()
    assert {h["id"] for h in body["hits"][:3]} == CCHC_SEEDS  # the three pages that say it come first
    top = body["hits"][0]
    assert set(top) >= {"id", "title", "url", "source", "published", "score", "snippet"}
    assert "<mark>cải cách" in top["snippet"].lower()
    assert body["query"] == "cải cách hành chính" and set(body) >= {"total", "took_ms", "expansions"}


def test_unaccented_query_finds_the_same_articles(client):
    marked = client.get("/api/search", params={"q": "cải cách hành chính"}).json()
    plain = client.get("/api/search", params={"q": "cai cach hanh chinh"}).json()
    assert plain["hits"][0]["id"] == marked["hits"][0]["id"]
    assert "<mark>" in plain["hits"][0]["snippet"]


def test_phrase_and_exclusion(client):
    phrase = client.get("/api/search", params={"q": '"Tạo động lực mới"'}).json()
    assert [h["id"] for h in phrase["hits"]] == ["001_0c1619dc2afa53c4"]
    # 002 alone credits TTXVN: the other four are found.
    excluded = client.get("/api/search", params={"q": "cải cách -TTXVN"}).json()
    assert {h["id"] for h in excluded["hits"]} == set(SEED_IDS) - {"002_31e144db15d30624"}
    for hit in excluded["hits"]:
        doc = client.get(f"/api/documents/{hit['id']}").json()
        assert "TTXVN" not in doc["body"] + doc.get("title", "")
    # Names are joined into one pyvi word ("Nguyễn_Khắc_Thận"); excluding one syllable of them still works:
    # 000, 002 and 003 name him.
    without_than = client.get("/api/search", params={"q": "cải cách -Thận"}).json()
    assert {h["id"] for h in without_than["hits"]} == {"001_0c1619dc2afa53c4", "004_206058703f9fac61"}
    for hit in without_than["hits"]:
        assert "Thận" not in client.get(f"/api/documents/{hit['id']}").json()["body"]


def _found(client, q: str) -> tuple[int, set[str]]:
    """Status and the set of hit ids of one API search."""
    res = client.get("/api/search", params={"q": q})
    return res.status_code, {h["id"] for h in res.json().get("hits", [])}


# Stray quotes, operators and punctuation around words find what the words find; alone they find nothing
# (and say so with 200 and no hits, not an error and not every article).
@pytest.mark.parametrize(("q", "words"), [('"cải cách', "cải cách"), ('cải cách"', "cải cách"),
                                          ("cải^2 cách", "cải cách"), ("UBND)", "UBND"), ("title:x", None),
                                          ("((( )))", None), ("AND OR NOT", None), ("- - -", None), ("!!!", None),
                                          ("*", None), ("~~", None), ("'", None), ("\\", None), ("-", None),
                                          ("\u200b", None)])
def test_odd_queries_never_fail(client, q, words):
    status, found = _found(client, q)
    assert status == 200
    if words is None:
        assert found == set()
    else:
        assert found and found == _found(client, words)[1]


def test_empty_and_too_long_queries_are_422(client):
    for q in ["", "   "]:
        res = client.get("/api/search", params={"q": q})
        assert res.status_code == 422 and "empty" in res.json()["detail"]
    res = client.get("/api/search", params={"q": "cải cách " * 600})
    assert res.status_code == 422 and "500" in res.json()["detail"]
    missing = client.get("/api/search")
    assert missing.status_code == 422 and "q: thiếu giá trị" in missing.json()["detail"]


def test_bad_parameters_are_422(client):
    """Each bad parameter is named, with what it must be, in Vietnamese too."""
    for params, said in [({"limit": -1}, "limit: phải lớn hơn hoặc bằng 0"),
                         ({"limit": 1000}, "limit: phải nhỏ hơn hoặc bằng 100"),
                         ({"sort": "random"}, "sort: phải là một trong"),
                         ({"from": "18/3/2024"}, "from: phải là ngày dạng 2024-03-18"),
                         ({"from": "2024-05-01", "to": "2024-01-01"}, "ngày 'from' sau ngày 'to'"),
                         ({"offset": "abc"}, "offset: phải là số nguyên")]:
        res = client.get("/api/search", params={"q": "x", **params})
        assert res.status_code == 422 and said in res.json()["detail"], (params, res.text)
        assert "Traceback" not in res.text


def test_date_filter_and_newest_sort(client):
    res = client.get("/api/search", params={"q": "hội nghị", "from": "2024-01-01", "to": "2024-12-31"}).json()
    assert [h["id"] for h in res["hits"]] == ["000_c148fd66da705f65"]
    newest = client.get("/api/search", params={"q": "tỉnh", "sort": "newest"}).json()["hits"]
    dated = [h["published"] for h in newest if h["published"]]
    assert dated == sorted(dated, reverse=True) and len(dated) == 3


def test_documents_and_404(client):
    doc = client.get("/api/documents/000_c148fd66da705f65").json()
    assert doc["title"].startswith("Các đồng chí lãnh đạo tỉnh") and doc["published"].startswith("2024-03-18")
    res = client.get("/api/documents/khong-co")
    assert res.status_code == 404 and "khong-co" in res.json()["detail"]


def test_healthz_reports_count_and_version(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["documents"] == 5 and body["version"].startswith("gen-000001")


def test_bulk_endpoint_answers_in_order(client):
    queries = [{"id": "a", "q": "cải cách hành chính"}, {"id": 2, "q": "GRDP"}, {"id": "c", "q": "!!!"}]
    res = client.post("/api/search/bulk", json={"queries": queries, "limit": 2}).json()["results"]
    assert [r["id"] for r in res] == ["a", 2, "c"]
    assert res[1]["hits"][0]["id"] == "000_c148fd66da705f65"
    assert set(res[0]["hits"][0]) == {"id", "score", "title"}


def test_bulk_limits(client):
    as_json = {"content-type": "application/json"}
    too_many = client.post("/api/search/bulk", json={"queries": [{"id": i, "q": "UBND"} for i in range(1001)]})
    assert too_many.status_code == 413 and "at most 1000 queries per request (got 1001)" in too_many.json()["detail"]
    broken = client.post("/api/search/bulk", content=b"{not json", headers=as_json)
    assert broken.status_code == 422 and "JSON" in broken.json()["detail"]
    no_q = client.post("/api/search/bulk", json={"queries": [{"id": 1}]})
    assert no_q.status_code == 422 and "queries.0.q: Field required" in no_q.json()["detail"]
    huge = b'{"queries": [{"id": 1, "q": "' + b"a" * 1_100_000 + b'"}]}'
    too_big = client.post("/api/search/bulk", content=huge, headers=as_json)
    assert too_big.status_code == 413 and "larger than 1000000 bytes" in too_big.json()["detail"]


def test_search_page_shows_results_in_vietnamese(client):
    res = client.get("/", params={"q": "cải cách hành chính"})
    assert res.status_code == 200
    assert "Tìm thấy" in res.text and "kết quả" in res.text and "<mark>" in res.text
    assert 'value="cải cách hành chính"' in res.text
    assert "Content-Security-Policy" in res.headers
    assert '<script src="/static/suggest.js" defer></script>' in res.text and "<script>" not in res.text


def test_search_page_without_query_and_with_nothing_found(client):
    assert '<form class="search"' in client.get("/").text
    res = client.get("/", params={"q": "zzzqqq"})
    assert "Không tìm thấy kết quả" in res.text


def test_search_page_escapes_query(client):
    res = client.get("/", params={"q": '<script>alert(1)</script>'})
    assert "<script>alert" not in res.text and "&lt;script&gt;" in res.text


def test_article_page(client):
    res = client.get("/articles/000_c148fd66da705f65")
    assert res.status_code == 200 and "Minh Hương" in res.text and "22.556 lượt xem" in res.text
    missing = client.get("/articles/none")
    assert missing.status_code == 404 and "<h1>Không tìm thấy bài viết</h1>" in missing.text


def test_openapi_docs(client):
    spec = client.get("/openapi.json").json()
    assert "/api/search" in spec["paths"] and "/api/search/bulk" in spec["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text


def test_atom_feed_of_a_search(client):
    import xml.etree.ElementTree as ET

    res = client.get("/feed", params={"q": "cải cách hành chính"})
    assert res.status_code == 200 and res.headers["content-type"].startswith("application/atom+xml")
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ET.fromstring(res.content)
    entries = root.findall("a:entry", ns)
    assert len(entries) >= 3
    updated = [e.find("a:updated", ns).text for e in entries]
    dated = [u for u in updated if u.startswith("2024") or u.startswith("2023")]
    assert dated == sorted(dated, reverse=True)
    assert all(e.find("a:link", ns).get("href").startswith("http") for e in entries)
    assert client.get("/feed", params={"q": ""}).status_code == 422


def test_page_facets_suggestion_and_clear_filters(client):
    page = client.get("/", params={"q": "cai cach hanh chinh"}).text
    assert "Có phải bạn muốn tìm" in page and "cải cách hành chính" in page
    assert "Năm" in page and "from=2023-01-01" in page
    filtered = client.get("/", params={"q": "hội nghị", "from": "2024-01-01", "to": "2024-12-31"}).text
    assert "Xóa bộ lọc" in filtered and "Tìm thấy 1 kết quả" in filtered


def test_article_page_marks_query_and_lists_related(client):
    page = client.get("/articles/002_31e144db15d30624", params={"q": "cải cách hành chính"}).text
    assert "<mark>cải cách hành chính</mark>" in page
    assert "Bài viết liên quan" in page and "/articles/000_c148fd66da705f65" in page


def test_suggest_completes_with_tone_marks(client):
    body = client.get("/api/suggest", params={"q": "cai c"}).json()
    assert "cải cách" in body["suggestions"]
    assert client.get("/api/suggest", params={"q": "x" * 101}).status_code == 422
    assert client.get("/api/suggest", params={"q": " "}).json()["suggestions"] == []


def test_did_you_mean_mends_a_typing_slip(client):
    page = client.get("/", params={"q": "cai cahc hanh chinh xyzw"}).text
    assert "Có phải bạn muốn tìm" in page
    assert "cải cách hành chính" in page


def test_page_colours_meet_wcag_aa_contrast():
    import re
    from pathlib import Path

    css = (Path(__file__).resolve().parent.parent / "app" / "static" / "style.css").read_text()
    colours = dict(re.findall(r"--(\w+):\s*(#[0-9a-fA-F]{6})", css))

    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    def ratio(a: str, b: str) -> float:
        hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
        return (hi + 0.05) / (lo + 0.05)

    white = "#ffffff"
    for fg, bg in [(colours["ink"], white), (colours["muted"], white), (colours["link"], white),
                   (colours["ink"], colours["mark"]), (white, colours["link"])]:
        assert ratio(fg, bg) >= 4.5, (fg, bg)
