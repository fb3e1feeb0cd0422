"""Summarise a py-spy raw profile (`py-spy record -f raw`): where the samples went, as shares of all samples.

    py-spy record -r 250 -f raw -o prof.txt -- python -m app bulk --index DIR < queries.jsonl
    python bench/spy_summary.py prof.txt --top 20 --under "SearchService.search" --under "Engine.score"

--under FUNC breaks the samples inside FUNC down by the function it called (its own code is "[self]").
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """'Engine.score (app/engine.py:325)' -> 'Engine.score (app/engine.py)': lines of one function merged."""
    m = _FRAME.match(frame.strip())
    return f"{m['func']} ({m['file']})" if m else frame.strip()


def read_stacks(path: Path) -> list[tuple[list[str], int]]:
    """(frames from the outermost, sample count) of each line of a raw profile."""
    stacks = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([frame_name(f) for f in stack.split(";")], int(count)))
    return stacks


def summarise(path: Path, top: int, under: list[str]) -> str:
    """A text table: samples, the top functions by inclusive and by self samples, and the breakdowns asked."""
    stacks = read_stacks(path)
    total = sum(n for _, n in stacks) or 1
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, n in stacks:
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    out = [f"{total} samples"]
    out.append(f"\ninclusive (function and what it calls), top {top}:")
    out += [f"  {100 * n / total:5.1f} %  {name}" for name, n in inclusive.most_common(top)]
    out.append(f"\nself (the function's own code), top {top}:")
    out += [f"  {100 * n / total:5.1f} %  {name}" for name, n in own.most_common(top)]
    for prefix in under:
        inside, calls = 0, Counter()
        for frames, n in stacks:
            at = next((i for i, f in enumerate(frames) if f.startswith(prefix + " ")), None)
            if at is not None:
                inside += n
                calls[frames[at + 1] if at + 1 < len(frames) else "[self]"] += n
        out.append(f"\ninside {prefix}: {100 * inside / total:.1f} % of all samples, by what it called:")
        out += [f"  {100 * n / total:5.1f} %  {name}" for name, n in calls.most_common(top) if n / total >= 0.001]
    return "\n".join(out)


def main() -> int:
    """Print the summary of one profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--under", action="append", default=[], metavar="FUNC")
    args = parser.parse_args()
    print(summarise(args.profile, args.top, args.under))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
