"""What government-news readers need, through the API and the page: cited document numbers, provinces after
the 2025 merger, queries typed with Telex/VNI keys, facets (unit tier: the index is built in this process)."""

from __future__ import annotations

import pytest
from conftest import CORPUS, index_of, write_jsonl
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from indexer.fields import TAG_FIELDS

SEED_TEXT = (CORPUS / "000_c148fd66da705f65.txt").read_text(encoding="utf-8")
RELEASE = ("Sáng nay, Ủy ban nhân dân huyện tổ chức lễ khánh thành và đưa vào sử dụng cầu Phú Xuân bắc qua sông "
           "Trà Lý, nối liền hai huyện Vũ Thư và Kiến Xương. Cây cầu dài 420 mét, rộng 12 mét, được xây dựng "
           "trong 18 tháng với tổng mức đầu tư 250 tỷ đồng từ ngân sách tỉnh. Buổi lễ có sự tham dự của đông đảo "
           "người dân địa phương. Công trình giúp rút ngắn quãng đường đi lại của người dân, thúc đẩy giao thương "
           "và phát triển kinh tế - xã hội của khu vực phía nam tỉnh.")

ARTICLES = [
    {"id": "tt01", "title": "Hướng dẫn mới về tuyển dụng công chức",
     "body": "Bộ Nội vụ ban hành Thông tư số 01/2024/TT-BNV hướng dẫn tuyển dụng công chức, viên chức. "
             "Thông tư có hiệu lực từ tháng 3.", "published": "2024-02-01", "source": "Bộ Nội vụ"},
    {"id": "nd30", "title": "Công tác văn thư theo Nghị định 30/2020/NĐ-CP",
     "body": "Sở Nội vụ tỉnh Thái Bình tập huấn công tác văn thư theo Nghị định 30/2020/NĐ-CP của Chính phủ.",
     "published": "2024-05-10", "source": "Cổng thông tin tỉnh Thái Bình"},
    {"id": "hy", "title": "Hưng Yên đẩy mạnh cải cách hành chính",
     "body": "UBND tỉnh Hưng Yên tổ chức hội nghị về cải cách hành chính, chuyển đổi số năm 2025.",
     "published": "2025-08-01"},
    {"id": "hg", "title": "Hà Giang phát triển du lịch cộng đồng",
     "body": "Tỉnh Hà Giang có nhiều mô hình du lịch cộng đồng hấp dẫn du khách; công tác văn thư được quan tâm.",
     "published": "2024-03-03"},
    {"id": "seed", "title": "Gặp gỡ trưởng phòng", "body": SEED_TEXT},
    # One press release reposted by a second portal with a new title, a dateline and a sentence dropped.
    {"id": "rel-1", "title": "Khánh thành cầu Phú Xuân nối hai huyện", "source": "Cổng thông tin tỉnh",
     "published": "2024-04-02", "body": RELEASE},
    {"id": "rel-2", "title": "Cầu Phú Xuân chính thức thông xe", "source": "Báo địa phương", "published": "2024-04-03",
     "body": "(Tin tức) " + RELEASE.replace(" Buổi lễ có sự tham dự của đông đảo người dân địa phương.", "")},
]


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> TestClient:
    index = index_of(tmp_path_factory.mktemp("gov"), ARTICLES)
    return TestClient(create_app(Settings(index_dir=index, rate_limit_per_minute=0)))


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [hit["id"] for hit in response.json()["hits"]]


@pytest.mark.parametrize("query", ["01/2024/TT-BNV", "thông tư 01/2024", "tt 01/2024", "01/2024/tt-bnv tuyển dụng"])
def test_a_document_number_ranks_the_articles_citing_it_first(client, query):
    assert _ids(client.get("/api/search", params={"q": query}))[0] == "tt01"


def test_a_decree_typed_without_its_d_stroke_finds_it(client):
    found = _ids(client.get("/api/search", params={"q": "30/2020/ND-CP văn thư"}))
    assert found[0] == "nd30" and "hg" in found  # the other article on văn thư is still found, below it


def test_document_facet_and_filter(client):
    res = client.get("/api/search", params={"q": "công tác văn thư"}).json()
    assert {"value": "30/2020/NĐ-CP", "count": 1, "label": None} in res["facets"]["document"]
    assert _ids(client.get("/api/search", params={"q": "công tác văn thư", "doc": "nghị định 30/2020/nđ-cp"})) == \
        ["nd30"]
    bad = client.get("/api/search", params={"q": "văn thư", "doc": "30/20"})
    assert bad.status_code == 422 and "không phải số hiệu văn bản" in bad.json()["detail"]


def test_a_former_province_and_its_unit_both_find_the_article(client):
    for name in ("Thái Bình", "thai binh", "Hưng Yên", "tỉnh Hưng Yên"):
        found = _ids(client.get("/api/search", params={"q": "văn thư cải cách", "province": name}))
        assert "nd30" in found and "tt01" not in found, name
    found = _ids(client.get("/api/search", params={"q": "du lịch", "province": "Tuyên Quang"}))
    assert found == ["hg"]  # Hà Giang merged into Tuyên Quang


def test_province_facet_names_the_current_unit_and_its_former_provinces(client):
    res = client.get("/api/search", params={"q": "cải cách văn thư"}).json()
    units = {f["value"]: f for f in res["facets"]["province"]}
    # The Hưng Yên article, the Thái Bình one, and the seed page (Thái Bình's portal, its chairman).
    assert units["Hưng Yên"]["count"] == 3
    assert "Thái Bình" in units["Hưng Yên"]["label"]


def test_an_unknown_province_is_a_clear_422(client):
    bad = client.get("/api/search", params={"q": "văn thư", "province": "Gotham"})
    assert bad.status_code == 422 and "không có tỉnh" in bad.json()["detail"]


@pytest.mark.parametrize("typed", ["cari cachs hanhf chinhs", "ca3i ca1ch ha2nh chi1nh"])
def test_telex_and_vni_keys_left_in_are_decoded(client, typed):
    res = client.get("/api/search", params={"q": typed}).json()
    assert res["corrected"] == "cải cách hành chính" and res["query"] == typed
    assert res["hits"][0]["id"] == "hy"
    page = client.get("/", params={"q": typed})
    assert "Có phải bạn muốn tìm" in page.text and "cải cách hành chính" in page.text


def test_acronyms_and_plain_queries_are_not_decoded(client):
    assert client.get("/api/search", params={"q": "UBND Hưng Yên"}).json()["corrected"] is None


def test_bulk_items_take_the_same_filters(client):
    res = client.post("/api/search/bulk", json={"queries": [
        {"id": "a", "q": "văn thư", "province": "Thái Bình"},
        {"id": "b", "q": "tuyển dụng", "doc": "01/2024/TT-BNV"},
        {"id": "c", "q": "văn thư", "province": "Atlantis"}]})
    assert res.status_code == 422 and "Atlantis" in res.json()["detail"]
    res = client.post("/api/search/bulk", json={"queries": [
        {"id": "a", "q": "văn thư", "province": "Thái Bình"}, {"id": "b", "q": "tuyển dụng", "doc": "01/2024/TT-BNV"}]})
    assert [[h["id"] for h in r["hits"]] for r in res.json()["results"]] == [["nd30", "seed"], ["tt01"]]


def test_the_article_page_links_its_cited_documents_and_provinces(client):
    page = client.get("/articles/nd30")
    assert page.status_code == 200
    assert 'href="/?q=30/2020/N%C4%90-CP&amp;doc=30/2020/N%C4%90-CP"' in page.text
    assert "Hưng Yên" in page.text
    doc = client.get("/api/documents/nd30").json()
    assert doc["document"] == ["30/2020/NĐ-CP"] and doc["province"] == ["Hưng Yên"]


def test_the_search_page_offers_the_new_facets(client):
    page = client.get("/", params={"q": "văn thư"})
    assert "Văn bản được nhắc đến" in page.text and "Tỉnh, thành" in page.text
    assert "doc=30%2F2020%2FN%C4%90-CP" in page.text


def test_a_story_with_many_copies_leaves_no_page_short(tmp_path):
    from app.search import SearchService

    copies = [{"id": f"copy-{i:02d}", "title": f"Khánh thành cầu Phú Xuân (bản {i})", "body": RELEASE + f" Tin {i}."}
              for i in range(12)]
    others = [{"id": f"other-{i}", "title": f"Cầu mới ở xã thứ {i}", "body": f"Xã thứ {i} khánh thành cầu dân sinh "
               f"bắc qua kênh, dài {10 + i} mét, do người dân góp {i + 1} trăm triệu đồng."} for i in range(4)]
    service = SearchService(index_of(tmp_path, copies + others))
    query = "khánh thành cầu"
    every = service.search(query, limit=100)
    assert every.total == 16
    pages = [service.search(query, limit=1, offset=n, collapse=True) for n in range(6)]
    assert all(p.total == 5 for p in pages)  # twelve copies are one story, plus four others
    shown = [h.id for p in pages for h in p.hits]
    assert len(shown) == 5 and len({s.split("-")[0] for s in shown}) == 2 and pages[5].hits == []
    story = next(h for p in pages for h in p.hits if h.id.startswith("copy-"))
    assert len(story.similar) == 11


def test_an_index_without_its_grouping_state_is_regrouped_not_emptied(tmp_path):
    from app.search import SearchService
    from indexer.build import update_index
    from indexer.store import current_generation

    index = index_of(tmp_path, ARTICLES)
    (current_generation(index) / "near_duplicates.npz").unlink()  # an index from before, or a damaged file
    update_index(index, [write_jsonl(tmp_path / "one.jsonl", [{"id": "x", "title": "Tin mới", "body": "Nội dung"}])],
                 workers=1)
    hit = SearchService(index).search("khánh thành cầu Phú Xuân", collapse=True).hits[0]
    assert hit.id in ("rel-1", "rel-2") and len(hit.similar) == 1


def test_a_rebuild_into_an_index_of_another_make_rebuilds(tmp_path, monkeypatch):
    from indexer import build

    index = index_of(tmp_path, ARTICLES[:2])
    assert build.build_index(index, [tmp_path / "articles.jsonl"], workers=1).unchanged == 2
    monkeypatch.setattr(build, "GROUPING_FORMAT", -1)  # as if the index were made by another version
    report = build.build_index(index, [tmp_path / "articles.jsonl"], workers=1)
    assert (report.added, report.unchanged) == (2, 0)


def test_updates_and_deletes_keep_the_story_groups_right(tmp_path):
    from app.search import SearchService
    from indexer.build import delete_documents, update_index

    index = index_of(tmp_path, [a for a in ARTICLES if a["id"] != "rel-2"])
    query = "khánh thành cầu Phú Xuân"
    assert SearchService(index).search(query, collapse=True).hits[0].similar == []
    update_index(index, [write_jsonl(tmp_path / "repost.jsonl", [ARTICLES[-1]])], workers=1)
    hits = SearchService(index).search(query, collapse=True).hits
    assert [h.id for h in hits if h.id.startswith("rel-")] == ["rel-1"] and hits[0].similar[0]["id"] == "rel-2"
    delete_documents(index, ["rel-1"])
    hits = SearchService(index).search(query, collapse=True).hits
    assert hits[0].id == "rel-2" and hits[0].similar == []


def test_an_index_built_before_the_tag_fields_answers_and_takes_updates(tmp_path, monkeypatch):
    from app.search import SearchService
    from indexer import build

    current = build.make_schema

    def older_schema():
        schema = current()
        for name in TAG_FIELDS:
            schema.remove(name)
        return schema

    monkeypatch.setattr(build, "make_schema", older_schema)
    index = index_of(tmp_path, ARTICLES[:2])
    monkeypatch.undo()
    service = SearchService(index)
    result = service.search("công tác văn thư", facets=True)
    assert [h.id for h in result.hits][0] == "nd30" and result.facets["province"] == []
    assert service.document("nd30")["document"] == []
    report = build.update_index(index, [write_jsonl(tmp_path / "more.jsonl", [ARTICLES[2]])], workers=1)
    assert report.added == 1
    assert SearchService(index).search("cải cách hành chính").hits[0].id == "hy"


def test_copies_of_one_story_are_one_hit_with_its_similar_copies(client):
    res = client.get("/api/search", params={"q": "khánh thành cầu Phú Xuân sông Trà Lý"}).json()
    assert [h["id"] for h in res["hits"]].count("rel-1") + [h["id"] for h in res["hits"]].count("rel-2") == 1
    first = next(h for h in res["hits"] if h["id"] in ("rel-1", "rel-2"))
    other = "rel-2" if first["id"] == "rel-1" else "rel-1"
    assert [s["id"] for s in first["similar"]] == [other] and first["similar"][0]["source"]
    every = client.get("/api/search", params={"q": "khánh thành cầu Phú Xuân sông Trà Lý", "collapse": "false"}).json()
    assert {"rel-1", "rel-2"} <= {h["id"] for h in every["hits"]}
    assert all(not h["similar"] for h in every["hits"])
    assert res["total"] == every["total"] - 1  # total counts stories when collapsed
    page = client.get("/", params={"q": "cầu Phú Xuân"})
    assert "1 bài tương tự" in page.text


def test_openapi_documents_the_new_fields(client):
    spec = client.get("/openapi.json").json()
    params = {p["name"] for p in spec["paths"]["/api/search"]["get"]["parameters"]}
    assert {"province", "doc"} <= params
    facets = spec["components"]["schemas"]["Facets"]["properties"]
    assert set(facets) == {"source", "category", "year", "province", "document"}
