"""The engine's own readings of Whoosh's files give what Whoosh itself gives: postings, document frequencies,
phrase matches, the vocabulary and the listing fields, on an index of two segments with a replaced article."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from conftest import CORPUS, run_cli
from whoosh import query as wq

from app.search import SearchService
from app.understanding.vocabulary import Vocabulary
from indexer import lexicon
from indexer.analysis import analyse

FIELDS = ("title", "abstract", "body")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """An engine over the seed pages plus an update: a second segment, and a deleted (replaced) article."""
    folder = tmp_path_factory.mktemp("fast")
    index = folder / "index"
    assert run_cli("indexer", "build", "--index", str(index), str(CORPUS)).returncode == 0
    pages = sorted(CORPUS.glob("*.txt"))
    replaced = pages[0].stem
    text = pages[1].read_text(encoding="utf-8")
    updates = [{"id": replaced, "title": "Bài thay thế", "body": "Ủy ban nhân dân tỉnh họp. " + text[:2000]},
               {"id": "moi-1", "title": "Cải cách hành chính, cải cách thể chế", "abstract": "cải cách, hành chính",
                "body": "Cải cách hành chính (CCHC) là nhiệm vụ trọng tâm. Hành chính công; cải cách."}]
    src = folder / "updates.jsonl"
    src.write_text("".join(json.dumps(u, ensure_ascii=False) + "\n" for u in updates), encoding="utf-8")
    done = run_cli("indexer", "update", "--index", str(index), str(src))
    assert done.returncode == 0, done.stderr
    eng = SearchService(index).snapshot().engine
    assert len(eng._leaves) == 2 and any(r.has_deletions() for r, _ in eng._leaves)
    yield eng
    eng.close()


def _terms(engine, fieldname):
    """Every term of a field, as text."""
    with engine.index.reader() as reader:
        return [b.decode("utf-8") for b in reader.lexicon(fieldname)]


def test_postings_and_document_frequencies_match_whoosh(engine):
    reader = engine.searcher.reader()
    for fieldname in ("body", "body_s", "title_b", "abstract_s"):
        for term in _terms(engine, fieldname) + ["khongcotu"]:
            ids, tfs = engine.postings(fieldname, term)
            expected = {}
            for leaf, offset in engine._leaves:
                if (fieldname, term) in leaf:
                    m = leaf.postings(fieldname, term)
                    while m.is_active():
                        expected[m.id() + offset] = m.weight()
                        m.next()
            assert ids.tolist() == sorted(expected), (fieldname, term)
            assert tfs.tolist() == [np.float32(expected[d]) for d in sorted(expected)]
            assert engine.term_stats(fieldname, term)[0] == reader.doc_frequency(fieldname, term)


def _phrases(engine, count: int, seed: int) -> list:
    """Phrase and term queries as the planner builds them: windows of indexed text, marked or folded, some
    shuffled, repeated or running over punctuation."""
    rng = random.Random(seed)
    texts = [stored.get(f, "") for stored in engine.searcher.all_stored_fields() for f in FIELDS]
    texts = [t for t in texts if t]
    out = []
    while len(out) < count:
        sylls = analyse(rng.choice(texts)[:4000]).syllables
        if len(sylls) < 2:
            continue
        k = rng.randint(1, 5)
        at = rng.randrange(max(1, len(sylls) - k))
        words = [s[1] if rng.random() < 0.5 else s[0] for s in sylls[at:at + k]]
        roll = rng.random()
        if roll < 0.15:
            rng.shuffle(words)
        elif roll < 0.25:
            words.append(words[0])
        elif roll < 0.3:
            words = [words[0]] * len(words)
        if len(words) == 1:
            out.append(wq.Or([wq.Term(f + "_s", words[0]) for f in FIELDS]))
        else:
            out.append(wq.Or([wq.Phrase(f + "_s", words) for f in FIELDS]))
    return out


def test_phrase_matches_are_whooshs(engine):
    queries = _phrases(engine, 400, seed=7)
    queries.append(wq.Or([wq.Phrase(f + "_s", ["hanh", "chinh", "cai", "cach"]) for f in FIELDS]))  # over "; "
    queries.append(wq.Or([wq.Phrase(f + "_s", ["khongcotu", "cai"]) for f in FIELDS]))
    matched = 0
    for q in queries:
        fast = engine.fast_matching(q, {"title": 0.6, "abstract": 0.6, "body": 0.75})
        expected = engine.docs_matching(q)
        assert fast is not None and fast.tolist() == expected.tolist(), q
        matched += bool(expected.any())
    assert matched > 200  # most of them find something: the comparison is not all empty masks


def test_other_queries_are_left_to_whoosh(engine):
    assert engine.fast_matching(wq.Term("source", "x")) is None
    assert engine.fast_matching(wq.Or([wq.Phrase("body_s", ["a", "b"], slop=2)])) is None


def test_vocabulary_is_the_one_whooshs_multireader_gives(engine):
    with engine.index.reader() as reader:
        word_df: dict[str, int] = {}
        for name in FIELDS:
            for btext, info in reader.iter_field(name):
                text = btext.decode("utf-8")
                if "_" in text:
                    word_df[text] = max(word_df.get(text, 0), info.doc_frequency())
        syllable_df = {b.decode("utf-8"): info.doc_frequency() for b, info in reader.iter_field("body_s")}
        expected = Vocabulary.from_counts(word_df, syllable_df)
        got = Vocabulary.from_counts(*lexicon.read_counts(reader))
    assert list(got.words.items()) == list(expected.words.items())
    assert list(got.syllables.items()) == list(expected.syllables.items())
    assert list(got.syllable_df.items()) == list(expected.syllable_df.items())
    assert got.frequent == expected.frequent


def test_listing_fields_are_the_stored_ones(engine):
    for docnum in range(engine.doc_count_all):
        stored = engine.searcher.stored_fields(docnum)
        listing = engine.listing(docnum)
        assert dict(listing) == {k: stored[k] for k in ("id", "title", "url", "source", "category", "published")
                                 if k in stored}
        assert engine.listing(docnum) is listing  # cached
