"""The HTTP API and the search page over the seed index."""

from __future__ import annotations

import pytest

THAI_BINH = {"000_c148fd66da705f65", "001_0c1619dc2afa53c4", "002_31e144db15d30624", "004_206058703f9fac61"}


def test_search_finds_thai_binh_articles_with_marks(client):
    body = client.get("/api/search", params={"q": "cải cách hành chính"}).json()
    assert body["total"] >= 3
    assert {h["id"] for h in body["hits"][:3]} <= THAI_BINH
    top = body["hits"][0]
    assert set(top) >= {"id", "title", "url", "source", "published", "score", "snippet"}
    assert "<mark>cải cách</mark>" in top["snippet"].lower() or "<mark>cải cách" in top["snippet"].lower()
    assert body["query"] == "cải cách hành chính" and body["took_ms"] >= 0


def test_unaccented_query_finds_the_same_articles(client):
    marked = client.get("/api/search", params={"q": "cải cách hành chính"}).json()
    plain = client.get("/api/search", params={"q": "cai cach hanh chinh"}).json()
    assert plain["hits"][0]["id"] == marked["hits"][0]["id"]
    assert "<mark>" in plain["hits"][0]["snippet"]


def test_phrase_and_exclusion(client):
    phrase = client.get("/api/search", params={"q": '"Tạo động lực mới"'}).json()
    assert [h["id"] for h in phrase["hits"]] == ["001_0c1619dc2afa53c4"]
    excluded = client.get("/api/search", params={"q": "cải cách -TTXVN"}).json()
    assert excluded["total"] >= 1
    for hit in excluded["hits"]:
        doc = client.get(f"/api/documents/{hit['id']}").json()
        assert "TTXVN" not in doc["body"] + doc.get("title", "")
    # names are joined into one pyvi word; excluding one syllable of them still works
    without_than = client.get("/api/search", params={"q": "cải cách -Thận"}).json()
    assert without_than["total"] >= 1
    for hit in without_than["hits"]:
        assert "Thận" not in client.get(f"/api/documents/{hit['id']}").json()["body"]


@pytest.mark.parametrize("q", ['"cải cách', "cải cách\"", "((( )))", "AND OR NOT", "- - -", "!!!", "*", "~~",
                               "title:x", "cải^2 cách", "'", "\\", "-", "\u200b", "UBND)"])
def test_odd_queries_never_fail(client, q):
    res = client.get("/api/search", params={"q": q})
    assert res.status_code == 200, res.text
    assert res.json()["total"] >= 0


def test_empty_and_too_long_queries_are_422(client):
    for q in ["", "   "]:
        res = client.get("/api/search", params={"q": q})
        assert res.status_code == 422 and "empty" in res.json()["detail"]
    res = client.get("/api/search", params={"q": "cải cách " * 600})
    assert res.status_code == 422 and "500" in res.json()["detail"]
    assert client.get("/api/search").status_code == 422


def test_bad_parameters_are_422(client):
    for params in [{"q": "x", "limit": -1}, {"q": "x", "limit": 1000}, {"q": "x", "sort": "random"},
                   {"q": "x", "from": "18/3/2024"}, {"q": "x", "from": "2024-05-01", "to": "2024-01-01"},
                   {"q": "x", "offset": "abc"}]:
        res = client.get("/api/search", params=params)
        assert res.status_code == 422, params
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
    assert body["documents"] == 5 and body["version"]


def test_bulk_endpoint_answers_in_order(client):
    queries = [{"id": "a", "q": "cải cách hành chính"}, {"id": 2, "q": "GRDP"}, {"id": "c", "q": "!!!"}]
    res = client.post("/api/search/bulk", json={"queries": queries, "limit": 2}).json()["results"]
    assert [r["id"] for r in res] == ["a", 2, "c"]
    assert res[1]["hits"][0]["id"] == "000_c148fd66da705f65"
    assert set(res[0]["hits"][0]) == {"id", "score", "title"}


def test_bulk_limits(client):
    too_many = {"queries": [{"id": i, "q": "UBND"} for i in range(1001)]}
    assert client.post("/api/search/bulk", json=too_many).status_code == 413
    assert client.post("/api/search/bulk", content=b"{not json",
                       headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/api/search/bulk", json={"queries": [{"id": 1}]}).status_code == 422
    huge = b'{"queries": [{"id": 1, "q": "' + b"a" * 1_100_000 + b'"}]}'
    assert client.post("/api/search/bulk", content=huge,
                       headers={"content-type": "application/json"}).status_code == 413


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
    assert client.get("/articles/none").status_code == 404


def test_openapi_docs(client):
    spec = client.get("/openapi.json").json()
    assert "/api/search" in spec["paths"] and "/api/search/bulk" in spec["paths"]
    assert client.get("/docs").status_code == 200


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
