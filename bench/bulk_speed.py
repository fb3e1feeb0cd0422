"""Bulk throughput of one or more project trees over one index, in one run: CLI `app bulk` and POST /api/search/bulk.

Each tree is run with this venv's Python from its own folder (so `-m app` imports that tree), over the same
index and the same 1,000 queries as bench/run.py. Wall time is distorted by whatever else runs on the machine,
so CPU time (user + sys of the process that answers) is reported beside it. Answers are compared with the
first tree's: ids identical, scores within 1e-6.

    python bench/bulk_speed.py --index /tmp/bulk10k/index --tree before=/tmp/base --tree after=.
    python bench/bulk_speed.py ... --distinct 250   # 1,000 queries, each of 250 asked four times
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import run  # noqa: E402  (bench/run.py: the benchmark's query list)

TICK = os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """User + system CPU seconds of the finished children of this process."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run_cli(tree: Path, index: Path, stdin: Path) -> tuple[float, float, list[dict]]:
    """(wall s, CPU s, answers) of one `python -m app bulk --limit 10` run."""
    cpu0, t0 = children_cpu(), time.perf_counter()
    with open(stdin, "rb") as fh:
        done = subprocess.run([sys.executable, "-m", "app", "bulk", "--index", str(index), "--limit", "10"],
                              cwd=tree, stdin=fh, capture_output=True, check=False)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"app bulk failed in {tree}: {done.stderr.decode()[-800:]}")
    return wall, cpu, [json.loads(line) for line in done.stdout.decode().splitlines() if line.strip()]


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, payload: bytes) -> tuple[int, bytes]:
    """POST a bulk body; (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    conn.request("POST", "/api/search/bulk", body=payload, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


def run_http(tree: Path, index: Path, queries: list[str], rounds: int) -> tuple[list[dict], list[dict]]:
    """Start the server of a tree, POST the 1,000 queries `rounds` times; per round wall and server CPU."""
    port = free_port()
    env = dict(os.environ, TRACUU_RATE_LIMIT_PER_MINUTE="0")
    server = subprocess.Popen([sys.executable, "-m", "app", "serve", "--index", str(index), "--port", str(port)],
                              cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        time.sleep(3)  # the warm-up thread (pyvi, lengths, vocabulary) finishes before the clock starts
        payload = json.dumps({"queries": [{"id": i, "q": q} for i, q in enumerate(queries)], "limit": 10},
                             ensure_ascii=False).encode("utf-8")
        figures, answers = [], []
        for _ in range(rounds):
            cpu0, t0 = process_cpu(server.pid), time.perf_counter()
            status, body = post(port, payload)
            wall, cpu = time.perf_counter() - t0, process_cpu(server.pid) - cpu0
            if status != 200:
                raise SystemExit(f"bulk POST answered {status}: {body[:300]!r}")
            answers = json.loads(body)["results"]
            figures.append({"wall": wall, "cpu": cpu})
        return figures, answers
    finally:
        server.terminate()
        server.wait(30)


def compare(base: list[dict], other: list[dict]) -> str:
    """'identical' when ids match and scores are within 1e-6, else the first difference."""
    if len(base) != len(other):
        return f"{len(base)} vs {len(other)} answers"
    for a, b in zip(base, other, strict=True):
        if a["id"] != b["id"] or a["total"] != b["total"]:
            return f"query {a['id']}: total {a['total']} vs {b['total']}"
        if [h["id"] for h in a["hits"]] != [h["id"] for h in b["hits"]]:
            return f"query {a['id']}: hit ids differ"
        if any(abs(x["score"] - y["score"]) > 1e-6 or x["title"] != y["title"]
               for x, y in zip(a["hits"], b["hits"], strict=True)):
            return f"query {a['id']}: scores or titles differ"
    return "identical"


def main() -> int:
    """Measure each tree and print a table; the answers of the first tree are the reference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--tree", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--cli-runs", type=int, default=2)
    parser.add_argument("--http-rounds", type=int, default=2)
    parser.add_argument("--distinct", type=int, default=None, metavar="N",
                        help="ask only N distinct questions, each again in turn (a batch with repeats)")
    parser.add_argument("--save", type=Path, help="write the first tree's CLI answers here (JSON Lines)")
    args = parser.parse_args()
    queries = run.query_list(args.queries)
    if args.distinct:
        queries = [queries[i % args.distinct] for i in range(len(queries))]
    work = Path(os.environ.get("TMPDIR", "/tmp"))
    many, one = work / f"bulk-speed-{os.getpid()}.jsonl", work / f"bulk-speed-{os.getpid()}-1.jsonl"
    many.write_text("".join(json.dumps({"id": i, "q": q}, ensure_ascii=False) + "\n" for i, q in enumerate(queries)),
                    encoding="utf-8")
    one.write_text(json.dumps({"id": 0, "q": queries[0]}, ensure_ascii=False) + "\n", encoding="utf-8")
    reference = None
    n = len(queries)
    for spec in args.tree:
        name, tree = spec.split("=", 1)
        tree_path = Path(tree).resolve()
        start = min((run_cli(tree_path, args.index, one)[:2] for _ in range(3)), key=lambda x: x[1])
        runs = [run_cli(tree_path, args.index, many) for _ in range(args.cli_runs)]
        wall, cpu, answers = min(runs, key=lambda r: r[1])
        if reference is None:
            reference = answers
            if args.save:
                args.save.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in answers),
                                     encoding="utf-8")
        http_figures, http_answers = run_http(tree_path, args.index, queries, args.http_rounds)
        print(f"== {name} ({tree_path})")
        print(f"CLI app bulk, {n} queries: wall {wall:.2f} s ({n / wall:.0f} q/s raw), CPU {cpu:.2f} s "
              f"({n / cpu:.0f} q/s); start-up (1 query) wall {start[0]:.2f} s, CPU {start[1]:.2f} s; "
              f"start-up subtracted: wall {n / max(wall - start[0], 1e-9):.0f} q/s, "
              f"CPU {n / max(cpu - start[1], 1e-9):.0f} q/s")
        for i, f in enumerate(http_figures, 1):
            print(f"POST /api/search/bulk round {i} ({'cold' if i == 1 else 'warm'} postings): wall {f['wall']:.2f} s "
                  f"({n / f['wall']:.0f} q/s), server CPU {f['cpu']:.2f} s ({n / f['cpu']:.0f} q/s)")
        print(f"answers vs first tree: CLI {compare(reference, answers)}; HTTP {compare(reference, http_answers)}")
        sys.stdout.flush()
    many.unlink()
    one.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
