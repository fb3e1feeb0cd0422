"""Near-duplicate stories on Dân Trí 2020 and VietNews: groups per threshold, pairs to judge, index-time cost.

    python bench/near_duplicates.py [--splits val,test,train] [--workers 2]
                                    [--out bench/results/near-duplicates.json]
                                    [--sample-out bench/results/near-duplicates-sample.md] [--per-band 20]
                                    [--cache signatures.npz]
    python bench/near_duplicates.py --score   # precision per threshold from the judged sample

Each article is its title, abstract and body. Signatures are computed once (in `--workers` processes);
then for each threshold a Deduper of that threshold takes every article in order (Dân Trí by date
first, then VietNews), as an indexer would, and the groups are counted. The pairs to judge are drawn
from the links of the lowest threshold, `--per-band` at random from each band of similarity
([0.3, 0.4), [0.4, 0.5), ...), so that each threshold's precision is the band precisions weighted by
the number of links in each band at or above it (`--score`, after a reader filled in the verdicts:
`same` for one story, `related` or `different` for others). Pairs of identical texts (the same article
twice) are counted as sure links and not sampled.

Costs are per article, on one core: syllables (what analyse() would give the indexer for free),
signature from syllables, and add() (LSH query, links, groups) at each threshold.
"""

from __future__ import annotations

import argparse
import json
import lzma
import random
import re
import sys
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NEWS = ROOT.parent / "shared" / "data" / "news"
RESULTS = ROOT / "bench" / "results"
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

from indexer.near_duplicates import Deduper, folded_syllables  # noqa: E402


def read(path: Path) -> list[dict]:
    """The articles of one JSON Lines file compressed with xz."""
    with lzma.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def text_of(doc: dict) -> str:
    """What is compared: title, abstract and body."""
    return "\n".join(p for p in (doc.get("title"), doc.get("abstract"), doc.get("body")) if p)


_WORKER: Deduper | None = None


def _signature(text: str) -> tuple[object, float, float]:
    """A worker's signature of one text, with the seconds spent on syllables and on the MinHash."""
    global _WORKER
    if _WORKER is None:
        _WORKER = Deduper()
    t0 = time.perf_counter()
    sylls = folded_syllables(text)
    t1 = time.perf_counter()
    sig = _WORKER.signature(syllables=sylls)
    return sig, t1 - t0, time.perf_counter() - t1


def lead(doc: dict, width: int = 220) -> str:
    """The start of an article's abstract or body, on one line, safe in a Markdown table."""
    text = doc.get("abstract") or doc.get("body") or ""
    return " ".join(text.split())[:width].replace("|", "/")


def title(doc: dict) -> str:
    """An article's title, on one line, safe in a Markdown table."""
    return " ".join((doc.get("title") or "").split()).replace("|", "/")


def band_of(sim: float) -> float:
    """The lower bound of a similarity's band (0.3, 0.4, ..., 0.9)."""
    return max(b for b in THRESHOLDS if sim >= b - 1e-9)


def run(args: argparse.Namespace) -> None:
    """Sign, group at each threshold, write the figures and the pairs to judge."""
    t_read = time.perf_counter()
    dantri = sorted(read(NEWS / "dantri-2020.jsonl.xz"), key=lambda d: d.get("published") or "")
    vietnews = [d for split in args.splits for d in read(NEWS / f"vietnews-{split}.jsonl.xz")]
    docs = dantri + vietnews
    by_id = {d["id"]: d for d in docs}
    print(f"{len(dantri)} Dân Trí + {len(vietnews)} VietNews ({','.join(args.splits)}) articles, "
          f"read in {time.perf_counter() - t_read:.0f} s", file=sys.stderr)

    if args.cache and args.cache.exists():
        # Signatures depend only on the texts and the shingling: a rerun with other thresholds reuses them.
        with np.load(args.cache, allow_pickle=False) as cached:
            assert [str(x) for x in cached["ids"]] == [d["id"] for d in docs], "cache of other articles"
            sigs = [row.copy() if ok else None for row, ok in zip(cached["signatures"], cached["has_signature"])]
            ms_syllables, ms_signature = (float(x) for x in cached["ms"])
        print(f"signatures read from {args.cache}", file=sys.stderr)
    else:
        t0 = time.perf_counter()
        with Pool(args.workers) as pool:
            signed = pool.map(_signature, (text_of(d) for d in docs), chunksize=64)
        sign_wall = time.perf_counter() - t0
        sigs = [s for s, _, _ in signed]
        ms_syllables = 1000 * sum(a for _, a, _ in signed) / len(docs)
        ms_signature = 1000 * sum(b for _, _, b in signed) / len(docs)
        print(f"signed in {sign_wall:.0f} s on {args.workers} processes", file=sys.stderr)
        if args.cache:
            width = next(len(s) for s in sigs if s is not None)
            np.savez(args.cache, ids=np.array([d["id"] for d in docs]), ms=np.array([ms_syllables, ms_signature]),
                     signatures=np.array([s if s is not None else np.zeros(width, np.uint32) for s in sigs]),
                     has_signature=np.array([s is not None for s in sigs]))

    per_threshold = {}
    lowest = None
    for threshold in THRESHOLDS:
        dedup = Deduper(threshold)
        t0 = time.perf_counter()
        for doc, sig in zip(docs, sigs):
            dedup.add(doc["id"], signature=sig, published=doc.get("published") or "")
        ms_add = 1000 * (time.perf_counter() - t0) / len(docs)
        groups = dedup.groups()
        sizes = sorted((len(g) for g in groups.values()), reverse=True)
        per_threshold[str(threshold)] = {
            "groups": len(groups),
            "articles_in_groups": sum(sizes),
            "collapsed_away": sum(sizes) - len(sizes),
            "largest_groups": sizes[:5],
            "groups_dantri_only": sum(all(m.startswith("dantri") for m in g) for g in groups.values()),
            "groups_vietnews_only": sum(all(m.startswith("vietnews") for m in g) for g in groups.values()),
            "ms_add": round(ms_add, 3),
        }
        print(f"threshold {threshold}: {per_threshold[str(threshold)]}", file=sys.stderr)
        if lowest is None:
            lowest = dedup

    links = sorted({tuple(sorted((a, b))) for a in lowest._links for b in lowest._links[a]})
    # The same article twice (VietNews holds thousands) is a sure link: counted, not sampled.
    exact = sum(1 for a, b in links if text_of(by_id[a]) == text_of(by_id[b]))
    by_band: dict[float, list[tuple[str, str, float]]] = {b: [] for b in THRESHOLDS}
    for a, b in links:
        if text_of(by_id[a]) != text_of(by_id[b]):
            sim = lowest.similarity(a, b)
            by_band[band_of(sim)].append((a, b, sim))
    figures = {
        "articles": {"dantri": len(dantri), "vietnews": len(vietnews), "splits": args.splits},
        "params": {"shingle": lowest.params.shingle, "num_perm": lowest.params.num_perm},
        "ms_per_article": {"syllables": round(ms_syllables, 3), "signature_from_syllables": round(ms_signature, 3),
                           "add_at_threshold": {t: v["ms_add"] for t, v in per_threshold.items()}},
        "per_threshold": per_threshold,
        "links_identical_text": exact,
        "links_per_band": {str(b): len(v) for b, v in by_band.items()},  # the others
    }
    args.out.write_text(json.dumps(figures, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(figures, ensure_ascii=False, indent=1))

    rng = random.Random(args.seed)
    lines = [
        "# Near-duplicate pairs to judge",
        "",
        f"`python bench/near_duplicates.py` ({len(dantri)} Dân Trí + {len(vietnews)} VietNews articles). "
        f"{exact} linked pairs are the same text twice (sure links, not sampled); of the others, linked at "
        f"threshold {THRESHOLDS[0]}, {args.per_band} pairs are drawn at random (seed {args.seed}) from "
        "each band of estimated Jaccard similarity. Verdicts: `same` = one story (a repost or a light edit, or "
        "two articles written from one release), `related` = the same event or case but another article "
        "(a follow-up, another angle), `different`.",
        "",
    ]
    for band in THRESHOLDS:
        pairs = by_band[band]
        chosen = sorted(rng.sample(pairs, min(args.per_band, len(pairs))), key=lambda p: -p[2])
        lines += [f"## Band {band:.1f} ({len(pairs)} links)", "",
                  "| # | sim | article A: title — lead | article B: title — lead | verdict |", "|---|---|---|---|---|"]
        for n, (a, b, sim) in enumerate(chosen, 1):
            da, db = by_id[a], by_id[b]
            cell_a = f"{a}: **{title(da)}** — {lead(da)}"
            cell_b = f"{b}: **{title(db)}** — {lead(db)}"
            lines.append(f"| {n} | {sim:.2f} | {cell_a} | {cell_b} | |")
        lines.append("")
    args.sample_out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out} and {args.sample_out}", file=sys.stderr)


_ROW_RE = re.compile(r"^\| \d+ \| (?P<sim>[0-9.]+) \|.*\| (?P<verdict>[a-z]*) \|$")
_BAND_RE = re.compile(r"^## Band ([0-9.]+)")


def score(args: argparse.Namespace) -> None:
    """Precision per threshold from the judged sample, each band weighted by its number of links."""
    figures = json.loads(args.out.read_text(encoding="utf-8"))
    judged: dict[float, Counter[str]] = {b: Counter() for b in THRESHOLDS}
    band = THRESHOLDS[0]
    for line in args.sample_out.read_text(encoding="utf-8").splitlines():
        if heading := _BAND_RE.match(line):  # the printed similarity is rounded: its heading tells the band
            band = float(heading.group(1))
        elif (m := _ROW_RE.match(line)) and m.group("verdict"):
            judged[band][m.group("verdict")] += 1
    out = {}
    identical = figures["links_identical_text"]
    for t in THRESHOLDS:
        weight = correct = 0.0
        judged_pairs = 0
        for band in THRESHOLDS:
            if band < t or not judged[band]:
                continue
            links = figures["links_per_band"][str(band)]
            n = sum(judged[band].values())
            judged_pairs += n
            weight += links
            correct += links * judged[band]["same"] / n
        out[str(t)] = {
            "precision_all_links": round((identical + correct) / (identical + weight), 3),
            "precision_edited_links": round(correct / weight, 3) if weight else None,
            "edited_links": int(weight),
            "judged_pairs": judged_pairs,
        }
    bands = {str(b): dict(c) for b, c in judged.items()}
    print(json.dumps({"per_band": bands, "per_threshold": out}, indent=1))


def main() -> None:
    """Parse the arguments and run or score."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", type=lambda s: s.split(","), default=["val"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-band", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out", type=Path, default=RESULTS / "near-duplicates.json")
    parser.add_argument("--sample-out", type=Path, default=RESULTS / "near-duplicates-sample.md")
    parser.add_argument("--cache", type=Path, default=None, help="an .npz to keep the signatures in between runs")
    parser.add_argument("--score", action="store_true", help="print precision per threshold from the verdicts")
    args = parser.parse_args()
    score(args) if args.score else run(args)


if __name__ == "__main__":
    main()
