"""Relevance sets from ../shared/data/eval, scored in-process (for tuning and ablations).

The official figures come from ../shared/tools/evaluate.py through the command-line contract;
this module reuses its metric code so that both count the same way.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
EVAL = SHARED / "data" / "eval"
CACHE = ROOT / "data" / "evalcache"
SETS = ("alqac", "viquad", "news-known-item")

sys.path.insert(0, str(ROOT))


def evaluate_module():
    """The shared evaluate.py, imported by path (it is not a package)."""
    spec = importlib.util.spec_from_file_location("tracuu_evaluate", SHARED / "tools" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class EvalSet:
    """Queries, judgements and a built index of one relevance set."""

    name: str
    queries: list[tuple[str, str]]
    qrels: dict[str, dict[str, int]]
    index: Path


def load(name: str, rebuild: bool = False) -> EvalSet:
    """Load a set and build its index once into data/evalcache/NAME."""
    ev = evaluate_module()
    folder = EVAL / name
    corpus = ev.resolve_corpus(folder)
    index = CACHE / name
    if rebuild and index.exists():
        shutil.rmtree(index)
    if not (index / "CURRENT").exists():
        from indexer.build import build_index

        build_index(index, [corpus])
    return EvalSet(name, ev.load_queries(folder / "queries.jsonl"), ev.load_qrels(folder / "qrels.tsv"), index)


def score(evalset: EvalSet, service, fold: bool = False, k: int = 10) -> float:
    """nDCG@k of the service on the set (queries folded when asked)."""
    ev = evaluate_module()
    run = {}
    for qid, text in evalset.queries:
        q = ev.fold_diacritics(text) if fold else text
        run[qid] = [h.id for h in service.search(q, limit=100, snippets=False).hits]
    return ev.score_run(run, evalset.qrels, [qid for qid, _ in evalset.queries], k)[f"ndcg@{k}"]
