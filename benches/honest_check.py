#!/usr/bin/env python3
"""Checks loupe from the outside, as a new user would: does active learning
from a cold start work, and are the numbers the server reports honest?

It starts the release binary on a fresh SQLite file, and for each seed and
pool order:
  1. creates a project (labels = the pool's distinct labels, no retrain cron,
     `routing.target_precision` = --target) and imports the pool WITHOUT its
     labels, in file order sorted by label (the worst case for a cold start)
     or shuffled with the seed;
  2. at once loops: `queue/next {"n": batch}`, labels every item handed out
     with its true label, `train?wait=true` (a 409 not_enough_labels is fine:
     keep labelling); records the classes of the first 20 items handed out;
  3. at each budget reads the active model version (reported accuracy, any
     interval, the calibration block, the thresholds), predicts the whole test
     split over JSON and compares: test accuracy, auto coverage and precision
     of the served `route`, and the best coverage any confidence threshold
     reaches at test precision >= target.
Writes every number to --out and prints compact tables. --settle S waits S
seconds between the import and the first queue/next (default 0, a client that
starts at once); --keep keeps the server's directory (database and log).

usage:
  LOUPE_BIN=target/release/loupe python3 benches/honest_check.py \
      --pool data/digits.pool.jsonl.gz --test data/digits.test.jsonl.gz \
      --seeds 3 --budgets 100,200,400,800 --batch 10 --target 0.97 \
      --order both --out results.json
Needs Python 3.11 and the standard library only.
"""
import argparse
import gzip
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ADMIN_TOKEN = "honest-check-admin-token-0123456789"


# ----------------------------------------------------------------- data ----
def load_jsonl_gz(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def item_input(row):
    """The row as an ItemInput without its label (what the server may see)."""
    out = {"external_id": row["external_id"]}
    for key in ("text", "features", "meta"):
        if key in row:
            out[key] = row[key]
    return out


def predict_input(row):
    """The row as a prediction input: its content only."""
    return {k: row[k] for k in ("text", "features") if k in row}


# --------------------------------------------------------------- server ----
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The loupe binary on a fresh SQLite file in a temporary directory."""

    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="loupe-honest-")
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "server.log")
        self.log = open(self.log_path, "wb")
        env = dict(os.environ, LOUPE_ADMIN_TOKEN=ADMIN_TOKEN)
        self.proc = subprocess.Popen(
            [binary, "serve", "--bind", f"127.0.0.1:{self.port}",
             "--database-url", f"sqlite://{self.dir}/l.db"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        t0 = time.time()
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"loupe exited with {self.proc.returncode} at boot; "
                                 f"log: {self.log_path}\n{self.tail()}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.time() - t0 > 60:
                self.stop()
                raise SystemExit(f"loupe did not answer /healthz within 60 s; log: {self.log_path}")
            time.sleep(0.1)
        self.boot_s = time.time() - t0

    def tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def stop(self, keep=False):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


class ApiError(Exception):
    def __init__(self, status, body):
        self.status = status
        self.body = body
        err = body.get("error", {}) if isinstance(body, dict) else {}
        self.code = err.get("code")
        self.message = err.get("message", str(body)[:300])
        super().__init__(f"{status} {self.code}: {self.message}")


class Client:
    """A keep-alive JSON client for /api/v1 with the admin token."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def call(self, method, path, body=None, content_type="application/json", timeout=600):
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        if body is not None:
            headers["Content-Type"] = content_type
        for attempt in (0, 1):  # one retry on a dropped keep-alive connection
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                self.conn.request(method, "/api/v1" + path, body=body, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = {"raw": raw[:300].decode(errors="replace")}
        if r.status >= 400:
            raise ApiError(r.status, data)
        return r.status, data


# -------------------------------------------------------------- metrics ----
def key_tree(obj, prefix=""):
    """Flattened field paths of a JSON value with a short description each
    (lists by their length, so a long list does not flood the output)."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += key_tree(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(obj, list):
        if obj and all(isinstance(x, (int, float)) for x in obj) and len(obj) <= 4:
            out.append((prefix, json.dumps(obj)))
        else:
            out.append((prefix, f"list[{len(obj)}]"))
    else:
        out.append((prefix, json.dumps(obj)))
    return out


def find_intervals(obj, path=""):
    """Every interval-like thing in a JSON value: a dict with low/high
    (or lower/upper), or a two-number list under a key naming an interval.
    Returns [(path, low, high, value or None)]."""
    found = []
    if isinstance(obj, dict):
        for lo_k, hi_k in (("low", "high"), ("lower", "upper"), ("lo", "hi")):
            if isinstance(obj.get(lo_k), (int, float)) and isinstance(obj.get(hi_k), (int, float)):
                val = obj.get("value", obj.get("estimate"))
                found.append((path, float(obj[lo_k]), float(obj[hi_k]),
                              val if isinstance(val, (int, float)) else None))
        for k, v in obj.items():
            sub = f"{path}.{k}" if path else k
            if (isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)
                    and any(w in k.lower() for w in ("interval", "ci", "bounds"))):
                found.append((sub, float(v[0]), float(v[1]), None))
            # accuracy_low / accuracy_high style pairs
            if k.endswith("_low") and isinstance(v, (int, float)):
                hi = obj.get(k[:-4] + "_high")
                if isinstance(hi, (int, float)):
                    found.append((f"{path}.{k[:-4]}" if path else k[:-4], float(v), float(hi), None))
            found += find_intervals(v, sub)
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:50]):
            found += find_intervals(v, f"{path}[{i}]")
    return found


def accuracy_interval(metrics):
    """The reported interval for accuracy: the first interval whose path names
    accuracy (not precision); None when the server reports none."""
    for path, lo, hi, val in find_intervals(metrics or {}):
        p = path.lower()
        if "acc" in p and "precision" not in p:
            return {"path": path, "low": lo, "high": hi, "value": val}
    return None


def best_coverage(conf, correct, target):
    """Largest share of the test split any threshold on the served confidence
    auto-accepts at test precision >= target. A threshold cannot split tied
    confidences, so only cuts between distinct confidences count."""
    order = sorted(range(len(conf)), key=lambda i: -conf[i])
    n, hits, best = len(conf), 0, 0
    for k, i in enumerate(order, start=1):
        hits += correct[i]
        at_cut = k == n or conf[order[k]] < conf[i]
        if at_cut and hits / k >= target:
            best = k
    return best / n if n else 0.0


def evaluate(client, pid, model, test, target):
    """Predicts the whole test split and compares it to what `model` reports."""
    conf, correct, routes, versions = [], [], [], set()
    t0 = time.time()
    for i in range(0, len(test), 1000):  # the JSON predict route, <= 1000 items a call
        chunk = test[i:i + 1000]
        _, ans = client.call("POST", f"/projects/{pid}/predict",
                             {"items": [predict_input(r) for r in chunk], "enqueue": False})
        versions.add(ans.get("model_version"))
        for row, p in zip(chunk, ans["predictions"]):
            conf.append(float(p["confidence"]))
            correct.append(int(p["label"] == row["label"]))
            routes.append(p.get("route"))
    predict_s = time.time() - t0
    n = len(test)
    auto = [c for c, r in zip(correct, routes) if r == "auto"]
    metrics = model.get("metrics") or {}
    cal = metrics.get("calibration") if isinstance(metrics.get("calibration"), dict) else None
    test_acc = sum(correct) / n
    reported = metrics.get("accuracy")
    reported = reported if isinstance(reported, (int, float)) else None
    interval = accuracy_interval(metrics)
    best = best_coverage(conf, correct, target)
    auto_cov = len(auto) / n
    return {
        "model_version": model.get("version"),
        "served_versions": sorted(v for v in versions if v is not None),
        "n_labels_model": model.get("n_labels"),
        "test_acc": test_acc,
        "reported_acc": reported,
        "abs_err": abs(reported - test_acc) if reported is not None else None,
        "interval": interval,
        "interval_covers": (interval["low"] <= test_acc <= interval["high"]) if interval else None,
        "thresholds": model.get("thresholds"),
        "calibration": cal,
        "auto_coverage": auto_cov,
        "n_auto": len(auto),
        "auto_precision": sum(auto) / len(auto) if auto else None,
        "best_coverage": best,
        "coverage_ratio": auto_cov / best if best > 0 else None,
        "routes": {r: routes.count(r) for r in sorted(set(map(str, routes)))},
        "predict_s": round(predict_s, 3),
    }


# ------------------------------------------------------------------ run ----
def one_run(client, name, pool, test, labels, seed, order, args, verbose_fields):
    """One project: import, label in batches from the queue, train, evaluate."""
    rows = list(pool)
    if order == "sorted":
        rows.sort(key=lambda r: r["label"])  # stable: file order within a class
    else:
        random.Random(seed).shuffle(rows)
    truth = {r["external_id"]: r["label"] for r in pool}
    run = {"seed": seed, "order": order, "errors": [], "budgets": []}

    _, project = client.call("POST", "/projects", {
        "name": f"{name}-{order}-s{seed}", "labels": labels, "retrain_cron": None,
        "routing": {"target_precision": args.target}})
    pid = project["id"]
    t0 = time.time()
    body = "\n".join(json.dumps(item_input(r)) for r in rows).encode()
    _, imp = client.call("POST", f"/projects/{pid}/items", body, "application/x-ndjson")
    run["import"] = imp
    run["import_s"] = round(time.time() - t0, 3)

    if args.settle:  # default 0: the first queue/next follows the import at once
        time.sleep(args.settle)
    budgets = sorted(args.budgets)
    handed, handed_ids, n_labelled, last_model = [], [], 0, None
    train_s, n_trains, n_not_enough = 0.0, 0, 0
    t_loop = time.time()
    while budgets:
        # Ask for a batch, never past the next budget.
        n = min(args.batch, budgets[0] - n_labelled)
        _, q = client.call("POST", f"/projects/{pid}/queue/next", {"n": n})
        if not q["items"]:
            run["errors"].append(f"queue empty at {n_labelled} labels")
            break
        for entry in q["items"]:
            item = entry["item"]
            label = truth[item["external_id"]]
            handed.append(label)
            handed_ids.append(item["external_id"])
            try:
                client.call("POST", f"/projects/{pid}/items/{item['id']}/labels", {"label": label})
                n_labelled += 1
            except ApiError as e:
                run["errors"].append(f"label item {item['id']}: {e}")
        t = time.time()
        try:
            status, ans = client.call("POST", f"/projects/{pid}/train?wait=true")
            n_trains += 1
            if status == 201 and isinstance(ans, dict) and "version" in ans:
                last_model = ans
                if "first_model" not in run:  # cold start: when the first model exists
                    run["first_model"] = {"labels": n_labelled,
                                          "s_after_import": round(time.time() - t_loop, 2)}
        except ApiError as e:
            if e.status in (400, 409) and "label" in f"{e.code} {e.message}".lower():
                n_not_enough += 1  # too few labels yet: keep labelling
            else:
                run["errors"].append(f"train at {n_labelled}: {e}")
        train_s += time.time() - t
        if n_labelled < budgets[0]:
            continue
        budget = budgets.pop(0)
        # The active version, as a client reads it (the train answer may be older
        # or missing if the train request did not wait).
        try:
            _, model = client.call("GET", f"/projects/{pid}/models/active")
        except ApiError as e:
            run["errors"].append(f"models/active at {budget}: {e}")
            model = last_model
        if model is None:
            run["errors"].append(f"no model at budget {budget}")
            continue
        if verbose_fields:
            print("  ModelVersion fields (first evaluation):")
            for path, desc in key_tree(model):
                print(f"    {path} = {desc[:100]}")
            verbose_fields = False
        res = evaluate(client, pid, model, test, args.target)
        res["budget"] = budget
        run["budgets"].append(res)
        cal = res["calibration"] or {}
        iv = res["interval"]
        print(f"  {order:8} seed {seed} @{budget:4}: v{res['model_version']} n_labels={res['n_labels_model']} "
              f"test_acc={res['test_acc']:.3f} reported={fmt(res['reported_acc'])} "
              f"interval={'[%.3f, %.3f] (%s)' % (iv['low'], iv['high'], iv['path']) if iv else 'none'} "
              f"thresholds={json.dumps(res['thresholds'])} "
              f"cal: thr={fmt(cal.get('auto_threshold'))} est_prec={fmt(cal.get('estimated_precision'))} "
              f"exp_cov={fmt(cal.get('expected_coverage'))} reason={cal.get('reason')!r} | "
              f"auto cov={res['auto_coverage']:.3f} prec={fmt(res['auto_precision'])} "
              f"best cov={res['best_coverage']:.3f}", flush=True)
    run["first20"] = handed[:20]
    run["first20_distinct"] = len(set(handed[:20]))
    run["first20_ids"] = handed_ids[:20]
    seen, all_seen_at = set(), None
    for i, lab in enumerate(handed, start=1):
        seen.add(lab)
        if len(seen) == len(labels):
            all_seen_at = i
            break
    run["all_classes_seen_at"] = all_seen_at
    run["n_trains"] = n_trains
    run["n_not_enough_labels"] = n_not_enough
    run["train_s"] = round(train_s, 2)
    run["loop_s"] = round(time.time() - t_loop, 2)
    return run


# -------------------------------------------------------------- summary ----
def fmt(x, spec=".3f"):
    return "-" if x is None else format(x, spec)


def mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def summary(runs, budgets):
    """Per budget: the means and counts of the table."""
    out = []
    for b in budgets:
        rs = [r for run in runs for r in run["budgets"] if r["budget"] == b]
        if not rs:
            continue
        iv = [r["interval_covers"] for r in rs if r["interval_covers"] is not None]
        low_prec = [r for r in rs if r["auto_precision"] is not None and r["auto_precision"] < 0.95]
        out.append({
            "budget": b, "runs": len(rs),
            "test_acc": mean(r["test_acc"] for r in rs),
            "reported_acc": mean(r["reported_acc"] for r in rs),
            "abs_err": mean(r["abs_err"] for r in rs),
            "interval_cover_share": (sum(iv) / len(iv)) if iv else None,
            "runs_with_interval": len(iv),
            "auto_coverage": mean(r["auto_coverage"] for r in rs),
            "best_coverage": mean(r["best_coverage"] for r in rs),
            "coverage_ratio": mean(r["coverage_ratio"] for r in rs),
            "auto_precision": mean(r["auto_precision"] for r in rs),
            "runs_auto_prec_below_095": len(low_prec),
            "runs_with_auto": sum(r["n_auto"] > 0 for r in rs),
        })
    return out


def print_table(title, rows):
    print(f"\n{title}")
    print(f"{'budget':>6} {'runs':>4} {'test_acc':>8} {'rep_acc':>7} {'|rep-test|':>10} "
          f"{'iv_covers':>9} {'auto_cov':>8} {'best_cov':>8} {'ratio':>6} {'auto_prec':>9} "
          f"{'prec<.95':>8}")
    for s in rows:
        ivc = f"{s['interval_cover_share']:.2f}/{s['runs_with_interval']}" \
            if s["interval_cover_share"] is not None else "n/a"
        print(f"{s['budget']:>6} {s['runs']:>4} {fmt(s['test_acc']):>8} {fmt(s['reported_acc']):>7} "
              f"{fmt(s['abs_err']):>10} {ivc:>9} {fmt(s['auto_coverage']):>8} "
              f"{fmt(s['best_coverage']):>8} {fmt(s['coverage_ratio'], '.2f'):>6} "
              f"{fmt(s['auto_precision']):>9} {s['runs_auto_prec_below_095']:>4}/{s['runs_with_auto']:<3}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pool", required=True, help="NAME.pool.jsonl.gz")
    ap.add_argument("--test", required=True, help="NAME.test.jsonl.gz")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    ap.add_argument("--budgets", default="100,200,400,800")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--target", type=float, default=0.97)
    ap.add_argument("--order", choices=["sorted", "shuffled", "both"], default="both")
    ap.add_argument("--out", default="results.json")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds to wait after the import before the first queue/next (default 0)")
    ap.add_argument("--keep", action="store_true", help="keep the server's directory (db + log)")
    args = ap.parse_args()
    args.budgets = [int(b) for b in args.budgets.split(",")]
    binary = os.environ.get("LOUPE_BIN", "/work/main/target/release/loupe")

    pool, test = load_jsonl_gz(args.pool), load_jsonl_gz(args.test)
    labels = sorted({r["label"] for r in pool})
    name = os.path.basename(args.pool).split(".")[0]
    orders = ["sorted", "shuffled"] if args.order == "both" else [args.order]
    print(f"{name}: pool {len(pool)}, test {len(test)}, labels {labels}; binary {binary}")

    t_start = time.time()
    server = Server(binary)
    print(f"server on port {server.port} (up in {server.boot_s:.1f} s), dir {server.dir}")
    client = Client(server.port)
    runs, failed = [], None
    try:
        # What a new user reads first: the published schema of the routes used.
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("GET", "/api/v1/openapi.json")
            spec = json.loads(conn.getresponse().read())
            paths = sorted(spec.get("paths", {}))
            print(f"openapi.json: {len(paths)} paths")
        except Exception as e:  # informative only
            print(f"openapi.json not readable: {e}")
        first = True
        for seed in range(args.seeds):
            for order in orders:
                t = time.time()
                run = one_run(client, name, pool, test, labels, seed, order, args, first)
                first = False
                run["wall_s"] = round(time.time() - t, 2)
                runs.append(run)
                print(f"  {order:8} seed {seed}: first 20 handed out cover {run['first20_distinct']}/"
                      f"{len(labels)} classes; all classes by label "
                      f"{run['all_classes_seen_at']}; {run['n_trains']} trains "
                      f"({run['n_not_enough_labels']} not enough labels) in {run['train_s']} s; "
                      f"run {run['wall_s']} s; errors: {run['errors'] or 'none'}", flush=True)
    except BaseException as e:  # still write what we have and stop the server
        failed = repr(e)
        print(f"FAILED: {failed}\nserver log tail:\n{server.tail()}", file=sys.stderr)
    finally:
        server.stop(keep=args.keep or failed is not None)

    result = {
        "data": name, "pool": args.pool, "test": args.test, "binary": binary,
        "args": {k: v for k, v in vars(args).items()},
        "labels": labels, "wall_s": round(time.time() - t_start, 1), "failed": failed,
        "summary": {o: summary([r for r in runs if r["order"] == o], args.budgets) for o in orders},
        "summary_all": summary(runs, args.budgets),
        "runs": runs,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)

    print(f"\n== {name}: target precision {args.target}, batch {args.batch}, "
          f"{args.seeds} seed(s), wall {result['wall_s']} s ==")
    print("rep_acc = metrics.accuracy of the active model; iv_covers = share of runs whose reported "
          "accuracy interval holds the test accuracy / runs with an interval; ratio = auto coverage / "
          "best coverage at test precision >= target (mean over runs with best > 0); prec<.95 = runs "
          "with auto precision < 0.95 / runs with any auto item")
    for o in orders:
        print_table(f"order={o}", result["summary"][o])
    if len(orders) == 2:
        print("\ntest accuracy, sorted vs shuffled (mean over seeds)")
        print(f"{'budget':>6} {'sorted':>7} {'shuffled':>8}")
        for b in args.budgets:
            cells = [mean(r["test_acc"] for run in runs if run["order"] == o
                          for r in run["budgets"] if r["budget"] == b) for o in orders]
            print(f"{b:>6} {fmt(cells[0]):>7} {fmt(cells[1]):>8}")
    # Classes by their index in `labels`, so long label names stay on one line.
    print(f"\nfirst 20 items handed out: distinct classes (of {len(labels)}), labels until every "
          f"class was seen, labels at the first model, classes handed out "
          f"({', '.join(f'{i}={lab}' for i, lab in enumerate(labels))})")
    for run in runs:
        fm = run.get("first_model", {})
        print(f"  {run['order']:8} seed {run['seed']}: {run['first20_distinct']:>2}  all seen at "
              f"{str(run['all_classes_seen_at']):>4}  first model at {str(fm.get('labels')):>4} "
              f"({fm.get('s_after_import')} s)  {' '.join(str(labels.index(x)) for x in run['first20'])}")
    errors = [(run["order"], run["seed"], e) for run in runs for e in run["errors"]]
    if errors or failed:
        print("\nerrors:")
        for o, s, e in errors:
            print(f"  {o} seed {s}: {e}")
        if failed:
            print(f"  run aborted: {failed}")
    print(f"\nwrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
