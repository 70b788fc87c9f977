#!/usr/bin/env python3
"""Batch prediction over HTTP against scikit-learn's in-process
predict_proba, on the same model size (digits: 64 features, 10 classes),
alternating runs in one process tree.

loupe: a fresh SQLite server, a numeric project with the digits pool (its
labels imported), one training; then `examples/loadgen.rs predict` with 2
connections sends the digits test rows, ROWS a request, as JSON and as
.npy (float64 in; out a structured array of predictions, and with
`?output=probabilities` the probabilities alone, predict_proba's answer).
The peer: LogisticRegression()
fitted on the same rows, predict_proba on ROWS-row slices of the same
array already in memory (no I/O at all), 15 passes over the rows a run,
their median.

  python3 benches/predict_batch.py                 # 1,000 rows a request
  python3 benches/predict_batch.py --rows 10000    # larger requests
  python3 benches/predict_batch.py --connections 4 # more requests in flight
  python3 benches/predict_batch.py --dtype float32 # half the bytes on the wire
Prints one JSON object; medians over --runs.
"""
import argparse
import io
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=1000, help="rows a request (and a peer slice)")
ap.add_argument("--seconds", type=float, default=10, help="length of each loupe run")
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--connections", type=int, default=2)
ap.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                help="the .npy bodies' dtype (digits' values are small integers, exact in "
                     "float32; loupe scores in float64 either way, the peer reads float64)")
ap.add_argument("--client", choices=["raw", "reqwest"], default="raw",
                help="loadgen's client: `raw` (predict-raw: a minimal HTTP/1.1 client, one "
                     "blocking thread a connection, as wrk) or `reqwest` (earlier sessions')")
args = ap.parse_args()

from sklearn.linear_model import LogisticRegression  # noqa: E402

work = tempfile.mkdtemp(prefix="loupe-predict-")
pool = scale.read_jsonl_gz(os.path.join(scale.ROOT, "data/digits.pool.jsonl.gz"))
test = scale.read_jsonl_gz(os.path.join(scale.ROOT, "data/digits.test.jsonl.gz"))
labels = sorted({r["label"] for r in pool})
xt = np.array([r["features"] for r in test], dtype=np.float64)
n_total = 10 * args.rows
xb = np.concatenate([xt] * (n_total // len(xt) + 1))[:n_total]

# Request bodies: the same rows, in the same slices, for both formats.
json_path = os.path.join(work, "bodies.jsonl")
npy_dir = os.path.join(work, "npy")
os.makedirs(npy_dir)
with open(json_path, "w") as f:
    for k, i in enumerate(range(0, n_total, args.rows)):
        chunk = xb[i:i + args.rows]
        f.write(json.dumps({"items": [{"features": r.tolist()} for r in chunk]}) + "\n")
        buf = io.BytesIO()
        np.save(buf, chunk.astype(args.dtype))
        with open(os.path.join(npy_dir, f"{k:04}.npy"), "wb") as g:
            g.write(buf.getvalue())

srv = scale.Server(f"sqlite://{work}/p.db?mode=rwc", work, "predict")
report = {"rows_per_request": args.rows, "connections": args.connections, "dtype": args.dtype,
          "client": args.client,
          "train_rows": len(pool), "loupe_json": [], "loupe_npy": [], "loupe_npy_proba": [],
          "sklearn": []}
try:
    pid = scale.project(srv, "digits", labels, retrain_cron=None)
    srv.post(f"/api/v1/projects/{pid}/items",
             "\n".join(json.dumps({"external_id": f"d{i}", "features": r["features"], "label": r["label"]})
                       for i, r in enumerate(pool)).encode(), ctype="application/x-ndjson")
    v = srv.post(f"/api/v1/projects/{pid}/train?wait=true")
    report["model"] = v["algorithm"]
    svc = scale.token(srv, "svc", "service")

    # The answers agree: the .npy route's probabilities are the JSON route's.
    import urllib.request

    def post_npy(query=""):
        r = urllib.request.Request(f"{srv.base}/api/v1/projects/{pid}/predict{query}",
                                   data=open(os.path.join(npy_dir, "0000.npy"), "rb").read(),
                                   method="POST")
        r.add_header("Authorization", f"Bearer {svc}")
        r.add_header("Content-Type", "application/x-npy")
        r.add_header("Accept", "application/x-npy")
        return np.load(io.BytesIO(urllib.request.urlopen(r).read()))

    rec = post_npy()
    ref = srv.post(f"/api/v1/projects/{pid}/predict",
                   json.loads(open(json_path).readline()), token=svc)["predictions"]
    assert len(rec) == len(ref) == min(args.rows, n_total)
    assert all(a == b["label"] for a, b in zip(rec["label"], ref))
    assert all(a == b["route"] for a, b in zip(rec["route"], ref))
    diff = max(abs(p[j] - b["probabilities"][l]) for p, b in zip(rec["probabilities"], ref)
               for j, l in enumerate(labels))
    report["npy_vs_json_max_abs_diff"] = diff
    assert diff < 1e-9, diff
    proba = post_npy("?output=probabilities")
    assert proba.shape == rec["probabilities"].shape and (proba == rec["probabilities"]).all()

    def server_cpu_s():
        with open(f"/proc/{srv.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    xs = np.array([r["features"] for r in pool], dtype=np.float64)
    ys = [r["label"] for r in pool]
    clf = LogisticRegression().fit(xs, ys)
    for run in range(args.runs):
        for kind, bodies, query in (("loupe_json", json_path, ""), ("loupe_npy", npy_dir, ""),
                                    ("loupe_npy_proba", npy_dir, "?output=probabilities")):
            mode = "predict-raw" if args.client == "raw" else "predict"
            cpu0 = server_cpu_s()
            out = scale.loadgen(mode, srv.base, pid, svc, args.connections, args.seconds,
                                bodies, *([query] if query else []))
            assert out["errors"] == 0, out
            out["rows_per_s"] = out["requests_per_s"] * args.rows
            # The server's own CPU time (user + system) a request: less
            # noisy than a rate when the client shares the cores.
            out["server_cpu_ms_per_request"] = (server_cpu_s() - cpu0) * 1e3 / (
                out["requests_per_s"] * out["seconds"])
            report[kind].append(out)
            scale.log(kind, f"{out['rows_per_s']:.0f} rows/s, p50 {out['latency']['p50_ms']:.2f} ms, "
                            f"server {out['server_cpu_ms_per_request']:.2f} ms CPU a request")
        ts = []
        for _ in range(15):
            t0 = time.perf_counter()
            for i in range(0, n_total, args.rows):
                clf.predict_proba(xb[i:i + args.rows])
            ts.append(time.perf_counter() - t0)
        rate = n_total / scale.med(ts)
        report["sklearn"].append(rate)
        scale.log("sklearn", f"{rate:.0f} rows/s")
finally:
    srv.stop()

med = scale.med
sk = med(report["sklearn"])
report["summary"] = {
    "sklearn_rows_per_s": sk,
    "loupe_json_rows_per_s": med([o["rows_per_s"] for o in report["loupe_json"]]),
    "loupe_npy_rows_per_s": med([o["rows_per_s"] for o in report["loupe_npy"]]),
    "loupe_npy_proba_rows_per_s": med([o["rows_per_s"] for o in report["loupe_npy_proba"]]),
}
for kind in ("loupe_json", "loupe_npy", "loupe_npy_proba"):
    report["summary"][f"{kind}_server_cpu_ms_per_request"] = med(
        [o["server_cpu_ms_per_request"] for o in report[kind]])
report["summary"]["json_ratio_vs_sklearn"] = report["summary"]["loupe_json_rows_per_s"] / sk
report["summary"]["npy_ratio_vs_sklearn"] = report["summary"]["loupe_npy_rows_per_s"] / sk
report["summary"]["npy_proba_ratio_vs_sklearn"] = (report["summary"]["loupe_npy_proba_rows_per_s"]
                                                   / sk)
try:
    import sklearn
    import threadpoolctl
    report["sklearn_version"] = sklearn.__version__
    report["blas"] = [(i["internal_api"], i.get("architecture"), i["num_threads"])
                      for i in threadpoolctl.threadpool_info()]
except ImportError:
    pass
print(json.dumps(report, indent=1))
