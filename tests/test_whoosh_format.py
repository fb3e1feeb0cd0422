"""Round trip through indexer.whoosh_format: segments our writer wrote, read back by IndexArrays, agree with
what Whoosh's own reader returns for every term of every field, every phrase tried and every field length,
before and after deletions."""

from __future__ import annotations

import itertools
import pickle
import time
import zlib
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, shared_file
from hypothesis import given, settings
from hypothesis import strategies as st
from whoosh import formats
from whoosh import index as whoosh_index
from whoosh import query as wq
from whoosh.codec.whoosh3 import W3Codec, W3TermInfo
from whoosh.fields import NUMERIC, FieldType
from whoosh.reading import IndexReader
from whoosh.util.times import datetime_to_long

from indexer.backend import SearchTimeout
from indexer.build import document_fields
from indexer.readers import Article, ReadResult, expand_sources, iter_articles
from indexer.schema import make_schema
from indexer.whoosh_format import blocks as blocks_module
from indexer.whoosh_format import reader as reader_module
from indexer.whoosh_format.reader import IndexArrays
from indexer.whoosh_format.segment_writer import FastSegmentWriter

VIETNEWS_ARTICLES = 40  # their 17,000 terms take Whoosh's reader seconds to check
SHORT_ARTICLES = 300  # same few sentences in each: posting lists of several blocks, for few more terms
PHRASES = 150  # phrases tried per check, spread over the articles (Whoosh takes about 1 ms for each)


def _short_articles() -> list[Article]:
    """Short articles sharing their sentences, some without title, source, category or date."""
    common = "Ủy ban nhân dân tỉnh Thái Bình họp về cải cách hành chính. "
    return [Article(id=f"x{i:03d}", title=f"Tin {i} về cải cách" if i % 3 else "",
                    abstract="Tóm tắt: thuỷ lợi, hoà bình" if i % 5 == 0 else "",
                    body=common * (1 + i % 4) + f"Văn bản số {i}/2024/TT-BNV, GRDP {i}%.",
                    source=f"nguồn {i % 4}" if i % 7 else "", category="Tin" if i % 2 else "",
                    published=datetime(2024, 1 + i % 12, 1 + i % 28) if i % 6 else None)
            for i in range(SHORT_ARTICLES)]


def _docs(source: str) -> list[dict]:
    """add_document keywords of the seed pages and short articles, or of the first VietNews articles."""
    if source == "seeds":
        files = expand_sources([CORPUS])
        articles = list(iter_articles(files, ReadResult())) + _short_articles()
    else:
        files = [shared_file("data", "news", "vietnews-val.jsonl.xz")]
        articles = list(itertools.islice(iter_articles(files, ReadResult()), VIETNEWS_ARTICLES))
    return [document_fields(a) for a in articles]


def _build(folder: Path, docs: list[dict]) -> whoosh_index.Index:
    """Three segments: two from our writer, a small last one from Whoosh's, with short lists in the term entries.

    Neither writer inlines postings by default (W3Codec's inlinelimit of 1 keeps lists shorter than one),
    but the format allows it and the reader reads them: the last segment's codec inlines up to 4. Whoosh's
    writer then calls W3TermInfo.set_inline, which whoosh-reloaded 2.7.5 names set_inlined.
    """
    folder.mkdir()
    ix = whoosh_index.create_in(str(folder), make_schema())
    tail = max(1, len(docs) // 10)
    cut = 2 * (len(docs) - tail) // 3
    for part in (docs[:cut], docs[cut:-tail]):
        writer = FastSegmentWriter(ix)
        for doc in part:
            writer.add_document(**doc)
        writer.commit(merge=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(W3TermInfo, "set_inline", W3TermInfo.set_inlined, raising=False)
        writer = ix.writer(codec=W3Codec(inlinelimit=5))
        for doc in docs[-tail:]:
            writer.add_document(**doc)
        writer.commit(merge=False)
    return ix


def _delete_some(ix: whoosh_index.Index, docs: list[dict]) -> list[str]:
    """Delete every third article (the first included) through Whoosh's writer; their ids."""
    gone = [doc["id"] for doc in docs[::3]]
    writer = ix.writer()
    for doc_id in gone:
        writer.delete_by_term("id", doc_id)
    writer.commit(merge=False)
    return gone


def _whoosh_postings(reader: IndexReader, fieldname: str, tbytes: bytes) -> tuple[list[int], list[float]]:
    """(ids, weights) of a term through Whoosh's own matchers (deleted documents left out)."""
    ids, weights = [], []
    m = reader.postings(fieldname, tbytes)
    while m.is_active():
        ids.append(m.id())
        weights.append(m.weight())
        m.next()
    return ids, weights


def _phrases(docs: list[dict], per_doc: int = 6) -> list[tuple[str, list[str]]]:
    """(field, words) to try in every field with positions: runs of 2-3 consecutive tokens, and some reversed."""
    schema = make_schema()
    with_positions = [name for name in schema.names()
                      if schema[name].format and schema[name].format.supports("positions")]
    assert with_positions
    out = []
    for i, doc in enumerate(docs):
        for field in with_positions:
            if field not in doc:
                continue
            by_pos: dict[int, list[str]] = {}
            for token in schema[field].analyzer(doc[field], positions=True):
                by_pos.setdefault(token.pos, []).append(token.text)
            positions = sorted(by_pos)
            step = max(1, len(positions) // per_doc)
            for k in range(0, len(positions) - 2, step):
                p = positions[k]
                if p + 1 not in by_pos:
                    continue
                # folded and marked forms alternate: both sit at the same positions
                words = [by_pos[p][i % len(by_pos[p])], by_pos[p + 1][-1]]
                if k % 2 and p + 2 in by_pos:
                    words.append(by_pos[p + 2][0])
                out.append((field, words))
                if k % 3 == 0:
                    out.append((field, words[::-1]))
    return out[::max(1, len(out) // PHRASES)]


def _term_text(fieldobj: FieldType, tbytes: bytes) -> str | bytes:
    """The term as the engine asks for it: text for text and id fields, the stored bytes for numbers and dates."""
    return tbytes if isinstance(fieldobj, NUMERIC) else tbytes.decode("utf-8")


def _check(ix: whoosh_index.Index, docs: list[dict]) -> dict[str, int]:
    """Assert IndexArrays over ix agrees with Whoosh's reader; counts of what was compared.

    Postings and phrases are read twice: whole lists decoded in memory, then (read_at_once 0) every list
    through Whoosh's block matcher on the file, the path of lists over POSTINGS_READ_AT_ONCE.
    """
    counts = dict.fromkeys(("terms", "postings", "inlined", "phrases", "phrase hits"), 0)
    with ix.searcher() as searcher, IndexArrays(ix) as arrays:
        reader = searcher.reader()
        n = reader.doc_count_all()
        assert arrays.doc_count_all == n
        live = np.array([not reader.is_deleted(d) for d in range(n)])
        assert np.array_equal(arrays.live, live)
        assert arrays.live_count == arrays.doc_count() == searcher.doc_count() == live.sum()
        assert arrays.commit_generation() == reader.generation()
        schema = searcher.schema

        terms = []  # (field, term, document frequency, ids, weights) as Whoosh reads them
        for fieldname, tbytes in reader.all_terms():
            ids, weights = _whoosh_postings(reader, fieldname, tbytes)
            terms.append((fieldname, _term_text(schema[fieldname], tbytes), reader.doc_frequency(fieldname, tbytes),
                          ids, np.asarray(weights, dtype=np.float32)))
        phrases = [(fieldname, words, sorted(searcher.docs_for_query(wq.Phrase(fieldname, words))))
                   for fieldname, words in _phrases(docs)]
        for read_at_once in (blocks_module.POSTINGS_READ_AT_ONCE, 0):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(reader_module, "POSTINGS_READ_AT_ONCE", read_at_once)
                mp.setattr(blocks_module, "POSTINGS_READ_AT_ONCE", read_at_once)
                for fieldname, term, want_df, want_ids, want_weights in terms:
                    assert arrays.term_stats(fieldname, term)[0] == want_df, (fieldname, term)
                    ids, tfs = arrays.postings(fieldname, term)
                    assert ids.dtype == np.int64 and tfs.dtype == np.float32
                    assert ids.tolist() == want_ids, (fieldname, term)
                    assert np.array_equal(tfs, want_weights), (fieldname, term)
                for fieldname, words, want in phrases:
                    assert arrays.phrase_docs(fieldname, words).tolist() == want, (fieldname, words)
        counts["terms"], counts["postings"] = len(terms), sum(len(t[3]) for t in terms)
        counts["phrases"], counts["phrase hits"] = len(phrases), sum(len(p[2]) for p in phrases)
        counts["inlined"] = sum(entry[3] is not None for fieldname, term, *_ in terms
                                for entry in arrays.term_stats(fieldname, term)[1])
        assert arrays.term_stats("body_s", "khôngcóđâu") == (0, ())
        assert len(arrays.postings("body_s", "khôngcóđâu")[0]) == 0

        for fieldname in schema.scorable_names():
            lengths = arrays.lengths(fieldname)
            want = np.array([reader.doc_field_length(d, fieldname) or 0 for d in range(n)], dtype=np.float32)
            assert np.array_equal(lengths, want), fieldname
            live_lengths = want[live & (want > 0)]
            assert arrays.average_length(fieldname) == (float(live_lengths.mean()) if len(live_lengths) else 1.0)

        # Text columns (numbers and dates are read as published_keys() reads them)
        columns = [name for name in schema.names() if schema[name].column_type and schema[name].stored
                   and not isinstance(schema[name], NUMERIC)]
        assert "source" in columns
        values = {name: arrays.column_values(name) for name in columns}
        published = arrays.published_keys()
        for d in range(n):
            stored = searcher.stored_fields(d)
            assert arrays.stored_fields(d) == stored
            for name in columns:  # an ID column holds the stored value
                assert values[name][d] == stored.get(name, ""), (name, d)
            when = stored.get("published")
            assert np.isnan(published[d]) if when is None else published[d] == datetime_to_long(when)
        for doc in docs[::7]:
            assert arrays.document_by_id(doc["id"]) == searcher.document(id=doc["id"])
    return counts


@pytest.fixture(scope="module")
def seed_docs() -> list[dict]:
    """The seed pages and the short articles."""
    return _docs("seeds")


@pytest.fixture(scope="module", params=["seeds", "vietnews"])
def docs(request: pytest.FixtureRequest, seed_docs: list[dict]) -> list[dict]:
    """The articles of one test corpus (VietNews skipped where ../shared is absent)."""
    return seed_docs if request.param == "seeds" else _docs(request.param)


def test_reads_back_what_whoosh_reads(tmp_path: Path, docs: list[dict]) -> None:
    """Every term, phrase and length agrees with Whoosh, before and after deleting a third of the articles."""
    ix = _build(tmp_path / "ix", docs)
    assert len(ix._segments()) == 3
    before = _check(ix, docs)
    assert before["terms"] > 1000 and before["inlined"] > 100
    assert before["phrases"] > 10 and before["phrase hits"] > before["phrases"] // 2
    gone = _delete_some(ix, docs)
    assert len(ix._segments()) == 3
    with ix.searcher() as searcher:
        assert all(searcher.document(id=doc_id) is None for doc_id in gone)
    after = _check(ix, docs)
    assert after["terms"] == before["terms"] and after["postings"] < before["postings"]


@pytest.mark.parametrize("read_at_once", [blocks_module.POSTINGS_READ_AT_ONCE, 0], ids=["in-memory", "matcher"])
def test_a_search_past_its_deadline_stops_between_blocks(tmp_path: Path, seed_docs: list[dict], read_at_once: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The deadline is looked at before each posting block: a read stops after its first block once it is past."""
    monkeypatch.setattr(reader_module, "POSTINGS_READ_AT_ONCE", read_at_once)
    monkeypatch.setattr(blocks_module, "POSTINGS_READ_AT_ONCE", read_at_once)
    ix = _build(tmp_path / "ix", seed_docs)
    with IndexArrays(ix) as arrays:
        past = time.monotonic() - 1.0
        with pytest.raises(SearchTimeout):
            arrays.postings("body_s", "ban", deadline=past)  # in every short article: blocks in each segment
        with pytest.raises(SearchTimeout):
            arrays.phrase_docs("body_s", ["ban", "nhan"], deadline=past)
        assert len(arrays.postings("body_s", "ban", deadline=time.monotonic() + 60)[0]) >= SHORT_ARTICLES

        looks = []

        def second_look_is_late(deadline: float | None) -> None:
            """Time runs out between the first block and the second."""
            looks.append(deadline)
            if len(looks) == 2:
                raise SearchTimeout

        monkeypatch.setattr(blocks_module, "check_deadline", second_look_is_late)
        monkeypatch.setattr(reader_module, "check_deadline", second_look_is_late)
        for read in (lambda: arrays.postings("body_s", "ban", deadline=1.0),
                     lambda: arrays.phrase_docs("body_s", ["ban", "nhan"], deadline=1.0)):
            looks.clear()
            with pytest.raises(SearchTimeout):
                read()
            assert len(looks) == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=1500, unique=True), max_size=30))
def test_positions_decoded_together_are_whoosh_s_decoding_one_at_a_time(lists: list[list[int]]) -> None:
    fmt = formats.Positions()
    values = [fmt.encode(sorted(p)) for p in lists]
    counts, positions = blocks_module.position_arrays(values)
    assert counts.tolist() == [len(p) for p in lists]
    assert positions.tolist() == [q for v in values for q in fmt.decode_positions(v)]


def test_positions_pickled_otherwise_are_still_read() -> None:
    from whoosh.system import pack_uint

    fmt = formats.Positions()
    values = [fmt.encode([3, 9]), pack_uint(2) + pickle.dumps([1, 4], 4), pack_uint(1) + pickle.dumps([7], 2)[:-1]]
    counts, positions = blocks_module.position_arrays(values)
    assert counts.tolist() == [2, 2, 1] and positions.tolist() == [3, 9, 1, 5, 7]
    with pytest.raises(ValueError):
        blocks_module.position_arrays([pack_uint(3) + pickle.dumps([1, 4], 2)])  # says 3, holds 2


def test_positions_blocks_keep_their_values_as_bytes_that_whoosh_unpickles() -> None:
    """Protocol 2 would pickle each positions value as a call to _codecs.encode, ten times slower to load."""
    fmt = formats.Positions()
    values = [fmt.encode([i, i + 4]) for i in range(300)]
    docs = np.arange(300, dtype=np.int64)
    bounds = np.array([0, 1, 300])  # a term of one posting, then one of three blocks
    out, infos, _ = blocks_module.encode_posting_lists(bounds, docs, np.full(300, 2.0), None, values, None,
                                                        "list", None, 0)
    # The parts are HEADER, block sizes (4 bytes), block infos (protocol 2) and block data (3, or compressed).
    datas = [p if p[:2] == b"\x80\x03" else zlib.decompress(p) for p in out if len(p) > 4 and p[:2] != b"\x80\x02"]
    assert len(datas) == 4
    assert datas and all(b"_codecs" not in d for d in datas)
    assert [v for d in datas for v in pickle.loads(d)[2]] == values
