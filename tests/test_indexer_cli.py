"""The indexer's command-line contract: build, update, delete, bad input, the writer lock (system tier)."""

from __future__ import annotations

import json

import pytest
from conftest import CORPUS, run_cli

from indexer.store import writer_lock

pytestmark = pytest.mark.system


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_build_prints_summary_and_serves_documents(tmp_path):
    index = tmp_path / "ix"
    done = run_cli("indexer", "build", "--index", str(index), str(CORPUS))
    assert done.returncode == 0
    assert "documents 5" in done.stderr and "skipped 0" in done.stderr and " s" in done.stderr
    found = json.loads(run_cli("app", "search", "--index", str(index), "--json", "Thái Bình").stdout)
    # The page that names Thái Bình nine times first; the one that never does (004) not at all.
    assert found["hits"][0]["id"] == "002_31e144db15d30624"
    assert {h["id"] for h in found["hits"]} == {"000_c148fd66da705f65", "001_0c1619dc2afa53c4",
                                                "002_31e144db15d30624", "003_89bf614c203d309a"}


def test_malformed_records_are_skipped_and_fail_unless_skip_bad(tmp_path):
    src = tmp_path / "news.jsonl"
    write_jsonl(src, [{"id": "a", "title": "Hội nghị", "body": "Ủy ban nhân dân tỉnh họp"}])
    with open(src, "a", encoding="utf-8") as handle:
        handle.write("{broken\n")
    done = run_cli("indexer", "build", "--index", str(tmp_path / "ix"), str(src))
    assert done.returncode == 1
    assert f"{src}:2" in done.stderr and "skipped 1" in done.stderr
    assert run_cli("indexer", "build", "--index", str(tmp_path / "ix2"), str(src), "--skip-bad").returncode == 0
    found = run_cli("app", "search", "--index", str(tmp_path / "ix"), "--json", "ủy ban")
    assert [h["id"] for h in json.loads(found.stdout)["hits"]] == ["a"]


def test_missing_source_is_a_clear_error(tmp_path):
    done = run_cli("indexer", "build", "--index", str(tmp_path / "ix"), str(tmp_path / "nope.jsonl"))
    assert done.returncode == 2
    assert "no such file" in done.stderr and "Traceback" not in done.stderr


def test_update_replaces_and_delete_removes(tmp_path):
    index = tmp_path / "ix"
    src = write_jsonl(tmp_path / "a.jsonl", [{"id": "a", "title": "Tin cũ", "body": "Hội đồng nhân dân họp"},
                                             {"id": "b", "title": "Tin khác", "body": "Sở Nội vụ tổng kết"}])
    assert run_cli("indexer", "build", "--index", str(index), str(src)).returncode == 0
    upd = write_jsonl(tmp_path / "b.jsonl", [{"id": "a", "title": "Tin mới", "body": "Cải cách hành chính"},
                                             {"id": "c", "title": "Tin thêm", "body": "Thủ tục hành chính"}])
    done = run_cli("indexer", "update", "--index", str(index), str(upd))
    assert done.returncode == 0 and "new 1, replaced 1" in done.stderr
    again = run_cli("indexer", "update", "--index", str(index), str(upd))
    assert "unchanged 2" in again.stderr
    hits = json.loads(run_cli("app", "search", "--index", str(index), "--json", "hành chính").stdout)["hits"]
    assert sorted(h["id"] for h in hits) == ["a", "c"]
    done = run_cli("indexer", "delete", "--index", str(index), "a", "zzz")
    assert done.returncode == 1 and "not found: zzz" in done.stderr and "deleted 1" in done.stderr
    hits = json.loads(run_cli("app", "search", "--index", str(index), "--json", "hành chính").stdout)["hits"]
    assert [h["id"] for h in hits] == ["c"]


def test_second_writer_fails_fast_with_a_clear_message(tmp_path):
    index = tmp_path / "ix"
    with writer_lock(index):
        done = run_cli("indexer", "build", "--index", str(index), str(CORPUS))
    assert done.returncode == 2
    assert "another build or update" in done.stderr and "LockError" not in done.stderr


def test_delete_without_index_is_a_clear_error(tmp_path):
    done = run_cli("indexer", "delete", "--index", str(tmp_path / "none"), "x")
    assert done.returncode == 2 and "no index" in done.stderr


def test_drop_removes_the_index_and_nothing_else(tmp_path):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    index = tmp_path / "ix"
    src = write_jsonl(tmp_path / "a.jsonl", [{"id": "a", "title": "Hội nghị", "body": "Ủy ban nhân dân tỉnh họp"}])
    assert run_cli("indexer", "build", "--index", str(index), str(src)).returncode == 0
    (index / "notes.txt").write_text("ghi chú của tôi", encoding="utf-8")  # a user's own file
    serving = TestClient(create_app(Settings(index_dir=index)))
    assert serving.get("/api/search", params={"q": "hội nghị"}).json()["total"] == 1
    done = run_cli("indexer", "drop", "--index", str(index))
    assert done.returncode == 0 and "removed 1 (gen-000001)" in done.stderr
    assert sorted(p.name for p in index.iterdir()) == ["notes.txt", "write.lock"]
    # A server that was open on it says the index is empty, and so does the CLI.
    gone = serving.get("/api/search", params={"q": "hội nghị"})
    assert gone.status_code == 503 and "index is empty" in gone.json()["detail"]
    assert serving.get("/healthz").json() == {"status": "empty", "documents": 0, "version": None}
    found = run_cli("app", "search", "--index", str(index), "hội nghị")
    assert found.returncode == 2 and "no index" in found.stderr and "Traceback" not in found.stderr
    # The folder takes a new build.
    assert run_cli("indexer", "build", "--index", str(index), str(src)).returncode == 0


def test_drop_refuses_a_folder_that_is_not_an_index(tmp_path):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "report.docx").write_bytes(b"not ours")
    for name in ("gen-images", "gen-000001.bak"):  # named like generations, but the user's
        (folder / name).mkdir()
        (folder / name / "photo.jpg").write_bytes(b"mine")
    done = run_cli("indexer", "drop", "--index", str(folder))
    assert done.returncode == 2 and "holds no tracuu index" in done.stderr and "nothing removed" in done.stderr
    assert (folder / "report.docx").read_bytes() == b"not ours"
    assert (folder / "gen-images" / "photo.jpg").exists() and (folder / "gen-000001.bak" / "photo.jpg").exists()
    done = run_cli("indexer", "drop", "--orphans")
    assert done.returncode == 2 and "Typesense backend" in done.stderr
    done = run_cli("indexer", "drop")
    assert done.returncode == 2 and "--index" in done.stderr and "Traceback" not in done.stderr


def test_an_index_of_no_article_builds_and_answers(tmp_path):
    src = tmp_path / "empty.jsonl"
    src.write_text("", encoding="utf-8")
    index = tmp_path / "ix"
    done = run_cli("indexer", "build", "--index", str(index), str(src))
    assert done.returncode == 0 and "index holds 0" in done.stderr, done.stderr
    found = run_cli("app", "search", "--index", str(index), "--json", "cai cach")
    assert "Traceback" not in found.stderr
    assert found.returncode == 0 and json.loads(found.stdout)["total"] == 0, found.stderr
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    served = TestClient(create_app(Settings(index_dir=index)))
    api = served.get("/api/search", params={"q": "cai cach"})
    assert api.status_code == 200 and api.json()["total"] == 0 and api.json()["hits"] == []
    page = served.get("/", params={"q": "cai cach"})
    assert page.status_code == 200 and "Không tìm thấy kết quả" in page.text
    assert served.get("/api/suggest", params={"q": "cai"}).json()["suggestions"] == []
    feed = served.get("/feed", params={"q": "cai"})
    assert feed.status_code == 200 and "<feed" in feed.text and "<entry>" not in feed.text
    health = served.get("/healthz").json()
    assert health["status"] == "ok" and health["documents"] == 0
