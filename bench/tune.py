"""Tune ranking weights on the dev sets, and print ablation rows.

    python bench/tune.py                 # coordinate search from the current defaults
    python bench/tune.py --ablate        # one row per feature switched off

The objective is the mean nDCG@10 over the three sets, as typed and without tone marks
(news-known-item is typed without marks already, so it counts once). Only weights are tuned;
there is no per-query rule, so what is learned carries to other sets.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import SETS, load, score  # noqa: E402

from app.search import SearchService  # noqa: E402
from app.weights import DEFAULT, Weights  # noqa: E402

GRID = {
    "title": [1.5, 2.0, 3.0, 4.0],
    "abstract": [1.0, 1.5, 2.0],
    "word": [0.6, 1.0, 1.4],
    "marked_syllable": [0.0, 0.25, 0.5, 0.8],
    "folded_syllable": [0.0, 0.1, 0.2, 0.4],
    "unmarked_syllable": [0.6, 1.0, 1.4],
    "bigram": [0.0, 0.25, 0.5, 0.8, 1.2],
    "restored_word": [0.0, 0.3, 0.6, 1.0],
    "restored_syllable": [0.0, 0.15, 0.3, 0.6],
    "acronym": [0.0, 0.15, 0.3, 0.6],
    "k1": [0.9, 1.2, 1.6, 2.0],
    "b_title": [0.2, 0.4, 0.6],
    "b_body": [0.5, 0.65, 0.75, 0.9],
}

ABLATIONS = {
    "all features": {},
    "no words (syllables only)": {"word": 0.0},
    "no marked syllables": {"marked_syllable": 0.0},
    "no folded syllables for marked queries": {"folded_syllable": 0.0},
    "no bigrams (proximity)": {"bigram": 0.0},
    "no title boost": {"title": 1.0, "abstract": 1.0},
    "no tone-mark restoration": {"restored_word": 0.0, "restored_syllable": 0.0},
    "no acronym expansion": {"acronym": 0.0},
}


def evaluate_all(weights: Weights, sets) -> dict[str, float]:
    """nDCG@10 per (set, mode) and their mean."""
    figures = {}
    for evalset in sets:
        service = SearchService(evalset.index, weights)
        modes = (True,) if evalset.name == "news-known-item" else (False, True)
        for fold in modes:
            figures[f"{evalset.name}{'/fold' if fold else ''}"] = score(evalset, service, fold)
    figures["mean"] = sum(figures.values()) / len(figures)
    return figures


def main() -> int:
    """Run the search or the ablation table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ablate", action="store_true", help="print ablation rows instead of tuning")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--stride", type=int, default=1,
                        help="tune on every Nth query of the large sets (faster; final figures use all)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached indexes first")
    args = parser.parse_args()
    sets = [load(name, rebuild=args.rebuild) for name in args.sets]
    for evalset in sets:
        if len(evalset.queries) > 500:
            evalset.queries = evalset.queries[::args.stride]
    if args.ablate:
        for label, change in ABLATIONS.items():
            figures = evaluate_all(dataclasses.replace(DEFAULT, **change), sets)
            print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in figures.values()) + " |", flush=True)
        print("columns:", " | ".join(figures))
        return 0
    best = DEFAULT
    best_score = evaluate_all(best, sets)["mean"]
    print(f"start {best_score:.4f}", flush=True)
    for _ in range(args.rounds):
        for name, values in GRID.items():
            for value in values:
                if getattr(best, name) == value:
                    continue
                trial = dataclasses.replace(best, **{name: value})
                result = evaluate_all(trial, sets)["mean"]
                if result > best_score + 1e-4:
                    best, best_score = trial, result
                    print(f"  {name}={value}: {best_score:.4f}", flush=True)
    print("best", best_score, best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
