# Imports N batches of numeric rows (digits + noise), then times a train
# request, which waits for the cold-start passes the imports queued.
# usage: python3 benches/import_then_train.py BINARY N_BATCHES BATCH_SIZE
import gzip, json, os, random, subprocess, sys, tempfile, time, urllib.request, socket
binary = sys.argv[1]
n_batches = int(sys.argv[2]); batch = int(sys.argv[3])
rows = [json.loads(l) for l in gzip.open(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'digits.pool.jsonl.gz'), 'rt')]
s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
d = tempfile.mkdtemp()
tok = 'bench-admin-token-0123456789'
env = dict(os.environ, LOUPE_ADMIN_TOKEN=tok)
p = subprocess.Popen([binary, 'serve', '--database-url', f'sqlite://{d}/b.db', '--bind', f'127.0.0.1:{port}'], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f'http://127.0.0.1:{port}/api/v1'
def req(method, path, body=None, ct='application/json'):
    r = urllib.request.Request(base + path, data=body, method=method, headers={'Authorization': 'Bearer ' + tok, 'Content-Type': ct})
    with urllib.request.urlopen(r, timeout=3600) as f:
        return json.loads(f.read() or b'null')
for _ in range(100):
    try: urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz'); break
    except Exception: time.sleep(0.1)
pid = req('POST', '/projects', json.dumps({"name": "b", "labels": [str(i) for i in range(10)], "retrain_cron": None}).encode())['id']
rng = random.Random(0)
t0 = time.time()
k = 0
for b in range(n_batches):
    lines = []
    for i in range(batch):
        r = rows[k % len(rows)]
        o = {"external_id": f"x{k}", "features": [v + rng.gauss(0, 0.5) for v in r['features']]}
        if k < 200: o['label'] = r['label']
        lines.append(json.dumps(o)); k += 1
    req('POST', f'/projects/{pid}/items', '\n'.join(lines).encode(), 'application/x-ndjson')
t1 = time.time()
# training waits for the project's turn: queued cold-start passes run first
req('POST', f'/projects/{pid}/train?wait=true', b'{}')
t2 = time.time()
print(json.dumps({"binary": binary, "items": k, "import_s": round(t1 - t0, 2), "items_per_s": round(k / (t1 - t0)), "train_after_import_s": round(t2 - t1, 2)}))
p.terminate(); p.wait()
