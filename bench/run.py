"""Speed benchmark: build, unchanged update, query latency, bulk throughput and memory at several corpus sizes.

    python bench/run.py [--sizes 1000 10000 150704] [--out bench/results] [--queries 1000] [--duration-per-level S]
    python bench/run.py --backend typesense --sizes 10000 150704   # the same on a local 3-node Typesense cluster

For each size N the first N VietNews articles (train, then val, then test) are indexed with the real
command line, served by the real server on 127.0.0.1 and queried over HTTP with the eval query sets
(half as typed, half without tone marks). Writes OUT/speed.json and OUT/speed.md (speed-typesense.*
with --backend typesense, with the Whoosh figures of OUT/speed.json beside them), prints the Markdown
on stdout and progress on stderr. Needs ../shared (news and eval sets); without it, says so and exits 0.
Each Whoosh size ends with Tantivy over the same articles' analysed tokens and the same queries
(bench/tantivy_ref.py): its p50 and our p50 divided by it (skipped with a message where the tantivy package is
not installed, or with --no-tantivy).
"""

from __future__ import annotations

import argparse
import http.client
import json
import lzma
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from multiprocessing import Pool
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # ops.typesense_cluster, when benchmarking the Typesense backend
SHARED = ROOT.parent / "shared"
NEWS = SHARED / "data" / "news"
NEWS_FILES = ("vietnews-train.jsonl.xz", "vietnews-val.jsonl.xz", "vietnews-test.jsonl.xz")
EVAL = SHARED / "data" / "eval"
EVAL_SETS = ("alqac", "viquad", "news-known-item")
DEFAULT_SIZES = (1000, 10000, 150704)
MAX_QUERY_CHARS = 500
WARMUP_QUERIES = 50
BULK_BATCH = 1000
CLIENTS = 8
POLL_SECONDS = 0.2
STARTUP_RUNS = 3
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


def log(message: str) -> None:
    """A progress line on stderr, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- machine and inputs ----------------------------------------------------------------------------


def machine_info() -> dict:
    """CPU model, cores, memory, Python version, date and the project's commit."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_total = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {
        "cpu": cpu or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(mem_total / 1024**3, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "tree_modified": dirty,
    }


def fold_marks(text: str) -> str:
    """The text without Vietnamese tone and vowel marks (đ→d, Đ→D), as people type without them."""
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped.replace("đ", "d").replace("Đ", "D"))


def eval_queries() -> list[list[str]]:
    """The query texts of each eval set, in file order."""
    sets = []
    for name in EVAL_SETS:
        texts = []
        with open(EVAL / name / "queries.jsonl", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    q = json.loads(line).get("q")
                    if isinstance(q, str) and q.strip():
                        texts.append(q.strip())
        sets.append(texts)
    return sets


def query_list(count: int) -> list[str]:
    """count queries taken round-robin from the eval sets; every second one without tone marks."""
    sets = eval_queries()
    if not any(sets):
        raise SystemExit("error: the eval query sets are empty")
    picked: list[str] = []
    pos = [0] * len(sets)
    while len(picked) < count:
        # Round-robin over the sets that still have queries; start over when all are used up.
        if all(p >= len(s) for p, s in zip(pos, sets)):
            pos = [0] * len(sets)
        for k, texts in enumerate(sets):
            if pos[k] < len(texts) and len(picked) < count:
                picked.append(texts[pos[k]])
                pos[k] += 1
    out = []
    for i, q in enumerate(picked):
        q = fold_marks(q) if i % 2 else q
        out.append(q[:MAX_QUERY_CHARS].strip())
    return out


def news_lines() -> Iterator[str]:
    """Raw JSON lines of VietNews: train, then val, then test."""
    for name in NEWS_FILES:
        with lzma.open(NEWS / name, "rt", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield line if line.endswith("\n") else line + "\n"


def write_prefix(count: int, path: Path) -> int:
    """Write the first count articles to path; return how many there were."""
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        for line in news_lines():
            if written >= count:
                break
            out.write(line)
            written += 1
    return written


# --- processes and memory ----------------------------------------------------------------------------


def tree_rss(root: int) -> int:
    """Resident bytes of a process and all its descendants (shared pages count once per process)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; the fields after the last ')' do not.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
        except (OSError, ValueError, IndexError):
            pass
        todo.extend(children.get(pid, []))
    return total


def proc_status_bytes(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of one process, in bytes."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


def child_cpu_seconds() -> float:
    """User plus system CPU seconds of all waited-for children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# Every benchmark client comes from 127.0.0.1, one address to the per-client rate limit: without this the
# 8-client level and the bulk request would measure the limiter (429s), not the search. (bench/load.py keeps
# the limit: its flood is meant to be shed.)
SERVER_ENV = {"TRACUU_RATE_LIMIT_PER_MINUTE": "0"}
BACKEND_ENV: dict[str, str] = {}  # TRACUU_* of the backend under test (a Typesense cluster's nodes and key)
CLUSTER = None  # the ops.typesense_cluster.Cluster under test, if any


def cluster_rss() -> int | None:
    """Resident bytes of every node of the Typesense cluster under test (None without one)."""
    if CLUSTER is None:
        return None
    return sum(tree_rss(pid) for pid in CLUSTER.pids.values())


def subprocess_env() -> dict[str, str]:
    """The environment for project commands: the project root on PYTHONPATH, the backend's settings."""
    env = {**os.environ, **BACKEND_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_measured(cmd: list[str], workdir: Path, stdin_path: Path | None = None) -> dict:
    """Run a command to completion; wall time, CPU time, peak RSS of its process tree, exit code, output."""
    out_path, err_path = workdir / "cmd.stdout", workdir / "cmd.stderr"
    cpu_before = child_cpu_seconds()
    with open(out_path, "wb") as out, open(err_path, "wb") as err, \
            open(stdin_path or os.devnull, "rb") as stdin:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdin=stdin, stdout=out, stderr=err)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            """Poll the tree's RSS until the command ends."""
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss(proc.pid))
                done.wait(POLL_SECONDS)

        # Sampling in a thread keeps the wall time exact instead of rounded up to the poll interval.
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
    stderr = err_path.read_text(encoding="utf-8", errors="replace")
    stdout = out_path.read_text(encoding="utf-8", errors="replace")
    return {"seconds": seconds, "cpu_seconds": child_cpu_seconds() - cpu_before, "peak_rss": peak[0],
            "returncode": proc.returncode, "stdout": stdout, "stderr_tail": stderr[-2000:]}


def checked(result: dict, what: str) -> dict:
    """The result of run_measured, or an error naming the command and its stderr."""
    if result["returncode"] != 0:
        raise RuntimeError(f"{what} exited {result['returncode']}: {result['stderr_tail'][-800:]}")
    return result


def disk_usage(path: Path) -> dict[str, int]:
    """Allocated and apparent bytes of a folder, as du counts them."""
    allocated = apparent = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            allocated += st.st_blocks * 512
            apparent += st.st_size
    return {"allocated": allocated, "apparent": apparent}


# --- pyvi alone ----------------------------------------------------------------------------------------


def _pyvi_init() -> None:
    """Load pyvi's model once in each worker."""
    from pyvi import ViTokenizer

    ViTokenizer.tokenize("khởi động")


def _pyvi_article(line: str) -> int:
    """Segment title, abstract and body of one JSON line with pyvi; return the characters segmented."""
    from pyvi import ViTokenizer

    record = json.loads(line)
    chars = 0
    for key in ("title", "abstract", "body"):
        text = record.get(key)
        if isinstance(text, str) and text:
            ViTokenizer.tokenize(text)
            chars += len(text)
    return chars


def pyvi_floor(path: Path, workers: int = 2) -> dict:
    """Wall time of pyvi alone over the file's texts, in a pool of worker processes (start-up included)."""
    started = time.perf_counter()
    with Pool(workers, initializer=_pyvi_init) as pool, open(path, encoding="utf-8") as fh:
        chars = sum(pool.imap_unordered(_pyvi_article, fh, chunksize=64))
    return {"seconds": time.perf_counter() - started, "characters": chars, "workers": workers}


# --- HTTP ------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(index: Path, port: int, log_path: Path, timeout: float = 300.0,
                 env: dict[str, str] | None = None) -> tuple[subprocess.Popen, float]:
    """Start `python -m app serve` and wait until /healthz answers 200; return it and its start-up time."""
    started = time.perf_counter()
    with open(log_path, "wb") as logfile:
        proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--index", str(index), "--host", "127.0.0.1",
                                 "--port", str(port)], cwd=ROOT, env=subprocess_env() | (env or {}),
                                stdin=subprocess.DEVNULL,
                                stdout=logfile, stderr=subprocess.STDOUT)
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-800:]
            raise RuntimeError(f"server exited {proc.returncode} before answering /healthz: {tail}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            if resp.status == 200 and json.loads(body).get("status") == "ok":
                return proc, time.perf_counter() - started
        except (OSError, http.client.HTTPException, ValueError):
            pass
        time.sleep(0.2)
    stop_server(proc, log_path)
    raise RuntimeError(f"server did not answer /healthz within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen, log_path: Path, timeout: float = 30.0) -> dict:
    """Terminate the server and wait for it; say how long it took and whether it shut down cleanly."""
    started = time.perf_counter()
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
        killed = False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        killed = True
    # uvicorn re-raises the SIGTERM it caught once its graceful shutdown is over, so -15 is a clean exit.
    finished = "Finished server process" in log_path.read_text(encoding="utf-8", errors="replace")
    clean = not killed and proc.returncode in (0, -signal.SIGTERM) and finished
    return {"seconds": time.perf_counter() - started, "returncode": proc.returncode, "killed": killed,
            "clean": clean}


def search_path(q: str) -> str:
    """The GET /api/search path for one query, top 10."""
    return "/api/search?" + urlencode({"q": q, "limit": 10})


def percentile(values: list[float], pct: float) -> float | None:
    """The pct-th percentile with linear interpolation between ranks (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_level(port: int, queries: list[str], clients: int, duration: float | None) -> dict:
    """Send the queries with this many keep-alive clients (once through, or for duration seconds)."""
    lock = threading.Lock()
    latencies: list[float] = []
    timed: list[tuple[float, str]] = []
    server_ms: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    failed_examples: list[str] = []
    cursor = [0]
    deadline = time.perf_counter() + duration if duration else None

    def next_query() -> str | None:
        """The next query to send, or None when the level is done."""
        with lock:
            i = cursor[0]
            if deadline is None and i >= len(queries):
                return None
            if deadline is not None and time.perf_counter() >= deadline:
                return None
            cursor[0] += 1
            return queries[i % len(queries)]

    def client() -> None:
        """One client: a keep-alive connection sending one request at a time."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while (q := next_query()) is not None:
            sent = time.perf_counter()
            try:
                conn.request("GET", search_path(q))
                resp = conn.getresponse()
                body = resp.read()
                elapsed = time.perf_counter() - sent
                took = json.loads(body).get("took_ms") if resp.status == 200 else None
                with lock:
                    latencies.append(elapsed)
                    timed.append((elapsed, q))
                    statuses[resp.status] += 1
                    if took is not None:
                        server_ms.append(float(took))
                    if resp.status != 200 and len(failed_examples) < 5:
                        failed_examples.append(f"{resp.status} {q[:80]!r}: {body[:200].decode(errors='replace')}")
            except (OSError, http.client.HTTPException, ValueError) as err:
                with lock:
                    errors[type(err).__name__] += 1
                    if len(failed_examples) < 5:
                        failed_examples.append(f"{type(err).__name__} {q[:80]!r}: {err}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ms = [s * 1000 for s in latencies]
    non_200 = sum(n for code, n in statuses.items() if code != 200)
    return {
        "clients": clients,
        "requests": len(latencies) + sum(errors.values()),
        "seconds": wall,
        "throughput_rps": len(latencies) / wall if wall else None,
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else None,
        "mean_ms": statistics.fmean(ms) if ms else None,
        "server_took_p50_ms": percentile(server_ms, 50),
        "server_took_p95_ms": percentile(server_ms, 95),
        "non_200": non_200,
        "errors": sum(errors.values()),
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "error_kinds": dict(errors),
        "failed_examples": failed_examples,
        "slowest": [{"ms": s * 1000, "q": q[:120]} for s, q in sorted(timed, reverse=True)[:5]],
    }


def bulk_http(port: int, queries: list[str]) -> dict:
    """POST /api/search/bulk with bodies of up to 1,000 queries; time all of them."""
    statuses: Counter[int] = Counter()
    answered = 0
    failed: list[str] = []
    body_bytes = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    started = time.perf_counter()
    for first in range(0, len(queries), BULK_BATCH):
        batch = [{"id": first + i, "q": q} for i, q in enumerate(queries[first:first + BULK_BATCH])]
        payload = json.dumps({"queries": batch, "limit": 10}, ensure_ascii=False).encode("utf-8")
        body_bytes.append(len(payload))
        try:
            conn.request("POST", "/api/search/bulk", body=payload, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as err:
            statuses[0] += 1
            failed.append(f"{type(err).__name__}: {err}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
            continue
        statuses[resp.status] += 1
        if resp.status == 200:
            answered += len(json.loads(body).get("results", []))
        elif len(failed) < 5:
            failed.append(f"{resp.status}: {body[:300].decode(errors='replace')}")
    seconds = time.perf_counter() - started
    conn.close()
    return {"requests": len(body_bytes), "queries": len(queries), "answered": answered, "seconds": seconds,
            "queries_per_s": answered / seconds if seconds else None, "max_body_bytes": max(body_bytes, default=0),
            "non_200": sum(n for code, n in statuses.items() if code != 200),
            "status_counts": {str(k): v for k, v in sorted(statuses.items())}, "failed_examples": failed}


def bulk_cli(index: Path, queries: list[str], workdir: Path) -> dict:
    """Time `python -m app bulk` over the queries, and its start-up alone (median of runs with one query)."""
    cmd = [sys.executable, "-m", "app", "bulk", "--index", str(index), "--limit", "10"]
    one, many = workdir / "bulk-1.jsonl", workdir / "bulk-all.jsonl"
    one.write_text(json.dumps({"id": 0, "q": queries[0]}, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(many, "w", encoding="utf-8") as fh:
        for i, q in enumerate(queries):
            fh.write(json.dumps({"id": i, "q": q}, ensure_ascii=False) + "\n")
    startups = [checked(run_measured(cmd, workdir, one), "app bulk (1 query)")["seconds"] for _ in range(STARTUP_RUNS)]
    full = run_measured(cmd, workdir, many)
    lines = [json.loads(line) for line in full["stdout"].splitlines() if line.strip()]
    answer_errors = sum(1 for r in lines if "error" in r)
    if full["returncode"] not in (0, 1) or not lines:
        checked(full, "app bulk")
    startup = statistics.median(startups)
    net = full["seconds"] - startup
    return {"queries": len(queries), "answered": len(lines), "answer_errors": answer_errors,
            "returncode": full["returncode"], "seconds": full["seconds"],
            "queries_per_s": len(queries) / full["seconds"], "startup_seconds": startup,
            "startup_runs": startups, "net_seconds": net, "net_queries_per_s": len(queries) / net if net > 0 else None,
            "peak_rss": full["peak_rss"], "stderr_tail": full["stderr_tail"][-500:]}


def server_log_problems(log_path: Path) -> list[str]:
    """Lines of the server log that look like errors (tracebacks, ERROR, 5xx access lines)."""
    problems = []
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if "Traceback" in line or "ERROR" in line or '" 5' in line:
            problems.append(line[:300])
    return problems


# --- one size ----------------------------------------------------------------------------------------------


def bench_size(size: int, queries: list[str], warmup: list[str], duration: float | None, tmp_root: str | None,
               tantivy: bool = True) -> dict:
    """Every measurement for the first size articles (and Tantivy's over the same tokens, unless told not to)."""
    result: dict = {"size": size}
    with tempfile.TemporaryDirectory(prefix=f"tracuu-bench-{size}-", dir=tmp_root) as tmp:
        work = Path(tmp)
        data, index = work / "news.jsonl", work / "index"
        log(f"[{size}] writing the first {size} articles")
        result["documents"] = write_prefix(size, data)
        result["input_bytes"] = data.stat().st_size

        log(f"[{size}] indexer build")
        build = checked(run_measured([sys.executable, "-m", "indexer", "build", "--index", str(index), str(data),
                                      "--quiet"], work), "indexer build")
        du = disk_usage(index if CLUSTER is None else CLUSTER.root)
        result["cluster"] = {"rss_after_build": cluster_rss()}
        result["build"] = {"seconds": build["seconds"], "cpu_seconds": build["cpu_seconds"],
                           "docs_per_s": result["documents"] / build["seconds"], "peak_rss": build["peak_rss"],
                           "index_bytes": du["allocated"], "index_apparent_bytes": du["apparent"]}
        log(f"[{size}] build {build['seconds']:.1f} s, peak {build['peak_rss'] / MB:.0f} MB")

        if CLUSTER is None:  # the floor does not depend on the backend; the Whoosh run measures it
            log(f"[{size}] pyvi alone (2 processes)")
            floor = pyvi_floor(data)
            result["pyvi"] = {**floor, "build_ratio": build["seconds"] / floor["seconds"]}
            log(f"[{size}] pyvi {floor['seconds']:.1f} s")

        log(f"[{size}] indexer update, unchanged input")
        update = checked(run_measured([sys.executable, "-m", "indexer", "update", "--index", str(index), str(data),
                                       "--quiet"], work), "indexer update")
        result["update_unchanged"] = {"seconds": update["seconds"], "cpu_seconds": update["cpu_seconds"],
                                      "peak_rss": update["peak_rss"],
                                      "build_ratio": build["seconds"] / update["seconds"]}
        log(f"[{size}] unchanged update {update['seconds']:.1f} s")

        log(f"[{size}] indexer build again, unchanged input")
        rebuild = checked(run_measured([sys.executable, "-m", "indexer", "build", "--index", str(index), str(data),
                                        "--quiet"], work), "indexer build (unchanged)")
        result["build_unchanged"] = {"seconds": rebuild["seconds"],
                                     "build_ratio": build["seconds"] / rebuild["seconds"]}

        changed_count = min(1000, size)
        changed = work / "changed.jsonl"
        with open(data, encoding="utf-8") as src, open(changed, "w", encoding="utf-8") as out:
            for i, line in enumerate(src):
                if i >= changed_count:
                    break
                record = json.loads(line)
                record["body"] += " Bài viết đã được cập nhật."
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        log(f"[{size}] indexer update, {changed_count} changed articles")
        upd = checked(run_measured([sys.executable, "-m", "indexer", "update", "--index", str(index), str(changed),
                                    "--quiet"], work), "indexer update (changed)")
        result["update_changed"] = {"articles": changed_count, "seconds": upd["seconds"],
                                    "peak_rss": upd["peak_rss"]}
        log(f"[{size}] changed update {upd['seconds']:.1f} s")

        port = free_port()
        server_log = work / "server.log"
        log(f"[{size}] starting the server on port {port}")
        server, startup = start_server(index, port, server_log, env=SERVER_ENV)
        try:
            result["server_startup_seconds"] = startup
            warm = latency_level(port, warmup, 1, None)
            memory = {"after_warmup": proc_status_bytes(server.pid).get("VmRSS")}
            result["warmup"] = {"requests": warm["requests"], "non_200": warm["non_200"], "errors": warm["errors"]}
            levels = {}
            for clients in (1, CLIENTS):
                log(f"[{size}] latency, {clients} client(s), {len(queries)} queries"
                    + (f" for {duration:g} s" if duration else ""))
                levels[str(clients)] = latency_level(port, queries, clients, duration)
                lv = levels[str(clients)]
                log(f"[{size}]   p50 {lv['p50_ms']:.1f} ms, p95 {lv['p95_ms']:.1f} ms, "
                    f"{lv['throughput_rps']:.1f} req/s, non-200 {lv['non_200']}, errors {lv['errors']}")
            result["latency"] = levels
            memory["after_load"] = proc_status_bytes(server.pid).get("VmRSS")
            result["cluster"]["rss_after_load"] = cluster_rss()
            log(f"[{size}] POST /api/search/bulk")
            result["bulk_http"] = bulk_http(port, queries)
            status = proc_status_bytes(server.pid)
            memory["after_bulk"] = status.get("VmRSS")
            memory["peak"] = status.get("VmHWM")
            result["server_memory"] = memory
        finally:
            result["server_stop"] = stop_server(server, server_log)
            result["server_log_problems"] = server_log_problems(server_log)[:20]
        log(f"[{size}] server stopped in {result['server_stop']['seconds']:.1f} s "
            f"(exit {result['server_stop']['returncode']})")

        log(f"[{size}] python -m app bulk")
        result["bulk_cli"] = bulk_cli(index, queries, work)
        log(f"[{size}] bulk CLI {result['bulk_cli']['seconds']:.1f} s "
            f"(start-up {result['bulk_cli']['startup_seconds']:.1f} s)")

        if tantivy and CLUSTER is None:  # a reference for the engine, not for a backend: the Whoosh run has it
            result["tantivy"] = tantivy_reference(size, data, queries, work)
    return result


def tantivy_reference(size: int, data: Path, queries: list[str], work: Path) -> dict:
    """Tantivy over the same articles' analysed tokens (bench/tantivy_ref.py); {'skipped': why} without it."""
    import tantivy_ref

    why = tantivy_ref.available()
    if why:
        log(f"[{size}] Tantivy reference skipped: {why}")
        return {"skipped": why}
    log(f"[{size}] Tantivy over the same analysed tokens (analysis in 2 processes)")
    figures = tantivy_ref.measure(data, queries, work)
    log(f"[{size}] Tantivy p50 {figures['p50_ms']:.2f} ms, p95 {figures['p95_ms']:.2f} ms "
        f"(analysis and indexing {figures['build_seconds']:.0f} s)")
    return figures


def ratio(ours: float | int | None, theirs: float | int | None) -> float | None:
    """ours / theirs, or None when either is missing."""
    return None if ours is None or not theirs else ours / theirs


# --- report ------------------------------------------------------------------------------------------------


def rounded(value: object) -> object:
    """Floats rounded to a sensible number of digits, recursively."""
    if isinstance(value, float):
        if value == 0 or abs(value) >= 100:
            return round(value, 1)
        return round(value, 3)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def fmt(value: float | int | None) -> str:
    """A figure for a table: integers with separators, fewer decimals for bigger numbers."""
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def dig(data: dict, path: str) -> float | int | None:
    """The value at a dotted path in nested dicts, or None."""
    for key in path.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data if isinstance(data, int | float) and not isinstance(data, bool) else None


def in_mb(data: dict, path: str) -> float | None:
    """A byte count at path, in MiB."""
    value = dig(data, path)
    return None if value is None else value / MB


Row = tuple[str, Callable[[dict], float | int | None]]

SECTIONS: dict[str, list[Row]] = {
    "Build": [
        ("documents", lambda r: r.get("documents")),
        ("build wall time (s)", lambda r: dig(r, "build.seconds")),
        ("build throughput (docs/s)", lambda r: dig(r, "build.docs_per_s")),
        ("build CPU time, all processes (s)", lambda r: dig(r, "build.cpu_seconds")),
        ("build peak RSS, process tree (MB)", lambda r: in_mb(r, "build.peak_rss")),
        ("index size on disk (MB)", lambda r: in_mb(r, "build.index_bytes")),
        ("pyvi alone, 2 processes (s)", lambda r: dig(r, "pyvi.seconds")),
        ("build / pyvi alone (×)", lambda r: dig(r, "pyvi.build_ratio")),
        ("update with unchanged input (s)", lambda r: dig(r, "update_unchanged.seconds")),
        ("build / unchanged update (×)", lambda r: dig(r, "update_unchanged.build_ratio")),
        ("build again with unchanged input (s)", lambda r: dig(r, "build_unchanged.seconds")),
        ("first build / unchanged build (×)", lambda r: dig(r, "build_unchanged.build_ratio")),
        ("update of 1,000 changed articles (s)", lambda r: dig(r, "update_changed.seconds")),
    ],
    "Query latency (GET /api/search, limit 10)": [
        ("server start-up to /healthz (s)", lambda r: dig(r, "server_startup_seconds")),
        *[row for c in ("1", str(CLIENTS)) for row in (
            (f"{c} client{'s' if c != '1' else ''}: p50 (ms)", lambda r, c=c: dig(r, f"latency.{c}.p50_ms")),
            (f"{c} client{'s' if c != '1' else ''}: p95 (ms)", lambda r, c=c: dig(r, f"latency.{c}.p95_ms")),
            (f"{c} client{'s' if c != '1' else ''}: p99 (ms)", lambda r, c=c: dig(r, f"latency.{c}.p99_ms")),
            (f"{c} client{'s' if c != '1' else ''}: server took_ms p50", lambda r, c=c: dig(
                r, f"latency.{c}.server_took_p50_ms")),
            (f"{c} client{'s' if c != '1' else ''}: throughput (req/s)", lambda r, c=c: dig(
                r, f"latency.{c}.throughput_rps")),
            (f"{c} client{'s' if c != '1' else ''}: non-200 + errors", lambda r, c=c: _failures(r, c)),
        )],
    ],
    "Bulk": [
        ("CLI `app bulk`: total (s)", lambda r: dig(r, "bulk_cli.seconds")),
        ("CLI `app bulk`: queries/s, raw", lambda r: dig(r, "bulk_cli.queries_per_s")),
        ("CLI `app bulk`: start-up, 1 query (s, median of 3)", lambda r: dig(r, "bulk_cli.startup_seconds")),
        ("CLI `app bulk`: queries/s, start-up subtracted", lambda r: dig(r, "bulk_cli.net_queries_per_s")),
        ("CLI `app bulk`: answers with an error", lambda r: dig(r, "bulk_cli.answer_errors")),
        ("`POST /api/search/bulk` (1,000 per request): total (s)", lambda r: dig(r, "bulk_http.seconds")),
        ("`POST /api/search/bulk`: queries/s", lambda r: dig(r, "bulk_http.queries_per_s")),
        ("`POST /api/search/bulk`: non-200", lambda r: dig(r, "bulk_http.non_200")),
    ],
    "Reference: Tantivy over the same analysed tokens (bench/tantivy_ref.py)": [
        ("Tantivy: p50, one thread, top 10 (ms)", lambda r: dig(r, "tantivy.p50_ms")),
        ("Tantivy: p95 (ms)", lambda r: dig(r, "tantivy.p95_ms")),
        ("our 1-client p50 / Tantivy p50 (×)", lambda r: ratio(dig(r, "latency.1.p50_ms"), dig(r, "tantivy.p50_ms"))),
        ("our server took_ms p50 / Tantivy p50 (×)",
         lambda r: ratio(dig(r, "latency.1.server_took_p50_ms"), dig(r, "tantivy.p50_ms"))),
        ("Tantivy: analysis (2 processes) and indexing (s)", lambda r: dig(r, "tantivy.build_seconds")),
        ("Tantivy: index size on disk (MB)", lambda r: in_mb(r, "tantivy.index_bytes")),
    ],
    "Memory": [
        ("server RSS after warm-up (MB)", lambda r: in_mb(r, "server_memory.after_warmup")),
        ("server RSS after the latency load (MB)", lambda r: in_mb(r, "server_memory.after_load")),
        ("server RSS after bulk (MB)", lambda r: in_mb(r, "server_memory.after_bulk")),
        ("server peak RSS, VmHWM (MB)", lambda r: in_mb(r, "server_memory.peak")),
        ("build peak RSS, process tree (MB)", lambda r: in_mb(r, "build.peak_rss")),
        ("CLI bulk peak RSS (MB)", lambda r: in_mb(r, "bulk_cli.peak_rss")),
        ("Typesense cluster RSS after build, 3 nodes (MB)", lambda r: in_mb(r, "cluster.rss_after_build")),
        ("Typesense cluster RSS after the latency load, 3 nodes (MB)", lambda r: in_mb(r, "cluster.rss_after_load")),
    ],
}


def _failures(result: dict, clients: str) -> int | None:
    """Non-200 answers plus transport errors at one concurrency level."""
    non_200 = dig(result, f"latency.{clients}.non_200")
    errors = dig(result, f"latency.{clients}.errors")
    return None if non_200 is None else non_200 + (errors or 0)


def scaling(first: float | int | None, last: float | int | None) -> str:
    """Growth from the smallest to the largest size, as a ratio."""
    if first is None or last is None or first == 0:
        return "–"
    return f"×{last / first:.2f}" if last / first < 10 else f"×{last / first:.1f}"


def markdown(report: dict) -> str:
    """The Markdown report: machine, then one table per section with a column per size."""
    m = report["machine"]
    runs = [r for r in report["sizes"] if "error" not in r]
    lines = ["# tracuu speed benchmark", "",
             f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['memory_gb']} GB RAM, "
             f"Python {m['python']}, {m['os']}; {m['date']}; commit {m['commit'] or '?'}"
             f"{' (tree modified)' if m.get('tree_modified') else ''}.", "",
             f"Corpus: first N VietNews articles (train, val, test). Queries: {report['settings']['queries']} from "
             f"{', '.join(EVAL_SETS)} round-robin, every second one without tone marks, ≤ {MAX_QUERY_CHARS} chars; "
             f"{WARMUP_QUERIES} other queries warm the server up first. "
             + (f"Each concurrency level runs for {report['settings']['duration_per_level']:g} s. "
                if report['settings']['duration_per_level'] else "Each concurrency level sends the list once. ")
             + f"Clients are threads of the benchmark process on the same {m['usable_cores']} cores as the server; "
             "the 8-client level and `POST /api/search/bulk` run after the 1-client level over the same queries "
             "(postings already cached), `app bulk` starts cold. The server's per-client rate limit is off "
             "(all clients share 127.0.0.1). "
             "RSS of a process tree is the sum over processes (shared pages count more than once).", ""]
    for r in report["sizes"]:
        if "error" in r:
            lines += [f"**Size {r['size']} failed:** {r['error']}", ""]
    if not runs:
        return "\n".join(lines)
    first, last = runs[0], runs[-1]
    scale_head = f"scaling {first['documents']:,}→{last['documents']:,}" if len(runs) > 1 else "scaling"
    for title, rows in SECTIONS.items():
        lines += [f"## {title}", "",
                  "| figure | " + " | ".join(f"{r['documents']:,} docs" for r in runs) + f" | {scale_head} |",
                  "|---|" + "---:|" * (len(runs) + 1)]
        for label, get in rows:
            values = [get(r) for r in runs]
            cells = " | ".join(fmt(v) for v in values)
            lines.append(f"| {label} | {cells} | {scaling(values[0], values[-1]) if len(runs) > 1 else '–'} |")
        lines.append("")
    problems = []
    for r in runs:
        for c, lv in r.get("latency", {}).items():
            for example in lv.get("failed_examples", []):
                problems.append(f"- {r['documents']:,} docs, {c} client(s): {example}")
        for example in r.get("bulk_http", {}).get("failed_examples", []):
            problems.append(f"- {r['documents']:,} docs, bulk POST: {example}")
        stop = r.get("server_stop", {})
        if stop and not stop.get("clean"):
            problems.append(f"- {r['documents']:,} docs: server did not stop cleanly on SIGTERM (exit "
                            f"{stop.get('returncode')}{', killed after 30 s' if stop.get('killed') else ''})")
        for line in r.get("server_log_problems", [])[:5]:
            problems.append(f"- {r['documents']:,} docs, server log: `{line}`")
    skipped = {r["tantivy"]["skipped"] for r in runs if "skipped" in r.get("tantivy", {})}
    if skipped:
        problems.append(f"- Tantivy reference skipped: {sorted(skipped)[0]}")
    if problems:
        lines += ["## Problems seen", "", *problems, ""]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------------------


def main() -> int:
    """Run every size, then write speed.json and speed.md and print the Markdown."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), metavar="N",
                        help="corpus sizes (articles), default %(default)s")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="result folder")
    parser.add_argument("--queries", type=int, default=1000, metavar="Q", help="queries per measurement")
    parser.add_argument("--duration-per-level", type=float, default=None, metavar="S",
                        help="run each concurrency level for S seconds, cycling the queries, instead of once through")
    parser.add_argument("--tmpdir", default=None, help="where the temporary corpora and indexes go")
    parser.add_argument("--no-tantivy", dest="tantivy", action="store_false",
                        help="leave out the Tantivy reference (its analysis of the corpus takes about as long as "
                             "pyvi alone)")
    parser.add_argument("--backend", choices=("whoosh", "typesense"), default="whoosh",
                        help="index into the embedded Whoosh index (default) or a local 3-node Typesense cluster")
    args = parser.parse_args()
    if args.queries < 1 or any(n < 1 for n in args.sizes):
        parser.error("--queries and --sizes must be positive")
    missing = [p for p in [*(NEWS / f for f in NEWS_FILES), *(EVAL / s / "queries.jsonl" for s in EVAL_SETS)]
               if not p.exists()]
    if missing:
        print(f"skipped: the speed benchmark needs {SHARED} (VietNews and the eval query sets); "
              f"{missing[0]} is absent")
        return 0

    sizes = sorted(set(args.sizes))
    if args.tmpdir:
        Path(args.tmpdir).mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    log(f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB; sizes {sizes}")
    pool = query_list(args.queries + WARMUP_QUERIES)
    # Warm-up uses queries outside the measured list, so the first level does not start with them cached.
    queries, warmup = pool[:args.queries], pool[args.queries:]
    report: dict = {"machine": machine,
                    "settings": {"sizes": sizes, "queries": len(queries), "warmup_queries": len(warmup),
                                 "clients": [1, CLIENTS], "duration_per_level": args.duration_per_level,
                                 "bulk_batch": BULK_BATCH, "pyvi_workers": 2, "rss_poll_seconds": POLL_SECONDS},
                    "sizes": []}
    failed = False
    report["settings"]["backend"] = args.backend
    if args.backend == "typesense":
        start_cluster(args.tmpdir)
    try:
        failed = run_sizes(report, sizes, queries, warmup, args)
    finally:
        if CLUSTER is not None:
            CLUSTER.stop()
            shutil.rmtree(CLUSTER.root, ignore_errors=True)
    stem = "speed" if args.backend == "whoosh" else f"speed-{args.backend}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(rounded(report), ensure_ascii=False, indent=1) + "\n",
                                           encoding="utf-8")
    text = markdown(report)
    if args.backend != "whoosh":
        text += "\n" + comparison(report, args.out / "speed.json")
    (args.out / f"{stem}.md").write_text(text + "\n", encoding="utf-8")
    log(f"wrote {args.out / (stem + '.json')} and {args.out / (stem + '.md')}")
    print(text)
    return 1 if failed else 0


def start_cluster(tmp_root: str | None) -> None:
    """Start a 3-node Typesense cluster on free loopback ports; the commands under test are pointed at it."""
    global CLUSTER
    from ops.typesense_cluster import Cluster

    root = Path(tempfile.mkdtemp(prefix="tracuu-bench-cluster-", dir=tmp_root))
    CLUSTER = Cluster(root, size=3, api_key="bench-key", base_port=0)
    log(f"starting a 3-node Typesense cluster in {root}")
    CLUSTER.start(timeout=180)
    BACKEND_ENV.update(CLUSTER.env())


COMPARED: list[tuple[str, str, Callable[[dict], float | int | None]]] = [
    ("build wall time (s)", "lower", lambda r: dig(r, "build.seconds")),
    ("index on disk (MB)", "lower", lambda r: in_mb(r, "build.index_bytes")),
    ("1 client p50 (ms)", "lower", lambda r: dig(r, "latency.1.p50_ms")),
    ("1 client p95 (ms)", "lower", lambda r: dig(r, "latency.1.p95_ms")),
    (f"{CLIENTS} clients p50 (ms)", "lower", lambda r: dig(r, f"latency.{CLIENTS}.p50_ms")),
    (f"{CLIENTS} clients p95 (ms)", "lower", lambda r: dig(r, f"latency.{CLIENTS}.p95_ms")),
    (f"{CLIENTS} clients non-200 + errors", "lower", lambda r: _failures(r, str(CLIENTS))),
    ("bulk HTTP (queries/s)", "higher", lambda r: dig(r, "bulk_http.queries_per_s")),
    ("app server RSS after load (MB)", "lower", lambda r: in_mb(r, "server_memory.after_load")),
    ("search cluster RSS after load (MB)", "lower", lambda r: in_mb(r, "cluster.rss_after_load")),
]


def comparison(report: dict, whoosh_json: Path) -> str:
    """A table of this backend beside the Whoosh run recorded in whoosh_json, size by size."""
    try:
        whoosh = {r["size"]: r for r in json.loads(whoosh_json.read_text(encoding="utf-8"))["sizes"]
                  if "error" not in r}
    except (OSError, ValueError, KeyError):
        return f"(no Whoosh run in {whoosh_json.name} to compare with)\n"
    runs = [r for r in report["sizes"] if "error" not in r and r["size"] in whoosh]
    if not runs:
        return f"(the Whoosh run in {whoosh_json.name} has none of these sizes)\n"
    backend = report["settings"]["backend"]
    lines = [f"## {backend} beside Whoosh ({whoosh_json.name}, a separate run of this script)", "",
             "| figure | " + " | ".join(f"{name} {r['documents']:,}" for r in runs for name in ("Whoosh", backend))
             + " |", "|---|" + "---:|" * (2 * len(runs))]
    for label, _better, get in COMPARED:
        cells = []
        for r in runs:
            cells += [fmt(get(whoosh[r["size"]])), fmt(get(r))]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_sizes(report: dict, sizes: list[int], queries: list[str], warmup: list[str], args) -> bool:
    """Benchmark each size in turn into report; True when one failed."""
    failed = False
    for size in sizes:
        started = time.perf_counter()
        try:
            result = bench_size(size, queries, warmup, args.duration_per_level, args.tmpdir, args.tantivy)
        except (RuntimeError, OSError, ValueError) as err:
            log(f"[{size}] failed: {err}")
            result, failed = {"size": size, "error": str(err)[:1000]}, True
        result["bench_seconds"] = time.perf_counter() - started
        report["sizes"].append(result)
        if result.get("documents", size) < size:
            log(f"[{size}] only {result['documents']} articles exist; larger sizes would repeat this one")
            break
    return failed


if __name__ == "__main__":
    sys.exit(main())
