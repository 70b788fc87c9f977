#!/usr/bin/env python3
"""The peer for honest_check.py: modAL's ActiveLearner over scikit-learn's
LogisticRegression, on the same pools and budgets, with the pool in the same
worst-case order (stable-sorted by label; --order file keeps file order).

Protocol (the one of ../shared/bench/peer_modal.py, copied here, not imported):
TF-IDF (`TfidfVectorizer(sublinear_tf=True, min_df=2)`, fitted on the pool's
texts) for text, StandardScaler (fitted on the pool) for features;
`LogisticRegression(max_iter=1000)`; 20 seed labels drawn uniformly from the
pool with the seed; then batches of 10 picked by entropy sampling (modAL) or
uniformly at random, refit after each batch; test accuracy at each budget.
Mean (and spread) over seeds 0..N-1.

usage:
  python3 benches/peer_sorted.py digits satellite spamassassin \
      [--data data] [--budgets 100,200,400,800] [--batch 10] [--seeds 3] \
      [--strategies entropy,random] [--order sorted|file] [--min-df 2] [--out peer.json]
Needs numpy, scikit-learn 1.6.1 and modAL-python 0.4.2.1.
"""
import argparse
import gzip
import json
import os
import statistics
import time
import warnings

warnings.filterwarnings("ignore")
import numpy as np  # noqa: E402
from modAL.models import ActiveLearner  # noqa: E402
from modAL.uncertainty import entropy_sampling, margin_sampling, uncertainty_sampling  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

QUERIES = {"entropy": entropy_sampling, "margin": margin_sampling,
           "least_confidence": uncertainty_sampling, "random": None}


def load(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def featurize(pool, test, min_df):
    """Unsupervised features fitted on the pool (as peer_modal.py does)."""
    if "text" in pool[0]:
        vec = TfidfVectorizer(sublinear_tf=True, min_df=min_df).fit([r["text"] for r in pool])
        return vec.transform([r["text"] for r in pool]), vec.transform([r["text"] for r in test])
    sc = StandardScaler().fit([r["features"] for r in pool])
    return sc.transform([r["features"] for r in pool]), sc.transform([r["features"] for r in test])


def curve(X_pool, y_pool, X_test, y_test, strategy, seed, budgets, batch, init):
    """One active-learning run; returns [(n_labels, test accuracy)], fit and query seconds.
    The same loop as peer_modal.py, except that the last batch before a budget is
    cut so the budget is hit exactly."""
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(X_pool.shape[0], init, replace=False))
    query = QUERIES[strategy]
    learner = ActiveLearner(estimator=LogisticRegression(max_iter=1000),
                            X_training=X_pool[labelled], y_training=y_pool[labelled],
                            **({"query_strategy": query} if query else {}))
    budgets = sorted(budgets)
    points, fit_s, query_s = [], 0.0, 0.0
    mask = np.ones(X_pool.shape[0], bool)
    mask[labelled] = False
    while budgets:
        if len(labelled) >= budgets[0]:
            points.append((len(labelled), float((learner.predict(X_test) == y_test).mean())))
            budgets.pop(0)
            continue
        free = np.flatnonzero(mask)
        if free.size == 0:
            break
        n = min(batch, budgets[0] - len(labelled), free.size)
        t = time.perf_counter()
        if query:
            q, _ = learner.query(X_pool[free], n_instances=n)
            picked = free[q]
        else:
            picked = rng.choice(free, n, replace=False)
        query_s += time.perf_counter() - t
        mask[picked] = False
        labelled += list(picked)
        t = time.perf_counter()
        learner.fit(X_pool[labelled], y_pool[labelled])  # refit after each batch
        fit_s += time.perf_counter() - t
    return points, fit_s, query_s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="+", help="data set names (NAME.pool/test.jsonl.gz)")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"))
    ap.add_argument("--budgets", default="100,200,400,800")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--init", type=int, default=20, help="random seed labels")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    ap.add_argument("--strategies", default="entropy,random")
    ap.add_argument("--order", choices=["sorted", "file"], default="sorted")
    ap.add_argument("--min-df", type=int, default=2, help="TfidfVectorizer min_df (peer_modal.py: 2)")
    ap.add_argument("--out", default=None, help="also write the numbers as JSON")
    args = ap.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    strategies = args.strategies.split(",")
    results = {}
    for name in args.names:
        t0 = time.time()
        pool = load(os.path.join(args.data, f"{name}.pool.jsonl.gz"))
        test = load(os.path.join(args.data, f"{name}.test.jsonl.gz"))
        if args.order == "sorted":
            pool.sort(key=lambda r: r["label"])  # stable, like honest_check.py's sorted order
        X_pool, X_test = featurize(pool, test, args.min_df)
        y_pool = np.array([r["label"] for r in pool])
        y_test = np.array([r["label"] for r in test])
        acc = {s: {b: [] for b in budgets} for s in strategies}
        secs = {s: [0.0, 0.0] for s in strategies}
        for s in strategies:
            for seed in range(args.seeds):
                points, fit_s, query_s = curve(X_pool, y_pool, X_test, y_test, s, seed,
                                               budgets, args.batch, args.init)
                for n, a in points:
                    acc[s][n].append(a)
                secs[s][0] += fit_s
                secs[s][1] += query_s
        results[name] = {"acc": {s: {str(b): v for b, v in acc[s].items()} for s in strategies},
                         "fit_s": {s: round(secs[s][0], 2) for s in strategies},
                         "query_s": {s: round(secs[s][1], 2) for s in strategies},
                         "wall_s": round(time.time() - t0, 1)}
        print(f"\n{name} (pool {len(pool)}, order {args.order}, {args.seeds} seeds, batch {args.batch}, "
              f"{args.init} random seed labels; mean test accuracy (min-max over seeds); "
              f"{results[name]['wall_s']} s)")
        print(f"{'budget':>6} " + " ".join(f"{s:>22}" for s in strategies))
        for b in budgets:
            cells = []
            for s in strategies:
                v = acc[s][b]
                cells.append(f"{statistics.fmean(v):.3f} ({min(v):.3f}-{max(v):.3f})" if v else "-")
            print(f"{b:>6} " + " ".join(f"{c:>22}" for c in cells))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
