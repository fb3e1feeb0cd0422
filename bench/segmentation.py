"""Word segmentation accuracy of pyvi alone and of tracuu's analyser, on UD Vietnamese-VTB (test).

    python bench/segmentation.py [--out bench/results/segmentation.json]

Words are compared as character spans of the sentence with white space removed, so both sides
count the same way; punctuation tokens count as words, as in the gold set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GOLD = ROOT.parent / "shared" / "data" / "eval" / "ws-ud-vtb-test.jsonl"


def spans(words: list[str]) -> set[tuple[int, int]]:
    """Character spans of words in the text with all white space removed."""
    out, pos = set(), 0
    for word in words:
        n = len("".join(word.split()))
        if n:
            out.add((pos, pos + n))
        pos += n
    return out


def pyvi_words(text: str) -> list[str]:
    """pyvi's words, syllables re-joined by spaces."""
    from pyvi import ViTokenizer

    return [w.replace("_", " ") for w in ViTokenizer.tokenize(text).split()]


def tracuu_words(text: str) -> list[str]:
    """Words from tracuu's analyser (cleaning and tone placement included), punctuation kept."""
    from indexer.analysis import canonical_tones, clean_text, segment_lines

    text = canonical_tones(clean_text(text))
    words: list[str] = []
    for line in text.split("\n"):
        for start, end, joins in segment_lines([line])[0]:
            if joins and words:
                words[-1] += " " + line[start:end]
            else:
                words.append(line[start:end])
    return words


def main() -> int:
    """Score both segmenters and print a Markdown table (and JSON with --out)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not GOLD.exists():
        print(f"skipped: {GOLD.name} not found (../shared is absent)")
        return 0
    rows = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    figures = {}
    for name, fn in (("pyvi alone", pyvi_words), ("tracuu analyser", tracuu_words)):
        fn("khởi động")
        start = time.perf_counter()
        tp = n_found = n_gold = 0
        for row in rows:
            gold, found = spans(row["words"]), spans(fn(row["text"]))
            tp += len(gold & found)
            n_found += len(found)
            n_gold += len(gold)
        p, r = tp / n_found, tp / n_gold
        figures[name] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4),
                         "seconds": round(time.perf_counter() - start, 2)}
    print(f"sentences: {len(rows)}")
    print("| segmenter | precision | recall | F1 | seconds |\n|---|---|---|---|---|")
    for name, fig in figures.items():
        print(f"| {name} | {fig['precision']:.4f} | {fig['recall']:.4f} | {fig['f1']:.4f} | {fig['seconds']} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
