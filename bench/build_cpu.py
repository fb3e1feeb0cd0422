"""CPU seconds of a single-process build, with postings, terms and size of the index it wrote.

    python bench/build_cpu.py NEWS.jsonl [--project DIR ...] [--repeat N]

Each project folder (default: this checkout) runs `python -m indexer build --workers 1` on the same
file, in turn, N times: CPU time (user + sys of the build process, from getrusage of children) is
steadier than wall time on a machine that is busy with something else, and alternating the projects
spreads that load evenly over them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_cpu(project: Path, news: Path, index: Path) -> dict:
    """Build news into index with project's code in one process; CPU seconds and peak RSS of it."""
    proc = subprocess.Popen([sys.executable, "-m", "indexer", "build", "--index", str(index), "--workers", "1",
                             "--quiet", str(news)], cwd=project)
    # wait4 gives this child's own usage (RUSAGE_CHILDREN would mix in every earlier child's peak RSS).
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"build failed in {project} (exit {proc.returncode})")
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def index_figures(project: Path, index: Path) -> dict:
    """Documents, postings and terms per field kind, and bytes on disk, of an index (read by project's code)."""
    code = r"""
import json, os, sys
from pathlib import Path
try:
    from indexer.fields import TEXT_NAMES as TEXT_FIELDS
except ImportError:  # a tree from before the field declaration
    from indexer.schema import TEXT_FIELDS
from indexer.store import open_index
root = Path(sys.argv[1])
ix = open_index(root)
postings, terms = {}, {}
with ix.reader() as reader:
    for fieldname in ix.schema.names():
        base, _, suffix = fieldname.partition("_")
        if base not in TEXT_FIELDS or not ix.schema[fieldname].indexed:
            continue
        kind = suffix or "word"
        for _btext, info in reader.iter_field(fieldname):
            postings[kind] = postings.get(kind, 0) + info.doc_frequency()
            terms[kind] = terms.get(kind, 0) + 1
    docs = reader.doc_count()
size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
print(json.dumps({"docs": docs, "postings": postings, "terms": terms, "bytes": size}))
"""
    out = subprocess.run([sys.executable, "-c", code, str(index)], cwd=project, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def main() -> int:
    """Build with each project in turn and print one JSON line per build and a summary per project."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("news", type=Path, help="JSON Lines articles to index")
    parser.add_argument("--project", type=Path, action="append", help="project folder (repeatable)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    projects = [p.resolve() for p in (args.project or [ROOT])]
    results: dict[Path, list[dict]] = {p: [] for p in projects}
    with tempfile.TemporaryDirectory(prefix="tracuu-buildcpu-") as tmp:
        for round_ in range(args.repeat):
            for i, project in enumerate(projects):
                index = Path(tmp) / f"ix-{i}-{round_}"
                run = build_cpu(project, args.news.resolve(), index)
                if round_ == 0:
                    run.update(index_figures(project, index))
                run["project"] = str(project)
                results[project].append(run)
                print(json.dumps(run), flush=True)
    for project, runs in results.items():
        docs = runs[0]["docs"]
        cpu = min(r["cpu_s"] for r in runs)
        postings = sum(runs[0]["postings"].values())
        print(f"{project}: {docs} docs, CPU {cpu:.1f} s (min of {len(runs)}; "
              f"{1000 * cpu / docs:.1f} s per 1,000), {postings / docs:.0f} postings/doc "
              f"{ {k: round(v / docs) for k, v in runs[0]['postings'].items()} }, "
              f"{runs[0]['bytes'] / 2**20:.1f} MB, peak RSS {max(r['peak_rss_mb'] for r in runs):.0f} MB")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
