#!/usr/bin/env python3
"""Scale benchmark of loupe (issue 6) with scikit-learn 1.6.1 as the peer, in one run.

    python3 benches/scale.py                 # everything (~25 min on 2 cores)
    python3 benches/scale.py --items 100000  # smaller pool, quicker

Needs: `pip install scikit-learn==1.6.1 numpy`, PostgreSQL at --pg (trust auth;
skipped with --no-pg), `apt-get download` for the 20-class text set (Debian's
`fortunes` and `fortunes-min`). Builds `target/release/loupe` and the
`loadgen` example, starts `loupe serve` on a fresh SQLite file (and a fresh
PostgreSQL database), and prints / writes one JSON report (--out).

What it measures (medians of --runs where a phase is cheap enough to repeat):
- import: numeric items/s (1M rows: data/digits features + Gaussian noise) and
  text items/s (data/spamassassin bodies, perturbed), JSONL batches over HTTP;
  the server's peak RSS (VmHWM from /proc) after the 1M import;
- train + rescore on the 1M pool: `POST …/train?wait=true`, split into fit and
  rescore by /metrics `loupe_training_duration_seconds{phase}`; peer: sklearn
  fit on the same labels and predict_proba + margin over the same 1M rows;
- queue: 8 annotators looping queue/next → label for --queue-seconds
  (loadgen), queue/next latency percentiles, SQLite and PostgreSQL;
- 20-class text: fit on all training docs, test accuracy, vs sklearn
  TfidfVectorizer + LogisticRegression (defaults) fit on the same docs;
- predict: batch rows/s over HTTP (JSON; numeric rows also as .npy arrays)
  vs sklearn's in-process predict_proba on the
  same rows (numeric and text); single-item requests/s and p99 at concurrency.
"""
import argparse
import gzip
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN = "bench-admin-token"
LOADGEN = os.path.abspath(os.environ.get(
    "LOADGEN_BIN", os.path.join(ROOT, "target/release/examples/loadgen")))
LOUPE = os.path.abspath(os.environ.get("LOUPE_BIN", os.path.join(ROOT, "target/release/loupe")))


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def med(xs):
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------- data

def read_jsonl_gz(path):
    with gzip.open(path, "rt") as f:
        return [json.loads(l) for l in f if l.strip()]


def numeric_rows(n, seed=0):
    """n rows of digits features + N(0, 0.5) noise; external_id ends with __label."""
    base = read_jsonl_gz(os.path.join(ROOT, "data/digits.pool.jsonl.gz"))
    base += read_jsonl_gz(os.path.join(ROOT, "data/digits.test.jsonl.gz"))
    x = np.array([r["features"] for r in base], dtype=np.float64)
    y = [r["label"] for r in base]
    rng = np.random.default_rng(seed)
    idx = np.arange(n) % len(base)
    feats = np.round(x[idx] + rng.normal(0, 0.5, (n, x.shape[1])), 2)
    labels = [y[i] for i in idx]
    return feats, labels


def numeric_batches(feats, labels, n, batch, n_labeled):
    """JSONL bodies of n rows cycling over the distinct noisy rows (formatting
    1M rows of 64 numbers in Python would take minutes); every row has its
    own external_id; the first n_labeled rows carry their label (seed labels)."""
    cells = [json.dumps(r)[1:-1] for r in feats.tolist()]
    k = len(cells)
    out = []
    for s in range(0, n, batch):
        lines = []
        for i in range(s, min(s + batch, n)):
            lab = labels[i % k]
            if i < n_labeled:
                lines.append('{"external_id":"n%d__%s","features":[%s],"label":"%s"}'
                             % (i, lab, cells[i % k], lab))
            else:
                lines.append('{"external_id":"n%d__%s","features":[%s]}' % (i, lab, cells[i % k]))
        out.append(("\n".join(lines) + "\n").encode())
    return out


def text_batches(n, batch, seed=0):
    """Spamassassin bodies repeated, each copy perturbed (a word dropped, a token added)."""
    base = read_jsonl_gz(os.path.join(ROOT, "data/spamassassin.pool.jsonl.gz"))
    rng = random.Random(seed)
    out, lines = [], []
    for i in range(n):
        r = base[i % len(base)]
        words = r["text"].split()
        if len(words) > 3:
            del words[rng.randrange(len(words))]
        words.insert(rng.randrange(len(words) + 1), "tok%d" % rng.randrange(100000))
        lines.append(json.dumps({"external_id": "t%d__%s" % (i, r["label"]),
                                 "text": " ".join(words)}))
        if len(lines) == batch:
            out.append(("\n".join(lines) + "\n").encode())
            lines = []
    if lines:
        out.append(("\n".join(lines) + "\n").encode())
    return out


FORTUNE_CLASSES = 20


def fortunes(workdir, seed=0):
    """The 20 largest categories of Debian's `fortunes` + `fortunes-min`
    (one cookie = one document, its file = its class); 80/20 stratified split."""
    d = os.path.join(workdir, "fortunes")
    os.makedirs(d, exist_ok=True)
    if not any(f.endswith(".deb") for f in os.listdir(d)):
        subprocess.run(["apt-get", "download", "fortunes", "fortunes-min"], cwd=d,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ex = os.path.join(d, "ex")
    for f in os.listdir(d):
        if f.endswith(".deb"):
            subprocess.run(["dpkg-deb", "-x", f, ex], cwd=d, check=True)
    src = os.path.join(ex, "usr/share/games/fortunes")
    cats = {}
    for name in sorted(os.listdir(src)):
        p = os.path.join(src, name)
        if "." in name or not os.path.isfile(p):
            continue
        with open(p, encoding="utf-8", errors="replace") as f:
            docs = [c.strip() for c in re.split(r"^%$", f.read(), flags=re.M)]
        docs = [c for c in docs if c]
        cats[name] = sorted(set(docs))
    top = sorted(cats, key=lambda c: (-len(cats[c]), c))[:FORTUNE_CLASSES]
    rng = random.Random(seed)
    train, test = [], []
    for c in top:
        docs = cats[c][:]
        rng.shuffle(docs)
        k = len(docs) // 5
        test += [(t, c) for t in docs[:k]]
        train += [(t, c) for t in docs[k:]]
    rng.shuffle(train)
    return sorted(top), train, test


# ---------------------------------------------------------------- server

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, db_url, workdir, name):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, f"{name}.log")
        env = dict(os.environ, LOUPE_ADMIN_TOKEN=ADMIN,
                   LOUPE_LOG=os.environ.get("LOUPE_LOG", "warn"))
        self.proc = subprocess.Popen(
            [LOUPE, "serve", "--database-url", db_url, "--bind", f"127.0.0.1:{self.port}"],
            env=env, cwd=workdir, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        for _ in range(600):
            try:
                if self.get("/healthz")["status"] == "ok":
                    return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start, see {self.log_path}")

    def req(self, method, path, body=None, token=ADMIN, ctype="application/json", timeout=3600):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        r = urllib.request.Request(self.base + path, data=data, method=method)
        r.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            r.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(r, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{method} {path}: {e.code} {e.read()[:300]!r}") from None
        if path == "/metrics":
            return raw.decode()
        return json.loads(raw) if raw else None

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.req("POST", path, body, **kw)

    def status(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return {k: int(v.split()[0]) for k, v in
                    (l.split(":", 1) for l in f if l.startswith(("VmRSS", "VmHWM")))}

    def training_seconds(self):
        """Cumulative fit / rescore / rank-tail seconds (and the tails'
        count) from /metrics."""
        out = {"fit": 0.0, "rescore": 0.0, "rank_tail": 0.0, "rank_tail_count": 0}
        for line in self.get("/metrics").splitlines():
            m = re.match(r'loupe_training_duration_seconds_sum\{phase="(\w+)"\} (\S+)', line)
            if m:
                out[m.group(1)] = float(m.group(2))
            m = re.match(r'loupe_training_duration_seconds_count\{phase="rank_tail"\} (\S+)', line)
            if m:
                out["rank_tail_count"] = int(float(m.group(1)))
        return out

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def project(srv, name, labels, **settings):
    return srv.post("/api/v1/projects", {"name": name, "labels": labels, **settings})["id"]


def import_batches(srv, pid, batches):
    """Sequential JSONL imports; items/s over the whole sequence."""
    n, t0 = 0, time.perf_counter()
    for b in batches:
        out = srv.post(f"/api/v1/projects/{pid}/items", b, ctype="application/x-ndjson")
        n += out["inserted"]
    return n, time.perf_counter() - t0


def train(srv, pid, wait_tail=False):
    before = srv.training_seconds()
    t0 = time.perf_counter()
    v = srv.post(f"/api/v1/projects/{pid}/train?wait=true")
    wall = time.perf_counter() - t0
    after = srv.training_seconds()
    # A pool past the server's synchronous head has the rest of its ranking
    # written in the background: wait for it, so the full rewrite is timed.
    deadline = time.perf_counter() + 600
    while (wait_tail and after["rank_tail_count"] == before["rank_tail_count"]
           and time.perf_counter() < deadline):
        time.sleep(0.05)
        after = srv.training_seconds()
    return {"wall_s": wall, "fit_s": after["fit"] - before["fit"],
            "rescore_s": after["rescore"] - before["rescore"],
            "rank_tail_s": after["rank_tail"] - before["rank_tail"],
            "version": v["version"],
            "n_labels": v["n_labels"], "algorithm": v["algorithm"]}


def token(srv, name, role):
    return srv.post("/api/v1/tokens", {"name": name, "role": role})["token"]


def cpu_jiffies():
    """Machine-wide (busy, steal) clock ticks from /proc/stat: on a shared
    VM, time the hypervisor gave to others shows as steal, and a run with
    much of it measures the neighbours as well as loupe."""
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6], v[7]


def steal_pct(before, after, seconds):
    """Share of both cores' time stolen between two cpu_jiffies() readings."""
    return 100.0 * (after[1] - before[1]) / (os.sysconf("SC_CLK_TCK") * seconds * os.cpu_count())


def loadgen(*args):
    out = subprocess.run([LOADGEN, *map(str, args)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def write_bodies(path, items_list):
    with open(path, "w") as f:
        for items in items_list:
            f.write(json.dumps({"items": items}) + "\n")
    return path


# ---------------------------------------------------------------- peer

def sk_margin_scores(proba):
    top2 = np.partition(proba, -2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def time_it(fn, runs):
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return med(ts), out


# ---------------------------------------------------------------- phases

def numeric_phase(srv, args, feats, labels, batches, workdir, tag, R):
    """Import the 1M pool, train, rescore, queue; optionally predict (SQLite only)."""
    res = {}
    pid = project(srv, f"num-{tag}", [str(i) for i in range(10)])
    log(f"{tag}: importing {args.items} numeric items in {len(batches)} batches")
    n, secs = import_batches(srv, pid, batches)
    res["import_numeric"] = {"items": n, "seconds": secs, "items_per_s": n / secs}
    res["rss_after_import_mb"] = srv.status()["VmHWM"] / 1024
    log(f"{tag}: {n / secs:.0f} numeric items/s, peak RSS {res['rss_after_import_mb']:.0f} MB")
    log(f"{tag}: training on {args.seed_labels} labels, rescoring {n - args.seed_labels}")
    res["train_numeric"] = [train(srv, pid, wait_tail=n - args.seed_labels > 20_000)
                            for _ in range(args.train_runs)]
    res["rss_after_train_mb"] = srv.status()["VmHWM"] / 1024
    log(f"{tag}: train", res["train_numeric"])
    toks = [token(srv, f"annotator{i}", "annotator") for i in range(args.annotators)]
    q = loadgen("annotate", srv.base, pid, args.queue_seconds, *toks)
    res["queue"] = q
    log(f"{tag}: queue/next p99 {q['next'].get('p99_ms')} ms, {q['labels_per_s']:.0f} labels/s")
    res["pid"] = pid
    return res


def predict_phase(srv, pid, rows_single, rows_batch, batch, workdir, name, args):
    svc = token(srv, f"service-{name}", "service")
    bodies_b = write_bodies(os.path.join(workdir, f"{name}.batch.jsonl"),
                            [rows_batch[i:i + batch] for i in range(0, len(rows_batch), batch)])
    bodies_1 = write_bodies(os.path.join(workdir, f"{name}.single.jsonl"),
                            [[r] for r in rows_single])
    out = {"batch": [], "single": []}
    # Numeric rows also go as .npy arrays (Content-Type: application/x-npy).
    npy_dir = None
    if all("features" in r and "text" not in r for r in rows_batch):
        npy_dir = os.path.join(workdir, f"{name}.npy")
        os.makedirs(npy_dir, exist_ok=True)
        for k, i in enumerate(range(0, len(rows_batch), batch)):
            np.save(os.path.join(npy_dir, f"{k:04}.npy"),
                    np.array([r["features"] for r in rows_batch[i:i + batch]], dtype=np.float64))
        out["batch_npy"] = []
    for _ in range(args.runs):
        b = loadgen("predict", srv.base, pid, svc, 2, args.predict_seconds, bodies_b)
        b["rows_per_s"] = b["requests_per_s"] * batch
        out["batch"].append(b)
        if npy_dir:
            b = loadgen("predict", srv.base, pid, svc, 2, args.predict_seconds, npy_dir)
            b["rows_per_s"] = b["requests_per_s"] * batch
            out["batch_npy"].append(b)
        out["single"].append(loadgen("predict", srv.base, pid, svc, args.single_concurrency,
                                     args.predict_seconds, bodies_1))
    return out


def accuracy(srv, pid, svc, test):
    correct = 0
    for s in range(0, len(test), 1000):
        chunk = test[s:s + 1000]
        p = srv.post(f"/api/v1/projects/{pid}/predict",
                     {"items": [{"text": t} for t, _ in chunk]}, token=svc)
        correct += sum(q["label"] == c for q, (_, c) in zip(p["predictions"], chunk))
    return correct / len(test)


def text_phase(srv, args, classes, ftrain, ftest, workdir):
    """Train on the first n training docs for growing n (all of them last);
    a size whose training exceeds --text-timeout ends the ladder."""
    out = {"ladder": []}
    svc = token(srv, "service-text", "service")
    sizes = sorted({min(n, len(ftrain)) for n in args.text_sizes} | {len(ftrain)})
    best = None
    for n in sizes:
        pid = project(srv, f"fortunes-{n}", classes)
        body = "".join(json.dumps({"external_id": f"f{i}", "text": t, "label": c}) + "\n"
                       for i, (t, c) in enumerate(ftrain[:n])).encode()
        srv.post(f"/api/v1/projects/{pid}/items", body, ctype="application/x-ndjson")
        log(f"text: training on {n} docs (timeout {args.text_timeout} s)")
        t0 = time.perf_counter()
        try:
            before = srv.training_seconds()
            srv.req("POST", f"/api/v1/projects/{pid}/train?wait=true",
                    timeout=args.text_timeout)
            fit = srv.training_seconds()["fit"] - before["fit"]
        except Exception as e:  # noqa: BLE001 — a timeout ends the ladder
            out["ladder"].append({"n": n, "finished": False,
                                  "seconds_waited": time.perf_counter() - t0,
                                  "error": str(e)[:200]})
            log(f"text: {n} docs did not finish: {e}")
            break
        acc = accuracy(srv, pid, svc, ftest)
        out["ladder"].append({"n": n, "finished": True, "fit_s": fit, "accuracy": acc})
        log(f"text: {n} docs: fit {fit:.1f} s, accuracy {acc:.4f}")
        best = (pid, n)
    if best:
        trows = [{"text": t} for t, _ in ftest]
        out["predict_model_n"] = best[1]
        out["predict"] = predict_phase(srv, best[0], trows, trows, 1000, workdir, "text", args)
        log("text: predict", json.dumps(out["predict"])[:400])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--text-items", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=10_000, help="rows per import request")
    ap.add_argument("--seed-labels", type=int, default=2_000)
    ap.add_argument("--annotators", type=int, default=8)
    ap.add_argument("--queue-seconds", type=float, default=30)
    ap.add_argument("--predict-seconds", type=float, default=5)
    ap.add_argument("--single-concurrency", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3, help="repeats of the cheap phases (median)")
    ap.add_argument("--train-runs", type=int, default=1)
    ap.add_argument("--text-sizes", type=lambda v: [int(x) for x in v.split(",")],
                    default=[1000, 2000, 4000], help="labeled-set sizes before all docs")
    ap.add_argument("--text-timeout", type=float, default=300,
                    help="seconds one text training may take before the ladder stops")
    ap.add_argument("--text-max", type=int, default=None, help="cap the training docs")
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432/loupe_bench")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--out", default=os.path.join(ROOT, "benches/scale.json"))
    args = ap.parse_args()

    if not args.no_build:
        log("cargo build --release --bin loupe --example loadgen")
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "loupe",
                        "--example", "loadgen"], cwd=ROOT, check=True)
    import sklearn
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from threadpoolctl import threadpool_info

    workdir = tempfile.mkdtemp(prefix="loupe-scale-")
    report = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "args": vars(args), "sklearn": sklearn.__version__, "numpy": np.__version__,
              "blas": [{k: i.get(k) for k in ("internal_api", "num_threads", "architecture")}
                       for i in threadpool_info()],
              "cores": os.cpu_count()}
    R = args.runs
    log("generating data in", workdir)
    feats, labels = numeric_rows(min(args.items, 50_000))
    num_batches = numeric_batches(feats, labels, args.items, args.batch, args.seed_labels)
    txt_batches = text_batches(args.text_items, max(1, args.batch // 2))
    classes, ftrain, ftest = fortunes(workdir)
    ftrain = ftrain[:args.text_max]
    report["text_set"] = {"name": "fortunes (Debian fortunes + fortunes-min), 20 largest files",
                          "classes": len(classes), "train": len(ftrain), "test": len(ftest)}

    # ---- SQLite
    srv = Server(f"sqlite://{workdir}/bench.db?mode=rwc", workdir, "sqlite")
    try:
        sq = numeric_phase(srv, args, feats, labels, num_batches, workdir, "sqlite", R)
        tp = project(srv, "text-import", ["ham", "spam"])
        log(f"sqlite: importing {args.text_items} text items")
        n, secs = import_batches(srv, tp, txt_batches)
        sq["import_text"] = {"items": n, "seconds": secs, "items_per_s": n / secs}
        log(f"sqlite: {n / secs:.0f} text items/s")
        # numeric predictions: digits test rows
        test = read_jsonl_gz(os.path.join(ROOT, "data/digits.test.jsonl.gz"))
        rows = [{"features": r["features"]} for r in test]
        rows_b = (rows * (10_000 // len(rows) + 1))[:10_000]
        sq["predict_numeric"] = predict_phase(srv, sq["pid"], rows, rows_b, 1000, workdir,
                                              "num", args)
        log("sqlite: numeric predict", json.dumps(sq["predict_numeric"])[:400])
        sq["rss_peak_mb"] = srv.status()["VmHWM"] / 1024
    finally:
        srv.stop()
    report["sqlite"] = sq
    save(report, args.out)

    # ---- 20-class text on a fresh SQLite server: fit time as the labeled set grows
    srv = Server(f"sqlite://{workdir}/text.db?mode=rwc", workdir, "text")
    try:
        report["text"] = text_phase(srv, args, classes, ftrain, ftest, workdir)
    finally:
        srv.stop()
    save(report, args.out)

    # ---- PostgreSQL
    if not args.no_pg:
        dbname = args.pg.rsplit("/", 1)[1]
        subprocess.run(["dropdb", "--if-exists", "-h", "127.0.0.1", "-U", "postgres", dbname],
                       check=True)
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", dbname], check=True)
        srv = Server(args.pg, workdir, "postgres")
        try:
            report["postgres"] = numeric_phase(srv, args, feats, labels, num_batches, workdir,
                                               "postgres", R)
        finally:
            srv.stop()
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", dbname])

    # ---- scikit-learn peer, same machine, same run
    log("scikit-learn peer")
    peer = {}
    xs, ys = feats[:args.seed_labels], labels[:args.seed_labels]
    t_fit, clf = time_it(lambda: LogisticRegression().fit(xs, ys), R)
    pool = feats[np.arange(args.seed_labels, args.items) % len(feats)]
    t_score, _ = time_it(lambda: sk_margin_scores(clf.predict_proba(pool)), R)
    peer["numeric_fit_s"] = t_fit
    peer["rescore_predict_proba_margin_s"] = t_score
    xt = np.array([r["features"] for r in test], dtype=np.float64)
    xb = np.concatenate([xt] * (10_000 // len(xt) + 1))[:10_000]
    t_b, _ = time_it(lambda: [clf.predict_proba(xb[i:i + 1000]) for i in range(0, 10_000, 1000)], R)
    peer["numeric_predict_proba_rows_per_s"] = 10_000 / t_b
    t_1, _ = time_it(lambda: [clf.predict_proba(xt[i:i + 1]) for i in range(len(xt))], R)
    peer["numeric_single_row_per_s"] = len(xt) / t_1
    peer["text_ladder"] = []
    ytest = np.array([c for _, c in ftest])
    for step in report["text"]["ladder"]:
        n = step["n"]
        docs = [t for t, _ in ftrain[:n]]
        ydocs = [c for _, c in ftrain[:n]]
        t_txt, pipe = time_it(lambda: make_pipeline(TfidfVectorizer(), LogisticRegression())
                              .fit(docs, ydocs), R)
        acc = float(np.mean(pipe.predict([t for t, _ in ftest]) == ytest))
        peer["text_ladder"].append({"n": n, "fit_s": t_txt, "accuracy": acc,
                                    "lr_iterations": int(pipe[-1].n_iter_.max())})
        log("peer text", peer["text_ladder"][-1])
    # predict with a model fitted on as many docs as loupe's served model
    n = report["text"].get("predict_model_n", len(ftrain))
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(
        [t for t, _ in ftrain[:n]], [c for _, c in ftrain[:n]])
    peer["text_predict_model_n"] = n
    tdocs = [t for t, _ in ftest]
    t_tb, _ = time_it(lambda: [pipe.predict_proba(tdocs[i:i + 1000])
                               for i in range(0, len(tdocs), 1000)], R)
    peer["text_predict_proba_rows_per_s"] = len(tdocs) / t_tb
    t_t1, _ = time_it(lambda: [pipe.predict_proba(tdocs[i:i + 1]) for i in range(500)], R)
    peer["text_single_row_per_s"] = 500 / t_t1
    report["sklearn_peer"] = peer
    log("peer", peer)
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report["summary"] = summarize(report)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report["summary"], indent=1))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


def save(report, path):
    """The report so far: a run stopped part-way keeps what it measured."""
    with open(path, "w") as f:
        json.dump(report, f, indent=1)


def summarize(r):
    sq, pe = r["sqlite"], r["sklearn_peer"]
    s = {}
    s["import_numeric_items_per_s"] = sq["import_numeric"]["items_per_s"]
    s["import_text_items_per_s"] = sq["import_text"]["items_per_s"]
    s["rss_after_numeric_import_mb"] = sq["rss_after_import_mb"]
    s["rss_peak_mb"] = sq["rss_peak_mb"]
    for db in ("sqlite", "postgres"):
        if db in r:
            q = r[db]["queue"]
            s[f"queue_next_p99_ms_{db}"] = q["next"].get("p99_ms")
            s[f"queue_next_p50_ms_{db}"] = q["next"].get("p50_ms")
            s[f"labels_per_s_{db}"] = q["labels_per_s"]
            tr = r[db]["train_numeric"]
            s[f"rescore_s_{db}"] = med([t["rescore_s"] for t in tr])
            # Every pool row scored and the whole new order (the first
            # --rank-depth rows) written: the head plus the background tail.
            s[f"rescore_with_tail_s_{db}"] = med([t["rescore_s"] + t.get("rank_tail_s", 0)
                                                  for t in tr])
            s[f"fit_numeric_s_{db}"] = med([t["fit_s"] for t in tr])
            s[f"import_numeric_items_per_s_{db}"] = r[db]["import_numeric"]["items_per_s"]
    s["rescore_ratio_vs_sklearn"] = s["rescore_s_sqlite"] / pe["rescore_predict_proba_margin_s"]
    s["rescore_with_tail_ratio_vs_sklearn"] = (s["rescore_with_tail_s_sqlite"]
                                               / pe["rescore_predict_proba_margin_s"])
    s["text"] = []
    for lo, pk in zip(r["text"]["ladder"], pe["text_ladder"]):
        row = {"n": lo["n"], "sklearn_fit_s": pk["fit_s"], "sklearn_accuracy": pk["accuracy"]}
        if lo["finished"]:
            row.update(loupe_fit_s=lo["fit_s"], loupe_accuracy=lo["accuracy"],
                       fit_ratio_vs_sklearn=lo["fit_s"] / pk["fit_s"])
        else:
            row.update(loupe_fit_s=f"> {lo['seconds_waited']:.0f} (stopped)",
                       fit_ratio_vs_sklearn=f"> {lo['seconds_waited'] / pk['fit_s']:.1f}")
        s["text"].append(row)
    for kind in ("numeric", "text"):
        p = sq["predict_numeric"] if kind == "numeric" else r["text"].get("predict")
        if p is None:
            continue
        rb = med([b["rows_per_s"] for b in p["batch"]])
        s[f"predict_batch_{kind}_rows_per_s"] = rb
        s[f"predict_batch_{kind}_ratio_vs_sklearn"] = rb / pe[f"{kind}_predict_proba_rows_per_s"]
        if p.get("batch_npy"):
            rn = med([b["rows_per_s"] for b in p["batch_npy"]])
            s[f"predict_batch_{kind}_npy_rows_per_s"] = rn
            s[f"predict_batch_{kind}_npy_ratio_vs_sklearn"] = (
                rn / pe[f"{kind}_predict_proba_rows_per_s"])
        s[f"predict_single_{kind}_rps"] = med([b["requests_per_s"] for b in p["single"]])
        s[f"predict_single_{kind}_p99_ms"] = med([b["latency"]["p99_ms"] for b in p["single"]])
        s[f"predict_single_{kind}_ratio_vs_sklearn"] = (
            s[f"predict_single_{kind}_rps"] / pe[f"{kind}_single_row_per_s"])
    return s


if __name__ == "__main__":
    main()
