"""The Typesense backend's fan-out, before and after (issue 14): nDCG@10, latency and searches per query
of the same queries on the same collections, fan-outs alternated query by query.

    python bench/typesense_fanout.py                       # starts its own 3-node cluster, stops it after
    python bench/typesense_fanout.py --sets alqac viquad   # fewer sets
    TRACUU_BACKEND=typesense TRACUU_TYPESENSE_NODES=... TRACUU_TYPESENSE_API_KEY=... \\
        python bench/typesense_fanout.py                   # a running cluster (`make cluster`)

Each relevance set of ../shared/data/eval is built once into the cluster (index folders under
data/ts-eval/NAME, i.e. aliases). Typed sets are also run without tone marks. "before" is one search
per query token in query order (EVERY_TOKEN); "after" is the default fan-out (DEFAULT_FAN_OUT).
Each query is searched as GET /api/search does (a page of 10 with snippets: timed, nDCG@10 "page") and
as evaluate.py does (top 100, no snippets: nDCG@10, the official figure); "searches" counts those of
the page that reached the cluster. Then each fan-out answers the set's queries as one bulk request
(limit 10) from a fresh service, as `POST /api/search/bulk` would.
Writes bench/results/typesense-fanout.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import EVAL, ROOT, evaluate_module  # noqa: E402

from app.backends.typesense import DEFAULT_FAN_OUT, EVERY_TOKEN, FanOut  # noqa: E402
from app.search import SearchService  # noqa: E402
from indexer.backend import IndexProblem, backend_settings  # noqa: E402

SETS = ("alqac", "viquad", "news-known-item")
COLUMNS = {"ndcg@10": "nDCG@10 (top 100, as evaluate.py)", "ndcg@10_page": "nDCG@10 (page of 10)",
           "p50_ms": "p50 ms (page of 10)", "p95_ms": "p95 ms", "searches_median": "searches (median)",
           "bulk_queries_per_s": "bulk q/s"}
TYPED = {"alqac": True, "viquad": True, "news-known-item": False}  # news-known-item is typed without marks


def service(index: Path, fan_out: FanOut) -> SearchService:
    """A search service over a built collection with this fan-out."""
    svc = SearchService(index, settings=backend_settings())
    svc.backend.fan_out = fan_out
    return svc


def ensure_built(name: str) -> Path:
    """The set's index folder, built into the cluster the first time."""
    from indexer.typesense_build import build_index

    index = ROOT / "data" / "ts-eval" / name
    if not SearchService(index, settings=backend_settings()).is_ready():
        corpus = evaluate_module().resolve_corpus(EVAL / name)
        print(f"building {name} from {corpus.name}", file=sys.stderr)
        build_index(index, [corpus])
    return index


def compare(name: str, index: Path, fold: bool, plans: dict[str, FanOut], limit: int | None) -> dict:
    """nDCG@10, latency and searches sent of each fan-out over the set's queries."""
    ev = evaluate_module()
    queries = ev.load_queries(EVAL / name / "queries.jsonl")[:limit]
    qrels = ev.load_qrels(EVAL / name / "qrels.tsv")
    services = {label: service(index, plan) for label, plan in plans.items()}
    deep: dict[str, dict[str, list[str]]] = {label: {} for label in plans}
    page: dict[str, dict[str, list[str]]] = {label: {} for label in plans}
    times: dict[str, list[float]] = {label: [] for label in plans}
    sent: dict[str, list[int]] = {label: [] for label in plans}
    for qid, text in queries:
        q = ev.fold_diacritics(text) if fold else text
        for label, svc in services.items():
            snap = svc.snapshot()
            before = snap.searches_sent
            start = time.perf_counter()
            hits = svc.search(q, limit=10).hits  # as GET /api/search answers: a page of 10 with snippets
            times[label].append((time.perf_counter() - start) * 1000)
            sent[label].append(svc.snapshot().searches_sent - before)
            page[label][qid] = [h.id for h in hits]
            deep[label][qid] = [h.id for h in svc.search(q, limit=100, snippets=False).hits]  # as evaluate.py
    ids = [qid for qid, _ in queries]
    out = {}
    for label in plans:
        bulk = service(index, plans[label])
        bulk.snapshot()
        start = time.perf_counter()
        bulk.bulk([{"id": qid, "q": ev.fold_diacritics(t) if fold else t} for qid, t in queries], limit=10)
        bulk_s = time.perf_counter() - start
        out[label] = {"ndcg@10": round(ev.score_run(deep[label], qrels, ids, 10)["ndcg@10"], 4),
                      "ndcg@10_page": round(ev.score_run(page[label], qrels, ids, 10)["ndcg@10"], 4),
                      "p50_ms": round(statistics.median(times[label]), 1),
                      "p95_ms": round(sorted(times[label])[int(0.95 * (len(times[label]) - 1))], 1),
                      "searches_median": statistics.median(sent[label]), "searches_max": max(sent[label]),
                      "bulk_queries_per_s": round(len(queries) / bulk_s, 1)}
    return {"set": name, "fold": fold, "queries": len(queries), "by_fan_out": out}


def markdown(report: dict) -> str:
    """The report as a Markdown table, before and after side by side."""
    labels = list(report["fan_outs"])
    lines = ["# Typesense fan-out, before and after", "",
             f"{report['machine']}; {report['when']}; commit {report['commit']}. "
             "Fan-outs: " + "; ".join(f"**{k}** {v}" for k, v in report["fan_outs"].items()) + ".", "",
             "| set | queries | " + " | ".join(f"{label}: {m}" for m in COLUMNS.values() for label in labels) + " |",
             "|---|---:|" + "---:|" * (len(COLUMNS) * len(labels))]
    for row in report["rows"]:
        figures = [row["by_fan_out"][label][key] for key in COLUMNS for label in labels]
        name = row["set"] + (" (no marks)" if row["fold"] else "")
        lines.append(f"| {name} | {row['queries']} | " + " | ".join(f"{f:g}" for f in figures) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    """Run the comparison on a cluster (started here unless the environment names one)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--limit", type=int, default=500, help="first N queries of each set (default: 500)")
    parser.add_argument("--after", default="", help="the 'after' fan-out as per_kind,budget,by_weight,cache,"
                                                    "candidates,parallel (default: DEFAULT_FAN_OUT), "
                                                    "e.g. 24,36,1,4000,100,0")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if not (EVAL / "alqac").exists():
        print(f"no relevance sets in {EVAL}: nothing to measure", file=sys.stderr)
        return 0
    after = DEFAULT_FAN_OUT
    if args.after:
        per_kind, budget, by_weight, cache, candidates, parallel = (int(x) for x in args.after.split(","))
        after = FanOut(per_kind, budget, bool(by_weight), cache, candidates, parallel)
    plans = {"before": EVERY_TOKEN, "after": after}
    cluster = None
    if os.environ.get("TRACUU_BACKEND") != "typesense":
        from ops.typesense_cluster import Cluster

        cluster = Cluster(Path(tempfile.mkdtemp(prefix="tracuu-fanout-")), size=3, api_key="bench-key", base_port=0)
        cluster.start(timeout=180)
        os.environ.update(cluster.env())
    try:
        rows = []
        for name in args.sets:
            index = ensure_built(name)
            for fold in (False, True) if TYPED[name] else (False,):
                rows.append(compare(name, index, fold, plans, args.limit))
                print(json.dumps(rows[-1]), file=sys.stderr)
    except IndexProblem as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if cluster is not None:
            cluster.stop()
    import platform
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"Python {platform.python_version()}, 3-node Typesense cluster on the same machine",
              "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": commit.strip(),
              "fan_outs": {k: repr(v) for k, v in plans.items()}, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "typesense-fanout.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    text = markdown(report)
    (args.out / "typesense-fanout.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
