"""Load and overload of a running index: N clients for D seconds, then a flood that must be shed.

    python bench/load.py --index DIR [--clients 8] [--duration 60] [--flood 128] [--out bench/results/load]

The first level must answer every request (200) with bounded latency; the flood level may shed
with 503/429 but must not fail a connection, crash the server or grow its memory without bound.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (  # noqa: E402
    free_port,
    latency_level,
    machine_info,
    proc_status_bytes,
    query_list,
    start_server,
    stop_server,
)

MB = 1024 * 1024


def main() -> int:
    """Run the two levels against a server over --index and write JSON and Markdown."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--flood", type=int, default=128, help="clients of the overload level")
    parser.add_argument("--flood-duration", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/load"))
    args = parser.parse_args()
    queries = query_list(2000)
    with tempfile.TemporaryDirectory(prefix="tracuu-load-") as tmp:
        log = Path(tmp) / "server.log"
        port = free_port()
        server, startup = start_server(args.index, port, log)
        try:
            latency_level(port, queries[:50], 1, None)  # warm-up
            rss_start = proc_status_bytes(server.pid).get("VmRSS")
            steady = latency_level(port, queries, args.clients, args.duration)
            rss_steady = proc_status_bytes(server.pid).get("VmRSS")
            flood = latency_level(port, queries, args.flood, args.flood_duration)
            rss_flood = proc_status_bytes(server.pid).get("VmRSS")
            after = latency_level(port, queries[:50], 1, None)  # it still answers normally afterwards
            alive = server.poll() is None
        finally:
            stopped = stop_server(server, log)
    report = {"machine": machine_info(), "index": str(args.index), "startup_s": startup, "steady": steady,
              "flood": flood, "after_flood": after, "server_alive_after_flood": alive, "stop": stopped,
              "rss_mb": {"after_warmup": (rss_start or 0) / MB, "after_steady": (rss_steady or 0) / MB,
                         "after_flood": (rss_flood or 0) / MB}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    lines = [f"# Load and overload ({report['machine'].get('cpu', '')}, {report['machine'].get('cores', '')} cores)",
             "", "| level | clients | seconds | requests | req/s | p50 ms | p95 ms | p99 ms | status counts | errors |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, level in (("steady", steady), ("flood", flood), ("after the flood", after)):
        lines.append(f"| {name} | {level['clients']} | {level['seconds']:.0f} | {level['requests']} | "
                     f"{level['throughput_rps'] or 0:.1f} | {level['p50_ms'] or 0:.1f} | {level['p95_ms'] or 0:.1f} | "
                     f"{level['p99_ms'] or 0:.1f} | {level['status_counts']} | {level['errors']} |")
    rss = report["rss_mb"]
    lines += ["", f"Server RSS: {rss['after_warmup']:.0f} MB after warm-up, {rss['after_steady']:.0f} MB after the "
              f"steady level, {rss['after_flood']:.0f} MB after the flood; alive after the flood: {alive}."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0 if steady["non_200"] == 0 and steady["errors"] == 0 and alive else 1


if __name__ == "__main__":
    sys.exit(main())
