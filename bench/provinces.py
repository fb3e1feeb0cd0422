"""Province recognition on VietNews: coverage, a precision sample to judge by reading, and the cost.

    python bench/provinces.py [--data ../shared/data/news/vietnews-val.jsonl.xz] [--sample 50]
                              [--out bench/results/provinces-sample.md]

Coverage is the share of articles (title, abstract and body) that name at least one province. The
sample is drawn at random (fixed seed) from all accepted mentions, with the words around each; a
second sample shows capitalised province names that the rules turned down, to see what they cost.
The verdict columns are left empty for a reader to fill in.
"""

from __future__ import annotations

import argparse
import json
import lzma
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "news" / "vietnews-val.jsonl.xz"

from indexer import provinces  # noqa: E402
from indexer.analysis import clean_text, fold  # noqa: E402


def articles(path: Path, limit: int | None) -> Iterator[tuple[str, str]]:
    """(id, text) of each article of a JSON Lines file compressed with xz."""
    with lzma.open(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if limit is not None and n >= limit:
                return
            doc = json.loads(line)
            parts = (doc.get("title"), doc.get("abstract"), doc.get("body"))
            yield doc["id"], clean_text("\n".join(p for p in parts if p))


def context(text: str, start: int, end: int, width: int = 60) -> str:
    """The mention in bold with the words around it, on one line, safe inside a Markdown table."""
    left = text[max(0, start - width):start]
    right = text[end:end + width]
    line = f"{left}**{text[start:end]}**{right}"
    return " ".join(line.split()).replace("|", "/")


def candidates(text: str) -> list[tuple[int, int]]:
    """Capitalised spans spelled as a province name: what the rules then accept or turn down."""
    names = provinces._names()
    toks = provinces._tokens(text)
    folded = [fold(t) for t, _, _ in toks]
    out = []
    for i in range(len(toks)):
        for n in range(min(4, len(toks) - i), 0, -1):
            words = [t for t, _, _ in toks[i:i + n]]
            gaps = [text[toks[k][2]:toks[k + 1][1]] for k in range(i, i + n - 1)]
            if not all(provinces._NAME_GAP_RE.fullmatch(gap) for gap in gaps):
                continue
            if any(all(provinces._capitalised(t) and provinces._marks_agree(t, s) for t, s in zip(words, nm.syllables))
                   for nm in names.get(tuple(folded[i:i + n]), ())):
                out.append((toks[i][1], toks[i + n - 1][2]))
                break
    return out


def main() -> None:
    """Run recognition over the articles and write the figures and the samples."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "provinces-sample.md")
    args = parser.parse_args()

    provinces.units()  # load the mapping outside the timing
    with_province = total = 0
    elapsed = 0.0
    by_unit: Counter[str] = Counter()
    by_name: Counter[str] = Counter()
    accepted: list[tuple[str, str, str, str]] = []  # (id, name, unit, context)
    rejected: list[tuple[str, str]] = []
    for doc_id, text in articles(args.data, args.limit):
        total += 1
        t0 = time.perf_counter()
        found = provinces.mentions(text)
        elapsed += time.perf_counter() - t0
        if found:
            with_province += 1
        spans = set()
        for m in found:
            spans.add((m.start, m.end))
            accepted.append((doc_id, m.name, m.unit.name, context(text, m.start, m.end)))
        for name in {m.name for m in found}:
            by_name[name] += 1
        for unit in {m.unit.name for m in found}:
            by_unit[unit] += 1
        for start, end in candidates(text):
            if not any(s <= start < e for s, e in spans):
                rejected.append((doc_id, context(text, start, end)))

    rng = random.Random(args.seed)
    sample = rng.sample(accepted, min(args.sample, len(accepted)))
    turned_down = rng.sample(rejected, min(30, len(rejected)))
    figures = {
        "data": args.data.name,
        "articles": total,
        "with_province": with_province,
        "coverage": round(with_province / max(total, 1), 4),
        "mentions": len(accepted),
        "turned_down": len(rejected),
        "ms_per_article": round(1000 * elapsed / max(total, 1), 3),
        "articles_per_unit": dict(by_unit.most_common()),
        "articles_per_name": dict(by_name.most_common()),
    }
    print(json.dumps(figures, ensure_ascii=False, indent=1))

    lines = [
        "# Province recognition: coverage and a precision sample",
        "",
        f"`python bench/provinces.py` on `{args.data.name}` ({total} articles: title, abstract, body).",
        "",
        f"- articles naming at least one province: **{with_province}** ({100 * with_province / max(total, 1):.1f} %)",
        f"- mentions accepted: {len(accepted)}; capitalised names turned down by the rules: {len(rejected)}",
        f"- cost: {figures['ms_per_article']} ms per article (`mentions()`, one core)",
        "",
        f"## {len(sample)} accepted mentions, drawn at random (seed {args.seed})",
        "",
        "| # | article | name → unit | context | verdict |",
        "|---|---|---|---|---|",
    ]
    for n, (doc_id, name, unit, ctx) in enumerate(sample, 1):
        lines.append(f"| {n} | {doc_id} | {name} → {unit} | {ctx} | |")
    lines += [
        "",
        f"## {len(turned_down)} names turned down, drawn at random",
        "",
        "| # | article | context | verdict |",
        "|---|---|---|---|",
    ]
    for n, (doc_id, ctx) in enumerate(turned_down, 1):
        lines.append(f"| {n} | {doc_id} | {ctx} | |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
