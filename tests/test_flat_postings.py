"""The flat copy of a segment's postings (indexer.whoosh_format.flat_postings): what our writer puts in it reads
back, through IndexArrays, exactly as Whoosh's own reader reads the segment's blocks, before and after
deletions; a segment without it, or with a damaged one, is read from Whoosh's blocks instead."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, shared_file
from whoosh import index as whoosh_index
from whoosh.filedb.filestore import RamStorage

from indexer.build import document_fields
from indexer.fields import KINDS, TEXT_NAMES, index_field
from indexer.readers import ReadResult, expand_sources, iter_articles
from indexer.schema import make_schema
from indexer.whoosh_format.flat_postings import KEYS_EXT, FlatPostings, term_digest
from indexer.whoosh_format.reader import IndexArrays
from indexer.whoosh_format.segment_writer import FastSegmentWriter

TEXT_FIELDS = {index_field(name, kind) for name in TEXT_NAMES for kind in KINDS}
POSITION_FIELDS = {index_field(name, kind) for name in TEXT_NAMES for kind in KINDS if kind.positions}


def _docs(source: str) -> list[dict]:
    """add_document keywords of the seed pages, or of the first 60 VietNews articles."""
    if source == "seeds":
        files = expand_sources([CORPUS])
        return [document_fields(a) for a in iter_articles(files, ReadResult())]
    files = [shared_file("data", "news", "vietnews-test.jsonl.xz")]
    return [document_fields(a) for a in itertools.islice(iter_articles(files, ReadResult()), 60)]


def _build(folder: Path, docs: list[dict], segments: int = 2) -> whoosh_index.Index:
    """An index of docs in that many segments, each written by our segment writer."""
    folder.mkdir()
    ix = whoosh_index.create_in(str(folder), make_schema())
    size = -(-len(docs) // segments)
    for start in range(0, len(docs), size):
        writer = FastSegmentWriter(ix)
        for doc in docs[start:start + size]:
            writer.add_document(**doc)
        writer.commit(merge=False)
    return ix


def _whoosh(reader, fieldname: str, tbytes: bytes) -> tuple[list[int], list[float]]:
    """(ids, weights) of a term through Whoosh's own matchers (deleted documents left out)."""
    m = reader.postings(fieldname, tbytes)
    ids, weights = [], []
    while m.is_active():
        ids.append(m.id())
        weights.append(m.weight())
        m.next()
    return ids, weights


def _whoosh_positions(reader, fieldname: str, tbytes: bytes) -> list[list[int]]:
    """The positions of each live posting of a term through Whoosh's own matchers."""
    m = reader.postings(fieldname, tbytes)
    out = []
    while m.is_active():
        out.append(list(m.value_as("positions")))
        m.next()
    return out


def _flat_positions(arrays: IndexArrays, fieldname: str, tbytes: bytes) -> list[list[int]]:
    """The positions of each live posting of a term from the segments' flat copies."""
    out = []
    for flat, (reader, _) in zip(arrays._flat, arrays._leaves, strict=True):
        row = flat.row(fieldname, tbytes)
        if row < 0:
            continue
        assert flat.has_positions(row), (fieldname, tbytes)
        docs, tfs = flat.postings(row)
        counts = tfs.astype(np.int64)
        positions = flat.positions(row, int(counts.sum())).tolist()
        ends = np.cumsum(counts).tolist()
        for doc, end, count in zip(docs.tolist(), ends, counts.tolist(), strict=True):
            if not reader.is_deleted(doc):
                out.append(positions[end - count:end])
    return out


def _check_all_terms(ix: whoosh_index.Index) -> int:
    """Assert every term of every text field reads the same from the flat copies as from Whoosh; postings compared,
    and the positions of the fields that keep them."""
    compared = 0
    with ix.searcher() as searcher, IndexArrays(ix) as arrays:
        reader = searcher.reader()
        assert all(arrays._flat_for(name) for name in TEXT_FIELDS)
        for fieldname, tbytes in reader.all_terms():
            if fieldname not in TEXT_FIELDS:
                continue
            term = tbytes.decode("utf-8")
            want_ids, want_weights = _whoosh(reader, fieldname, tbytes)
            ids, tfs = arrays.postings(fieldname, term)
            assert ids.tolist() == want_ids, (fieldname, term)
            assert tfs.dtype == np.float32 and tfs.tolist() == want_weights, (fieldname, term)
            if fieldname in POSITION_FIELDS:
                assert _flat_positions(arrays, fieldname, tbytes) == _whoosh_positions(reader, fieldname, tbytes)
            else:
                assert not any(f.has_positions(f.row(fieldname, tbytes)) for f in arrays._flat)
            assert arrays.doc_frequencies([(fieldname, term)]) == [reader.doc_frequency(fieldname, tbytes)]
            compared += len(ids)
        for fieldname in TEXT_FIELDS:  # a term no segment has
            assert len(arrays.postings(fieldname, "khôngcóđâu")[0]) == 0
            assert arrays.doc_frequencies([(fieldname, "khôngcóđâu")]) == [0]
    return compared


@pytest.mark.parametrize("source", ["seeds", "vietnews"])
def test_flat_postings_read_as_whoosh_reads_its_blocks(tmp_path: Path, source: str) -> None:
    """Every term of every text field, in two segments, before and after deleting a third of the articles."""
    docs = _docs(source)
    ix = _build(tmp_path / "ix", docs)
    assert len(list(tmp_path.glob(f"ix/*{KEYS_EXT}"))) == 2
    before = _check_all_terms(ix)
    assert before > 1000
    writer = ix.writer()
    for doc in docs[::3]:
        writer.delete_by_term("id", doc["id"])
    writer.commit(merge=False)
    after = _check_all_terms(ix)
    assert 0 < after < before


def test_only_text_fields_are_copied(tmp_path: Path) -> None:
    """Ids, tags and hashes are not scored: their terms are not in the flat copy."""
    ix = _build(tmp_path / "ix", _docs("seeds"), segments=1)
    (keys,) = tmp_path.glob(f"ix/*{KEYS_EXT}")
    segment = ix._segments()[0]
    flat = FlatPostings(str(tmp_path / "ix"), segment)
    try:
        assert all(flat.covers(name) for name in TEXT_FIELDS)
        assert not flat.covers("id") and not flat.covers("province")
        doc_id = _docs("seeds")[0]["id"]
        assert flat.row("id", doc_id.encode()) == -1
        assert flat.row("body_s", b"ban") >= 0
        h1, h2 = term_digest("body_s", b"ban")
        assert h1 in set(flat.h1.tolist()) and h2 in set(flat.h2.tolist())
    finally:
        flat.close()


def test_a_segment_without_a_flat_copy_or_with_a_damaged_one_is_read_from_whoosh(tmp_path: Path) -> None:
    """A segment written by Whoosh's own writer has no copy; a truncated key table is not trusted."""
    docs = _docs("seeds")
    ix = _build(tmp_path / "ix", docs[:-2], segments=1)
    writer = ix.writer()  # Whoosh's writer: no flat copy for this segment
    for doc in docs[-2:]:
        writer.add_document(**doc)
    writer.commit(merge=False)
    with IndexArrays(ix) as arrays:
        assert [flat is not None for flat in arrays._flat] == [True, False]
        assert not arrays._flat_for("body_s")
        ids, _ = arrays.postings("body_s", "ban")
        assert ids.dtype == np.int64 and len(ids) > 0  # read from the blocks

    broken = _build(tmp_path / "broken", docs, segments=1)
    (keys,) = (tmp_path / "broken").glob(f"*{KEYS_EXT}")
    keys.write_bytes(keys.read_bytes()[:-5])
    with IndexArrays(broken) as arrays, broken.searcher() as searcher:
        assert arrays._flat == [None]
        want, _ = _whoosh(searcher.reader(), "body_s", b"ban")
        assert arrays.postings("body_s", "ban")[0].tolist() == want


def test_an_index_in_memory_gets_no_flat_copy() -> None:
    """Whoosh's RamStorage has no folder for the files: the segment is written and read without them."""
    ix = RamStorage().create_index(make_schema())
    writer = FastSegmentWriter(ix)
    for doc in _docs("seeds"):
        writer.add_document(**doc)
    writer.commit()
    with IndexArrays(ix) as arrays:
        assert arrays._flat == [None]
        assert len(arrays.postings("body_s", "ban")[0]) > 0


def test_a_cut_postings_file_is_not_trusted(tmp_path: Path) -> None:
    """A postings file shorter than its key table says: the segment is read from Whoosh's blocks."""
    docs = _docs("seeds")
    ix = _build(tmp_path / "ix", docs, segments=1)
    (postings,) = (tmp_path / "ix").glob("*.fpd")
    postings.write_bytes(postings.read_bytes()[:-4])
    with IndexArrays(ix) as arrays, ix.searcher() as searcher:
        assert arrays._flat == [None]
        want, _ = _whoosh(searcher.reader(), "body_s", b"ban")
        assert arrays.postings("body_s", "ban")[0].tolist() == want


def test_deletes_and_merges_keep_the_flat_copy(tmp_path: Path) -> None:
    """An update adds a segment and a delete merges the small ones: every segment left has its copy, and reads
    agree with Whoosh's."""
    from conftest import write_jsonl

    from indexer.build import build_index, delete_documents, update_index

    docs = [a for a in iter_articles(expand_sources([CORPUS]), ReadResult())]
    index = tmp_path / "index"
    build_index(index, [CORPUS], workers=1)
    for i in range(9):  # small segments, merged by the commits as Whoosh's merge policy decides
        extra = {"id": f"moi-{i}", "title": f"Tin mới {i}", "body": docs[i % len(docs)].body[:400]}
        update_index(index, [write_jsonl(tmp_path / f"extra-{i}.jsonl", [extra])], workers=1)
    from indexer.store import open_index

    before = len(open_index(index)._segments())
    report = delete_documents(index, ["moi-0", docs[0].id])
    assert report.deleted == 2
    ix = open_index(index)
    assert len(ix._segments()) < before, "the delete's commit merged small segments"
    with IndexArrays(ix) as arrays:
        assert all(flat is not None for flat in arrays._flat)
        assert all(arrays._flat_for(name) for name in TEXT_FIELDS)
    assert _check_all_terms(ix) > 100


def _phrases_of(ix: whoosh_index.Index) -> list[tuple[str, list[str], list[int]]]:
    """Phrases of two to four syllables of each article's body, with what Whoosh's Phrase finds for them."""
    from whoosh import query as wq

    from indexer.analysis import analyse

    out = []
    with ix.searcher() as searcher:
        for stored in searcher.all_stored_fields():
            sylls = analyse(stored.get("body", "")).syllables
            for at, length in itertools.product((20, 150, 600), (2, 3, 4)):
                # Marked syllables, and folded ones as typed without marks: both are terms of body_s.
                for form in (1, 0):
                    words = [s[form] for s in sylls[at:at + length]]
                    if len(words) == length:
                        found = sorted(searcher.docs_for_query(wq.Phrase("body_s", words)))
                        out.append(("body_s", words, found))
    return out


def test_phrases_read_from_the_flat_positions_as_from_an_older_copy_without_them(tmp_path: Path) -> None:
    """A key table of version 1 (no positions) is still read; its phrases come from Whoosh's blocks, the same."""
    from indexer.whoosh_format import flat_postings

    ix = _build(tmp_path / "ix", _docs("seeds"))
    phrases = _phrases_of(ix)
    assert len(phrases) > 10 and sum(len(want) for _, _, want in phrases) > len(phrases)
    with IndexArrays(ix) as arrays:
        assert all(arrays.phrase_docs(f, words).tolist() == want for f, words, want in phrases)
    for keys in (tmp_path / "ix").glob(f"*{KEYS_EXT}"):
        flat = FlatPostings(str(tmp_path / "ix"), next(seg for seg in ix._segments()
                                                        if keys.name.startswith(seg.make_filename(""))))
        n = len(flat.h1)
        columns = [flat.h1.copy(), flat.h2.copy(), flat.start.copy(), flat.count.copy()]
        flat.close()
        header = b'{"version": 1, "terms": %d, "absent": []}' % n
        head = flat_postings.MAGIC + len(header).to_bytes(4, "little") + header
        head += b"\x00" * (-len(head) % 8)
        keys.write_bytes(head + b"".join(c.tobytes() for c in columns))
    with IndexArrays(ix) as arrays:
        assert all(flat is not None and not flat.pstart.max() >= 0 for flat in arrays._flat)
        assert all(arrays.phrase_docs(f, words).tolist() == want for f, words, want in phrases)


def test_a_cut_positions_file_is_not_trusted(tmp_path: Path) -> None:
    """Positions missing from the end of their file: the segment is read from Whoosh's blocks."""
    ix = _build(tmp_path / "ix", _docs("seeds"), segments=1)
    phrases = _phrases_of(ix)
    (positions,) = (tmp_path / "ix").glob("*.fpp")
    positions.write_bytes(positions.read_bytes()[:-2])
    with IndexArrays(ix) as arrays:
        assert arrays._flat == [None]
        assert all(arrays.phrase_docs(f, words).tolist() == want for f, words, want in phrases)


def test_positions_past_what_the_copy_holds_are_read_from_whoosh(tmp_path: Path) -> None:
    """A body of more than 65,536 syllables: the chunk holding its terms keeps its positions in Whoosh's blocks
    only, and phrases there are still found."""
    from whoosh import query as wq

    from indexer.readers import Article

    long_body = "Hà Nội mùa thu. " * 17_000 + "Cải cách hành chính là nhiệm vụ trọng tâm."
    docs = [document_fields(Article(id="dai", title="Bài rất dài", body=long_body))] + _docs("seeds")[:2]
    ix = _build(tmp_path / "ix", docs, segments=1)
    with IndexArrays(ix) as arrays, ix.searcher() as searcher:
        (flat,) = arrays._flat
        assert flat is not None and not flat.has_positions(flat.row("body_s", "cải".encode()))
        for words in (["cải", "cách", "hành", "chính"], ["ha", "noi", "mua"], ["mùa", "thu", "hà"]):
            want = sorted(searcher.docs_for_query(wq.Phrase("body_s", words)))
            assert want and arrays.phrase_docs("body_s", words).tolist() == want
