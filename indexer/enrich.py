"""What the indexer derives from an article besides its tokens: the tag fields of indexer/fields.py.

Both writers call tags() on every article they index, so both backends filter and facet on the
same values: the current provinces (after the 1 July 2025 merger) the article is about, and the
legal documents it cites, as normalised numbers.
"""

from __future__ import annotations

from indexer import legal_refs, provinces
from indexer.readers import Article


def document_numbers(article: Article) -> list[str]:
    """The normalised numbers of the legal documents an article cites, in order of first citation."""
    found: dict[str, None] = {}
    for text in (article.title, article.abstract, article.body):
        if text:
            found.update((ref.number, None) for ref in legal_refs.find_refs(text))
    return list(found)


def province_units(article: Article) -> list[str]:
    """The current provinces an article is about (a former province counts as the unit it merged into)."""
    text = "\n".join(t for t in (article.title, article.abstract, article.body) if t)
    return list(dict.fromkeys(found.unit.name for found in provinces.find_provinces(text, article.source or "")))


def tags(article: Article) -> dict[str, list[str]]:
    """Every tag field's values for an article (empty lists where none)."""
    return {"province": province_units(article), "document": document_numbers(article)}
