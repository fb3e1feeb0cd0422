"""The word and syllable counts the indexer saves with each generation: the read side's vocabulary from
them is the one it would read from the lexicons, and a file that does not match the index is ignored."""

from __future__ import annotations

import json
import pickle

import pytest
from conftest import CORPUS, run_cli

from app.search import SearchService
from app.understanding.vocabulary import Vocabulary
from indexer import lexicon
from indexer.store import current_generation, open_index

pytestmark = pytest.mark.system  # the counts are saved by the indexer's command line


def _tables(vocabulary: Vocabulary) -> tuple:
    return (list(vocabulary.words.items()), list(vocabulary.syllables.items()),
            list(vocabulary.syllable_df.items()), vocabulary.frequent)


def _saved_and_read(index) -> tuple[tuple | None, tuple]:
    """The vocabulary from the saved counts (None when they are not used) and from the lexicons."""
    gen = current_generation(index)
    with open_index(index).reader() as reader:
        saved = lexicon.load(gen, reader)
        return (None if saved is None else _tables(Vocabulary.from_counts(*saved)),
                _tables(Vocabulary.from_counts(*lexicon.read_counts(reader))))


def test_counts_saved_by_build_update_and_delete_match_the_lexicons(tmp_path):
    index = tmp_path / "ix"
    assert run_cli("indexer", "build", "--index", str(index), str(CORPUS)).returncode == 0
    saved, read = _saved_and_read(index)
    assert saved == read and len(read[3]) > 100
    src = tmp_path / "new.jsonl"
    src.write_text(json.dumps({"id": "x1", "title": "Chuyển đổi số ở Thái Bình",
                               "body": "Sở Thông tin và Truyền thông triển khai chuyển đổi số."},
                              ensure_ascii=False) + "\n", encoding="utf-8")
    assert run_cli("indexer", "update", "--index", str(index), str(src)).returncode == 0
    saved, read = _saved_and_read(index)
    assert saved == read
    with open_index(index).reader() as reader:
        words, syllables = lexicon.load(current_generation(index), reader)
    assert words["chuyển_đổi"] >= 1 and syllables["chuyen"] >= 1  # the update's words are counted
    assert run_cli("indexer", "delete", "--index", str(index), "x1").returncode == 0
    saved, read = _saved_and_read(index)
    assert saved == read
    # Served: the service's vocabulary is the one of the saved counts.
    assert _tables(SearchService(index).snapshot().vocabulary()) == saved


def test_a_file_of_other_segments_or_a_damaged_one_is_ignored(tmp_path):
    index = tmp_path / "ix"
    assert run_cli("indexer", "build", "--index", str(index), str(CORPUS)).returncode == 0
    gen = current_generation(index)
    with open(gen / lexicon.FILE, "wb") as handle:  # counts of another state of the index
        pickle.dump(["MAIN_other"], handle)
        pickle.dump(({"giả_mạo": 99}, {"giả": 99}), handle)
    saved, read = _saved_and_read(index)
    assert saved is None and "gia mao" not in dict((f, m) for f, m, _ in read[3])
    (gen / lexicon.FILE).write_bytes(b"\x80\x05garbage")
    assert _saved_and_read(index)[0] is None
    found = run_cli("app", "search", "--index", str(index), "--json", "cai cach hanh chinh")
    assert found.returncode == 0 and json.loads(found.stdout)["total"] > 0
