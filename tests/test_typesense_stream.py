"""The Typesense indexer's analysis pipeline: input order kept, a bounded window of articles in flight,
and no hang when the import stops half-way (no cluster needed)."""

from __future__ import annotations

import threading

from indexer import typesense_build
from indexer.readers import Article


def _articles(n: int) -> list[tuple[Article, str]]:
    return [(Article(id=f"a{i}", title=f"Hội nghị lần {i}", body=f"Ủy ban nhân dân tỉnh họp phiên thứ {i}."),
             f"h{i}") for i in range(n)]


def test_documents_come_in_input_order_with_a_bounded_window(monkeypatch):
    monkeypatch.setattr(typesense_build, "WINDOW", 12)
    read = []

    def reading(items):
        for item in items:
            read.append(item[0].id)
            yield item

    got = []
    for (article, content_hash), (doc, _, _) in typesense_build._converted(reading(_articles(40)), workers=2):
        got.append(article.id)
        assert doc["doc_id"] == article.id and doc["content_hash"] == content_hash
        assert len(read) - len(got) <= 12  # never more than WINDOW articles read ahead of the import
    assert got == [f"a{i}" for i in range(40)]


def test_an_import_that_fails_half_way_does_not_hang(monkeypatch):
    monkeypatch.setattr(typesense_build, "WINDOW", 12)
    finished = threading.Event()

    def consume() -> None:
        stream = typesense_build._converted(iter(_articles(30)), workers=2)
        for n, _ in enumerate(stream):
            if n == 4:
                stream.close()  # what an exception in the import loop does to the generator
                break
        finished.set()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    assert finished.wait(30), "the pipeline did not end after its consumer stopped"


def test_a_lagging_node_is_named_and_a_down_node_skipped():
    from indexer.backend import BackendSettings

    down = BackendSettings(backend="typesense", typesense_nodes="http://127.0.0.1:1", typesense_api_key="k")
    # Connection refused: a node that is down catches up from the Raft log later; nothing to wait for.
    assert typesense_build._await_everywhere(down, typesense_build._holds("c", "a1", "h"), timeout=5) == []
    lagging = typesense_build._await_everywhere(down, lambda node: False, timeout=0.3)
    assert lagging == ["http://127.0.0.1:1"]
    assert "had not applied this write" in typesense_build._lagging(lagging)[0]
