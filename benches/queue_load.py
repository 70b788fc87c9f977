#!/usr/bin/env python3
"""The queue phase of scale.py alone, repeated: import a numeric pool, train
once (waiting for the ranking's background part), then run 8 annotators
looping queue/next -> label (examples/loadgen.rs) RUNS times and print each
run's p50/p99, labels/s and the share of CPU time the hypervisor stole
(steal_pct: a run with much of it measured the neighbours too). Scheduled
retrains are off unless --cron, so runs compare the queue itself; with
--cron "0 * * * * *" a retrain lands in runs that cross a minute, and with
--train-at S one lands S seconds into every run.

  LOUPE_BIN=... LOADGEN_BIN=... python3 benches/queue_load.py --items 1000000 --runs 3
  (LOUPE_SQLITE_SYNCHRONOUS=normal for the other durability setting;
   --pg URL for PostgreSQL)
"""
import argparse, json, os, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--items", type=int, default=1_000_000)
ap.add_argument("--seed-labels", type=int, default=2000)
ap.add_argument("--annotators", type=int, default=8)
ap.add_argument("--seconds", type=int, default=20)
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--cron", default=None)
ap.add_argument("--trains", type=int, default=1,
                help="retrains before the queue runs (each timed to its last written row)")
ap.add_argument("--train-at", type=float, default=None,
                help="retrain the 1M pool this many seconds into every run (a scheduled "
                     "retrain landing while annotators work)")
ap.add_argument("--pg", default=None, help="postgres://... (a database this script drops)")
args = ap.parse_args()

work = tempfile.mkdtemp(prefix="loupe-queue-")
feats, labels = scale.numeric_rows(min(args.items, 50_000))
batches = scale.numeric_batches(feats, labels, args.items, 10_000, args.seed_labels)
if args.pg:
    name = args.pg.rsplit("/", 1)[1]
    subprocess.run(["dropdb", "--if-exists", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    url = args.pg
else:
    url = f"sqlite://{work}/q.db?mode=rwc"
srv = scale.Server(url, work, "queue")
try:
    pid = scale.project(srv, "q", [str(i) for i in range(10)], retrain_cron=args.cron)
    n, secs = scale.import_batches(srv, pid, batches)
    scale.log(f"imported {n} at {n / secs:.0f}/s")
    trains = [scale.train(srv, pid, wait_tail=True) for _ in range(args.trains)]
    for t in trains:
        scale.log("train", t)
    whole = sorted(t["rescore_s"] + t["rank_tail_s"] for t in trains)
    scale.log(f"rescore, every row scored and the ordered depth written: median "
              f"{whole[len(whole) // 2]:.2f} s of {[round(w, 2) for w in whole]}")
    toks = [scale.token(srv, f"a{i}", "annotator") for i in range(args.annotators)]
    out = []
    for r in range(args.runs):
        c0, t0, wall0 = scale.cpu_jiffies(), time.perf_counter(), time.time()
        during = None
        if args.train_at is not None:
            def retrain():
                time.sleep(args.train_at)
                during_out.append(scale.train(srv, pid))
            during_out = []
            during = threading.Thread(target=retrain)
            during.start()
        q = scale.loadgen("annotate", srv.base, pid, args.seconds, *toks)
        if during:
            during.join()
            scale.log("retrain during the run", during_out)
            # Which seconds were slow, beside what the server was doing then.
            scale.log("queue/next p99 (max) by second from " + time.strftime("%H:%M:%S", time.gmtime(wall0)) + ": " +
                      " ".join(f"{s.get('p99_ms', 0):.0f}({s.get('max_ms', 0):.0f})" for s in q["next_by_second"]))
        steal = scale.steal_pct(c0, scale.cpu_jiffies(), time.perf_counter() - t0)
        out.append({"p50_ms": q["next"].get("p50_ms"), "p99_ms": q["next"].get("p99_ms"),
                    "max_ms": q["next"].get("max_ms"), "labels_per_s": q["labels_per_s"],
                    "label_p50_ms": q["label"].get("p50_ms"), "label_p99_ms": q["label"].get("p99_ms"),
                    "steal_pct": round(steal, 1)})
        scale.log(json.dumps(out[-1]))
        time.sleep(3)
    p99 = sorted(o["p99_ms"] for o in out)
    print(json.dumps({"runs": out, "median_p99_ms": p99[len(p99) // 2] if p99 else None,
                      "trains": trains}))
finally:
    srv.stop()
    if args.pg:
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", args.pg.rsplit("/", 1)[1]])
