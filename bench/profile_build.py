"""Where a build's time goes: cProfile of a single-process build of the first N VietNews articles.

    python bench/profile_build.py [N] > bench/results/build-profile.txt

Splits the time into pyvi (features + CRF), the rest of our analysis, and Whoosh's writer.
"""

from __future__ import annotations

import cProfile
import json
import lzma
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NEWS = ROOT.parent / "shared" / "data" / "news" / "vietnews-val.jsonl.xz"

from indexer.analysis import load_segmenter  # noqa: E402
from indexer.build import build_index  # noqa: E402


def main() -> int:
    """Profile one build and print the split and the top functions."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    if not NEWS.exists():
        print(f"skipped: {NEWS.name} not found (../shared is absent)")
        return 0
    load_segmenter()
    with tempfile.TemporaryDirectory(prefix="tracuu-profile-") as tmp:
        src = Path(tmp) / "news.jsonl"
        with lzma.open(NEWS, "rt", encoding="utf-8") as news, open(src, "w", encoding="utf-8") as out:
            for i, line in enumerate(news):
                if i >= count:
                    break
                out.write(json.dumps(json.loads(line), ensure_ascii=False) + "\n")
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        report = build_index(Path(tmp) / "index", [src], workers=1)
        profile.disable()
        total = time.perf_counter() - start
    stats = pstats.Stats(profile)

    def cumulative(name: str, file_part: str) -> float:
        return sum(v[3] for k, v in stats.stats.items() if k[2] == name and file_part in k[0])

    analysis = cumulative("analyse", "analysis")
    pyvi = cumulative("segment_lines", "analysis")
    commit = cumulative("commit", "writing.py")
    print(f"# build profile: {report.added} VietNews articles, one process, cProfile on\n")
    print(f"total {total:.1f} s; our analysis {analysis:.1f} s (pyvi features + CRF {pyvi:.1f} s); "
          f"Whoosh writer {total - analysis:.1f} s (of which commit {commit:.1f} s)\n")
    stats.sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
