"""Tantivy, a compiled engine, over the same analysed tokens: the reference column of bench/run.py.

Each article's title, abstract and body are analysed by indexer.analysis.analyse() (the tokens our index
holds: pyvi words with marks, folded and marked syllables, folded syllable bigrams) and given to Tantivy as
pre-tokenised text, split on white space, in three fields. A query is the BM25 OR of its own analysed
tokens over the three fields. Latency is Tantivy's alone (building the query from the tokens and searching
the top 10, one thread); the query's analysis is done before the clock starts, so the ratio to our p50
understates the analysis ours includes.

    python bench/tantivy_ref.py news.jsonl --queries 200     # one size, by itself
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIELDS = ("title", "abstract", "body")
TOKENIZER = "whitespace"
WRITER_HEAP_BYTES = 256 * 1024 * 1024


def available() -> str | None:
    """None when the tantivy package can be imported, else why it cannot (the column is then skipped)."""
    try:
        import tantivy  # noqa: F401
    except ImportError as err:
        return f"tantivy is not installed ({err}); `pip install tantivy` adds the reference column"
    return None


def tokens(text: str) -> list[str]:
    """The index's tokens of a text: words (cải_cách), syllables folded and marked, bigrams (cai+cach)."""
    from indexer.analysis import analyse

    analysed = analyse(text)
    out = [word for word, _, _ in analysed.words]
    out += [syllable for syllable, _, _, _ in analysed.syllable_tokens()]
    # A bigram is two folded syllables; '+' keeps it one token for a white-space tokenizer and apart from
    # the words, which '_' joins.
    out += [bigram.replace(" ", "+") for bigram in analysed.bigrams]
    return [token for token in out if token.strip() and not any(c.isspace() for c in token)]


def _init() -> None:
    """Load pyvi's model once in each worker process."""
    from indexer.analysis import analyse

    analyse("khởi động")


def _article_tokens(line: str) -> dict[str, str] | None:
    """The three fields of one JSON line as white-space-joined tokens, or None for a record the indexer drops."""
    from indexer.readers import article_from_record

    try:
        article = article_from_record(json.loads(line))
    except ValueError:
        return None
    return {name: " ".join(tokens(getattr(article, name) or "")) for name in FIELDS}


def build(path: Path, folder: Path, workers: int = 2) -> dict:
    """Analyse the articles of a JSON Lines file (worker processes) and index them with Tantivy in folder."""
    import tantivy

    builder = tantivy.SchemaBuilder()
    for name in FIELDS:
        builder.add_text_field(name, stored=False, tokenizer_name=TOKENIZER, index_option="freq")
    schema = builder.build()
    index = tantivy.Index(schema, path=str(folder))
    started = time.perf_counter()
    indexing = 0.0
    docs = 0
    writer = index.writer(WRITER_HEAP_BYTES, 1)
    with Pool(workers, initializer=_init) as pool, open(path, encoding="utf-8") as fh:
        for fields in pool.imap(_article_tokens, fh, chunksize=32):
            if fields is None:
                continue
            t0 = time.perf_counter()
            writer.add_document(tantivy.Document(**{name: [text] for name, text in fields.items()}))
            indexing += time.perf_counter() - t0
            docs += 1
    t0 = time.perf_counter()
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    indexing += time.perf_counter() - t0
    return {"index": index, "schema": schema, "documents": docs, "seconds": time.perf_counter() - started,
            "indexing_seconds": indexing}


def percentile(values: list[float], pct: float) -> float | None:
    """The pct-th percentile (nearest rank) of values, or None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]


def query_latency(index, schema, queries: list[str], k: int = 10, warmup: int = 20) -> dict:
    """Per-query milliseconds of Tantivy's BM25 OR query over the queries' tokens, top k, one thread."""
    import tantivy

    searcher = index.searcher()
    analysed = [sorted(set(tokens(q))) for q in queries]
    ms, empty, hits = [], 0, 0

    def ask(terms: list[str]) -> int:
        """Build the OR query of terms over every field and search its top k; the number of hits."""
        clauses = [(tantivy.Occur.Should, tantivy.Query.term_query(schema, name, term))
                   for term in terms for name in FIELDS]
        return len(searcher.search(tantivy.Query.boolean_query(clauses), k).hits)

    for terms in analysed[:warmup]:
        if terms:
            ask(terms)
    for terms in analysed:
        if not terms:
            empty += 1
            continue
        t0 = time.perf_counter()
        hits += ask(terms)
        ms.append((time.perf_counter() - t0) * 1000)
    return {"queries": len(ms), "empty_queries": empty, "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95),
            "mean_ms": sum(ms) / len(ms) if ms else None, "hits": hits}


def measure(path: Path, queries: list[str], workdir: Path | None = None) -> dict:
    """Build a Tantivy index of the file's articles and time the queries; {'skipped': why} without tantivy."""
    why = available()
    if why:
        return {"skipped": why}
    folder = Path(tempfile.mkdtemp(prefix="tantivy-", dir=workdir))
    try:
        built = build(path, folder)
        latency = query_latency(built["index"], built["schema"], queries)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        return {"documents": built["documents"], "build_seconds": built["seconds"],
                "indexing_seconds": built["indexing_seconds"], "index_bytes": size, **latency}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    """Measure Tantivy over one JSON Lines file and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("articles", type=Path)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    import run

    print(json.dumps(measure(args.articles, run.query_list(args.queries)), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
