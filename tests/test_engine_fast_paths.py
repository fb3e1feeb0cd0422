"""A Whoosh snapshot's own answers are Whoosh's: phrase and exclusion matches, the vocabulary and the listing
fields, on an index of two segments with a replaced article (postings themselves: test_whoosh_format.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import CORPUS, build_in_process, write_jsonl
from whoosh import query as wq

from app.search import SearchService
from app.understanding.vocabulary import Vocabulary
from indexer import lexicon
from indexer.analysis import analyse
from indexer.backend import Phrase, Ranking
from indexer.build import update_index

FIELDS = ("title", "abstract", "body")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """An engine over the seed pages plus an update: a second segment, and a deleted (replaced) article."""
    folder = tmp_path_factory.mktemp("fast")
    index = folder / "index"
    build_in_process(index, CORPUS)
    pages = sorted(CORPUS.glob("*.txt"))
    replaced = pages[0].stem
    text = pages[1].read_text(encoding="utf-8")
    updates = [{"id": replaced, "title": "Bài thay thế", "body": "Ủy ban nhân dân tỉnh họp. " + text[:2000]},
               {"id": "moi-1", "title": "Cải cách hành chính, cải cách thể chế", "abstract": "cải cách, hành chính",
                "body": "Cải cách hành chính (CCHC) là nhiệm vụ trọng tâm. Hành chính công; cải cách."}]
    report = update_index(index, [write_jsonl(folder / "updates.jsonl", updates)], workers=1)
    assert (report.added, report.replaced) == (1, 1)
    snap = SearchService(index).snapshot()
    leaves = snap.arrays.searcher.reader().leaf_readers()
    assert len(leaves) == 2 and any(r.has_deletions() for r, _ in leaves)
    yield snap
    snap.close()


def _phrases(engine, count: int, seed: int) -> list:
    """Phrase and term queries as the planner builds them: windows of indexed text, marked or folded, some
    shuffled, repeated or running over punctuation."""
    rng = random.Random(seed)
    texts = [stored.get(f, "") for stored in engine.arrays.searcher.all_stored_fields() for f in FIELDS]
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
        out.append(words)
    return out


def _whoosh_query(words: list[str]) -> wq.Query:
    """The query Whoosh itself would run for a phrase (a lone syllable: a term) in any text field."""
    if len(words) == 1:
        return wq.Or([wq.Term(f + "_s", words[0]) for f in FIELDS])
    return wq.Or([wq.Phrase(f + "_s", words) for f in FIELDS])


def test_phrase_matches_are_whooshs(engine):
    queries = _phrases(engine, 400, seed=7)
    queries.append(["hanh", "chinh", "cai", "cach"])  # over "; "
    queries.append(["khongcotu", "cai"])
    ranking = Ranking([], b={"title": 0.6, "abstract": 0.6, "body": 0.75})
    matched = 0
    for words in queries:
        fast = engine.scorer.phrase_mask(Phrase(tuple(words), tuple(words), True), ranking)
        expected = engine.docs_matching(_whoosh_query(words))
        assert fast.tolist() == expected.tolist(), words
        matched += bool(expected.any())
    assert matched > 200  # most of them find something: the comparison is not all empty masks


def test_vocabulary_is_the_one_whooshs_multireader_gives(engine):
    with engine.arrays.index.reader() as reader:
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
    for docnum in range(engine.arrays.doc_count_all):
        stored = engine.arrays.stored_fields(docnum)
        listing = engine.scorer.listing(docnum)
        assert dict(listing) == {k: stored[k] for k in ("id", "title", "url", "source", "category", "published")
                                 if k in stored}
        assert engine.scorer.listing(docnum) is listing  # cached


def test_ties_at_the_last_place_go_to_the_lowest_docnums(engine):
    """Copies of one article score alike: which of them fill the page must not depend on argpartition's luck."""
    n = engine.scorer.doc_count_all
    rng = np.random.default_rng(7)
    for _ in range(50):
        scores = rng.choice(np.array([0.0, 1.0, 2.0, 3.0], dtype=np.float32), size=n)
        for k in range(1, n + 1):
            total, ranked = engine.scorer.top(scores, k)
            want = sorted((d for d in range(n) if scores[d] > 0), key=lambda d: (-scores[d], d))[:k]
            assert total == int((scores > 0).sum()) and [d for d, _ in ranked] == want


def _one_per_story_by_definition(scores: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Every matched article sorted best first (ties: lowest docnum); the first of each story key is kept."""
    matched = np.flatnonzero(scores > 0)
    order = np.lexsort((matched, -scores[matched]))
    _, first = np.unique(keys[matched][order], return_index=True)
    keep = np.zeros(len(scores), dtype=bool)
    keep[matched[order[first]]] = True
    out = scores.copy()
    out[~keep] = 0.0
    return out


def test_collapsing_sorts_only_stories_with_copies_and_agrees_with_the_definition():
    from app.backends.whoosh import one_per_story

    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 400))
        # Whole-number scores make ties common; about a fifth of the articles are copies of 1-12 stories.
        scores = rng.integers(0, 4, n).astype(np.float32) * rng.integers(0, 2, n)
        keys = np.arange(n, dtype=np.int64)
        copies = rng.random(n) < 0.2
        keys[copies] = -1 - rng.integers(0, int(rng.integers(1, 13)), int(copies.sum()))
        assert np.array_equal(one_per_story(scores, keys), _one_per_story_by_definition(scores, keys))


def test_facet_counts_agree_with_counting_the_stored_values(tmp_path):
    from collections import Counter

    from conftest import index_of

    provinces = ("Thái Bình", "Nghệ An", "Quảng Ninh", "Lào Cai")
    articles = [{"id": f"f{i}", "title": f"Tin {i} về cải cách hành chính",
                 "body": f"UBND tỉnh {provinces[i % 4]} và tỉnh {provinces[i % 3]} ban hành Quyết định số "
                         f"{i % 5 + 1}/2024/QĐ-UBND về thủ tục hành chính.",
                 "source": f"nguồn {i % 6}" if i % 7 else "", "category": "Tin" if i % 2 else "",
                 **({"published": f"202{i % 3}-{1 + i % 12:02d}-{1 + i % 27:02d}T08:00:00"} if i % 5 else {})}
                for i in range(120)]
    snap = SearchService(index_of(tmp_path, articles)).snapshot()
    scorer, n = snap.scorer, snap.arrays.doc_count_all
    stored = [snap.arrays.stored_fields(d) for d in range(n)]
    assert len({s.get("source") for s in stored} - {None, ""}) == 6 and any(s.get("published") for s in stored)

    def largest(counter: Counter, limit: int = 10) -> list[tuple[str, int]]:
        return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]

    rng = np.random.default_rng(3)
    for _ in range(40):
        scores = (rng.random(n) < rng.random()).astype(np.float32) * rng.random(n).astype(np.float32)
        docs = [d for d in range(n) if scores[d] > 0]
        got = {**scorer.facets(scores), **scorer.tag_facets(scores)}
        for name in ("source", "category"):
            assert got[name] == largest(Counter(stored[d][name] for d in docs if stored[d].get(name)))
        dates = [stored[d]["published"] for d in docs if stored[d].get("published")]
        assert got["year"] == sorted(Counter(str(t.year) for t in dates).items(), reverse=True)
        assert got["month"] == sorted(Counter(f"{t.year}-{t.month:02d}" for t in dates).items(), reverse=True)
        for name in ("province", "document"):
            tags = scorer.tags(name)
            want = largest(Counter(v for d in docs for v in tags.of(d)))
            assert got[name] == want and (not docs or want)
