"""Reading corpus files: portal page dumps and JSON Lines, with bad records reported."""

from __future__ import annotations

import gzip
import json
import lzma
from datetime import datetime

from conftest import CORPUS

from indexer.readers import Article, ReadResult, expand_sources, iter_articles, parse_page


def read_all(*paths):
    result = ReadResult()
    articles = list(iter_articles(expand_sources(paths), result))
    return articles, result.bad


def test_seed_pages_yield_title_date_views_author():
    articles, bad = read_all(CORPUS)
    assert not bad and len(articles) == 5
    first = next(a for a in articles if a.id == "000_c148fd66da705f65")
    assert first.title.startswith("Các đồng chí lãnh đạo tỉnh: Gặp gỡ, trao đổi với trưởng phòng")
    assert first.published == datetime(2024, 3, 18, 16, 45, 53)
    assert first.views == 22556
    assert first.author == "Minh Hương"


def test_seed_boilerplate_is_dropped():
    articles, _ = read_all(CORPUS)
    for article in articles:
        for junk in ("Tin cùng chuyên mục", "Xem tin theo ngày", "Xem thêm", ".mp4", "GMT+7", "lượt xem",
                     "Cổng TTĐT tỉnh"):
            assert junk not in article.body, (article.id, junk)


def test_page_without_date_gets_none():
    articles, _ = read_all(CORPUS)
    undated = {a.id: a.published for a in articles if a.id.startswith(("002_", "004_"))}
    assert undated == {"002_31e144db15d30624": None, "004_206058703f9fac61": None}


def test_image_file_names_are_removed():
    text = "Tiêu đề bài viết về cải cách hành chính\n\nIMG_0041.JPG\nNội dung chính của bài IMG_0042.JPG viết.\n"
    article = parse_page(text, "x")
    assert "IMG_" not in article.body and "Nội dung chính của bài" in article.body


def test_jsonl_bad_records_are_reported_with_line(tmp_path):
    path = tmp_path / "news.jsonl"
    lines = [
        json.dumps({"id": "a", "title": "Tin A", "body": "Nội dung A", "published": "2024-03-18"}),
        "{not json",
        json.dumps({"id": "b", "title": "thiếu nội dung"}),
        json.dumps({"title": "thiếu id", "body": "x"}),
        json.dumps({"id": "c", "body": "Nội dung C", "published": "hôm qua"}),
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": "d", "body": "\xff\xfe"}\n')
    articles, bad = read_all(path)
    assert [a.id for a in articles] == ["a"]
    assert articles[0].published == datetime(2024, 3, 18)
    assert [b.line for b in bad] == [2, 3, 4, 5, 6]
    assert all(b.path == str(path) for b in bad)
    assert "body" in bad[1].reason and "id" in bad[2].reason and "published" in bad[3].reason
    assert "UTF-8" in bad[4].reason


def test_compressed_jsonl(tmp_path):
    record = json.dumps({"id": "z", "body": "Ủy ban nhân dân tỉnh", "lead": "Tóm tắt"}, ensure_ascii=False) + "\n"
    with gzip.open(tmp_path / "a.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(record)
    with lzma.open(tmp_path / "b.jsonl.xz", "wt", encoding="utf-8") as handle:
        handle.write(record.replace('"z"', '"y"'))
    articles, bad = read_all(tmp_path)
    assert not bad and sorted(a.id for a in articles) == ["y", "z"]
    assert articles[0].abstract == "Tóm tắt"


def test_lone_surrogates_in_json_are_dropped_not_fatal(tmp_path):
    """JSON may escape half a character ("\\ud800"); the build used to die on it with a traceback."""
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "s", "title": "Tin \\ud800 mới", "body": "cải \\udcffcách"}\n', encoding="utf-8")
    (article,), bad = read_all(path)
    assert not bad and article.title == "Tin  mới" and article.body == "cải cách"
    assert article.content_hash() == Article(id="s", title="Tin  mới", body="cải cách").content_hash()
