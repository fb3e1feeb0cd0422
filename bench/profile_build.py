"""Where a build's time goes: a one-process build of the first N VietNews articles, profiled.

    python bench/profile_build.py [N]            # cProfile (deterministic, inflates Python-heavy parts)
    python bench/profile_build.py [N] --py-spy   # py-spy sampling of `python -m indexer build` (needs py-spy)

Splits the time into our analysis (of which pyvi's CRF: features and tagging), the posting writer
while documents are added, writing the segment, and the rest (reading, hashing, acronyms, start-up).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import lzma
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NEWS = ROOT.parent / "shared" / "data" / "news" / "vietnews-val.jsonl.xz"

# (phase, function name, file part): a sample or call belongs to the first phase whose function is on its stack.
PHASES = (
    ("pyvi CRF (features + tagging)", "segment_lines", "analysis"),
    ("rest of our analysis", "analyse", "analysis"),
    ("writing the segment", "_flush_segment", "whoosh_format/segment_writer"),
    ("posting writer, adding documents", "add_document", "whoosh_format/segment_writer"),
)


def _write_sample(path: Path, count: int) -> None:
    """The first count VietNews articles as JSON Lines."""
    with lzma.open(NEWS, "rt", encoding="utf-8") as news, open(path, "w", encoding="utf-8") as out:
        for i, line in enumerate(news):
            if i >= count:
                break
            out.write(json.dumps(json.loads(line), ensure_ascii=False) + "\n")


def profile_in_process(src: Path, index: Path) -> str:
    """cProfile of build_index with one worker: the split and the top functions by own time."""
    from indexer.analysis import load_segmenter
    from indexer.build import build_index

    load_segmenter()
    profile = cProfile.Profile()
    start = time.process_time()
    profile.enable()
    report = build_index(index, [src], workers=1)
    profile.disable()
    total = time.process_time() - start
    stats = pstats.Stats(profile)

    def cumulative(name: str, file_part: str) -> float:
        return sum(v[3] for k, v in stats.stats.items() if k[2] == name and file_part in k[0])

    pyvi = cumulative("segment_lines", "analysis")
    analysis = cumulative("analyse", "analysis")
    adding = cumulative("add_document", "whoosh_format/segment_writer") - analysis
    flush = cumulative("_flush_segment", "whoosh_format/segment_writer")
    lines = [f"# build profile (cProfile): {report.added} VietNews articles, one process\n",
             f"total {total:.1f} CPU-s: our analysis {analysis:.1f} (pyvi CRF {pyvi:.1f}), posting writer "
             f"{adding:.1f} while adding + {flush:.1f} writing the segment, rest "
             f"{total - analysis - adding - flush:.1f}\n"]
    out = _Capture()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(15)
    return "".join(lines) + out.text


class _Capture:
    """A write()-only stream pstats can print into."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> None:
        self.text += s


def profile_sampled(src: Path, index: Path, rate: int = 200) -> str:
    """py-spy samples of `python -m indexer build --workers 1`: the split by phase and the top functions."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    raw = index.parent / "spy.txt"
    subprocess.run([spy, "record", "-r", str(rate), "-f", "raw", "-o", str(raw), "--", sys.executable, "-m",
                    "indexer", "build", "--index", str(index), "--workers", "1", "--quiet", str(src)],
                   cwd=ROOT, check=True, capture_output=True)
    phases: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        names = [(f.split(" (")[0], f.split(" (")[-1]) for f in frames]
        phase = next((p for p, func, part in PHASES
                      if any(name.split(".")[-1] == func and part in where for name, where in names)), "rest")
        phases[phase] += n
        own[frames[-1].split(":")[0] + ")"] += n
    out = [f"# build profile (py-spy, {rate} samples/s): `python -m indexer build --workers 1`, {total} samples\n"]
    for phase, n in sorted(phases.items(), key=lambda kv: -kv[1]):
        out.append(f"{100 * n / total:5.1f} %  {phase}")
    out.append("\nown samples, top 15:")
    for name, n in own.most_common(15):
        out.append(f"{100 * n / total:5.1f} %  {name}")
    return "\n".join(out) + "\n"


def main() -> int:
    """Profile one build and print the split and the top functions."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("count", type=int, nargs="?", default=500)
    parser.add_argument("--py-spy", action="store_true", help="sample a build with py-spy instead of cProfile")
    args = parser.parse_args()
    if not NEWS.exists():
        print(f"skipped: {NEWS.name} not found (../shared is absent)")
        return 0
    with tempfile.TemporaryDirectory(prefix="tracuu-profile-") as tmp:
        src = Path(tmp) / "news.jsonl"
        _write_sample(src, args.count)
        index = Path(tmp) / "index"
        print(profile_sampled(src, index) if args.py_spy else profile_in_process(src, index))
    return 0


if __name__ == "__main__":
    sys.exit(main())
