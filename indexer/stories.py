"""One story, many portals: the near-duplicate groups of an index, kept beside it by the writers.

The writer keeps the whole Deduper (signatures and links, indexer/near_duplicates.py) so that an
update or a delete regroups only what changed; readers need only the groups, written as a small
JSON file (article id -> story id, for articles that have copies): the search flow collapses the
copies of one story into one hit with `similar`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from indexer.analysis import fold_same_length
from indexer.near_duplicates import FILE as STATE_FILE
from indexer.near_duplicates import Deduper, folded_syllables
from indexer.readers import Article

STORIES_FILE = "stories.json"
_WORD_RE = re.compile(r"[^\W_]+")


def load_state(folder: Path, articles: Callable[[], Iterable[Article]]) -> Deduper:
    """The writer's grouping state saved in folder; where there is none (an index from before, a damaged or
    older file) the grouping is made again from articles(), every article of the index, once."""
    try:
        return Deduper.load(folder / STATE_FILE)
    except (OSError, ValueError, KeyError):
        grouping = Deduper()
        for article in articles():
            add(grouping, article)
        return grouping


def add(deduper: Deduper, article: Article) -> None:
    """Add or replace an article in the grouping (title and text: a repost keeps most of both)."""
    text = "\n".join(t for t in (article.title, article.abstract, article.body) if t)
    deduper.add(article.id, syllables=_syllables(text),
                published=article.published.isoformat() if article.published else "")


def _syllables(text: str) -> list[str]:
    """The text's words folded, split at anything but letters and digits: what a repost keeps.

    Half the cost of the analyser's syllables (the build groups every article in its main process); the
    two differ only around punctuation inside tokens (7,37%, 18/3), which a shingle of five rarely meets.
    """
    folded = fold_same_length(text)
    return _WORD_RE.findall(folded) if folded is not None else folded_syllables(text)


def groups(deduper: Deduper) -> dict[str, str]:
    """Article id -> story id (its earliest copy), for every article that has a copy."""
    return {doc: story for story, members in deduper.groups().items() for doc in members}


def save(deduper: Deduper, folder: Path, commit: int | None = None) -> None:
    """Write the writer's state and the readers' groups into folder (each file replaced atomically); commit
    names the index version the groups are those of, so that a reader of another version knows."""
    deduper.save(folder / STATE_FILE)
    tmp = folder / f".{STORIES_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"commit": commit, "groups": groups(deduper)}, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, folder / STORIES_FILE)


def load_groups(folder: Path) -> tuple[int | None, dict[str, str]]:
    """(the commit they belong to, the groups) a writer saved in folder; (None, {}) when none or unreadable."""
    try:
        data = json.loads((folder / STORIES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, {}
    if not isinstance(data, dict) or not isinstance(data.get("groups"), dict):
        return None, {}
    return data.get("commit"), data["groups"]


class StoryGroups:
    """The groups as a reader uses them: an article's story, and a story's articles."""

    def __init__(self, groups: dict[str, str]):
        self.story_of = groups
        self._members: dict[str, list[str]] = {}
        for doc, story in groups.items():
            self._members.setdefault(story, []).append(doc)

    def __bool__(self) -> bool:
        return bool(self.story_of)

    def story(self, doc_id: str) -> str:
        """The story of an article: its earliest copy's id, or its own id when it has no copy."""
        return self.story_of.get(doc_id, doc_id)

    def members(self, story: str) -> list[str]:
        """Every article of a story (the story id alone for an article without copies)."""
        return self._members.get(story, [story])
