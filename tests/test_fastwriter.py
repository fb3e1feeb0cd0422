"""The columnar segment writer stores exactly what Whoosh's own writer stores, in Whoosh's format."""

from __future__ import annotations

import os
import time
from datetime import datetime

import pytest
from conftest import CORPUS
from whoosh import index as whoosh_index
from whoosh import query as wq
from whoosh.fields import ID, TEXT, Schema

from indexer.analysis import syllable_analyzer
from indexer.build import document_fields
from indexer.readers import Article, ReadResult, expand_sources, iter_articles
from indexer.schema import make_schema
from indexer.whoosh_format.columns import ColumnPool
from indexer.whoosh_format.segment_writer import FastMpWriter, FastSegmentWriter, FastSubWriter, WriterProcessDied


def _articles() -> list[Article]:
    """The seed pages plus articles that exercise the edges: missing fields, numbers, repeats, long lists."""
    articles = list(iter_articles(expand_sources([CORPUS]), ReadResult()))
    common = "Ủy ban nhân dân tỉnh Thái Bình họp về cải cách hành chính. "
    for i in range(300):  # "ủy", "ban" … in every article: posting lists of several blocks
        articles.append(Article(id=f"x{i:03d}", title=f"Tin {i} về CCHC" if i % 3 else "",
                                abstract="Tóm tắt: thuỷ lợi, hoà bình" if i % 5 == 0 else "",
                                body=common * (1 + i % 7) + f"Văn bản số {i}/2024/TT-BNV ngày 18/3/2024, GRDP {i}%.",
                                source=f"nguồn {i % 4}", category="Tin" if i % 2 else "",
                                published=datetime(2024, 1 + i % 12, 1 + i % 28) if i % 6 else None,
                                views=i * 37 if i % 4 else None))
    return articles


def _dump(ix) -> tuple[dict, list, dict]:
    """Every term's statistics and postings (id, weight, value), the stored fields and every field length."""
    postings = {}
    with ix.reader() as reader:
        for fieldname, text in reader.all_terms():
            info = reader.term_info(fieldname, text)
            m = reader.postings(fieldname, text)
            items = []
            while m.is_active():
                items.append((m.id(), m.weight(), m.value()))
                m.next()
            postings[(fieldname, text)] = ((info.weight(), info.doc_frequency(), info.min_length(), info.max_length(),
                                            info.max_weight(), info.min_id(), info.max_id()), items)
        stored = list(reader.all_stored_fields())
        # 0 or None for a document without the field, depending on whether its segment has the field at all
        lengths = {name: [reader.doc_field_length(d, name) or 0 for d in range(reader.doc_count_all())]
                   for name in ix.schema.names()}
    return postings, stored, lengths


def _build(folder, schema, docs: list[dict], writer_factory) -> whoosh_index.Index:
    """An index of docs written by the writer writer_factory(ix) returns."""
    folder.mkdir()
    ix = whoosh_index.create_in(str(folder), schema)
    writer = writer_factory(ix)
    for doc in docs:
        writer.add_document(**doc)
    writer.commit()
    return ix


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    """add_document keywords of the test articles."""
    return [document_fields(a) for a in _articles()]


@pytest.fixture(scope="module")
def whoosh_dump(tmp_path_factory, docs):
    """What Whoosh's own writer stores for the test articles."""
    ix = _build(tmp_path_factory.mktemp("whoosh") / "ix", make_schema(), docs, lambda ix: ix.writer(compound=False))
    return _dump(ix)


def test_same_postings_lengths_and_stored_fields_as_whoosh(tmp_path, docs, whoosh_dump):
    ix = _build(tmp_path / "ix", make_schema(), docs, FastSegmentWriter)
    assert len(ix._segments()) == 1
    postings, stored, lengths = _dump(ix)
    assert set(postings) == set(whoosh_dump[0])
    assert postings == whoosh_dump[0]
    assert stored == whoosh_dump[1]
    assert lengths == whoosh_dump[2]


def test_a_full_budget_spills_sorted_runs_and_nothing_changes(tmp_path, docs, whoosh_dump, monkeypatch):
    spills = []
    save = ColumnPool.save

    def counting_save(pool):
        spills.append(len(pool.fields))
        save(pool)

    monkeypatch.setattr(ColumnPool, "save", counting_save)

    def small(ix):
        writer = FastSegmentWriter(ix)
        writer.pool.limit_bytes = 200_000  # a few dozen articles per run
        return writer

    ix = _build(tmp_path / "ix", make_schema(), docs, small)
    assert len(spills) > 3 and len(ix._segments()) == 1
    assert _dump(ix) == whoosh_dump  # the runs merged into one segment hold exactly Whoosh's postings
    assert not list((tmp_path / "ix").glob("*.tmp/*"))  # and are gone


def test_merging_segments_through_whoosh_keeps_every_posting(tmp_path, docs):
    def first_half_then_merge(folder, writer_factory):
        ix = _build(folder, make_schema(), docs[:150], writer_factory)
        writer = writer_factory(ix)
        for doc in docs[150:]:
            writer.add_document(**doc)
        writer.commit(optimize=True)  # Whoosh's merge reads the first segment back through the writer's pool
        assert len(ix._segments()) == 1
        return _dump(ix)

    assert first_half_then_merge(tmp_path / "fast", FastSegmentWriter) == \
        first_half_then_merge(tmp_path / "whoosh", lambda ix: ix.writer(compound=False))


def test_updates_delete_the_old_version(tmp_path, docs):
    ix = _build(tmp_path / "ix", make_schema(), docs, FastSegmentWriter)
    writer = FastSegmentWriter(ix)
    changed = Article(id=docs[-1]["id"], title="Tiêu đề mới hoàn toàn", body="Nội dung")
    writer.update_document(**document_fields(changed))
    writer.commit()
    with ix.searcher() as searcher:
        assert searcher.doc_count() == len(docs)
        hits = searcher.search(wq.Term("id", docs[-1]["id"]))
        assert [h["title"] for h in hits] == ["Tiêu đề mới hoàn toàn"]
        assert len(searcher.search(wq.Phrase("title_s", ["tieu", "de", "moi"]))) == 1
        assert len(searcher.search(wq.Phrase("title_s", ["đề", "mới"]))) == 1


def test_processes_write_the_same_index(tmp_path, docs, whoosh_dump):
    ix = _build(tmp_path / "ix", make_schema(), docs,
                lambda ix: FastMpWriter(ix, procs=2, batchsize=16, limitmb=64))
    postings, _stored, _lengths = _dump(ix)
    # Each process holds a share of the documents, so document numbers differ: compare per article id.
    with ix.searcher() as searcher:
        assert searcher.doc_count() == len(docs)
        for doc in docs[::25]:
            hit = searcher.search(wq.Term("id", doc["id"]))[0]
            assert hit.fields() == {k: v for k, v in doc.items() if k in hit.fields() or k in ("title", "body")}
    assert {key: info[0][1] for key, info in postings.items()} == \
        {key: info[0][1] for key, info in whoosh_dump[0].items()}  # the same document frequency for every term


def test_other_formats_go_through_whoosh_analysis(tmp_path):
    """Fields the fast path does not know (character offsets, other analyzers) are indexed as Whoosh does."""
    def schema():
        return Schema(id=ID(stored=True), text=TEXT(analyzer=syllable_analyzer(), phrase=True, chars=True),
                      plain=TEXT(stored=True))
    docs = [{"id": str(i), "text": f"Hoà bình {i} và hòa bình", "plain": f"alpha beta {i} beta"} for i in range(40)]
    fast = _build(tmp_path / "fast", schema(), docs, FastSegmentWriter)
    slow = _build(tmp_path / "slow", schema(), docs, lambda ix: ix.writer(compound=False))
    assert _dump(fast) == _dump(slow)


class _DyingSubWriter(FastSubWriter):
    """A writer process that ends at once, as one killed by the kernel would."""

    def run(self) -> None:
        """Exit without reading a job."""
        os._exit(3)


class _DyingMpWriter(FastMpWriter):
    task_class = _DyingSubWriter


def test_a_writer_process_that_dies_fails_the_build_instead_of_hanging(tmp_path, docs):
    folder = tmp_path / "ix"
    folder.mkdir()
    ix = whoosh_index.create_in(str(folder), make_schema())
    writer = _DyingMpWriter(ix, procs=2, batchsize=1)
    started = time.monotonic()
    with pytest.raises(WriterProcessDied) as err:
        for doc in docs * 3:  # more batches than the job queue holds
            writer.add_document(**doc)
        writer.commit()
    writer.cancel()
    assert err.value.exitcode == 3 and time.monotonic() - started < 60
    assert not any(task.is_alive() for task in writer.tasks)
