#!/usr/bin/env python3
"""Single-item prediction: requests/s and latency against the number of
concurrent connections (scale.py measures 32 only, which saturates 2 cores
and so measures queueing, not the server's latency).

    python3 benches/predict_latency.py [--concurrency 4,8,16,32] [--seconds 5]

Uses target/release/loupe and target/release/examples/loadgen (LOUPE_BIN,
LOADGEN_BIN override); trains a model on data/digits (numeric, 64 features,
10 classes) and one on data/spamassassin (text), then posts one item a
request, cycling through the test split.
"""
import argparse, gzip, json, os, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOUPE = os.environ.get("LOUPE_BIN", os.path.join(ROOT, "target/release/loupe"))
LOADGEN = os.environ.get("LOADGEN_BIN", os.path.join(ROOT, "target/release/examples/loadgen"))
TOKEN = "bench-admin-token-0123456789"


def rows(name, part):
    with gzip.open(os.path.join(ROOT, "data", f"{name}.{part}.jsonl.gz"), "rt") as f:
        return [json.loads(l) for l in f]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--concurrency", default="4,8,16,32")
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    work = tempfile.mkdtemp()
    srv = subprocess.Popen([LOUPE, "serve", "--database-url", f"sqlite://{work}/p.db",
                            "--bind", f"127.0.0.1:{port}"],
                           env=dict(os.environ, LOUPE_ADMIN_TOKEN=TOKEN, LOUPE_LOG="warn"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def req(method, path, body=None):
        r = urllib.request.Request(base + path, method=method,
                                   data=None if body is None else json.dumps(body).encode(),
                                   headers={"Authorization": f"Bearer {TOKEN}",
                                            "Content-Type": "application/json"})
        with urllib.request.urlopen(r, timeout=600) as f:
            return json.loads(f.read() or b"null")

    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/healthz"); break
        except Exception:
            time.sleep(0.1)
    svc = req("POST", "/api/v1/tokens", {"name": "svc", "role": "service"})["token"]
    out = {}
    try:
        for name, field in (("digits", "features"), ("spamassassin", "text")):
            pool, test = rows(name, "pool"), rows(name, "test")
            labels = sorted({r["label"] for r in pool})
            pid = req("POST", "/api/v1/projects", {"name": name, "labels": labels,
                                                   "retrain_cron": None})["id"]
            req("POST", f"/api/v1/projects/{pid}/items",
                [{"external_id": r["external_id"], field: r[field], "label": r["label"]}
                 for r in pool[:1000]])
            req("POST", f"/api/v1/projects/{pid}/train?wait=true", {})
            bodies = os.path.join(work, f"{name}.jsonl")
            with open(bodies, "w") as f:
                for r in test:
                    f.write(json.dumps({"items": [{field: r[field]}]}) + "\n")
            for c in [int(x) for x in args.concurrency.split(",")]:
                res = json.loads(subprocess.run(
                    [LOADGEN, "predict", base, str(pid), svc, str(c), str(args.seconds), bodies],
                    check=True, capture_output=True, text=True).stdout)
                lat = res["latency"]
                out[f"{name}/c{c}"] = {"requests_per_s": round(res["requests_per_s"]),
                                       "p50_ms": round(lat["p50_ms"], 2),
                                       "p99_ms": round(lat["p99_ms"], 2),
                                       "errors": res["errors"]}
                print(name, c, out[f"{name}/c{c}"], file=sys.stderr, flush=True)
    finally:
        srv.terminate(); srv.wait()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
